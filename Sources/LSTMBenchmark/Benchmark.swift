import Foundation
import LSTMKit

/// One benchmark shape. I = H unless given; the standard suite's names are stable.
public struct BenchmarkShape: Sendable, Equatable {
    public var name: String
    public var inputSize: Int  // I
    public var hiddenSize: Int  // H
    public var batch: Int  // B
    public var sequenceLength: Int  // T
    public var layers: Int = 1  // L
    public var bidirectional: Bool = false
    /// Cell options (`bench --cell`); plain by default, so the suite measures PyTorch's cell.
    public var cell = LSTMCellOptions()

    public init(
        name: String, inputSize: Int, hiddenSize: Int, batch: Int, sequenceLength steps: Int, layers: Int = 1,
        bidirectional: Bool = false
    ) {
        self.name = name
        self.inputSize = inputSize
        self.hiddenSize = hiddenSize
        self.batch = batch
        self.sequenceLength = steps
        self.layers = layers
        self.bidirectional = bidirectional
    }

    /// The standard suite (DeepBench-derived; measured figures are in the README's "Figures").
    public static let suite: [BenchmarkShape] = [
        .init(name: "char-256", inputSize: 256, hiddenSize: 256, batch: 32, sequenceLength: 150),
        .init(name: "mt-512", inputSize: 512, hiddenSize: 512, batch: 64, sequenceLength: 25),
        .init(name: "mt-1024", inputSize: 1024, hiddenSize: 1024, batch: 64, sequenceLength: 25),
        .init(name: "lm-1536", inputSize: 1536, hiddenSize: 1536, batch: 16, sequenceLength: 50),
        .init(name: "serve-512-b1", inputSize: 512, hiddenSize: 512, batch: 1, sequenceLength: 25),
        .init(name: "serve-1024-b4", inputSize: 1024, hiddenSize: 1024, batch: 4, sequenceLength: 25),
        .init(name: "stack-2x512", inputSize: 512, hiddenSize: 512, batch: 32, sequenceLength: 50, layers: 2),
        .init(name: "bi-256", inputSize: 128, hiddenSize: 256, batch: 16, sequenceLength: 100, bidirectional: true),
    ]

    /// Parses "I,H,B,T[,layers[,bi]]" (bi: 0/1/true/false/bi).
    public static func parse(_ text: String) throws -> BenchmarkShape {
        let parts = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard (4...6).contains(parts.count) else {
            throw LSTMError.invalidArgument("--shape takes I,H,B,T[,layers[,bi]], got '\(text)'")
        }
        let numbers = try parts.prefix(5).map { p -> Int in
            guard let v = Int(p), v > 0 else {
                throw LSTMError.invalidArgument("--shape: '\(p)' is not a positive integer in '\(text)'")
            }
            return v
        }
        var bi = false
        if parts.count == 6 {
            switch parts[5].lowercased() {
            case "1", "true", "bi", "yes": bi = true
            case "0", "false", "uni", "no": bi = false
            default: throw LSTMError.invalidArgument("--shape: bidirectional flag '\(parts[5])' is not 0/1")
            }
        }
        try SizeLimits.requireSize(numbers[0], "--shape I")
        try SizeLimits.requireSize(numbers[1], "--shape H")
        try SizeLimits.requireSize(numbers[2], "--shape B", limit: SizeLimits.maxCount)
        try SizeLimits.requireSize(numbers[3], "--shape T", limit: SizeLimits.maxCount)
        if numbers.count > 4 { try SizeLimits.requireSize(numbers[4], "--shape layers", limit: SizeLimits.maxLayers) }
        return BenchmarkShape(
            name: "custom-\(numbers[0])-\(numbers[1])-b\(numbers[2])-t\(numbers[3])",
            inputSize: numbers[0], hiddenSize: numbers[1], batch: numbers[2], sequenceLength: numbers[3],
            layers: numbers.count > 4 ? numbers[4] : 1, bidirectional: bi)
    }

    public var configuration: LSTMConfiguration {
        LSTMConfiguration(
            inputSize: inputSize, hiddenSize: hiddenSize, numLayers: layers, bidirectional: bidirectional, cell: cell)
    }

