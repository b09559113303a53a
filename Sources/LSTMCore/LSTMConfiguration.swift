/// The hyper-parameters of an LSTM: those of `torch.nn.LSTM`, plus the cell options of the
/// LSTMs that ONNX, TensorFlow Lite and Arm Compute Library run (peepholes, a coupled
/// input-forget gate, layer normalisation, clipping, a single reverse direction). With every
/// option at its default the model is exactly `torch.nn.LSTM`; the options' formulas are in
/// `LSTMCellOptions` and the README's option table.
///
/// Shape letters: T steps, B batch, I `inputSize`, H `hiddenSize`, P `projectionSize`,
/// L `numLayers`, D directions (2 when `bidirectional`), Hout = P if P > 0 else H,
/// G gates with weights (4; 3 with `coupledInputForget`).
public struct LSTMConfiguration: Equatable, Hashable, Sendable, Codable {
    /// I: features per step of the input.
    public var inputSize: Int
    /// H: hidden units (cells) per layer and direction.
    public var hiddenSize: Int
    /// L: stacked layers.
    public var numLayers: Int
    /// Whether the layers have `bias_ih` and `bias_hh`.
    public var bias: Bool
    /// Input and output are [B, T, ·] instead of [T, B, ·] (states are never batch-first).
    public var batchFirst: Bool
    /// D = 2: a second, reversed direction per layer, concatenated on the feature axis.
    public var bidirectional: Bool
    /// P: when > 0, h is projected to P features by `weight_hr` (PyTorch's `proj_size`).
    public var projectionSize: Int
    /// Dropout probability on the outputs of every layer but the last, in training runs
    /// (PyTorch's `dropout`).
    public var dropout: Float = 0
    /// The cell options beyond PyTorch's cell (peepholes, CIFG, layer norm, clips), stored
    /// once here; the flat properties below (`peepholes`, `cellClip`, …) read and write them.
    public var cellOptions = LSTMCellOptions()
    /// One direction that reads each sequence backwards (ONNX `direction="reverse"`); output in
    /// the original time order, weights named with the `_reverse` suffix. Not with `bidirectional`.
    public var reverse: Bool = false

    public init(
        inputSize: Int, hiddenSize: Int, numLayers: Int = 1, bias: Bool = true,
        batchFirst: Bool = false, bidirectional: Bool = false, projectionSize: Int = 0, dropout: Float = 0,
        cell: LSTMCellOptions = LSTMCellOptions(), reverse: Bool = false
    ) {
        self.dropout = dropout
        self.inputSize = inputSize
        self.hiddenSize = hiddenSize
        self.numLayers = numLayers
        self.bias = bias
        self.batchFirst = batchFirst
        self.bidirectional = bidirectional
        self.projectionSize = projectionSize
        self.reverse = reverse
        self.cellOptions = cell
    }

    /// Diagonal peephole connections: p_i ⊙ c(prev) into i, p_f ⊙ c(prev) into f, p_o ⊙ c(t)
    /// into o (`weight_ci`, `weight_cf`, `weight_co` [H]; no `weight_ci` with CIFG).
    public var peepholes: Bool {
        get { cellOptions.peepholes }
        set { cellOptions.peepholes = newValue }
    }
    /// CIFG: i = 1 − f. The input gate has no weights, so the gate rows are f, g, o (G = 3).
    public var coupledInputForget: Bool {
        get { cellOptions.coupledInputForget }
        set { cellOptions.coupledInputForget = newValue }
    }
    /// Layer normalisation of each gate's pre-activation over its H units, scaled by
    /// `layer_norm_weight_{i,f,g,o}` [H], before the biases are added.
    public var layerNorm: Bool {
        get { cellOptions.layerNorm }
        set { cellOptions.layerNorm = newValue }
    }
    /// ε of the layer normalisation: x̂ = (s − mean) / √(var + ε).
    public var layerNormEpsilon: Float {
        get { cellOptions.layerNormEpsilon }
        set { cellOptions.layerNormEpsilon = newValue }
    }
    /// When > 0, every gate pre-activation is clamped to [−c, c] before its activation (ONNX `clip`).
    public var activationClip: Float {
        get { cellOptions.activationClip }
        set { cellOptions.activationClip = newValue }
    }
    /// When > 0, the cell state is clamped to [−c, c] after each update.
    public var cellClip: Float {
        get { cellOptions.cellClip }
        set { cellOptions.cellClip = newValue }
    }
    /// When > 0 (projection only), the projected h is clamped to [−c, c].
    public var projectionClip: Float {
        get { cellOptions.projectionClip }
        set { cellOptions.projectionClip = newValue }
    }

