import Foundation
import LSTMCore

/// Which update rule, with PyTorch's hyper-parameters and defaults.
public enum OptimizerKind: Equatable, Sendable {
    case sgd(momentum: Float = 0, nesterov: Bool = false, weightDecay: Float = 0)
    case adam(beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8, weightDecay: Float = 0)
    case adamW(beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8, weightDecay: Float = 0.01)

    /// "sgd", "adam" or "adamw".
    public var name: String {
        switch self {
        case .sgd: "sgd";
        case .adam: "adam";
        case .adamW: "adamw"
        }
    }
}

/// Learning rate as a function of the step (1-based), with optional linear warm-up.
public enum LearningRateSchedule: Equatable, Sendable {
    case constant
    /// lr·gamma^⌊step / every⌋.
    case step(every: Int, gamma: Float)
    /// Cosine decay from lr to `minimum` over `totalSteps` (after the warm-up).
    case cosine(totalSteps: Int, minimum: Float)

    public func rate(base: Float, step: Int, warmup: Int) -> Float {
        if warmup > 0, step <= warmup { return base * Float(step) / Float(warmup) }
        switch self {
        case .constant: return base
        case let .step(every, gamma):
            return base * Float(Foundation.pow(Double(gamma), Double((step - 1) / max(every, 1))))
        case let .cosine(total, minimum):
            let span = max(total - warmup, 1)
            let progress = min(1, Double(step - warmup) / Double(span))
            return minimum + (base - minimum) * Float(0.5 * (1 + Foundation.cos(Double.pi * progress)))
        }
    }
}

/// An optimiser whose state lives on the backend: update, moments and clipping all run there,
/// so a training step brings nothing back but its loss.
public final class Optimizer<Backend: ModelOps> {
    public let backend: Backend
    public let kind: OptimizerKind
    /// Steps taken (Adam's bias corrections use it).
    public private(set) var step = 0
    /// State buffers by parameter name: "m"/"v" for Adam(W), "momentum" for SGD with momentum.
    public private(set) var state: [String: [String: Backend.Buffer]] = [:]

    public init(backend: Backend, kind: OptimizerKind) {
        self.backend = backend
        self.kind = kind
    }

    /// The global L2 norm of every gradient and, when `maxNorm` is given, scales them so that
    /// it is at most `maxNorm` (PyTorch's `clip_grad_norm_`), on the device. Gradients shared by
    /// two parameters count twice in the norm and are scaled once. Returns the norm before
    /// clipping (NaN or ±Inf when a gradient is; nothing is scaled then).
    @discardableResult
    public func clipGradients(_ parameters: [Parameter<Backend.Buffer>], maxNorm: Float?) throws -> Float {
        let sums = try backend.makeBuffer(count: parameters.count)
        for (slot, p) in parameters.enumerated() {
            guard let g = p.gradient else { continue }
            try backend.sumOfSquares(g, count: p.count, into: sums, slot: slot)
        }
        let norm = Float(
            try backend.read(sums, offset: 0, count: parameters.count).reduce(0.0) { $0 + Double($1) }.squareRoot())
        guard let maxNorm, norm.isFinite else { return norm }
        var seen = Set<ObjectIdentifier>()
        for p in parameters {
            guard let g = p.gradient, seen.insert(ObjectIdentifier(g)).inserted else { continue }
            try backend.clipByNorm(g, count: p.count, sums: sums, slots: parameters.count, maxNorm: maxNorm)
        }
        return norm
    }