    /// Parses `bench --cell`: a comma-separated list of peephole, cifg, layer-norm,
    /// activation-clip=C, cell-clip=C (the suite has no projection, so no projection clip).
    public static func parseCell(_ text: String) throws -> LSTMCellOptions {
        var cell = LSTMCellOptions()
        for item in text.split(separator: ",", omittingEmptySubsequences: false).map(String.init) {
            guard !item.isEmpty else {
                throw LSTMError.invalidArgument(
                    "--cell: '\(text)' has an empty item; give a comma-separated list of peephole, cifg, layer-norm, "
                        + "activation-clip=C, cell-clip=C")
            }
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            func value() throws -> Float {
                guard parts.count == 2, let v = Float(parts[1]), v.isFinite, v > 0 else {
                    throw LSTMError.invalidArgument("--cell: '\(item)' needs a positive number, as \(parts[0])=1")
                }
                return v
            }
            switch parts[0] {
            case "peephole" where parts.count == 1: cell.peepholes = true
            case "cifg" where parts.count == 1: cell.coupledInputForget = true
            case "layer-norm" where parts.count == 1: cell.layerNorm = true
            case "activation-clip": cell.activationClip = try value()
            case "cell-clip": cell.cellClip = try value()
            default:
                throw LSTMError.invalidArgument(
                    "--cell: unknown option '\(item)'; known: peephole, cifg, layer-norm, activation-clip=C, cell-clip=C"
                )
            }
        }
        return cell
    }

    /// Forward FLOPs: Σ over layers and directions of 2·T·B·4H·(In + H) (counted with four
    /// gates even with CIFG, so rows with and without options compare by time).
    public var forwardFlops: Double {
        let d = bidirectional ? 2 : 1
        var total = 0.0
        for layer in 0..<layers {
            let input = layer == 0 ? inputSize : d * hiddenSize
            total += Double(d) * 2 * Double(sequenceLength * batch * 4 * hiddenSize) * Double(input + hiddenSize)
        }
        return total
    }
}

/// Median, min and max of repeated timings, in milliseconds.
public struct TimingSummary: Sendable, Codable {
    public var medianMs: Double
    public var minMs: Double
    public var maxMs: Double
    public var runs: Int

    /// Runs `body` once to warm up, then repeatedly until `seconds` have passed (at least
    /// `minimumRuns` times, at most `maximumRuns` when given).
    public static func measure(
        seconds: Double, minimumRuns: Int = 3, maximumRuns: Int? = nil,
        _ body: () throws -> Void
    ) rethrows -> TimingSummary {
        try body()
        var samples: [Double] = []
        let start = DispatchTime.now().uptimeNanoseconds
        while true {
            let t0 = DispatchTime.now().uptimeNanoseconds
            try body()
            let t1 = DispatchTime.now().uptimeNanoseconds
            samples.append(Double(t1 - t0) / 1e6)
            if let maximumRuns, samples.count >= maximumRuns { break }
            if samples.count >= minimumRuns, Double(t1 - start) / 1e9 >= seconds { break }
        }
        samples.sort()
        return TimingSummary(
            medianMs: samples[samples.count / 2], minMs: samples[0], maxMs: samples[samples.count - 1],
            runs: samples.count)
    }
}

/// One row of `lstm-gpu bench`.
public struct BenchmarkRow: Sendable, Codable {
    public var name: String
    public var backend: String
    public var device: String
    /// The OpenCL device's index (what `--device` takes); nil on the CPU path.
    public var deviceIndex: Int? = nil
    public var I: Int, H: Int, B: Int, T: Int, layers: Int, directions: Int
    /// The cell options of the row (`bench --cell`), nil for PyTorch's plain cell.
    public var cell: LSTMCellOptions? = nil
    /// CPU threads the row ran on (the first layer's; see `CPUBackend.threads(hiddenSize:…)`);
    /// 0 on OpenCL.
    public var threads: Int
    /// The weight matrices' precision (`bench --precision`); nil in rows written before it was
    /// recorded (float32).
    public var precision: Precision? = nil
    public var forward: TimingSummary
    public var forwardGflops: Double
    /// The training step; nil for a reduced precision (inference only).
    public var train: TimingSummary?
    public var trainGflops: Double?
    /// Max |output − the CPU path's float32 output| on the same weights and input.
    public var parityMaxAbs: Double
    /// The host CPU and the CPU path's BLAS library and kernels (`CPUInfo.current`), the same
    /// on every row of a run; nil in rows written before it was recorded.
    public var cpu: CPUInfo? = nil
    /// With `bench --profile` on an OpenCL device: device time per kernel of one forward and
    /// one training step; nil otherwise.
    public var profile: BenchmarkProfile? = nil
    /// With `bench --in-model`: the same steps through the model API (`runInModelBenchmark`).
    public var inModel: InModelTiming? = nil
}

