import COpenCL
@_spi(Backend) import LSTMCore

/// Indices on the device, with the host copy they were made from.
public struct OpenCLIndices {
    public let buffer: OpenCLBuffer
    public let values: [Int]
}

extension OpenCLBackend: ModelOps {
    public typealias Indices = OpenCLIndices

    public func makeIndices(_ values: [Int]) throws -> OpenCLIndices {
        let buffer = try runtime.makeBuffer(count: max(values.count, 1))
        try runtime.write(values.map { Int32(truncatingIfNeeded: $0) }, to: buffer, offset: 0)
        return OpenCLIndices(buffer: buffer, values: values)
    }

    public func indexValues(_ indices: OpenCLIndices) -> [Int] { indices.values }

    public func gatherRows(
        _ table: OpenCLBuffer, width: Int, indices: OpenCLIndices, count: Int, into out: OpenCLBuffer
    ) throws {
        try launch(
            "gather_rows", in: .training, global: [width, count],
            [.int(width), .int(count), .buffer(table), .buffer(indices.buffer), .buffer(out)])
    }

    public func scatterAddRows(
        _ src: OpenCLBuffer, width: Int, indices: OpenCLIndices, count: Int, rows: Int,
        into table: OpenCLBuffer
    ) throws {
        try launch(
            "scatter_add_rows", in: .training, global: [width, rows],
            [.int(width), .int(count), .int(rows), .buffer(src), .buffer(indices.buffer), .buffer(table)])
    }

    public func addRowVector(_ vector: OpenCLBuffer, to matrix: OpenCLBuffer, rows: Int, width: Int) throws {
        try launch(
            "add_row_vector", in: .training, global: [width, rows],
            [.int(rows), .int(width), .buffer(vector), .buffer(matrix)])
    }

    public func columnSums(_ matrix: OpenCLBuffer, rows: Int, width: Int, into out: OpenCLBuffer) throws {
        try launchColumnSums(matrix, rows: rows, width: width, into: out)
    }

    public func softmaxCrossEntropy(
        logits: OpenCLBuffer, rows: Int, classes: Int, targets: OpenCLIndices, ignoreIndex: Int,
        gradient: OpenCLBuffer, loss: OpenCLBuffer, lossSlot: Int
    ) throws {
        let rowLoss = try makeScratchBuffer(count: rows)
        let counted = targets.values.prefix(rows).filter { $0 != ignoreIndex }.count
        // Wide rows get a work-group each; narrow ones an item each.
        let grouped = classes >= OpenCLTiles.softmaxGroupClasses
        try launch(
            grouped ? "softmax_xent_group" : "softmax_xent_rows", in: .training,
            global: grouped ? [OpenCLTiles.softmaxGroup, rows] : [rows],
            local: grouped ? [OpenCLTiles.softmaxGroup, 1] : nil,
            [
                .int(rows), .int(classes), .buffer(logits), .buffer(targets.buffer), .int(ignoreIndex),
                .float(counted > 0 ? 1 / Float(counted) : 0),
                .buffer(gradient), .buffer(rowLoss),
            ])
        try reduceSum(rowLoss, count: rows, scale: counted > 0 ? 1 / Float(counted) : 0, into: loss, slot: lossSlot)
    }

    public func meanSquaredError(
        prediction: OpenCLBuffer, target: OpenCLBuffer, count: Int, gradient: OpenCLBuffer,
        loss: OpenCLBuffer, lossSlot: Int
    ) throws {
        let squares = try makeScratchBuffer(count: count)
        try launch(
            "mse", in: .training, global: [count],
            [.int(count), .buffer(prediction), .buffer(target), .buffer(gradient), .buffer(squares)])
        try reduceSum(squares, count: count, scale: 1 / Float(max(count, 1)), into: loss, slot: lossSlot)
    }

    public func dropoutMask(
        count: Int, probability: Float, seed: UInt64, layout: DropoutLayout, into mask: OpenCLBuffer
    ) throws {
        try launch(
            "dropout_mask", in: .training, global: [count],
            [
                .int(count), .float(probability), .uint(UInt32(truncatingIfNeeded: seed)),
                .uint(UInt32(truncatingIfNeeded: seed >> 32)),
                .int(layout.localBatch), .int(layout.globalBatch), .int(layout.offset), .int(layout.width),
                .buffer(mask),
            ])
    }