    /// One update of every parameter that has a gradient, on the device (PyTorch's formulas).
    /// - Parameters:
    ///   - parameters: the model's parameters; those without a gradient are skipped.
    ///   - learningRate: this step's rate (see `LearningRateSchedule.rate`).
    /// - Throws: what the backend's update kernels throw.
    public func update(_ parameters: [Parameter<Backend.Buffer>], learningRate: Float) throws {
        step += 1
        for p in parameters {
            guard let g = p.gradient else { continue }
            switch kind {
            case let .sgd(momentum, nesterov, weightDecay):
                let buffer = momentum != 0 ? try stateBuffer(p, "momentum") : nil
                try backend.sgdStep(
                    parameter: p.value, gradient: g, momentumBuffer: buffer, count: p.count,
                    learningRate: learningRate, momentum: momentum, nesterov: nesterov, weightDecay: weightDecay)
            case let .adam(beta1, beta2, epsilon, weightDecay), let .adamW(beta1, beta2, epsilon, weightDecay):
                let decoupled = kind.name == "adamw"
                try backend.adamStep(
                    parameter: p.value, gradient: g, firstMoment: stateBuffer(p, "m"),
                    secondMoment: stateBuffer(p, "v"), count: p.count, learningRate: learningRate,
                    beta1: beta1, beta2: beta2, epsilon: epsilon, weightDecay: weightDecay, decoupled: decoupled,
                    biasCorrection1: 1 - Float(Foundation.pow(Double(beta1), Double(step))),
                    biasCorrection2: 1 - Float(Foundation.pow(Double(beta2), Double(step))))
            }
        }
    }

    private func stateBuffer(_ p: Parameter<Backend.Buffer>, _ key: String) throws -> Backend.Buffer {
        if let buffer = state[p.name]?[key] { return buffer }
        let buffer = try backend.makeBuffer(count: p.count)
        state[p.name, default: [:]][key] = buffer
        return buffer
    }

    /// The state as host tensors named "optimizer.<parameter>.<key>", plus the step count.
    public func exportState(shapes: [String: [Int]]) throws -> (tensors: [(String, Tensor)], step: Int) {
        var tensors: [(String, Tensor)] = []
        for name in state.keys.sorted() {
            for key in state[name]!.keys.sorted() {
                let shape = shapes[name] ?? []
                let values = try backend.read(state[name]![key]!, offset: 0, count: shape.reduce(1, *))
                tensors.append(("optimizer.\(name).\(key)", try Tensor(shape: shape, scalars: values)))
            }
        }
        return (tensors, step)
    }

    /// The state keys this kind keeps per parameter ("m", "v" for Adam(W); "momentum" for SGD).
    public var stateKeys: Set<String> {
        switch kind {
        case .sgd: return ["momentum"]
        case .adam, .adamW: return ["m", "v"]
        }
    }

    /// Restores what `exportState` wrote. `parameters` are the parameters the state belongs
    /// to: every tensor must be "optimizer.<parameter>.<key>" with a key of `stateKeys` and
    /// the parameter's shape (a checkpoint is untrusted input).
    public func importState(_ tensors: [String: Tensor], step: Int, parameters: [Parameter<Backend.Buffer>]) throws {
        guard step >= 0 else { throw LSTMError.invalidArgument("optimizer step \(step) is negative") }
        let shapes = Dictionary(uniqueKeysWithValues: parameters.map { ($0.name, $0.shape) })
        var restored: [String: [String: Backend.Buffer]] = [:]
        for (fullName, tensor) in tensors where fullName.hasPrefix("optimizer.") {
            let rest = fullName.dropFirst("optimizer.".count)
            guard let dot = rest.lastIndex(of: "."), let shape = shapes[String(rest[..<dot])],
                stateKeys.contains(String(rest[rest.index(after: dot)...]))
            else {
                throw LSTMError.unexpectedTensor(name: fullName, file: "optimizer state")
            }
            try checkShape(tensor, shape, "optimizer state '\(fullName)'")
            let buffer = try backend.makeBuffer(count: tensor.count)
            try backend.write(tensor.scalars, to: buffer, offset: 0)
            restored[String(rest[..<dot]), default: [:]][String(rest[rest.index(after: dot)...])] = buffer
        }
        self.step = step
        state = restored
    }
}
