import Foundation

/// An LSTM with `torch.nn.LSTM`'s semantics, weights and names, on host tensors.
///
/// ```swift
/// let lstm = try LSTM(LSTMConfiguration(inputSize: 32, hiddenSize: 64, numLayers: 2), seed: 1)
/// let y = try lstm.forward(x, training: true)          // x: [T, B, 32]
/// let g = try lstm.backward(y, outputGradient: dy)      // dy: [T, B, 64]
/// ```
/// Shapes: input [T, B, I] ([B, T, I] when batch-first), output [T, B, D·Hout],
/// h0/hn [L·D, B, Hout], c0/cn [L·D, B, H], lengths [B].
public final class LSTM {
    public let configuration: LSTMConfiguration
    let engine: any HostEngine
    /// Where the dropout masks of `forward(training: true)` come from: the seed given at
    /// creation and a count of training forwards, so consecutive calls draw new masks.
    private let dropoutBaseSeed: UInt64
    private var trainingForwards: UInt64 = 0

    /// A new model with PyTorch's default initialisation, U(-1/√H, 1/√H), drawn in
    /// `state_dict` order from a generator seeded with `seed`.
    public convenience init(
        _ configuration: LSTMConfiguration, seed: UInt64 = 0, backend: BackendKind = .cpu,
        device: String? = nil
    ) throws {
        try configuration.validate()
        try SizeLimits.requireHostMemory(
            floats: configuration.parameterCount,
            for: "initialising \(configuration.parameterCount) parameters")
        try self.init(
            configuration, weights: configuration.initialWeights(seed: seed), backend: backend, device: device,
            dropoutSeed: seed)
    }

    /// A model holding `weights` (strictly: exactly the configuration's tensors, shapes checked).
    /// `dropoutSeed` seeds the dropout masks of training forwards (see `forward`).
    /// `precision`: the weight matrices' precision (`Precision`); a reduced one quantizes them
    /// and makes the model inference-only (CPU and reference backends; OpenCL runs fp32).
    public init(
        _ configuration: LSTMConfiguration, weights: [String: Tensor], backend: BackendKind = .cpu,
        device: String? = nil, dropoutSeed: UInt64 = 0, precision: Precision = .fp32
    ) throws {
        try configuration.validate()
        self.configuration = configuration
        self.dropoutBaseSeed = dropoutSeed
        switch backend {
        case .cpu:
            engine = try LSTMStack(
                configuration: configuration, backend: CPUBackend(), weights: weights, precision: precision)
        case .opencl:
            engine = try LSTMStack(
                configuration: configuration, backend: OpenCLBackend.shared(device: device), weights: weights,
                precision: precision)
        case .reference:
            engine = try ReferenceLSTM(configuration: configuration, weights: weights, precision: precision)
        }
    }

    /// A model holding weight matrices already in a reduced `precision` (`reduced`, by
    /// `state_dict` name: `weight_ih_*`, `weight_hh_*`, `weight_hr_*`) and the other tensors in
    /// float32 (`floats`): what a quantized file holds. Inference only; CPU or reference backend.
    public init(
        _ configuration: LSTMConfiguration, reduced: [String: ReducedMatrix], floats: [String: Tensor],
        precision: Precision, backend: BackendKind = .cpu, device: String? = nil, source: String = "weights"
    ) throws {
        try configuration.validate()
        self.configuration = configuration
        self.dropoutBaseSeed = 0
        switch backend {
        case .cpu:
            engine = try LSTMStack(
                configuration: configuration, backend: CPUBackend(), reducedMatrices: reduced, otherWeights: floats,
                precision: precision, source: source)
        case .opencl:
            engine = try LSTMStack(
                configuration: configuration, backend: OpenCLBackend.shared(device: device), reducedMatrices: reduced,
                otherWeights: floats, precision: precision, source: source)
        case .reference:
            // Checked as the stack checks them, then held by the reference as they are.
            _ = try LSTMStack(
                configuration: configuration, backend: CPUBackend(), reducedMatrices: reduced, otherWeights: floats,
                precision: precision, source: source)
            var weights = floats
            for (name, matrix) in reduced { weights[name] = matrix.dequantized() }
            engine = try ReferenceLSTM(
                configuration: configuration, weights: weights, precision: precision, storedMatrices: reduced)
        }
    }

