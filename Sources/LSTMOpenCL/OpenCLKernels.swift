import COpenCL
@_spi(Backend) import LSTMCore

/// One typed launcher per kernel of Kernels/tensor_ops.cl, lstm_forward.cl and
/// lstm_backward.cl: named arguments here, the kernel's positional order in one place.
/// Shapes use the kernels' letters: B batch, H hidden, Hout (P when projecting), t the step.
/// The other kernel files' launchers: OpenCLGEMMKernels.swift (gemm.cl),
/// OpenCLOptionsKernels.swift (lstm_options.cl), OpenCLTrainingKernels.swift (training.cl).
extension OpenCLBackend {
    /// `fill_bias` (tensor_ops.cl): every row of `gates` [rows, width] ← b_ih + b_hh (each
    /// [width]; 0 without bias). Global (width, rows), any work-group.
    func fillBias(
        _ gates: OpenCLBuffer, rows: Int, width: Int, inputBias: OpenCLBuffer?, recurrentBias: OpenCLBuffer?
    ) throws {
        try launch(
            "fill_bias", in: .tensorOps, global: [width, rows],
            [
                .int(rows), .int(width), .buffer(gates), .int(inputBias == nil ? 0 : 1),
                .buffer(inputBias ?? runtime.placeholder), .buffer(recurrentBias ?? runtime.placeholder),
            ])
    }

    /// `transpose` (tensor_ops.cl): a new [columns, rows] buffer holding srcᵀ for src
    /// [rows, columns]. Global (columns, rows), any work-group.
    func transposed(_ src: OpenCLBuffer, rows: Int, columns: Int) throws -> OpenCLBuffer {
        let dst = try makeBuffer(count: rows * columns)
        try launch(
            "transpose", in: .tensorOps, global: [columns, rows],
            [.int(rows), .int(columns), .buffer(src), .buffer(dst)])
        return dst
    }

    /// `swap_outer` (tensor_ops.cl): dst[j, i, :] = src[i, j, :] for src [A, C, inner], dst
    /// [C, A, inner] (batch-first ↔ sequence-major). Global (inner, C, A), any work-group.
    public func swapOuterDimensions(_ src: OpenCLBuffer, into dst: OpenCLBuffer, a: Int, c: Int, inner: Int) throws {
        try launch(
            "swap_outer", in: .tensorOps, global: [inner, c, a],
            [.int(a), .int(c), .int(inner), .buffer(src), .buffer(dst)])
    }

    /// `copy_rows` (tensor_ops.cl): [rows, width] from one view to another. Global (width,
    /// rows), any work-group.
    func copyRows(from src: MatrixView<OpenCLBuffer>, to dst: MatrixView<OpenCLBuffer>, rows: Int, width: Int) throws {
        try launch(
            "copy_rows", in: .tensorOps, global: [width, rows],
            [
                .int(rows), .int(width), .buffer(src.buffer), .int(src.offset), .int(src.rowStride),
                .buffer(dst.buffer), .int(dst.offset), .int(dst.rowStride),
            ])
    }

    /// out [width] = Σ_r m[r, ·] for m [rows, width] (the bias gradients, rows = T·B). A narrow
    /// matrix gives too few items to fill a device, so its rows are cut into slices
    /// (`reductionSlices`) whose partial sums `gemm_sum_splits` adds in a second pass.
    func launchColumnSums(_ matrix: OpenCLBuffer, rows: Int, width: Int, into out: OpenCLBuffer) throws {
        let slices = reductionSlices(items: width, length: rows)
        let chunk = (rows + slices - 1) / max(slices, 1)
        let partial = slices > 1 ? try makeScratchBuffer(count: slices * width) : out
        try columnSumSlices(matrix, rows: rows, width: width, chunk: chunk, slices: slices, into: partial)
        if slices > 1 {
            try gemmSumSplits(
                m: 1, n: width, slices: slices, workspace: partial, beta: 0, c: MatrixView(out, rowStride: width),
                declaringWork: false)
        }
    }

    /// `column_sums` (tensor_ops.cl): partial [slices, width], row z = Σ m[r, ·] over the rows
    /// r in [z·chunk, min(rows, (z+1)·chunk)) of m [rows, width] (slices = 1: the column sums
    /// themselves). Global (width, slices), any work-group.
    func columnSumSlices(
        _ matrix: OpenCLBuffer, rows: Int, width: Int, chunk: Int, slices: Int, into partial: OpenCLBuffer
    ) throws {
        try launch(
            "column_sums", in: .tensorOps, global: [width, slices],
            [.int(rows), .int(width), .int(chunk), .buffer(matrix), .buffer(partial)])
    }

