/// The cell variants beyond `torch.nn.LSTM`'s, as one value the step kernels take. All off
/// (`isPlain`) is PyTorch's cell, which runs on the backends' fused fast paths; any option on
/// runs the general cell (`CPUBackend`'s and `OpenCLBackend`'s options path), which fuses all
/// of them into one pass per step.
///
/// One step of one sequence (q a gate with weights, H units each):
///
///     s_q = W_ih,q·x + W_hh,q·h(prev)   (+ b_ih,q + b_hh,q here without layer norm)
///     peepholes:   s_i += p_i ⊙ c(prev);  s_f += p_f ⊙ c(prev)
///     layer norm:  z_q = γ_q ⊙ (s_q − mean s_q) / √(var s_q + ε) + b_ih,q + b_hh,q
///                  (mean and biased variance over the H units of gate q)
///     else         z_q = s_q
///     activation clip a:  z_q = clamp(z_q, −a, a)
///     f = σ(z_f),  g = tanh(z_g),  i = σ(z_i) or, with CIFG, i = 1 − f
///     c = f ⊙ c(prev) + i ⊙ g,  cell clip k:  c = clamp(c, −k, k)
///     o: s_o (+ p_o ⊙ c, the clipped c) → layer norm, bias, clip as above → o = σ(z_o)
///     m = o ⊙ tanh(c);  h = m, or W_hr·m then projection clip: clamp(h, −p, p)
///
/// The gradient through a clamp passes where the value lay in [−c, c] (bounds included, as
/// `torch.clamp`) and is 0 outside. A clip of 0 is off.
public struct LSTMCellOptions: Equatable, Hashable, Sendable, Codable {
    /// Diagonal peepholes `weight_ci`, `weight_cf`, `weight_co` [H].
    public var peepholes: Bool
    /// CIFG: i = 1 − f, no input-gate weights (G = 3 gate rows: f, g, o).
    public var coupledInputForget: Bool
    /// Per-gate layer normalisation with `layer_norm_weight_{i,f,g,o}` [H].
    public var layerNorm: Bool
    /// ε of the layer normalisation (> 0).
    public var layerNormEpsilon: Float
    /// Clamp of every gate pre-activation (0: off).
    public var activationClip: Float
    /// Clamp of the cell state after each update (0: off).
    public var cellClip: Float
    /// Clamp of the projected h (0: off; needs a projection).
    public var projectionClip: Float

    public init(
        peepholes: Bool = false, coupledInputForget: Bool = false, layerNorm: Bool = false,
        layerNormEpsilon: Float = 1e-5, activationClip: Float = 0, cellClip: Float = 0, projectionClip: Float = 0
    ) {
        self.peepholes = peepholes
        self.coupledInputForget = coupledInputForget
        self.layerNorm = layerNorm
        self.layerNormEpsilon = layerNormEpsilon
        self.activationClip = activationClip
        self.cellClip = cellClip
        self.projectionClip = projectionClip
    }

    /// No option set: `torch.nn.LSTM`'s cell (ε is irrelevant without layer norm).
    public var isPlain: Bool {
        !peepholes && !coupledInputForget && !layerNorm && activationClip == 0 && cellClip == 0
            && projectionClip == 0
    }

    /// G: 4, or 3 with CIFG.
    public var gateCount: Int { coupledInputForget ? 3 : 4 }

    /// Throws for a clip that is negative, NaN or infinite, an ε that is not a positive
    /// finite number, or a projection clip without a projection.
    public func validate(projects: Bool) throws {
        for (name, value) in [
            ("activationClip", activationClip), ("cellClip", cellClip), ("projectionClip", projectionClip),
        ] {
            guard value.isFinite, value >= 0 else {
                throw LSTMError.invalidConfiguration(
                    "\(name) must be 0 (off) or a positive finite number, got \(value)")
            }
        }
        guard layerNormEpsilon.isFinite, layerNormEpsilon > 0 else {
            throw LSTMError.invalidConfiguration(
                "layerNormEpsilon must be a positive finite number, got \(layerNormEpsilon)")
        }
        guard projectionClip == 0 || projects else {
            throw LSTMError.invalidConfiguration(
                "projectionClip clamps the projected h, but the model has no projection (projectionSize 0)")
        }
    }

    /// Extra floats per row (one sequence at one step) that the options path saves for its
    /// backward: z before the clip [G·H], with layer norm x̂ [G·H] and 1/σ [G], with a cell
    /// clip the unclipped c [H], with a projection clip the unclipped h [Hout].
    func savedFloatsPerRow(hiddenSize h: Int, outputSize hout: Int) -> Int {
        guard !isPlain else { return 0 }
        return gateCount * h + (layerNorm ? gateCount * (h + 1) : 0) + (cellClip > 0 ? h : 0)
            + (projectionClip > 0 ? hout : 0)
    }

    /// The options that are set, for people: "peepholes, layer norm (ε 1e-05), cell clip 0.5";
    /// "none" for the plain cell.
    public var summary: String {
        var parts: [String] = []
        if peepholes { parts.append("peepholes") }
        if coupledInputForget { parts.append("CIFG") }
        if layerNorm { parts.append("layer norm (ε \(layerNormEpsilon))") }
        if activationClip > 0 { parts.append("activation clip \(activationClip)") }
        if cellClip > 0 { parts.append("cell clip \(cellClip)") }
        if projectionClip > 0 { parts.append("projection clip \(projectionClip)") }
        return parts.isEmpty ? "none" : parts.joined(separator: ", ")
    }

    /// The safetensors metadata of the options that are set (none for a plain cell).
    var metadata: [String: String] {
        var entries: [String: String] = [:]
        if peepholes { entries["peephole"] = "true" }
        if coupledInputForget { entries["cifg"] = "true" }
        if layerNorm {
            entries["layer_norm"] = "true"
            entries["layer_norm_eps"] = "\(layerNormEpsilon)"
        }
        if activationClip > 0 { entries["activation_clip"] = "\(activationClip)" }
        if cellClip > 0 { entries["cell_clip"] = "\(cellClip)" }
        if projectionClip > 0 { entries["proj_clip"] = "\(projectionClip)" }
        return entries
    }
}