    /// A model holding `weights` on a backend made by the caller (e.g. `CPUBackend(threads: 1)`,
    /// or an `OpenCLBackend` with a forced step variant), in `precision` (see above).
    public init<Backend: LSTMBackend>(
        _ configuration: LSTMConfiguration, weights: [String: Tensor], on backend: Backend, dropoutSeed: UInt64 = 0,
        precision: Precision = .fp32
    ) throws {
        try configuration.validate()
        self.configuration = configuration
        self.dropoutBaseSeed = dropoutSeed
        engine = try LSTMStack(configuration: configuration, backend: backend, weights: weights, precision: precision)
    }

    /// The weight matrices' precision: fp32 unless the model was made in or loaded as another.
    public var precision: Precision { engine.precision }

    /// This model for inference in `precision`: its weight matrices quantized (int8) or rounded
    /// (bf16, fp16) by `Precision`'s rules, on the same backend (CPU or reference; OpenCL runs
    /// fp32 only and refuses). Returns this model itself for its own precision.
    /// - Throws: `LSTMError` for a model already in another reduced precision (quantize the
    ///   float32 model instead: errors would compound), weights int8 or fp16 cannot hold (NaN or
    ///   infinite for int8, beyond ±65504 for fp16), or a backend without `precision`.
    public func quantized(_ precision: Precision) throws -> LSTM {
        if precision == self.precision { return self }
        guard !self.precision.isReduced else {
            throw LSTMError.invalidArgument(
                precision == .fp32
                    ? "this model is held in \(self.precision) and its float32 original is not kept: load the float32 "
                        + "weights again"
                    : "this model is already \(self.precision); quantize its float32 original to \(precision) "
                        + "instead (rounding twice compounds the errors)")
        }
        if engine.backendName.hasPrefix("opencl") {
            throw LSTMError.invalidArgument(
                "\(precision) inference runs on the CPU backend; this model is on \(engine.backendName), which "
                    + "computes in fp32 only")
        }
        if let stack = engine as? LSTMStack<CPUBackend> {  // the same CPU backend (its thread count, split)
            return try LSTM(configuration, weights: weights(), on: stack.backend, precision: precision)
        }
        let kind: BackendKind = engine.backendName == "reference" ? .reference : .cpu
        return try LSTM(configuration, weights: weights(), backend: kind, precision: precision)
    }

    /// Loads a `state_dict` saved by `safetensors.torch.save_file` or by `saveWeights`,
    /// inferring the configuration from its names and shapes. `prefix` selects a sub-module's
    /// tensors (e.g. "lstm." for a model's `lstm` attribute). The settings `saveWeights`
    /// records in the file's metadata and that tensors cannot show (`batch_first`, `dropout`)
    /// are restored; recorded sizes must agree with the tensors.
    ///
    /// - Parameters:
    ///   - batchFirst: nil takes the file's `batch_first` (false when it has none); a value
    ///     that contradicts the file's is refused.
    /// - Throws: `LSTMError` when the file is unusable, a tensor is missing, extra or
    ///   misshaped, or the metadata contradicts the tensors.
    public convenience init(
        contentsOf path: String, prefix: String = "", batchFirst: Bool? = nil,
        backend: BackendKind = .cpu, device: String? = nil
    ) throws {
        let file = try SafeTensorsFile(contentsOf: path)
        if prefix.isEmpty { try ProjectFileKind.requireStateDict(file) }
        let precision = try ReducedStateDict.precision(in: file.metadata, source: path)
        let configuration = try LSTMConfiguration.inferred(
            from: ReducedStateDict.shapes(in: file, prefix: prefix), metadata: file.metadata, batchFirst: batchFirst,
            source: path)
        guard precision.isReduced else {
            try self.init(
                configuration, weights: configuration.weights(in: file, prefix: prefix),
                backend: backend, device: device)
            return
        }
        let (reduced, floats) = try ReducedStateDict.read(
            file, prefix: prefix, configuration: configuration, precision: precision)
        try self.init(
            configuration, reduced: reduced, floats: floats, precision: precision, backend: backend, device: device,
            source: path)
    }