    /// D: 1 or 2.
    public var numDirections: Int { bidirectional ? 2 : 1 }
    /// G: gates with weights, 4 (i, f, g, o) or 3 with CIFG (f, g, o).
    public var gateCount: Int { coupledInputForget ? 3 : 4 }
    /// The name suffix of direction `direction` (0 or 1) of layer `layer`: "_l0", "_l0_reverse".
    /// A `reverse` LSTM's one direction has the `_reverse` suffix.
    public func suffix(layer: Int, direction: Int) -> String {
        "_l\(layer)" + (direction == 1 || reverse ? "_reverse" : "")
    }
    /// Hout: the size of h (P when projecting, else H).
    public var outputSize: Int { projectionSize > 0 ? projectionSize : hiddenSize }
    /// Features per step of the input to `layer`: I for layer 0, D·Hout above.
    public func layerInputSize(_ layer: Int) -> Int { layer == 0 ? inputSize : numDirections * outputSize }

    /// Throws when `torch.nn.LSTM` would refuse the configuration.
    public func validate() throws {
        try SizeLimits.requireSize(inputSize, "inputSize")
        try SizeLimits.requireSize(hiddenSize, "hiddenSize")
        try SizeLimits.requireSize(numLayers, "numLayers", limit: SizeLimits.maxLayers)
        try SizeLimits.requireSize(projectionSize, "projectionSize", minimum: 0)
        guard dropout >= 0, dropout < 1 else {
            throw LSTMError.invalidConfiguration("dropout must be in [0, 1), got \(dropout)")
        }
        guard projectionSize < hiddenSize else {
            throw LSTMError.invalidConfiguration(
                "projectionSize (\(projectionSize)) must be smaller than hiddenSize (\(hiddenSize))")
        }
        guard !(reverse && bidirectional) else {
            throw LSTMError.invalidConfiguration(
                "reverse (one backward-reading direction) cannot be combined with bidirectional, which has both")
        }
        try cellOptions.validate(projects: projectionSize > 0)
    }

    /// The weight tensors of one layer and direction, in `state_dict` order, with shapes.
    /// Rows are G·H: gates i, f, g, o (f, g, o with CIFG). Peephole and layer-norm vectors
    /// follow the PyTorch-style tensors: `weight_ci`, `weight_cf`, `weight_co`,
    /// `layer_norm_weight_i`, `_f`, `_g`, `_o` (no `_i` ones with CIFG), each [H].
    public func parameterSpecs(layer: Int, direction: Int) -> [(name: String, shape: [Int])] {
        let suffix = suffix(layer: layer, direction: direction)
        let (h, rows) = (hiddenSize, gateCount * hiddenSize)
        var specs: [(String, [Int])] = [
            ("weight_ih" + suffix, [rows, layerInputSize(layer)]),
            ("weight_hh" + suffix, [rows, outputSize]),
        ]
        if bias { specs += [("bias_ih" + suffix, [rows]), ("bias_hh" + suffix, [rows])] }
        if projectionSize > 0 { specs.append(("weight_hr" + suffix, [projectionSize, h])) }
        let ownGates = coupledInputForget ? ["f", "g", "o"] : ["i", "f", "g", "o"]
        if peepholes {
            specs += ownGates.filter { $0 != "g" }.map { ("weight_c\($0)" + suffix, [h]) }
        }
        if layerNorm { specs += ownGates.map { ("layer_norm_weight_\($0)" + suffix, [h]) } }
        return specs
    }

