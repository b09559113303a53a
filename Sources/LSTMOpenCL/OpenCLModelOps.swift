@_spi(Backend) import LSTMCore

/// Indices on the device, with the host copy they were made from.
public struct OpenCLIndices {
    public let buffer: OpenCLBuffer
    public let values: [Int]
}

/// The ModelOps conformance: indices, and the operations made of several kernels (losses,
/// column sums, sums of squares), each launch a typed launcher's. The operations that are one
/// training.cl kernel each (gatherRows, scatterAddRows, addRowVector, dropoutMask, multiply,
/// clipByNorm, sgdStep, adamStep, poolSteps, poolStepsBackward) are that kernel's launcher, in
/// OpenCLTrainingKernels.swift.
extension OpenCLBackend: ModelOps {
    public typealias Indices = OpenCLIndices

    public func makeIndices(_ values: [Int]) throws -> OpenCLIndices {
        let buffer = try runtime.makeBuffer(count: max(values.count, 1))
        try runtime.write(values.map { Int32(truncatingIfNeeded: $0) }, to: buffer, offset: 0)
        return OpenCLIndices(buffer: buffer, values: values)
    }

    public func indexValues(_ indices: OpenCLIndices) -> [Int] { indices.values }

    public func columnSums(_ matrix: OpenCLBuffer, rows: Int, width: Int, into out: OpenCLBuffer) throws {
        try launchColumnSums(matrix, rows: rows, width: width, into: out)
    }

    public func softmaxCrossEntropy(
        logits: OpenCLBuffer, rows: Int, classes: Int, targets: OpenCLIndices, ignoreIndex: Int,
        gradient: OpenCLBuffer, loss: OpenCLBuffer, lossSlot: Int
    ) throws {
        let rowLoss = try makeScratchBuffer(count: rows)
        let counted = targets.values.prefix(rows).filter { $0 != ignoreIndex }.count
        let scale: Float = counted > 0 ? 1 / Float(counted) : 0
        // Wide rows get a work-group each; narrow ones an item each.
        if classes >= OpenCLTiles.softmaxGroupClasses {
            try softmaxXentGroup(
                rows: rows, classes: classes, logits: logits, targets: targets.buffer, ignoreIndex: ignoreIndex,
                scale: scale, gradient: gradient, rowLoss: rowLoss)
        } else {
            try softmaxXentRows(
                rows: rows, classes: classes, logits: logits, targets: targets.buffer, ignoreIndex: ignoreIndex,
                scale: scale, gradient: gradient, rowLoss: rowLoss)
        }
        try reduceSum(rowLoss, count: rows, scale: scale, into: loss, slot: lossSlot)
    }

    public func meanSquaredError(
        prediction: OpenCLBuffer, target: OpenCLBuffer, count: Int, gradient: OpenCLBuffer,
        loss: OpenCLBuffer, lossSlot: Int
    ) throws {
        let squares = try makeScratchBuffer(count: count)
        try mse(count: count, prediction: prediction, target: target, gradient: gradient, squares: squares)
        try reduceSum(squares, count: count, scale: 1 / Float(max(count, 1)), into: loss, slot: lossSlot)
    }

    public func sumOfSquares(_ x: OpenCLBuffer, count: Int, into sums: OpenCLBuffer, slot: Int) throws {
        let squares = try makeScratchBuffer(count: count)
        try square(x, count: count, into: squares)
        try reduceSum(squares, count: count, scale: 1, into: sums, slot: slot)
    }

    public func binaryCrossEntropyWithLogits(
        logits: OpenCLBuffer, targets: OpenCLBuffer, count: Int, gradient: OpenCLBuffer, loss: OpenCLBuffer,
        lossSlot: Int
    ) throws {
        let terms = try makeScratchBuffer(count: count)
        let scale = 1 / Float(max(count, 1))
        try bceLogits(
            count: count, logits: logits, targets: targets, scale: scale, gradient: gradient, terms: terms)
        try reduceSum(terms, count: count, scale: scale, into: loss, slot: lossSlot)
    }
}