    /// How many slices a reduction of `length` elements for each of `items` parallel outputs
    /// is cut into: enough for about 256 items per compute unit, each slice at least 64
    /// elements long, at most 64 slices (1: no second pass).
    func reductionSlices(items: Int, length: Int) -> Int {
        let wanted = 256 * max(1, device.computeUnits)
        return max(1, min(64, wanted / max(items, 1), length / 64))
    }

    /// `lstm_forward_step` (lstm_forward.cl; `classic`, from W_hhᵀ [Hout, 4H]) or
    /// `lstm_forward_step_split` (`split`, from the interleaved W4 [Hout, H] of float4): step t
    /// of one direction. Reads gates(t) of `gates` [T, B, 4H] (the input projection and
    /// biases), h [B, Hout] and c [B, H] before the step; writes them after it (`nextHidden`
    /// receives r = o·tanh(c) [B, H] when projecting), the output row of `output` [T·B, ·]
    /// and, when `saved` is given, the activations [T, B, ·]. Both kernels take the same
    /// arguments. Work-group (64, 1), global (roundup(H, 64), ceil(B/4)) for `classic`;
    /// (32, 8, 1) and (roundup(H, 32), 8, ceil(B/8)) for `split` (`OpenCLTiles`).
    func forwardStep(
        _ variant: OpenCLStepVariant, shape s: DirectionShape, step t: Int, recurrent: OpenCLBuffer,
        gates: OpenCLBuffer, hidden: OpenCLBuffer, cell: OpenCLBuffer, nextHidden: OpenCLBuffer,
        nextCell: OpenCLBuffer, output: MatrixView<OpenCLBuffer>, lengths: OpenCLBuffer,
        saved: DirectionActivations<OpenCLBuffer>?
    ) throws {
        let placeholder = runtime.placeholder
        let (name, global, local): (String, [Int], [Int])
        switch variant {
        case .classic:
            let rowGroups = (s.batch + OpenCLTiles.stepBatchTile - 1) / OpenCLTiles.stepBatchTile
            (name, global, local) = ("lstm_forward_step", [s.hiddenSize, rowGroups], [OpenCLTiles.stepUnits, 1])
        case .split:
            let rowGroups = (s.batch + OpenCLTiles.splitBatchTile - 1) / OpenCLTiles.splitBatchTile
            (name, global, local) = (
                "lstm_forward_step_split", [s.hiddenSize, OpenCLTiles.splitSlices, rowGroups],
                [OpenCLTiles.splitUnits, OpenCLTiles.splitSlices, 1]
            )
        }
        try launch(
            name, in: .lstmForward, global: global, local: local, work: s.forwardStepWork(saved: saved != nil),
            [
                .int(s.batch), .int(s.hiddenSize), .int(s.outputSize), .int(t), .buffer(recurrent), .buffer(gates),
                .buffer(hidden), .buffer(cell), .buffer(nextHidden), .buffer(nextCell),
                .buffer(output.buffer), .int(output.offset), .int(output.rowStride), .buffer(lengths),
                .int(saved == nil ? 0 : 1), .buffer(saved?.cell ?? placeholder),
                .buffer(saved?.previousHidden ?? placeholder),
                .buffer(saved?.previousCell ?? placeholder), .buffer(saved?.unprojected ?? placeholder),
                .int(s.projects ? 1 : 0),
            ])
    }

    /// `interleave_gates` (tensor_ops.cl): W_hh [4H, Hout] → W4 [Hout, H] of float4 (i, f, g, o
    /// of unit j at column k together), the `split` step kernels' recurrent weights. Global
    /// (H, Hout), any work-group.
    func interleavedGates(_ weights: OpenCLBuffer, hiddenSize h: Int, columns: Int) throws -> OpenCLBuffer {
        let dst = try makeBuffer(count: 4 * h * columns)
        try launch(
            "interleave_gates", in: .tensorOps, global: [h, columns],
            [.int(h), .int(columns), .buffer(weights), .buffer(dst)])
        return dst
    }

