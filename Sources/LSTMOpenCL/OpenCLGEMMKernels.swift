// OpenCLGEMMKernels.swift: how each kernel of Kernels/gemm.cl is launched: one typed launcher
// per kernel (its arguments in the kernel's order, its grid and the work it declares), for
// `gemm` and the split-K and column-sum reductions to call.

@_spi(Backend) import LSTMCore

/// One typed launcher per kernel of Kernels/gemm.cl. A product is C [M, N] = alpha·op(A)·op(B)
/// + beta·C on row-major views (buffer, offset, row stride), op(A) [M, K] and op(B) [K, N]
/// (op(X) = X, or Xᵀ with `transposeA` / `transposeB`); beta = 0 never reads C.
extension OpenCLBackend {
    /// `gemm_tiled` (gemm.cl, `variant` .tiled: work-groups of 16×16 items of 4×4 outputs) or
    /// `gemm_blocked` (.blocked: 8×8 items of 8×8 outputs): C [M, N] = alpha·op(A)·op(B) + beta·C,
    /// a 64×64 tile of C per work-group. Both take the same arguments. Work-group (side, side),
    /// side = `variant.groupSide`; global (ceil(N/64)·side, ceil(M/64)·side).
    func gemmTiled(
        _ variant: OpenCLGEMMVariant, transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        a: MatrixView<OpenCLBuffer>, b: MatrixView<OpenCLBuffer>, beta: Float, c: MatrixView<OpenCLBuffer>
    ) throws {
        let (tile, side) = (OpenCLTiles.gemmTile, variant.groupSide)
        try launch(
            variant.kernel, in: .gemm, global: [(n + tile - 1) / tile * side, (m + tile - 1) / tile * side],
            local: [side, side], work: gemmWork(m: m, n: n, k: k, beta: beta),
            gemmArguments(
                transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha, a: a, b: b,
                beta: beta, c: c))
    }

    /// `gemm_plain` (gemm.cl): the same product, one output per item, no local memory (for
    /// devices that refuse the tiled kernels' work-groups). Global (N, M), any work-group.
    func gemmPlain(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        a: MatrixView<OpenCLBuffer>, b: MatrixView<OpenCLBuffer>, beta: Float, c: MatrixView<OpenCLBuffer>
    ) throws {
        try launch(
            "gemm_plain", in: .gemm, global: [n, m], work: gemmWork(m: m, n: n, k: k, beta: beta),
            gemmArguments(
                transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha, a: a, b: b,
                beta: beta, c: c))
    }

    /// `gemm_tiled_split` (gemm.cl): split-K, slice z of `slices` covering K [z·chunk,
    /// min(K, (z+1)·chunk)) writes alpha·op(A)·op(B) of it to `workspace` [slices, M, N] (no
    /// beta; `gemmSumSplits` adds the slices). Work-group (16, 16, 1); global (ceil(N/64)·16,
    /// ceil(M/64)·16, slices).
    func gemmTiledSplit(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, chunk: Int, alpha: Float,
        a: MatrixView<OpenCLBuffer>, b: MatrixView<OpenCLBuffer>, workspace: OpenCLBuffer, slices: Int
    ) throws {
        let (tile, side) = (OpenCLTiles.gemmTile, OpenCLTiles.gemmGroupSide)
        let (dm, dn, dk, ds) = (Double(m), Double(n), Double(k), Double(slices))
        try launch(
            "gemm_tiled_split", in: .gemm,
            global: [(n + tile - 1) / tile * side, (m + tile - 1) / tile * side, slices], local: [side, side, 1],
            work: KernelWork(flops: 2 * dm * dn * dk, bytes: 4 * (dm * dk + dk * dn + ds * dm * dn)),
            [
                .int(m), .int(n), .int(k), .int(chunk), .float(alpha),
                .buffer(a.buffer), .int(a.offset), .int(a.rowStride), .int(transposeA ? 1 : 0),
                .buffer(b.buffer), .int(b.offset), .int(b.rowStride), .int(transposeB ? 1 : 0),
                .buffer(workspace),
            ])
    }

    /// `gemm_sum_splits` (gemm.cl): C [M, N] = Σ_z workspace[z] + beta·C over the `slices`
    /// partial results in `workspace` [slices, M, N] (split-K's second pass; also the column
    /// sums', with M = 1). `declaringWork`: whether the launch declares its work for the
    /// profile (the column sums' pass does not). Global (N, M), any work-group.
    func gemmSumSplits(
        m: Int, n: Int, slices: Int, workspace: OpenCLBuffer, beta: Float, c: MatrixView<OpenCLBuffer>,
        declaringWork: Bool
    ) throws {
        let (dm, dn, ds) = (Double(m), Double(n), Double(slices))
        try launch(
            "gemm_sum_splits", in: .gemm, global: [n, m],
            work: declaringWork
                ? KernelWork(flops: ds * dm * dn, bytes: 4 * (ds * dm * dn + (beta == 0 ? 1 : 2) * dm * dn)) : nil,
            [
                .int(m), .int(n), .int(slices), .buffer(workspace), .float(beta), .buffer(c.buffer), .int(c.offset),
                .int(c.rowStride),
            ])
    }

    /// The arguments of `gemm_tiled`, `gemm_blocked` and `gemm_plain`, which share one signature.
    private func gemmArguments(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        a: MatrixView<OpenCLBuffer>, b: MatrixView<OpenCLBuffer>, beta: Float, c: MatrixView<OpenCLBuffer>
    ) -> [KernelArgument] {
        [
            .int(m), .int(n), .int(k), .float(alpha),
            .buffer(a.buffer), .int(a.offset), .int(a.rowStride), .int(transposeA ? 1 : 0),
            .buffer(b.buffer), .int(b.offset), .int(b.rowStride), .int(transposeB ? 1 : 0),
            .float(beta), .buffer(c.buffer), .int(c.offset), .int(c.rowStride),
        ]
    }

    /// The work of an unsplit product: 2·M·N·K FLOPs; A and B read once, C written (and read
    /// too when beta ≠ 0).
    private func gemmWork(m: Int, n: Int, k: Int, beta: Float) -> KernelWork {
        KernelWork(
            flops: 2 * Double(m) * Double(n) * Double(k),
            bytes: 4
                * (Double(m) * Double(k) + Double(k) * Double(n) + Double(beta == 0 ? 1 : 2) * Double(m) * Double(n)))
    }
}
