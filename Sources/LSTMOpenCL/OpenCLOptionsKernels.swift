// OpenCLOptionsKernels.swift: how each kernel of Kernels/lstm_options.cl (the cell with
// options, one step per launch) is launched: one typed launcher per kernel, its arguments in
// the kernel's order, and the option bits the kernels read.

@_spi(Backend) import LSTMCore

/// One typed launcher per kernel of Kernels/lstm_options.cl, for `optionsForward` and
/// `optionsBackward` (OpenCLOptionsCell.swift). Shapes use the kernels' letters: T steps,
/// B batch, H hidden, Hout (P when projecting, else H), G gates (4, or 3 with CIFG: f, g, o),
/// GW = G·H, t the step; rows of [T·B, ·] buffers are t·B + b. The cell's settings (clips, ε,
/// which options) come from the shape's `cell`; `lengths` [B] holds each sequence's length,
/// and `placeholder` (a one-element buffer) is bound where an optional buffer is absent.
extension OpenCLBackend {
    /// The cell kernels' work-group: OPTIONS_GROUP items (lstm_options.cl) per sequence.
    private static let optionsGroup = 64

    /// The kernels' option bits (lstm_options.cl's OPT_*); `save`: the activations are kept
    /// for a backward.
    private func optionFlags(_ s: DirectionShape, save: Bool) -> Int {
        let c = s.cell
        var flags = 0
        if c.coupledInputForget { flags |= 1 }
        if c.layerNorm { flags |= 2 }
        if c.peepholes { flags |= 4 }
        if save { flags |= 8 }
        if s.projects { flags |= 16 }
        if save && c.cellClip > 0 { flags |= 32 }
        return flags
    }

    /// `lstm_options_forward_cell` (lstm_options.cl): the cell of step t. In: the sums
    /// s = x·W_ihᵀ + h·W_hhᵀ (+ biases without layer norm) in `gates` [T·B, GW] (activated in
    /// place), h(prev) `hidden` [B, Hout], c(prev) `cell` [B, H], `peepholes` [3H] (i, f, o),
    /// `layerNormWeights` [4H] (i, f, g, o), `bias` [GW] (b_ih + b_hh, read with layer norm).
    /// Out: `preActivations` z [·, GW], with layer norm `normalized` x̂ [·, GW] and
    /// `inverseDeviation` 1/√(var + ε) [·, G] (· = T·B rows t·B + b with `saved`, else B rows
    /// of per-step scratch), with a cell clip and `saved` `unclippedCell` [T·B, H]; c
    /// `nextCell` [B, H]; m = o·tanh(c) into `nextHidden` (r [B, H] when projecting, else h
    /// [B, Hout] and the row of `output` [T·B, Hout]); with `saved`, its h(prev), c(prev), c and
    /// r [T·B, ·]. Work-group (64, 1), one per sequence; global (64, B).
    func optionsForwardCell(
        shape s: DirectionShape, step t: Int, gates: OpenCLBuffer, preActivations: OpenCLBuffer,
        normalized: OpenCLBuffer, inverseDeviation: OpenCLBuffer, unclippedCell: OpenCLBuffer,
        peepholes: OpenCLBuffer, layerNormWeights: OpenCLBuffer, bias: OpenCLBuffer, hidden: OpenCLBuffer,
        cell: OpenCLBuffer, nextHidden: OpenCLBuffer, nextCell: OpenCLBuffer, output: MatrixView<OpenCLBuffer>,
        lengths: OpenCLBuffer, saved: DirectionActivations<OpenCLBuffer>?, placeholder: OpenCLBuffer
    ) throws {
        let c = s.cell
        try launch(
            "lstm_options_forward_cell", in: .lstmOptions, global: [Self.optionsGroup, s.batch],
            local: [Self.optionsGroup, 1],
            [
                .int(t), .int(s.batch), .int(s.hiddenSize), .int(s.outputSize),
                .int(optionFlags(s, save: saved != nil)), .float(c.layerNormEpsilon), .float(c.activationClip),
                .float(c.cellClip), .buffer(gates), .buffer(preActivations), .buffer(normalized),
                .buffer(inverseDeviation), .buffer(unclippedCell), .buffer(peepholes), .buffer(layerNormWeights),
                .buffer(bias), .buffer(hidden), .buffer(cell), .buffer(nextHidden), .buffer(nextCell),
                .buffer(output.buffer), .int(output.offset), .int(output.rowStride), .buffer(lengths),
                .buffer(saved?.previousHidden ?? placeholder), .buffer(saved?.previousCell ?? placeholder),
                .buffer(saved?.cell ?? placeholder), .buffer(saved?.unprojected ?? placeholder),
            ])
    }

