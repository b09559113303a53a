// tensor_ops.cl: small data-movement kernels around the LSTM steps.
// Kernels (all one item per output element, any work-group size, bounds-guarded):
//   fill_bias       gates[r, c] = bias_ih[c] + bias_hh[c] (or 0 when has_bias == 0); [R, W]
//   transpose       dst[c, r] = src[r, c]; src [R, C] -> dst [C, R]
//   swap_outer      dst[j, i, k] = src[i, j, k]; src [A, C, inner] (batch-first <-> sequence-major)
//   copy_rows       dst[dOff + r*dStride + c] = src[sOff + r*sStride + c]; [R, W] (states in and out of views)
//   column_sums     out[z, c] = sum of m[r, c] over rows [z·chunk, min(R, (z+1)·chunk)); [R, W] ->
//                   [S, W], global (W, S): S = 1 gives the sums (bias gradients), more slices
//                   partial sums that gemm_sum_splits (gemm.cl) adds
//   interleave_gates W4[k, j] = (W[j, k], W[H + j, k], W[2H + j, k], W[3H + j, k]); W [4H, K] ->
//                   W4 [K, H] of float4 (each unit's four gates in one 16-byte load; global (H, K))

__kernel void fill_bias(const int R, const int W, __global float* gates, const int has_bias,
                        __global const float* bias_ih, __global const float* bias_hh)
{
    const int c = get_global_id(0), r = get_global_id(1);
    if (r >= R || c >= W) return;
    gates[r * W + c] = has_bias ? bias_ih[c] + bias_hh[c] : 0.0f;
}

__kernel void transpose(const int R, const int C, __global const float* src, __global float* dst)
{
    const int c = get_global_id(0), r = get_global_id(1);
    if (r >= R || c >= C) return;
    dst[c * R + r] = src[r * C + c];
}

__kernel void swap_outer(const int A, const int C, const int inner, __global const float* src, __global float* dst)
{
    const int k = get_global_id(0), j = get_global_id(1), i = get_global_id(2);
    if (i >= A || j >= C || k >= inner) return;
    dst[(j * A + i) * inner + k] = src[(i * C + j) * inner + k];
}

__kernel void copy_rows(const int R, const int W, __global const float* src, const int sOff, const int sStride,
                        __global float* dst, const int dOff, const int dStride)
{
    const int c = get_global_id(0), r = get_global_id(1);
    if (r >= R || c >= W) return;
    dst[dOff + r * dStride + c] = src[sOff + r * sStride + c];
}

__kernel void column_sums(const int R, const int W, const int chunk, __global const float* m, __global float* out)
{
    const int c = get_global_id(0), z = get_global_id(1);
    if (c >= W) return;
    const int end = min(R, (z + 1) * chunk);
    float acc = 0.0f;
    for (int r = z * chunk; r < end; r++) acc += m[r * W + c];
    out[z * W + c] = acc;
}

__kernel void interleave_gates(const int H, const int K, __global const float* W, __global float4* W4)
{
    const int j = get_global_id(0), k = get_global_id(1);
    if (j >= H || k >= K) return;
    W4[k * H + j] = (float4)(W[j * K + k], W[(H + j) * K + k], W[(2 * H + j) * K + k], W[(3 * H + j) * K + k]);
}