    /// The engine's name ("cpu", "opencl: <device>", "reference").
    public var backendName: String { engine.backendName }

    /// PyTorch's default initialisation for `configuration` (`configuration.initialWeights(seed:)`).
    public static func initialWeights(_ configuration: LSTMConfiguration, seed: UInt64) -> [String: Tensor] {
        configuration.initialWeights(seed: seed)
    }

    /// The weights, by `state_dict` name.
    public func weights() throws -> [String: Tensor] { try engine.weightTensors() }

    /// Replaces the weights.
    /// - Parameter weights: exactly the configuration's tensors by `state_dict` name.
    /// - Throws: `LSTMError` naming a missing, extra or misshaped tensor (the model is unchanged).
    public func setWeights(_ weights: [String: Tensor]) throws {
        try engine.setWeightTensors(weights, source: "weights")
    }

    /// Loads weights from a safetensors `state_dict`.
    /// - Parameters:
    ///   - path: a safetensors file (`safetensors.torch.save_file(model.state_dict(), path)`).
    ///   - prefix: the sub-module's name prefix, e.g. "lstm." (tensors outside it are ignored).
    /// - Throws: `LSTMError` naming the file and a missing, extra, misshaped or non-float tensor
    ///   under `prefix`, or what is wrong with the file; the model is unchanged then.
    public func loadWeights(from path: String, prefix: String = "") throws {
        let file = try SafeTensorsFile(contentsOf: path)
        try engine.setWeightTensors(configuration.weights(in: file, prefix: prefix), source: path)
    }

    /// Saves the weights under their `state_dict` names (atomically), so that
    /// `torch.nn.LSTM(...).load_state_dict(safetensors.torch.load_file(path))` takes them, with
    /// the settings in the metadata (`LSTM(contentsOf:)` restores them).
    /// - Parameters:
    ///   - path: the file to write (replaced atomically: temporary file, fsync, rename).
    ///   - prefix: prepended to every name, e.g. "lstm." for a sub-module.
    /// - Throws: `LSTMError.io` naming the file when it cannot be written.
    /// A model in a reduced precision is saved in it (`ReducedStateDict` has the layout; the
    /// metadata records `lstm_gpu_precision`): `LSTM(contentsOf:)` loads it back exactly, PyTorch does not.
    public func saveWeights(to path: String, prefix: String = "") throws {
        try SafeTensorsFile.write(weightEntries(prefix: prefix), metadata: weightMetadata, to: path)
    }

    /// The safetensors entries `saveWeights` writes (for files that hold the LSTM beside other
    /// tensors): float32 tensors, or in a reduced precision its matrices in it.
    public func weightEntries(prefix: String) throws -> [(name: String, value: SafeTensorsValue)] {
        let weights = try self.weights()
        guard precision.isReduced else {
            return configuration.parameterSpecs.map { (prefix + $0.name, .float32(weights[$0.name]!)) }
        }
        return ReducedStateDict.entries(
            configuration: configuration, reduced: engine.reducedMatrices, floats: weights, prefix: prefix)
    }

    /// The metadata `saveWeights` writes: the settings tensors cannot show, and `precision` when reduced.
    public var weightMetadata: [String: String] {
        var metadata = ["format": "pt"].merging(configuration.metadata) { a, _ in a }
        if precision.isReduced { metadata[ReducedStateDict.metadataKey] = precision.rawValue }
        return metadata
    }

