import Foundation
import LSTMCore

/// A loss and dL/d(output), shaped like the output the loss was given: hand `gradient` to
/// `Sequential.backward`.
public struct LossValue<Buffer: AnyObject> {
    /// The mean loss (read back to the host).
    public let loss: Float
    public let gradient: Buffer
}

/// Softmax cross-entropy on logits (PyTorch's `CrossEntropyLoss`, reduction "mean"): rows
/// [N, C] with targets [N], or a sequence [T, B, C] with targets [T·B] (element t·B + b) for
/// tagging, where steps t ≥ lengths[b] are masked. Targets equal to `ignoreIndex` and masked
/// steps are not counted; the loss is the mean over the counted targets (0 with a zero
/// gradient when none is).
public struct CrossEntropyLoss<Backend: ModelOps> {
    public let backend: Backend
    public var ignoreIndex: Int

    public init(backend: Backend, ignoreIndex: Int = -100) {
        self.backend = backend
        self.ignoreIndex = ignoreIndex
    }

    /// - Throws: `LSTMError` for token ids, a wrong number of targets, or a counted target outside 0..<C.
    public func callAsFunction(_ logits: LayerValue<Backend>, targets: [Int]) throws -> LossValue<Backend.Buffer> {
        let (x, rows, classes, counted) = try countedTargets(
            logits, targets, ignoreIndex: ignoreIndex, for: "CrossEntropyLoss")
        let gradient = try backend.makeScratchBuffer(count: rows * classes), loss = try backend.makeBuffer(count: 1)
        try backend.softmaxCrossEntropy(
            logits: x, rows: rows, classes: classes, targets: backend.makeIndices(counted), ignoreIndex: ignoreIndex,
            gradient: gradient, loss: loss, lossSlot: 0)
        return LossValue(loss: try backend.read(loss, offset: 0, count: 1)[0], gradient: gradient)
    }
}

/// Binary cross-entropy on logits (PyTorch's `BCEWithLogitsLoss`, reduction "mean"): rows
/// [N, K] or an unpadded sequence [T, B, K], targets in [0, 1] of the same count.
public struct BinaryCrossEntropyWithLogitsLoss<Backend: ModelOps> {
    public let backend: Backend
    public init(backend: Backend) { self.backend = backend }

    /// - Throws: `LSTMError` for token ids, a padded sequence or a wrong number of targets.
    public func callAsFunction(_ logits: LayerValue<Backend>, targets: [Float]) throws -> LossValue<Backend.Buffer> {
        let x = try denseElements(logits, count: targets.count, for: "BinaryCrossEntropyWithLogitsLoss")
        let (y, gradient, loss) = try lossBuffers(backend, targets)
        try backend.binaryCrossEntropyWithLogits(
            logits: x, targets: y, count: targets.count, gradient: gradient, loss: loss, lossSlot: 0)
        return LossValue(loss: try backend.read(loss, offset: 0, count: 1)[0], gradient: gradient)
    }
}

/// Mean squared error (PyTorch's `MSELoss`, reduction "mean"): rows [N, K] or an unpadded
/// sequence [T, B, K] against targets of the same count.
public struct MeanSquaredErrorLoss<Backend: ModelOps> {
    public let backend: Backend
    public init(backend: Backend) { self.backend = backend }

    /// - Throws: `LSTMError` for token ids, a padded sequence or a wrong number of targets.
    public func callAsFunction(_ prediction: LayerValue<Backend>, targets: [Float]) throws -> LossValue<Backend.Buffer>
    {
        let x = try denseElements(prediction, count: targets.count, for: "MeanSquaredErrorLoss")
        let (y, gradient, loss) = try lossBuffers(backend, targets)
        try backend.meanSquaredError(
            prediction: x, target: y, count: targets.count, gradient: gradient, loss: loss, lossSlot: 0)
        return LossValue(loss: try backend.read(loss, offset: 0, count: 1)[0], gradient: gradient)
    }
}

/// The uploaded targets, a gradient buffer like them and a one-slot loss buffer.
private func lossBuffers<Backend: ModelOps>(
    _ backend: Backend, _ targets: [Float]
) throws -> (targets: Backend.Buffer, gradient: Backend.Buffer, loss: Backend.Buffer) {
    let y = try backend.makeBuffer(count: max(targets.count, 1))
    try backend.write(targets, to: y, offset: 0)
    return (y, try backend.makeScratchBuffer(count: max(targets.count, 1)), try backend.makeBuffer(count: 1))
}

/// The logits as rows [R, C] and the targets with masked steps set to `ignoreIndex`, checked:
/// R targets, each counted one in 0..<C (0...1 when `binary` and C = 1: one logit per row).
func countedTargets<Backend: ModelOps>(
    _ logits: LayerValue<Backend>, _ targets: [Int], ignoreIndex: Int, for what: String, binary: Bool = false
) throws -> (buffer: Backend.Buffer, rows: Int, classes: Int, targets: [Int]) {
    var counted = targets
    let buffer: Backend.Buffer, rows: Int, classes: Int
    switch logits {
    case let .rows(b, count, features): (buffer, rows, classes) = (b, count, features)
    case let .sequence(b, steps, batch, features, lengths):
        (buffer, rows, classes) = (b, steps * batch, features)
        if counted.count == rows {
            for r in 0..<rows where r / batch >= lengths[r % batch] { counted[r] = ignoreIndex }
        }
    case .tokens:
        throw LSTMError.invalidArgument(
            "\(what) expects logits as rows [N, C] or a sequence [T, B, C], got \(logits.summary)")
    }
    guard counted.count == rows else {
        throw LSTMError.shapeMismatch(what: "\(what) targets", expected: [rows], got: [targets.count])
    }
    let valid = 0..<(binary && classes == 1 ? 2 : classes)
    if let bad = counted.first(where: { $0 != ignoreIndex && !valid.contains($0) }) {
        throw LSTMError.invalidArgument("\(what): target \(bad) is outside \(valid) (C = \(classes))")
    }
    return (buffer, rows, classes, counted)
}

/// The floats of rows or of an unpadded sequence, checked to hold `count` elements.
func denseElements<Backend: ModelOps>(
    _ value: LayerValue<Backend>, count: Int, for what: String
) throws
    -> Backend.Buffer
{
    switch value {
    case let .sequence(_, steps, _, _, lengths) where lengths.contains { $0 != steps }:
        throw LSTMError.invalidArgument(
            "\(what) takes rows or an unpadded sequence; \(value.summary) has padded steps (pool it first)")
    case .tokens:
        throw LSTMError.invalidArgument("\(what) expects rows [N, K] or a sequence [T, B, K], got \(value.summary)")
    default:
        guard value.elementCount == count else {
            throw LSTMError.shapeMismatch(what: "\(what) targets", expected: value.shape, got: [count])
        }
        return value.buffer!
    }
}