    /// `lstm_options_project_finish` (lstm_options.cl): after the projection GEMM wrote
    /// h = r·W_hrᵀ into `nextHidden` [B, Hout], for running sequences the projection clip
    /// (with `save` and a clip, h before it kept in `unclippedHidden` [T·B, Hout]), h back into
    /// `nextHidden` and the row of `output` [T·B, Hout]; padded ones carry h(prev) `hidden`
    /// [B, Hout] and write a 0 row. Global (Hout, B), any work-group.
    func optionsProjectFinish(
        shape s: DirectionShape, step t: Int, save: Bool, nextHidden: OpenCLBuffer, hidden: OpenCLBuffer,
        unclippedHidden: OpenCLBuffer, output: MatrixView<OpenCLBuffer>, lengths: OpenCLBuffer
    ) throws {
        try launch(
            "lstm_options_project_finish", in: .lstmOptions, global: [s.outputSize, s.batch],
            [
                .int(t), .int(s.batch), .int(s.outputSize), .int(save ? 1 : 0), .float(s.cell.projectionClip),
                .buffer(nextHidden), .buffer(hidden), .buffer(unclippedHidden), .buffer(output.buffer),
                .int(output.offset), .int(output.rowStride), .buffer(lengths),
            ])
    }

    /// `lstm_options_hidden_gradient` (lstm_options.cl): dL/dh(t) [B, Hout] = the carried
    /// `hiddenGradient` dh [B, Hout] + the row of `outputGradient` dy [T·B, Hout] (when given),
    /// times the projection clip's slope at the saved `unclippedHidden` [T·B, Hout] (with a
    /// clip); 0 for padded sequences. Written to `destination` from element `offset` on (the
    /// projected gradients [T·B, Hout] at row t·B, or dm [B, H] without projection).
    /// Global (Hout, B), any work-group.
    func optionsHiddenGradient(
        shape s: DirectionShape, step t: Int, hiddenGradient: OpenCLBuffer,
        outputGradient dy: MatrixView<OpenCLBuffer>?, unclippedHidden: OpenCLBuffer?,
        into destination: OpenCLBuffer, offset: Int, lengths: OpenCLBuffer, placeholder: OpenCLBuffer
    ) throws {
        try launch(
            "lstm_options_hidden_gradient", in: .lstmOptions, global: [s.outputSize, s.batch],
            [
                .int(t), .int(s.batch), .int(s.outputSize), .float(s.cell.projectionClip), .buffer(hiddenGradient),
                .int(dy == nil ? 0 : 1), .buffer(dy?.buffer ?? placeholder), .int(dy?.offset ?? 0),
                .int(dy?.rowStride ?? 0), .buffer(unclippedHidden ?? placeholder), .buffer(destination),
                .int(offset), .buffer(lengths),
            ])
    }