    /// Runs the LSTM.
    ///
    /// - Parameters:
    ///   - input: [T, B, I] ([B, T, I] when batch-first).
    ///   - h0: [L·D, B, Hout]; nil means zeros.
    ///   - c0: [L·D, B, H]; nil means zeros.
    ///   - lengths: [B], any order, each in 0...T: packed-sequence semantics.
    ///   - training: keep what `backward` needs, and, as PyTorch does in training mode, apply
    ///     `configuration.dropout` to the output of every layer but the last.
    ///   - dropoutSeed: the masks' seed (the same masks on every backend for the same seed);
    ///     nil draws a new seed per training forward from the model's own (its creation seed
    ///     and a count of calls), so runs are reproducible.
    /// - Returns: output [T, B, D·Hout] (batch-first likewise), hn [L·D, B, Hout], cn [L·D, B, H].
    /// - Throws: `LSTMError` on a shape, a length or a memory need that does not fit.
    public func forward(
        _ input: Tensor, h0: Tensor? = nil, c0: Tensor? = nil, lengths: [Int]? = nil,
        training: Bool = false, dropoutSeed: UInt64? = nil
    ) throws -> LSTMOutput {
        let c = configuration
        guard input.shape.count == 3 else {
            throw LSTMError.invalidArgument(
                "input must be 3-D \(c.batchFirst ? "[B, T, I]" : "[T, B, I]"), got shape \(input.shape)")
        }
        let (steps, batch) = c.batchFirst ? (input.shape[1], input.shape[0]) : (input.shape[0], input.shape[1])
        guard input.shape[2] == c.inputSize else {
            throw LSTMError.shapeMismatch(
                what: "input (last dimension is the input size I = \(c.inputSize))",
                expected: c.batchFirst ? [batch, steps, c.inputSize] : [steps, batch, c.inputSize],
                got: input.shape)
        }
        let states = c.numLayers * c.numDirections
        if let h0 { try checkShape(h0, [states, batch, c.outputSize], "h0 ([L·D, B, Hout])") }
        if let c0 { try checkShape(c0, [states, batch, c.hiddenSize], "c0 ([L·D, B, H])") }
        var seed: UInt64? = nil
        if training, c.dropout > 0, c.numLayers > 1 {
            if let dropoutSeed {
                seed = dropoutSeed
            } else {
                var generator = SeededGenerator(seed: dropoutBaseSeed ^ (trainingForwards &* 0x9E37_79B9_7F4A_7C15))
                seed = generator.next()
                trainingForwards &+= 1
            }
        }
        return try engine.forward(
            input, sequenceLength: steps, batch: batch, h0: h0, c0: c0, lengths: lengths, training: training,
            dropoutSeed: seed)
    }

    /// Backpropagation through time from a `forward(..., training: true)` result (dropout
    /// masks included); it may be called again on the same result.
    /// - Parameters:
    ///   - outputGradient: dL/d(output), like the output; nil means zeros.
    ///   - hnGradient: dL/d(hn) [L·D, B, Hout]; `cnGradient`: dL/d(cn) [L·D, B, H]; nil means zeros.
    /// - Returns: the gradients of the input (like the input), h0, c0 and every weight (by
    ///   `state_dict` name; `bias_ih` and `bias_hh` get equal gradients).
    /// - Throws: `LSTMError` for a misshaped gradient or a result of another model or of an
    ///   inference-only forward.
    public func backward(
        _ result: LSTMOutput, outputGradient: Tensor?, hnGradient: Tensor? = nil,
        cnGradient: Tensor? = nil
    ) throws -> LSTMGradients {
        if let outputGradient {
            try checkShape(outputGradient, result.output.shape, "output gradient (like the output)")
        }
        if let hnGradient { try checkShape(hnGradient, result.hn.shape, "hn gradient (like hn)") }
        if let cnGradient { try checkShape(cnGradient, result.cn.shape, "cn gradient (like cn)") }
        return try engine.backward(
            result, outputGradient: outputGradient, hnGradient: hnGradient, cnGradient: cnGradient)
    }
}
