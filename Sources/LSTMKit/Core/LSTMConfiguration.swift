/// The hyper-parameters of an LSTM, exactly those of `torch.nn.LSTM`.
///
/// Shape letters: T steps, B batch, I `inputSize`, H `hiddenSize`, P `projectionSize`,
/// L `numLayers`, D directions (2 when `bidirectional`), Hout = P if P > 0 else H.
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

    public init(
        inputSize: Int, hiddenSize: Int, numLayers: Int = 1, bias: Bool = true,
        batchFirst: Bool = false, bidirectional: Bool = false, projectionSize: Int = 0, dropout: Float = 0
    ) {
        self.dropout = dropout
        self.inputSize = inputSize
        self.hiddenSize = hiddenSize
        self.numLayers = numLayers
        self.bias = bias
        self.batchFirst = batchFirst
        self.bidirectional = bidirectional
        self.projectionSize = projectionSize
    }

    /// D: 1 or 2.
    public var numDirections: Int { bidirectional ? 2 : 1 }
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
    }

    /// The weight tensors of one layer and direction, in `state_dict` order, with shapes.
    public func parameterSpecs(layer: Int, direction: Int) -> [(name: String, shape: [Int])] {
        let suffix = "_l\(layer)" + (direction == 1 ? "_reverse" : "")
        let h = hiddenSize
        var specs: [(String, [Int])] = [
            ("weight_ih" + suffix, [4 * h, layerInputSize(layer)]),
            ("weight_hh" + suffix, [4 * h, outputSize]),
        ]
        if bias { specs += [("bias_ih" + suffix, [4 * h]), ("bias_hh" + suffix, [4 * h])] }
        if projectionSize > 0 { specs.append(("weight_hr" + suffix, [projectionSize, h])) }
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
            : Double(4 * hiddenSize)
        let total =
            rows * Double(numLayers) * Double(numDirections) * (perDirection + Double(outputSize))
            + rows * Double(inputSize)
        return total >= Double(Int.max / 8) ? Int.max / 8 : Int(total)
    }

    /// The settings as safetensors metadata (PyTorch's argument names, string values):
    /// what `LSTM.saveWeights` records and `LSTM(contentsOf:)` restores.
    public var metadata: [String: String] {
        [
            "input_size": "\(inputSize)", "hidden_size": "\(hiddenSize)", "num_layers": "\(numLayers)",
            "proj_size": "\(projectionSize)", "bidirectional": "\(bidirectional)", "batch_first": "\(batchFirst)",
            "bias": "\(bias)", "dropout": "\(dropout)",
        ]
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
    static func inferred(
        from shapes: [String: [Int]], metadata: [String: String], batchFirst: Bool?,
        source: String
    ) throws -> LSTMConfiguration {
        guard let wih = shapes["weight_ih_l0"], wih.count == 2,
            let whh = shapes["weight_hh_l0"], whh.count == 2, whh[0] % 4 == 0
        else {
            throw LSTMError.invalidConfiguration(
                "cannot infer an LSTM from \(source): weight_ih_l0/weight_hh_l0 missing or not 2-D")
        }
        var layers = 0
        while layers <= SizeLimits.maxLayers, shapes["weight_ih_l\(layers)"] != nil { layers += 1 }
        let hidden = whh[0] / 4
        let projection = shapes["weight_hr_l0"]?.first ?? 0
        var config = LSTMConfiguration(
            inputSize: wih[1], hiddenSize: hidden, numLayers: layers, bias: shapes["bias_ih_l0"] != nil,
            batchFirst: false, bidirectional: shapes["weight_ih_l0_reverse"] != nil, projectionSize: projection)
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
        for (key, value) in [("bidirectional", config.bidirectional), ("bias", config.bias)] {
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
        return config
    }
}

/// "true"/"false" (also Python's "True"/"False" and "1"/"0"), nil for anything else.
func parseFlag(_ text: String) -> Bool? {
    switch text {
    case "true", "True", "1": return true
    case "false", "False", "0": return false
    default: return nil
    }
}