    /// `lstm_options_backward_cell` (lstm_options.cl): the cell's backward at step t. In: the
    /// saved activations (`saved`: gates [T·B, GW], c(prev) and c [T·B, H]; `options`: z
    /// [T·B, GW], with layer norm x̂ [T·B, GW] and 1/σ [T·B, G], with a cell clip c before it
    /// [T·B, H]), `peepholes` [3H], `layerNormWeights` [4H], dm `unprojectedGradient` [B, H].
    /// Out: dG = dL/ds into `gateGradients` [T·B, GW], with layer norm dZ = dL/dz into
    /// `preActivationGradients` [T·B, GW]; `cellGradient` dc [B, H] ← dL/dc(prev) (carried
    /// through padded steps, whose dG and dZ are 0). Work-group (64, 1), one per sequence;
    /// global (64, B).
    func optionsBackwardCell(
        shape s: DirectionShape, step t: Int, saved: DirectionActivations<OpenCLBuffer>,
        options extra: OptionActivations<OpenCLBuffer>, peepholes: OpenCLBuffer, layerNormWeights: OpenCLBuffer,
        unprojectedGradient: OpenCLBuffer, cellGradient: OpenCLBuffer, gateGradients: OpenCLBuffer,
        preActivationGradients: OpenCLBuffer, lengths: OpenCLBuffer, placeholder: OpenCLBuffer
    ) throws {
        let c = s.cell
        try launch(
            "lstm_options_backward_cell", in: .lstmOptions, global: [Self.optionsGroup, s.batch],
            local: [Self.optionsGroup, 1],
            [
                .int(t), .int(s.batch), .int(s.hiddenSize), .int(optionFlags(s, save: true)),
                .float(c.activationClip), .float(c.cellClip), .buffer(saved.gates), .buffer(extra.preActivations),
                .buffer(extra.normalized ?? placeholder), .buffer(extra.inverseDeviation ?? placeholder),
                .buffer(extra.unclippedCell ?? placeholder), .buffer(peepholes), .buffer(layerNormWeights),
                .buffer(saved.previousCell), .buffer(saved.cell), .buffer(unprojectedGradient),
                .buffer(cellGradient), .buffer(gateGradients), .buffer(preActivationGradients), .buffer(lengths),
            ])
    }

    /// `lstm_options_carry_hidden` (lstm_options.cl): `hiddenGradient` dh [B, Hout] ← `source`
    /// [B, Hout] (dG(t)·W_hh) for the sequences running at step t; padded ones keep theirs.
    /// Global (Hout, B), any work-group.
    func optionsCarryHidden(
        shape s: DirectionShape, step t: Int, source: OpenCLBuffer, hiddenGradient: OpenCLBuffer,
        lengths: OpenCLBuffer
    ) throws {
        try launch(
            "lstm_options_carry_hidden", in: .lstmOptions, global: [s.outputSize, s.batch],
            [
                .int(t), .int(s.batch), .int(s.outputSize), .buffer(source), .buffer(hiddenGradient),
                .buffer(lengths),
            ])
    }

    /// `lstm_options_unit_gradients` (lstm_options.cl): per unit j, summed over the valid rows
    /// of all T steps, the peepholes' gradients Σ dG ⊙ c(prev) (i, f) and Σ dG ⊙ c (o) into
    /// `peepholeGradients` [3H], and the layer-norm weights' Σ dZ ⊙ x̂ into
    /// `layerNormWeightGradients` [4H] (i, f, g, o), from `gateGradients` dG and
    /// `preActivationGradients` dZ [T·B, GW], the saved c(prev) and c [T·B, H] and
    /// `normalized` x̂ [T·B, GW]. Global (H), any work-group.
    func optionsUnitGradients(
        shape s: DirectionShape, gateGradients: OpenCLBuffer, preActivationGradients: OpenCLBuffer,
        saved: DirectionActivations<OpenCLBuffer>, normalized: OpenCLBuffer?, lengths: OpenCLBuffer,
        peepholeGradients: OpenCLBuffer, layerNormWeightGradients: OpenCLBuffer, placeholder: OpenCLBuffer
    ) throws {
        try launch(
            "lstm_options_unit_gradients", in: .lstmOptions, global: [s.hiddenSize],
            [
                .int(s.sequenceLength), .int(s.batch), .int(s.hiddenSize), .int(optionFlags(s, save: true)),
                .buffer(gateGradients), .buffer(preActivationGradients), .buffer(saved.previousCell),
                .buffer(saved.cell), .buffer(normalized ?? placeholder), .buffer(lengths),
                .buffer(peepholeGradients), .buffer(layerNormWeightGradients),
            ])
    }
}