    /// `lstm_hidden_backward_split` (lstm_backward.cl): dh [B, Hout] = dG(t)·W_hh for running
    /// rows (dG [T, B, 4H]), from the interleaved weights W4 [Hout, H] of float4; with
    /// `fusedStep` (no projection) also the cell backward of that step (the next one
    /// processed): dG of it and dc [B, H]. Work-group (64, 4, 1); global (64, roundup(Hout, 4),
    /// ceil(B/8)).
    func hiddenBackwardSplit(
        shape s: DirectionShape, step t: Int, interleaved: OpenCLBuffer, gateGradients: OpenCLBuffer,
        hiddenGradient: OpenCLBuffer, lengths: OpenCLBuffer, fusedStep: Int?,
        saved: DirectionActivations<OpenCLBuffer>, outputGradient: MatrixView<OpenCLBuffer>?,
        cellGradient: OpenCLBuffer
    ) throws {
        precondition(fusedStep == nil || !s.projects, "the cell backward fuses only without projection")
        let rowGroups = (s.batch + OpenCLTiles.backwardBatchTile - 1) / OpenCLTiles.backwardBatchTile
        try launch(
            "lstm_hidden_backward_split", in: .lstmBackward,
            global: [OpenCLTiles.backwardLanes, s.outputSize, rowGroups],
            local: [OpenCLTiles.backwardLanes, OpenCLTiles.backwardOutputs, 1],
            work: s.hiddenBackwardWork(fused: fusedStep != nil),
            [
                .int(s.batch), .int(s.hiddenSize), .int(s.outputSize), .int(t), .buffer(interleaved),
                .buffer(gateGradients), .buffer(hiddenGradient), .buffer(lengths),
                .int(fusedStep == nil ? 0 : 1), .int(fusedStep ?? 0),
                .buffer(saved.gates), .buffer(saved.cell), .buffer(saved.previousCell),
            ] + outputGradientArguments(outputGradient) + [.buffer(cellGradient)])
    }

    /// `lstm_projection_step` (lstm_forward.cl): h_next [B, P] = r [B, H]·W_hrᵀ (from W_hrᵀ
    /// [H, P]) for running rows (h_prev [B, P] carried for padded ones), and the output row of
    /// `output` [T·B, ·]. Global (P, B), any work-group.
    func projectionStep(
        shape s: DirectionShape, step t: Int, projectionTransposed: OpenCLBuffer, unprojected: OpenCLBuffer,
        hidden: OpenCLBuffer, nextHidden: OpenCLBuffer, output: MatrixView<OpenCLBuffer>,
        lengths: OpenCLBuffer
    ) throws {
        try launch(
            "lstm_projection_step", in: .lstmForward, global: [s.outputSize, s.batch], work: s.projectionStepWork,
            [
                .int(s.batch), .int(s.hiddenSize), .int(s.outputSize), .int(t), .buffer(projectionTransposed),
                .buffer(unprojected),
                .buffer(hidden), .buffer(nextHidden), .buffer(output.buffer), .int(output.offset),
                .int(output.rowStride),
                .buffer(lengths),
            ])
    }

    /// The upstream output gradient as the backward kernels take it (buffer, offset, stride, present).
    private func outputGradientArguments(_ dy: MatrixView<OpenCLBuffer>?) -> [KernelArgument] {
        [
            .buffer(dy?.buffer ?? runtime.placeholder), .int(dy?.offset ?? 0), .int(dy?.rowStride ?? 0),
            .int(dy == nil ? 0 : 1),
        ]
    }

    /// `lstm_projection_backward_step` (lstm_backward.cl): dht = dh [B, P] + dy(t) (dy [T·B, P]
    /// when given) kept in `projectedGradients` [T, B, P]; dr [B, H] = dht·W_hr (W_hr [P, H]).
    /// Global (H, B), any work-group.
    func projectionBackwardStep(
        shape s: DirectionShape, step t: Int, projectionWeights: OpenCLBuffer,
        hiddenGradient: OpenCLBuffer, outputGradient: MatrixView<OpenCLBuffer>?,
        projectedGradients: OpenCLBuffer, unprojectedGradient: OpenCLBuffer,
        lengths: OpenCLBuffer
    ) throws {
        try launch(
            "lstm_projection_backward_step", in: .lstmBackward, global: [s.hiddenSize, s.batch],
            work: s.projectionStepWork,
            [
                .int(s.batch), .int(s.hiddenSize), .int(s.outputSize), .int(t), .buffer(projectionWeights),
                .buffer(hiddenGradient),
            ] + outputGradientArguments(outputGradient)
                + [.buffer(projectedGradients), .buffer(unprojectedGradient), .buffer(lengths)])
    }

