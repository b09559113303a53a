// gemm.cl: C = alpha * op(A) * op(B) + beta * C, row-major float32, with offsets and
// leading dimensions, op(X) = X or X^T chosen per call (transA, transB).
// Shapes: op(A) [M, K], op(B) [K, N], C [M, N]. beta == 0 never reads C.
//
// Variants:
//   gemm_tiled  64x64 output tile per work-group of 16x16 items, each item 4x4 outputs,
//               K in slices of 16 through local memory. Requires a work-group size of
//               256 (reqd_work_group_size); any M, N, K (edges are guarded).
//               Global size: (ceil(N/64)*16, ceil(M/64)*16).
//   gemm_tiled_split  the same tiles over one slice of K per work-group along dimension 2
//               (split-K, for the weight gradients' K = T·B against small M·N): slice z
//               covers K [z·kChunk, min(K, (z+1)·kChunk)) and writes alpha·op(A)·op(B) of
//               it to W + z·M·N ([S, M, N], row-major, no beta). Global size
//               (ceil(N/64)*16, ceil(M/64)*16, S).
//   gemm_sum_splits  C = sum_z W[z] + beta·C, one item per element; any work-group size;
//               global (N, M).
//   gemm_blocked  the same 64x64 tiles with 8x8 items of 8x8 outputs each (a larger register
//               tile: two float8 local loads per 64 FMAs instead of 8 scalar loads per 16), for
//               devices where that wins (OpenCLBackend chooses per device by timing both).
//               Requires a work-group size of 64; any M, N, K. Global size
//               (ceil(N/64)*8, ceil(M/64)*8).
//   gemm_plain  one output per item, no local memory; any work-group size. For devices
//               that refuse 256 items per group.
// Build options: none required (GEMM_TILE / GEMM_WPT may override 64 / 4).

#ifndef GEMM_TILE
#define GEMM_TILE 64
#endif
#ifndef GEMM_WPT
#define GEMM_WPT 4
#endif
#define GEMM_K 16
#define GEMM_RTS (GEMM_TILE / GEMM_WPT)
// gemm_blocked: outputs per item side, items per work-group side.
#define GEMM_BW 8
#define GEMM_BRTS (GEMM_TILE / GEMM_BW)

// Loads the GEMM_K × GEMM_TILE slices of op(A) (rows row0…, as As[k·pitch + m]) and op(B)
// (columns col0…, as Bs[k·pitch + n]) at k0 into local memory, `items` work-items sharing
// the loads (consecutive items read consecutive addresses in either layout); rows, columns
// or K beyond M, N, kEnd load 0.
static inline void load_tiles(const int M, const int N, const int k0, const int kEnd, const int row0, const int col0,
                              const int lid, const int items,
                              __global const float* A, const int offA, const int lda, const int transA,
                              __global const float* B, const int offB, const int ldb, const int transB,
                              __local float* As, __local float* Bs, const int pitch)
{
    for (int idx = lid; idx < GEMM_TILE * GEMM_K; idx += items) {
        int m, k;
        if (transA) { m = idx % GEMM_TILE; k = idx / GEMM_TILE; } else { k = idx % GEMM_K; m = idx / GEMM_K; }
        const int gm = row0 + m, gk = k0 + k;
        As[k * pitch + m] = (gm < M && gk < kEnd) ? (transA ? A[offA + gk * lda + gm] : A[offA + gm * lda + gk]) : 0.0f;
        int n;
        if (transB) { k = idx % GEMM_K; n = idx / GEMM_K; } else { n = idx % GEMM_TILE; k = idx / GEMM_TILE; }
        const int gn = col0 + n, gk2 = k0 + k;
        Bs[k * pitch + n] = (gn < N && gk2 < kEnd) ? (transB ? B[offB + gn * ldb + gk2] : B[offB + gk2 * ldb + gn]) : 0.0f;
    }
}