/// Device time per kernel of one forward and one training step of a row (OpenCL profiling
/// events), with the time steps they cover, so launches per step can be read off.
public struct BenchmarkProfile: Sendable, Codable {
    /// T·L·D: the (time step, layer, direction) steps one pass runs.
    public var steps: Int
    public var forward: [KernelProfile]
    public var train: [KernelProfile]
    /// Device idle time between the first and last launch of each pass (`OpenCLProfile`).
    public var forwardIdleMilliseconds: Double
    public var trainIdleMilliseconds: Double
}

/// Profiles one forward and one training step of `shape` on a backend made with
/// `OpenCLBackend(info:profiling: true)`: launches and device time per kernel.
public func profileBenchmark(
    _ shape: BenchmarkShape, backend: OpenCLBackend, seed: UInt64 = 1
) throws -> BenchmarkProfile {
    let configuration = shape.configuration
    let stack = try LSTMStack(
        configuration: configuration, backend: backend, weights: LSTM.initialWeights(configuration, seed: seed))
    var generator = SeededGenerator(seed: seed &+ 1)
    let x = Tensor(uniform: [shape.sequenceLength, shape.batch, shape.inputSize], generator: &generator)
    let width = configuration.numDirections * configuration.outputSize
    let dy = Tensor(uniform: [shape.sequenceLength, shape.batch, width], generator: &generator)
    let input = try stack.upload(x), outputGradient = try stack.upload(dy)
    _ = try stack.forward(input: input, sequenceLength: shape.sequenceLength, batch: shape.batch)  // warm-up
    _ = try backend.takeProfile()
    _ = try stack.forward(input: input, sequenceLength: shape.sequenceLength, batch: shape.batch)
    let forward = try backend.takeProfile()
    let f = try stack.forward(
        input: input, sequenceLength: shape.sequenceLength, batch: shape.batch, saveActivations: true)
    _ = try stack.backward(f, outputGradient: outputGradient)
    let train = try backend.takeProfile()
    return BenchmarkProfile(
        steps: shape.sequenceLength * shape.layers * configuration.numDirections, forward: forward.kernels,
        train: train.kernels, forwardIdleMilliseconds: forward.idleMilliseconds,
        trainIdleMilliseconds: train.idleMilliseconds)
}