    /// `lstm_cell_backward_step` (lstm_backward.cl): dG(t) [B, 4H] of `gateGradients` [T, B, 4H]
    /// from dr [B, H] (projecting) or dh [B, H] + dy(t), and dc [B, H] ← dc·f, from the saved
    /// gates [T, B, 4H], c and c(prev) [T, B, H]. Global (H, B), any work-group.
    func cellBackwardStep(
        shape s: DirectionShape, step t: Int, saved: DirectionActivations<OpenCLBuffer>,
        unprojectedGradient: OpenCLBuffer?, hiddenGradient: OpenCLBuffer,
        outputGradient: MatrixView<OpenCLBuffer>?, cellGradient: OpenCLBuffer, gateGradients: OpenCLBuffer,
        lengths: OpenCLBuffer
    ) throws {
        try launch(
            "lstm_cell_backward_step", in: .lstmBackward, global: [s.hiddenSize, s.batch], work: s.cellBackwardWork,
            [
                .int(s.batch), .int(s.hiddenSize), .int(t), .buffer(saved.gates), .buffer(saved.cell),
                .buffer(saved.previousCell), .int(s.projects ? 1 : 0),
                .buffer(unprojectedGradient ?? runtime.placeholder),
                .buffer(hiddenGradient),
            ]
                + outputGradientArguments(outputGradient) + [
                    .buffer(cellGradient), .buffer(gateGradients), .buffer(lengths),
                ])
    }

    /// `lstm_hidden_backward_step` (lstm_backward.cl): dh [B, Hout] = dG(t)·W_hh for running
    /// rows (dG [T, B, 4H], W_hh [4H, Hout]). Global (Hout, B), any work-group.
    func hiddenBackwardStep(
        shape s: DirectionShape, step t: Int, recurrentWeights: OpenCLBuffer, gateGradients: OpenCLBuffer,
        hiddenGradient: OpenCLBuffer, lengths: OpenCLBuffer
    ) throws {
        try launch(
            "lstm_hidden_backward_step", in: .lstmBackward, global: [s.outputSize, s.batch],
            work: s.hiddenBackwardWork(fused: false),
            [
                .int(s.batch), .int(s.hiddenSize), .int(s.outputSize), .int(t), .buffer(recurrentWeights),
                .buffer(gateGradients),
                .buffer(hiddenGradient), .buffer(lengths),
            ])
    }
}

/// The work the step kernels declare for `bench --profile` (FLOPs; least bytes: each input
/// read once, each output written once). Letters as in the kernels: B, H, Hout.
extension DirectionShape {
    private var b: Double { Double(batch) }
    private var h: Double { Double(hiddenSize) }
    private var hout: Double { Double(outputSize) }

    /// One forward step: the recurrent product (2·B·4H·Hout) and the cell math (~15 per unit);
    /// W_hh once, the step's gates, states in and out, the output row, and with `saved` the
    /// activations kept for the backward.
    func forwardStepWork(saved: Bool) -> KernelWork {
        let floats = 4 * h * hout + b * (4 * h + hout + h) + b * (h + hout + hout)
        return KernelWork(
            flops: 2 * b * 4 * h * hout + 15 * b * h, bytes: 4 * (floats + (saved ? b * (4 * h + 2 * h + hout) : 0)))
    }

    /// One projection step (forward or backward): 2·B·H·P, W_hr once and the rows in and out.
    var projectionStepWork: KernelWork {
        KernelWork(flops: 2 * b * h * hout, bytes: 4 * (h * hout + b * h + 2 * b * hout))
    }

    /// One cell backward: ~20 FLOPs per unit; gates, c, c(prev), dh or dr, dc in and out, dG out.
    var cellBackwardWork: KernelWork {
        KernelWork(flops: 20 * b * h, bytes: 4 * b * (4 * h + 2 * h + h + 2 * h + 4 * h))
    }

    /// dh = dG·W_hh for one step (2·B·4H·Hout): W_hh once, dG(t) in, dh out; `fused` adds the
    /// next step's cell backward.
    func hiddenBackwardWork(fused: Bool) -> KernelWork {
        var work = KernelWork(flops: 2 * b * 4 * h * hout, bytes: 4 * (4 * h * hout + b * 4 * h + b * hout))
        if fused {
            work.flops += cellBackwardWork.flops
            work.bytes += cellBackwardWork.bytes
        }
        return work
    }
}