// One GEMM_TILE × GEMM_TILE tile of alpha·op(A)·op(B) over K [kBegin, kEnd), stored to
// C[offC + m·ldc + n] (plus beta·C unless beta == 0). As, Bs: the work-group's local tiles.
static inline void gemm_tile(const int M, const int N, const int kBegin, const int kEnd, const float alpha,
                             __global const float* A, const int offA, const int lda, const int transA,
                             __global const float* B, const int offB, const int ldb, const int transB,
                             const float beta, __global float* C, const int offC, const int ldc,
                             __local float (*As)[GEMM_TILE + 1], __local float (*Bs)[GEMM_TILE + 1])
{
    const int tc = get_local_id(0), tr = get_local_id(1);
    const int row0 = get_group_id(1) * GEMM_TILE, col0 = get_group_id(0) * GEMM_TILE;
    const int lid = tr * GEMM_RTS + tc;
    float acc[GEMM_WPT][GEMM_WPT];
    for (int i = 0; i < GEMM_WPT; i++)
        for (int j = 0; j < GEMM_WPT; j++) acc[i][j] = 0.0f;

    for (int k0 = kBegin; k0 < kEnd; k0 += GEMM_K) {
        load_tiles(M, N, k0, kEnd, row0, col0, lid, GEMM_RTS * GEMM_RTS, A, offA, lda, transA, B, offB, ldb, transB,
                   &As[0][0], &Bs[0][0], GEMM_TILE + 1);
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int k = 0; k < GEMM_K; k++) {
            float a[GEMM_WPT], b[GEMM_WPT];
            for (int w = 0; w < GEMM_WPT; w++) { a[w] = As[k][tr + w * GEMM_RTS]; b[w] = Bs[k][tc + w * GEMM_RTS]; }
            for (int i = 0; i < GEMM_WPT; i++)
                for (int j = 0; j < GEMM_WPT; j++) acc[i][j] = fma(a[i], b[j], acc[i][j]);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    for (int i = 0; i < GEMM_WPT; i++) {
        const int gm = row0 + tr + i * GEMM_RTS;
        if (gm >= M) continue;
        for (int j = 0; j < GEMM_WPT; j++) {
            const int gn = col0 + tc + j * GEMM_RTS;
            if (gn >= N) continue;
            __global float* c = C + offC + gm * ldc + gn;
            *c = beta == 0.0f ? alpha * acc[i][j] : alpha * acc[i][j] + beta * *c;
        }
    }
}

__kernel __attribute__((reqd_work_group_size(GEMM_RTS, GEMM_RTS, 1)))
void gemm_tiled(const int M, const int N, const int K, const float alpha,
                __global const float* A, const int offA, const int lda, const int transA,
                __global const float* B, const int offB, const int ldb, const int transB,
                const float beta, __global float* C, const int offC, const int ldc)
{
    __local float As[GEMM_K][GEMM_TILE + 1];
    __local float Bs[GEMM_K][GEMM_TILE + 1];
    gemm_tile(M, N, 0, K, alpha, A, offA, lda, transA, B, offB, ldb, transB, beta, C, offC, ldc, As, Bs);
}

__kernel __attribute__((reqd_work_group_size(GEMM_RTS, GEMM_RTS, 1)))
void gemm_tiled_split(const int M, const int N, const int K, const int kChunk, const float alpha,
                      __global const float* A, const int offA, const int lda, const int transA,
                      __global const float* B, const int offB, const int ldb, const int transB,
                      __global float* W)
{
    __local float As[GEMM_K][GEMM_TILE + 1];
    __local float Bs[GEMM_K][GEMM_TILE + 1];
    const int z = get_group_id(2);
    const int kBegin = z * kChunk, kEnd = min(K, kBegin + kChunk);
    gemm_tile(M, N, kBegin, kEnd, alpha, A, offA, lda, transA, B, offB, ldb, transB, 0.0f, W, z * M * N, N, As, Bs);
}

__kernel void gemm_sum_splits(const int M, const int N, const int S, __global const float* W,
                              const float beta, __global float* C, const int offC, const int ldc)
{
    const int n = get_global_id(0), m = get_global_id(1);
    if (m >= M || n >= N) return;
    float sum = 0.0f;
    for (int z = 0; z < S; z++) sum += W[(z * M + m) * N + n];
    __global float* c = C + offC + m * ldc + n;
    *c = beta == 0.0f ? sum : sum + beta * *c;
}

__kernel __attribute__((reqd_work_group_size(GEMM_BRTS, GEMM_BRTS, 1)))
void gemm_blocked(const int M, const int N, const int K, const float alpha,
                  __global const float* A, const int offA, const int lda, const int transA,
                  __global const float* B, const int offB, const int ldb, const int transB,
                  const float beta, __global float* C, const int offC, const int ldc)
{
    // Item (tc, tr) owns rows tr·8 … tr·8+7 and columns tc·8 … tc·8+7 of the tile: its
    // slices of a local row are contiguous, two float4 each.
    __local float As[GEMM_K][GEMM_TILE];
    __local float Bs[GEMM_K][GEMM_TILE];
    const int tc = get_local_id(0), tr = get_local_id(1);
    const int row0 = get_group_id(1) * GEMM_TILE, col0 = get_group_id(0) * GEMM_TILE;
    float acc[GEMM_BW][GEMM_BW];
    for (int i = 0; i < GEMM_BW; i++)
        for (int j = 0; j < GEMM_BW; j++) acc[i][j] = 0.0f;
    for (int k0 = 0; k0 < K; k0 += GEMM_K) {
        load_tiles(M, N, k0, K, row0, col0, tr * GEMM_BRTS + tc, GEMM_BRTS * GEMM_BRTS, A, offA, lda, transA,
                   B, offB, ldb, transB, &As[0][0], &Bs[0][0], GEMM_TILE);
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int k = 0; k < GEMM_K; k++) {
            const float8 a = vload8(0, &As[k][tr * GEMM_BW]), b = vload8(0, &Bs[k][tc * GEMM_BW]);
            const float av[GEMM_BW] = {a.s0, a.s1, a.s2, a.s3, a.s4, a.s5, a.s6, a.s7};
            const float bv[GEMM_BW] = {b.s0, b.s1, b.s2, b.s3, b.s4, b.s5, b.s6, b.s7};
            for (int i = 0; i < GEMM_BW; i++)
                for (int j = 0; j < GEMM_BW; j++) acc[i][j] = fma(av[i], bv[j], acc[i][j]);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    for (int i = 0; i < GEMM_BW; i++) {
        const int gm = row0 + tr * GEMM_BW + i;
        if (gm >= M) break;
        for (int j = 0; j < GEMM_BW; j++) {
            const int gn = col0 + tc * GEMM_BW + j;
            if (gn >= N) break;
            __global float* c = C + offC + gm * ldc + gn;
            *c = beta == 0.0f ? alpha * acc[i][j] : alpha * acc[i][j] + beta * *c;
        }
    }
}

__kernel void gemm_plain(const int M, const int N, const int K, const float alpha,
                         __global const float* A, const int offA, const int lda, const int transA,
                         __global const float* B, const int offB, const int ldb, const int transB,
                         const float beta, __global float* C, const int offC, const int ldc)
{
    const int n = get_global_id(0), m = get_global_id(1);
    if (m >= M || n >= N) return;
    float acc = 0.0f;
    for (int k = 0; k < K; k++) {
        const float a = transA ? A[offA + k * lda + m] : A[offA + m * lda + k];
        const float b = transB ? B[offB + n * ldb + k] : B[offB + k * ldb + n];
        acc = fma(a, b, acc);
    }
    __global float* c = C + offC + m * ldc + n;
    *c = beta == 0.0f ? alpha * acc : alpha * acc + beta * *c;
}