    /// Every weight tensor, in `torch.nn.LSTM.state_dict()` order, with its shape.
    public var parameterSpecs: [(name: String, shape: [Int])] {
        (0..<numLayers).flatMap { l in (0..<numDirections).flatMap { d in parameterSpecs(layer: l, direction: d) } }
    }

    /// Number of weights (all tensors of `parameterSpecs`), clamped to `Int.max` on overflow.
    public var parameterCount: Int {
        SizeLimits.saturatingSum(parameterSpecs.map { SizeLimits.saturatingProduct($0.shape) })
    }

    /// Floats one forward keeps alive for T steps and B sequences: the layer outputs, and
    /// with `training` the saved activations of every layer and direction.
    public func workingSetFloats(sequenceLength steps: Int, batch: Int, training: Bool) -> Int {
        let rows = Double(steps) * Double(batch)
        let perDirection =
            training
            ? Double(4 * hiddenSize + 2 * hiddenSize + outputSize + (projectionSize > 0 ? hiddenSize : 0))
                + Double(cellOptions.savedFloatsPerRow(hiddenSize: hiddenSize, outputSize: outputSize))
            : Double(4 * hiddenSize)
        let total =
            rows * Double(numLayers) * Double(numDirections) * (perDirection + Double(outputSize))
            + rows * Double(inputSize)
        return total >= Double(Int.max / 8) ? Int.max / 8 : Int(total)
    }

    /// The settings as safetensors metadata (PyTorch's argument names, string values):
    /// what `LSTM.saveWeights` records and `LSTM(contentsOf:)` restores.
    /// The cell options are recorded only when set, so a plain LSTM's file is a PyTorch one.
    public var metadata: [String: String] {
        var entries = [
            "input_size": "\(inputSize)", "hidden_size": "\(hiddenSize)", "num_layers": "\(numLayers)",
            "proj_size": "\(projectionSize)", "bidirectional": "\(bidirectional)", "batch_first": "\(batchFirst)",
            "bias": "\(bias)", "dropout": "\(dropout)",
        ]
        if reverse { entries["reverse"] = "true" }
        entries.merge(cellOptions.metadata) { a, _ in a }
        return entries
    }

    /// Infers the configuration from a `state_dict`'s tensors (names and shapes).
    /// `batchFirst` is not stored in weights and must be given.
    public static func inferred(from shapes: [String: [Int]], batchFirst: Bool = false) throws -> LSTMConfiguration {
        try inferred(from: shapes, metadata: [:], batchFirst: batchFirst, source: "weights")
    }

