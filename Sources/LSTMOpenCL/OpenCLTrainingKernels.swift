// OpenCLTrainingKernels.swift: how each kernel of Kernels/training.cl (the operations around
// the LSTM for training) is launched: one typed launcher per kernel, its arguments in the
// kernel's order. Where a ModelOps operation is exactly one kernel, its method here is that
// launcher; the operations made of several (losses, sums) are in OpenCLModelOps.swift.

@_spi(Backend) import LSTMCore

/// The ModelOps operations that are one training.cl kernel each. Buffers are row-major
/// float32, index buffers int32; T steps, B batch, F features (`width`), V table rows.
extension OpenCLBackend {
    /// `gather_rows` (training.cl): out [count, width] row i ← `table` [V, width] row
    /// indices[i] (`indices` [count]). Global (width, count), any work-group.
    public func gatherRows(
        _ table: OpenCLBuffer, width: Int, indices: OpenCLIndices, count: Int, into out: OpenCLBuffer
    ) throws {
        try launch(
            "gather_rows", in: .training, global: [width, count],
            [.int(width), .int(count), .buffer(table), .buffer(indices.buffer), .buffer(out)])
    }

    /// `scatter_add_rows` (training.cl): `table` [rows, width] row v += Σ of `src` [count, width]
    /// rows i with indices[i] = v (`indices` [count]); each item owns one (v, column), so no
    /// atomics. Global (width, rows), any work-group.
    public func scatterAddRows(
        _ src: OpenCLBuffer, width: Int, indices: OpenCLIndices, count: Int, rows: Int,
        into table: OpenCLBuffer
    ) throws {
        try launch(
            "scatter_add_rows", in: .training, global: [width, rows],
            [.int(width), .int(count), .int(rows), .buffer(src), .buffer(indices.buffer), .buffer(table)])
    }

    /// `add_row_vector` (training.cl): every row of `matrix` [rows, width] += `vector` [width].
    /// Global (width, rows), any work-group.
    public func addRowVector(_ vector: OpenCLBuffer, to matrix: OpenCLBuffer, rows: Int, width: Int) throws {
        try launch(
            "add_row_vector", in: .training, global: [width, rows],
            [.int(rows), .int(width), .buffer(vector), .buffer(matrix)])
    }

    /// `dropout_mask` (training.cl): `mask` [count] (a [T, localBatch, width] block of the
    /// global [T, globalBatch, width] batch, `layout`) = 1/(1 − p) where the hash of `seed` and
    /// the element's global index keeps it, else 0 (the CPU path's hash). Global (count), any
    /// work-group.
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

    /// `multiply` (training.cl): out [count] = a ⊙ b (each [count]). Global (count), any
    /// work-group.
    public func multiply(_ a: OpenCLBuffer, _ b: OpenCLBuffer, into out: OpenCLBuffer, count: Int) throws {
        try launch("multiply", in: .training, global: [count], [.int(count), .buffer(a), .buffer(b), .buffer(out)])
    }

    /// `clip_by_norm` (training.cl): x [count] ·= min(1, maxNorm / (√(Σ sums[0..<slots]) + 1e-6))
    /// (`sums` [slots]: squared norms, e.g. from `sumOfSquares`). Global (count), any work-group.
    public func clipByNorm(_ x: OpenCLBuffer, count: Int, sums: OpenCLBuffer, slots: Int, maxNorm: Float) throws {
        try launch(
            "clip_by_norm", in: .training, global: [count],
            [.int(count), .buffer(x), .buffer(sums), .int(slots), .float(maxNorm)])
    }

    /// `sgd_step` (training.cl): one SGD step on `parameter` [count] from `gradient` [count],
    /// with `momentumBuffer` [count] when given (else the placeholder, unread). Global (count),
    /// any work-group.
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

    /// `adam_step` (training.cl): one Adam/AdamW step on `parameter` [count] from `gradient`,
    /// updating `firstMoment` m and `secondMoment` v (each [count]). Global (count), any
    /// work-group.
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

    /// `pool_steps` (training.cl): out [B, F] = the last, mean or maximum of `input` [T, B, F]
    /// over each sequence's steps t < lengths[b] (`lengths` [B]); `argmax` [B, F] the step it
    /// came from, as a float (−1 for length 0 and for the mean). Global (F, B), any work-group.
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