    public func multiply(_ a: OpenCLBuffer, _ b: OpenCLBuffer, into out: OpenCLBuffer, count: Int) throws {
        try launch("multiply", in: .training, global: [count], [.int(count), .buffer(a), .buffer(b), .buffer(out)])
    }

    public func sumOfSquares(_ x: OpenCLBuffer, count: Int, into sums: OpenCLBuffer, slot: Int) throws {
        let squares = try makeScratchBuffer(count: count)
        try launch("square", in: .training, global: [count], [.int(count), .buffer(x), .buffer(squares)])
        try reduceSum(squares, count: count, scale: 1, into: sums, slot: slot)
    }

    public func clipByNorm(_ x: OpenCLBuffer, count: Int, sums: OpenCLBuffer, slots: Int, maxNorm: Float) throws {
        try launch(
            "clip_by_norm", in: .training, global: [count],
            [.int(count), .buffer(x), .buffer(sums), .int(slots), .float(maxNorm)])
    }

    public func sgdStep(
        parameter: OpenCLBuffer, gradient: OpenCLBuffer, momentumBuffer: OpenCLBuffer?, count: Int,
        learningRate: Float, momentum: Float, nesterov: Bool, weightDecay: Float
    ) throws {
        try launch(
            "sgd_step", in: .training, global: [count],
            [
                .int(count), .buffer(parameter), .buffer(gradient), .buffer(momentumBuffer ?? runtime.placeholder),
                .int(momentumBuffer == nil ? 0 : 1), .float(learningRate), .float(momentum), .int(nesterov ? 1 : 0),
                .float(weightDecay),
            ])
        parameter.markModified()
    }

    public func adamStep(
        parameter: OpenCLBuffer, gradient: OpenCLBuffer, firstMoment: OpenCLBuffer, secondMoment: OpenCLBuffer,
        count: Int, learningRate: Float, beta1: Float, beta2: Float, epsilon: Float, weightDecay: Float,
        decoupled: Bool, biasCorrection1: Float, biasCorrection2: Float
    ) throws {
        try launch(
            "adam_step", in: .training, global: [count],
            [
                .int(count), .buffer(parameter), .buffer(gradient), .buffer(firstMoment), .buffer(secondMoment),
                .float(learningRate), .float(beta1), .float(beta2), .float(epsilon), .float(weightDecay),
                .int(decoupled ? 1 : 0),
                .float(biasCorrection1), .float(biasCorrection2),
            ])
        parameter.markModified()
    }

    public func binaryCrossEntropyWithLogits(
        logits: OpenCLBuffer, targets: OpenCLBuffer, count: Int, gradient: OpenCLBuffer, loss: OpenCLBuffer,
        lossSlot: Int
    ) throws {
        let terms = try makeScratchBuffer(count: count)
        let scale = 1 / Float(max(count, 1))
        try launch(
            "bce_logits", in: .training, global: [count],
            [.int(count), .buffer(logits), .buffer(targets), .float(scale), .buffer(gradient), .buffer(terms)])
        try reduceSum(terms, count: count, scale: scale, into: loss, slot: lossSlot)
    }

    public func poolSteps(
        _ input: OpenCLBuffer, steps: Int, batch: Int, width: Int, lengths: OpenCLIndices, mode: PoolingMode,
        into out: OpenCLBuffer, argmax: OpenCLBuffer
    ) throws {
        try launch(
            "pool_steps", in: .training, global: [width, batch],
            [
                .int(steps), .int(batch), .int(width), .int(Int(mode.rawValue)), .buffer(input),
                .buffer(lengths.buffer), .buffer(out), .buffer(argmax),
            ])
    }

    public func poolStepsBackward(
        _ outputGradient: OpenCLBuffer, steps: Int, batch: Int, width: Int, lengths: OpenCLIndices,
        mode: PoolingMode, argmax: OpenCLBuffer, into inputGradient: OpenCLBuffer
    ) throws {
        try launch(
            "pool_steps_backward", in: .training, global: [width, steps * batch],
            [
                .int(steps), .int(batch), .int(width), .int(Int(mode.rawValue)), .buffer(outputGradient),
                .buffer(lengths.buffer), .buffer(argmax), .buffer(inputGradient),
            ])
    }
}