    /// Infers the configuration from a `state_dict`'s tensors, then applies the settings that
    /// `metadata` records (see `metadata`): sizes must agree with the tensors, `batch_first`
    /// and `dropout` are taken from it. A given `batchFirst` that contradicts the metadata is
    /// refused; nil takes the metadata's (false without one). `source` names the file in errors.
    package static func inferred(
        from shapes: [String: [Int]], metadata: [String: String], batchFirst: Bool?,
        source: String
    ) throws -> LSTMConfiguration {
        // A `reverse` LSTM has only `_reverse` tensors; its first layer tells it apart.
        let reverse = shapes["weight_ih_l0"] == nil && shapes["weight_ih_l0_reverse"] != nil
        let first = reverse ? "_l0_reverse" : "_l0"
        guard let wih = shapes["weight_ih" + first], wih.count == 2,
            let whh = shapes["weight_hh" + first], whh.count == 2
        else {
            throw LSTMError.invalidConfiguration(
                "cannot infer an LSTM from \(source): weight_ih_l0/weight_hh_l0 missing or not 2-D")
        }
        var layers = 0
        while layers <= SizeLimits.maxLayers,
            shapes["weight_ih" + (reverse ? "_l\(layers)_reverse" : "_l\(layers)")] != nil
        {
            layers += 1
        }
        // H: the columns of W_hr when projecting, else of W_hh (Hout = H); then W_hh's G·H rows
        // tell the gate count (3: CIFG).
        let projection = shapes["weight_hr" + first]?.first ?? 0
        let hidden = projection > 0 ? (shapes["weight_hr" + first]?.last ?? 0) : whh[1]
        guard hidden > 0, whh[0] == 4 * hidden || whh[0] == 3 * hidden else {
            throw LSTMError.invalidConfiguration(
                "cannot infer an LSTM from \(source): weight_hh\(first) has \(whh[0]) rows, not 4·H or 3·H (CIFG) for H = \(hidden)"
            )
        }
        var cell = LSTMCellOptions()
        cell.coupledInputForget = whh[0] == 3 * hidden
        cell.peepholes = shapes["weight_cf" + first] != nil
        cell.layerNorm = shapes["layer_norm_weight_f" + first] != nil
        var config = LSTMConfiguration(
            inputSize: wih[1], hiddenSize: hidden, numLayers: layers, bias: shapes["bias_ih" + first] != nil,
            batchFirst: false, bidirectional: !reverse && shapes["weight_ih_l0_reverse"] != nil,
            projectionSize: projection, cell: cell, reverse: reverse)
        try config.validate()

        func recorded(_ key: String) -> String? { metadata[key] }
        func refuse(_ key: String, _ value: String, _ inferred: String) -> LSTMError {
            .invalidConfiguration(
                "\(source): metadata \(key) = \(value) contradicts the tensors, which give \(inferred)")
        }
        for (key, value) in [
            ("input_size", config.inputSize), ("hidden_size", config.hiddenSize),
            ("num_layers", config.numLayers), ("proj_size", config.projectionSize),
        ] {
            guard let text = recorded(key) else { continue }
            guard let number = Int(text), number == value else { throw refuse(key, text, "\(value)") }
        }
        for (key, value) in [
            ("bidirectional", config.bidirectional), ("bias", config.bias), ("reverse", config.reverse),
            ("peephole", config.peepholes), ("cifg", config.coupledInputForget), ("layer_norm", config.layerNorm),
        ] {
            guard let text = recorded(key) else { continue }
            guard let flag = parseFlag(text), flag == value else { throw refuse(key, text, "\(value)") }
        }
        if let text = recorded("batch_first") {
            guard let flag = parseFlag(text) else {
                throw LSTMError.invalidConfiguration("\(source): metadata batch_first = '\(text)' is not true or false")
            }
            if let batchFirst, batchFirst != flag {
                throw LSTMError.invalidConfiguration(
                    "\(source): batchFirst \(batchFirst) was asked for, but the file records batch_first = \(flag)")
            }
            config.batchFirst = flag
        } else {
            config.batchFirst = batchFirst ?? false
        }
        if let text = recorded("dropout") {
            guard let p = Float(text), p >= 0, p < 1 else {
                throw LSTMError.invalidConfiguration(
                    "\(source): metadata dropout = '\(text)' is not a probability in [0, 1)")
            }
            config.dropout = p
        }
        // The clips and ε are not in the tensors: taken from the metadata (defaults without).
        for (key, path) in [
            ("activation_clip", \LSTMConfiguration.activationClip), ("cell_clip", \.cellClip),
            ("proj_clip", \.projectionClip), ("layer_norm_eps", \.layerNormEpsilon),
        ] as [(String, WritableKeyPath<LSTMConfiguration, Float>)] {
            guard let text = recorded(key) else { continue }
            guard let value = Float(text) else {
                throw LSTMError.invalidConfiguration("\(source): metadata \(key) = '\(text)' is not a number")
            }
            config[keyPath: path] = value
        }
        do { try config.validate() } catch let LSTMError.invalidConfiguration(message) {
            throw LSTMError.invalidConfiguration("\(source): \(message)")
        }
        return config
    }
}