/// Times one shape on one backend: forward (inference) and a training step (forward with
/// saved activations + backward of all gradients). Inputs are device-resident, so only
/// the engine is timed. `reference` is the CPU path's float32 output for the parity column.
/// In a reduced `precision` (`Precision`) only the forward is timed (inference only).
public func runBenchmark<Backend: ModelOps>(
    _ shape: BenchmarkShape, backend: Backend, seconds: Double,
    maximumRuns: Int? = nil, seed: UInt64 = 1,
    reference: Tensor? = nil, precision: Precision = .fp32
) throws -> (row: BenchmarkRow, output: Tensor) {
    let configuration = shape.configuration
    try configuration.validate()
    // Weights, input, output gradient and a training forward's working set, all on the host
    // before anything is allocated (and on the device by the stack's own checks).
    let width = configuration.numDirections * configuration.outputSize
    let hostFloats = SizeLimits.saturatingSum([
        SizeLimits.saturatingProduct([configuration.parameterCount, 2]),
        SizeLimits.saturatingProduct([shape.sequenceLength, shape.batch, shape.inputSize]),
        SizeLimits.saturatingProduct([shape.sequenceLength, shape.batch, width, 2]),
        configuration.workingSetFloats(sequenceLength: shape.sequenceLength, batch: shape.batch, training: true),
    ])
    try SizeLimits.requireHostMemory(floats: hostFloats, for: "benchmark row \(shape.name)")
    let stack = try LSTMStack(
        configuration: configuration, backend: backend,
        weights: LSTM.initialWeights(configuration, seed: seed), precision: precision)
    var generator = SeededGenerator(seed: seed &+ 1)
    let x = Tensor(uniform: [shape.sequenceLength, shape.batch, shape.inputSize], generator: &generator)
    let dy = Tensor(uniform: [shape.sequenceLength, shape.batch, width], generator: &generator)
    let input = try stack.upload(x), outputGradient = try stack.upload(dy)
    let forward = try TimingSummary.measure(seconds: seconds, maximumRuns: maximumRuns) {
        _ = try stack.forward(input: input, sequenceLength: shape.sequenceLength, batch: shape.batch)
        try backend.synchronize()
    }
    let train =
        precision.isReduced
        ? nil
        : try TimingSummary.measure(seconds: seconds, maximumRuns: maximumRuns) {
            let f = try stack.forward(
                input: input, sequenceLength: shape.sequenceLength, batch: shape.batch, saveActivations: true)
            _ = try stack.backward(f, outputGradient: outputGradient)
            try backend.synchronize()
        }
    let result = try stack.forward(input: input, sequenceLength: shape.sequenceLength, batch: shape.batch)
    let output = try stack.download(result.output, shape: [shape.sequenceLength, shape.batch, width])
    let parity = reference.map { Double(output.maxAbsDifference($0)) } ?? 0
    let flops = shape.forwardFlops
    var row = BenchmarkRow(
        name: shape.name, backend: backend.kind.rawValue, device: backend.name,
        I: shape.inputSize, H: shape.hiddenSize, B: shape.batch, T: shape.sequenceLength, layers: shape.layers,
        directions: configuration.numDirections,
        threads: (backend as? CPUBackend)?.threads(
            hiddenSize: shape.hiddenSize, outputSize: configuration.outputSize,
            batch: shape.batch, directions: configuration.numDirections) ?? 0,
        precision: precision, forward: forward, forwardGflops: flops / forward.medianMs / 1e6,
        train: train, trainGflops: train.map { 3 * flops / $0.medianMs / 1e6 }, parityMaxAbs: parity)
    if !shape.cell.isPlain { row.cell = shape.cell }
    return (row, output)
}

/// The same forward and training step as `runBenchmark`, run through the model API: the LSTM
/// as an `LSTMLayer` inside a `Sequential`, its input a `LayerValue` (`bench --in-model`), so
/// the two timings side by side show what the model API costs.
public struct InModelTiming: Sendable, Codable {
    public var forward: TimingSummary
    public var train: TimingSummary
}

/// Times `shape` as a one-layer `Sequential` (same weights, input and output gradient as
/// `runBenchmark`): `model.forward(training: false)`, and `forward(training: true)` +
/// `backward`.
public func runInModelBenchmark<Backend: ModelOps>(
    _ shape: BenchmarkShape, backend: Backend, seconds: Double, maximumRuns: Int? = nil, seed: UInt64 = 1
) throws -> InModelTiming {
    let configuration = shape.configuration
    let model = try Sequential<Backend>([
        LSTMLayer(
            stack: LSTMStack(
                configuration: configuration, backend: backend,
                weights: LSTM.initialWeights(configuration, seed: seed)))
    ])
    var generator = SeededGenerator(seed: seed &+ 1)
    let x = Tensor(uniform: [shape.sequenceLength, shape.batch, shape.inputSize], generator: &generator)
    let width = configuration.numDirections * configuration.outputSize
    let dy = Tensor(uniform: [shape.sequenceLength, shape.batch, width], generator: &generator)
    let input = try LayerValue<Backend>.sequence(
        values: x.scalars, steps: shape.sequenceLength, batch: shape.batch, features: shape.inputSize, on: backend)
    let outputGradient = try backend.makeBuffer(count: dy.count)
    try backend.write(dy.scalars, to: outputGradient, offset: 0)
    let forward = try TimingSummary.measure(seconds: seconds, maximumRuns: maximumRuns) {
        _ = try model.forward(input, training: false)
        try backend.synchronize()
    }
    let train = try TimingSummary.measure(seconds: seconds, maximumRuns: maximumRuns) {
        _ = try model.forward(input, training: true)
        try model.backward(outputGradient)
        try backend.synchronize()
    }
    return InModelTiming(forward: forward, train: train)
}