    /// `pool_steps_backward` (training.cl): `inputGradient` [T, B, F] (every element written)
    /// from `outputGradient` [B, F]: each valid step its share (the `argmax` [B, F] step for last
    /// and max, 1/length each for mean), padded steps 0. Global (F, T·B), any work-group.
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

/// The training.cl kernels that ModelOps operations combine (OpenCLModelOps.swift): losses
/// and the sums that reduce them.
extension OpenCLBackend {
    /// `softmax_xent_rows` (training.cl): per row of `logits` [rows, classes], one item each:
    /// `rowLoss` [rows] = logsumexp − the target's logit, `gradient` [rows, classes] =
    /// (softmax − one-hot)·scale; both 0 where `targets` [rows] holds `ignoreIndex`. Global
    /// (rows), any work-group.
    func softmaxXentRows(
        rows: Int, classes: Int, logits: OpenCLBuffer, targets: OpenCLBuffer, ignoreIndex: Int, scale: Float,
        gradient: OpenCLBuffer, rowLoss: OpenCLBuffer
    ) throws {
        try launch(
            "softmax_xent_rows", in: .training, global: [rows],
            [
                .int(rows), .int(classes), .buffer(logits), .buffer(targets), .int(ignoreIndex), .float(scale),
                .buffer(gradient), .buffer(rowLoss),
            ])
    }

    /// `softmax_xent_group` (training.cl): the same as `softmaxXentRows` with a work-group of
    /// `OpenCLTiles.softmaxGroup` items per row (max and sum reduced in local memory), for
    /// wide rows. Work-group (SOFTMAX_GROUP, 1); global (SOFTMAX_GROUP, rows).
    func softmaxXentGroup(
        rows: Int, classes: Int, logits: OpenCLBuffer, targets: OpenCLBuffer, ignoreIndex: Int, scale: Float,
        gradient: OpenCLBuffer, rowLoss: OpenCLBuffer
    ) throws {
        try launch(
            "softmax_xent_group", in: .training, global: [OpenCLTiles.softmaxGroup, rows],
            local: [OpenCLTiles.softmaxGroup, 1],
            [
                .int(rows), .int(classes), .buffer(logits), .buffer(targets), .int(ignoreIndex), .float(scale),
                .buffer(gradient), .buffer(rowLoss),
            ])
    }

    /// `mse` (training.cl): d = prediction − target (each [count]); `gradient` [count] = 2d/count,
    /// `squares` [count] = d². Global (count), any work-group.
    func mse(
        count: Int, prediction: OpenCLBuffer, target: OpenCLBuffer, gradient: OpenCLBuffer, squares: OpenCLBuffer
    ) throws {
        try launch(
            "mse", in: .training, global: [count],
            [.int(count), .buffer(prediction), .buffer(target), .buffer(gradient), .buffer(squares)])
    }

    /// `square` (training.cl): out [count] = x² (x [count]). Global (count), any work-group.
    func square(_ x: OpenCLBuffer, count: Int, into out: OpenCLBuffer) throws {
        try launch("square", in: .training, global: [count], [.int(count), .buffer(x), .buffer(out)])
    }

    /// `bce_logits` (training.cl): for logits x and targets y (each [count]), `gradient` [count]
    /// = (σ(x) − y)·scale and `terms` [count] = max(x, 0) − x·y + log(1 + e^−|x|). Global
    /// (count), any work-group.
    func bceLogits(
        count: Int, logits: OpenCLBuffer, targets: OpenCLBuffer, scale: Float, gradient: OpenCLBuffer,
        terms: OpenCLBuffer
    ) throws {
        try launch(
            "bce_logits", in: .training, global: [count],
            [.int(count), .buffer(logits), .buffer(targets), .float(scale), .buffer(gradient), .buffer(terms)])
    }

    /// `reduce_sum` (training.cl), one pass: out[slot + g] = scale·Σ of work-group g's share of
    /// x [count] (its items stride over x by the global size), for g < `groups`. Work-group
    /// (REDUCE_GROUP); global (groups·REDUCE_GROUP).
    func reduceSumPass(
        _ x: OpenCLBuffer, count: Int, scale: Float, into out: OpenCLBuffer, slot: Int, groups: Int
    ) throws {
        let group = OpenCLTiles.reduceGroup
        try launch(
            "reduce_sum", in: .training, global: [groups * group], local: [group],
            [.int(count), .buffer(x), .float(scale), .buffer(out), .int(slot)])
    }

    /// out[slot] = scale·Σ x[0..<count]. Long inputs run in two passes of `reduce_sum`: up to
    /// `reductionSlices` work-groups write partial sums, then one work-group adds them.
    func reduceSum(_ x: OpenCLBuffer, count: Int, scale: Float, into out: OpenCLBuffer, slot: Int) throws {
        let group = OpenCLTiles.reduceGroup
        var (input, n) = (x, count)
        let groups = reductionSlices(items: group, length: (count + group - 1) / group)
        if groups > 1 {
            let partial = try makeScratchBuffer(count: groups)
            try reduceSumPass(x, count: count, scale: 1, into: partial, slot: 0, groups: groups)
            (input, n) = (partial, groups)
        }
        try reduceSumPass(input, count: n, scale: scale, into: out, slot: slot, groups: 1)
    }
}