/// "true"/"false" (also Python's "True"/"False" and "1"/"0"), nil for anything else.
package func parseFlag(_ text: String) -> Bool? {
    switch text {
    case "true", "True", "1": return true
    case "false", "False", "0": return false
    default: return nil
    }
}

extension LSTMConfiguration {
    enum CodingKeys: String, CodingKey {
        case inputSize, hiddenSize, numLayers, bias, batchFirst, bidirectional, projectionSize, dropout
        case peepholes, coupledInputForget, layerNorm, layerNormEpsilon, activationClip, cellClip, projectionClip
        case reverse
    }

    /// Encodes the cell options flat beside the other settings (the keys above, the format
    /// every model and state file has used).
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(inputSize, forKey: .inputSize)
        try c.encode(hiddenSize, forKey: .hiddenSize)
        try c.encode(numLayers, forKey: .numLayers)
        try c.encode(bias, forKey: .bias)
        try c.encode(batchFirst, forKey: .batchFirst)
        try c.encode(bidirectional, forKey: .bidirectional)
        try c.encode(projectionSize, forKey: .projectionSize)
        try c.encode(dropout, forKey: .dropout)
        try c.encode(peepholes, forKey: .peepholes)
        try c.encode(coupledInputForget, forKey: .coupledInputForget)
        try c.encode(layerNorm, forKey: .layerNorm)
        try c.encode(layerNormEpsilon, forKey: .layerNormEpsilon)
        try c.encode(activationClip, forKey: .activationClip)
        try c.encode(cellClip, forKey: .cellClip)
        try c.encode(projectionClip, forKey: .projectionClip)
        try c.encode(reverse, forKey: .reverse)
    }

    /// Decodes configurations encoded before the cell options existed: a missing option is
    /// off (PyTorch's cell), a missing `dropout` is 0. The result is validated.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let defaults = LSTMCellOptions()
        self.init(
            inputSize: try c.decode(Int.self, forKey: .inputSize),
            hiddenSize: try c.decode(Int.self, forKey: .hiddenSize),
            numLayers: try c.decode(Int.self, forKey: .numLayers), bias: try c.decode(Bool.self, forKey: .bias),
            batchFirst: try c.decode(Bool.self, forKey: .batchFirst),
            bidirectional: try c.decode(Bool.self, forKey: .bidirectional),
            projectionSize: try c.decode(Int.self, forKey: .projectionSize),
            dropout: try c.decodeIfPresent(Float.self, forKey: .dropout) ?? 0,
            cell: LSTMCellOptions(
                peepholes: try c.decodeIfPresent(Bool.self, forKey: .peepholes) ?? defaults.peepholes,
                coupledInputForget: try c.decodeIfPresent(Bool.self, forKey: .coupledInputForget)
                    ?? defaults.coupledInputForget,
                layerNorm: try c.decodeIfPresent(Bool.self, forKey: .layerNorm) ?? defaults.layerNorm,
                layerNormEpsilon: try c.decodeIfPresent(Float.self, forKey: .layerNormEpsilon)
                    ?? defaults.layerNormEpsilon,
                activationClip: try c.decodeIfPresent(Float.self, forKey: .activationClip) ?? 0,
                cellClip: try c.decodeIfPresent(Float.self, forKey: .cellClip) ?? 0,
                projectionClip: try c.decodeIfPresent(Float.self, forKey: .projectionClip) ?? 0),
            reverse: try c.decodeIfPresent(Bool.self, forKey: .reverse) ?? false)
        try validate()
    }
}
