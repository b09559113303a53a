// lstm_forward.cl: one time step of one LSTM layer and direction per launch.
// Gate order i, f, g, o. Shapes: B batch, H hidden, Hout = P when projecting else H,
// gates [T, B, 4H] (holding x·W_ihᵀ + b_ih + b_hh on entry for every step).
// A sequence b with t >= lengths[b] is padding: its state is carried unchanged, its
// output row is 0 (packed-sequence semantics; the reverse direction simply walks t down).
//
// Kernels:
//   lstm_forward_step     fused recurrent GEMM + activations + cell update: each item owns
//                         one hidden unit j for LSTM_BT batch rows and computes all four of its
//                         gates, h_prev·W_hhᵀ via W_hhᵀ [Hout, 4H] (coalesced over j) and
//                         h_prev tiles in local memory; then c, h (or, when projecting, the
//                         unprojected r = o·tanh(c)), the output row and the saved activations.
//                         Work-group (LSTM_UNITS, 1); global (roundup(H, LSTM_UNITS), ceil(B/LSTM_BT)).
//   lstm_forward_step_split  the same step shaped for GPUs (the `split` kernel variant): a
//                         work-group of LSTM_SU units × LSTM_SK slices of K for LSTM_SB batch
//                         rows; the cached recurrent weights W4 [Hout, H] of float4 hold each
//                         unit's four gates together (W4[k·H + j] = W_hh rows j, H+j, 2H+j, 3H+j
//                         at column k: one 16-byte load gives i, f, g, o, coalesced over j);
//                         each item accumulates its slice of K for the group's rows, the slices
//                         are summed in local memory, and the rows' cell updates are shared out
//                         over the slices. Work-group (LSTM_SU, LSTM_SK, 1); global
//                         (roundup(H, LSTM_SU), LSTM_SK, ceil(B / LSTM_SB)).
//   lstm_projection_step  h[b, p] = Σ_j r[b, j]·W_hr[p, j] via W_hrᵀ [H, Hout]; writes h_next and
//                         the output row. Any work-group size; global (Hout, B).
// Activations: sigmoid_f / tanh_f below (not the built-in tanh), so saturated gates are
// exactly 0 / ±1 and NaN or ±Inf propagate as in PyTorch.
// Build options (required, from OpenCLTiles.swift): -DLSTM_UNITS -DLSTM_BT -DLSTM_KT
// -DLSTM_SU -DLSTM_SK -DLSTM_SB.
#ifndef LSTM_UNITS
#error "LSTM_UNITS comes from the host (OpenCLTiles.buildOptions)"
#endif
#ifndef LSTM_BT
#error "LSTM_BT comes from the host (OpenCLTiles.buildOptions)"
#endif
#ifndef LSTM_KT
#error "LSTM_KT comes from the host (OpenCLTiles.buildOptions)"
#endif
#if !defined(LSTM_SU) || !defined(LSTM_SK) || !defined(LSTM_SB)
#error "LSTM_SU, LSTM_SK and LSTM_SB come from the host (OpenCLTiles.buildOptions)"
#endif

// Activations, safe at any magnitude and exact where PyTorch is: both use exp/expm1 of
// -|x| only (never overflows, so no inf/inf), give exactly 0 or ±1 once saturated (so the
// derivatives i·(1−i) and 1−g² are exactly 0 there), ±1 / 0 at ±inf, and NaN for NaN.
// (A vendor's tanh need not saturate: PoCL's returns 0.99999994 even at +inf.)
static inline float sigmoid_f(float x) {
    const float e = exp(-fabs(x));                       // (0, 1]; NaN for NaN
    const float s = 1.0f / (1.0f + e);                   // sigmoid(|x|)
    return x >= 0.0f ? s : e * s;                        // sigmoid(-|x|) = e/(1+e); NaN takes this branch
}
static inline float tanh_f(float x) {
    const float e = expm1(-2.0f * fabs(x));              // (-1, 0]; -1 exactly once |x| is large
    return copysign(-e / (2.0f + e), x);                 // tanh(|x|) = (1 − e^{−2|x|})/(1 + e^{−2|x|})
}

// The end of a step for unit j of row b, given the recurrent sums z = h_prev[b]·W_hhᵀ of its
// gates (i, f, g, o): activations, cell update, outputs and saved activations, or, for a
// padded row, the carried state.
static inline void finish_unit(const int B, const int H, const int Hout, const int t, const int j, const int b,
                               const float4 z, __global float* gates,
                               __global const float* h_prev, __global const float* c_prev,
                               __global float* h_next, __global float* c_next,
                               __global float* out, const int out_offset, const int out_stride,
                               __global const int* lengths,
                               const int save, __global float* saved_cell, __global float* saved_prev_h,
                               __global float* saved_prev_c, __global float* saved_r, const int project)
{
    const int G = 4 * H;
    const int row = t * B + b;
    const float cp = c_prev[b * H + j];
    if (save) {
        saved_prev_c[row * H + j] = cp;
        if (j < Hout) saved_prev_h[row * Hout + j] = h_prev[b * Hout + j];
    }
    if (t < lengths[b]) {
        __global float* gr = gates + row * G;
        const float i = sigmoid_f(z.x + gr[j]);
        const float f = sigmoid_f(z.y + gr[H + j]);
        const float g = tanh_f(z.z + gr[2 * H + j]);
        const float o = sigmoid_f(z.w + gr[3 * H + j]);
        const float c = f * cp + i * g;
        const float h = o * tanh_f(c);
        c_next[b * H + j] = c;
        if (save) {
            gr[j] = i; gr[H + j] = f; gr[2 * H + j] = g; gr[3 * H + j] = o;
            saved_cell[row * H + j] = c;
            if (project) saved_r[row * H + j] = h;
        }
        if (project) {
            h_next[b * H + j] = h;          // r: projected by lstm_projection_step
        } else {
            h_next[b * Hout + j] = h;
            out[out_offset + row * out_stride + j] = h;
        }
    } else {
        c_next[b * H + j] = cp;
        if (project) {
            h_next[b * H + j] = 0.0f;
            if (save) saved_r[row * H + j] = 0.0f;
        } else {
            h_next[b * Hout + j] = h_prev[b * Hout + j];
            out[out_offset + row * out_stride + j] = 0.0f;
        }
    }
}

__kernel __attribute__((reqd_work_group_size(LSTM_UNITS, 1, 1)))
void lstm_forward_step(const int B, const int H, const int Hout, const int t,
                       __global const float* WT,                     // [Hout, 4H]
                       __global float* gates,                        // [T, B, 4H]
                       __global const float* h_prev, __global const float* c_prev,  // [B, Hout], [B, H]
                       __global float* h_next, __global float* c_next,              // [B, Hout] or r [B, H]; [B, H]
                       __global float* out, const int out_offset, const int out_stride,
                       __global const int* lengths,
                       const int save, __global float* saved_cell, __global float* saved_prev_h,
                       __global float* saved_prev_c, __global float* saved_r,
                       const int project)
{
    const int j = get_global_id(0);
    const int lj = get_local_id(0);
    const int b0 = get_group_id(1) * LSTM_BT;
    const int G = 4 * H;
    __local float hs[LSTM_BT][LSTM_KT];
    float acc[4][LSTM_BT];
    for (int g = 0; g < 4; g++)
        for (int bb = 0; bb < LSTM_BT; bb++) acc[g][bb] = 0.0f;

    for (int k0 = 0; k0 < Hout; k0 += LSTM_KT) {
        for (int idx = lj; idx < LSTM_BT * LSTM_KT; idx += LSTM_UNITS) {
            const int bb = idx / LSTM_KT, k = idx % LSTM_KT;
            const int b = b0 + bb, gk = k0 + k;
            hs[bb][k] = (b < B && gk < Hout) ? h_prev[b * Hout + gk] : 0.0f;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        if (j < H) {
            const int kmax = min(LSTM_KT, Hout - k0);
            for (int k = 0; k < kmax; k++) {
                __global const float* w = WT + (k0 + k) * G + j;
                const float wi = w[0], wf = w[H], wg = w[2 * H], wo = w[3 * H];
                for (int bb = 0; bb < LSTM_BT; bb++) {
                    const float h = hs[bb][k];
                    acc[0][bb] = fma(wi, h, acc[0][bb]);
                    acc[1][bb] = fma(wf, h, acc[1][bb]);
                    acc[2][bb] = fma(wg, h, acc[2][bb]);
                    acc[3][bb] = fma(wo, h, acc[3][bb]);
                }
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (j >= H) return;
    for (int bb = 0; bb < LSTM_BT; bb++) {
        const int b = b0 + bb;
        if (b >= B) break;
        finish_unit(B, H, Hout, t, j, b, (float4)(acc[0][bb], acc[1][bb], acc[2][bb], acc[3][bb]), gates,
                    h_prev, c_prev, h_next, c_next, out, out_offset, out_stride, lengths,
                    save, saved_cell, saved_prev_h, saved_prev_c, saved_r, project);
    }
}

// Items per row share of the epilogue: row bb of the group is finished by slice bb % LSTM_SK.
#define LSTM_SPLIT_ROWS ((LSTM_SB + LSTM_SK - 1) / LSTM_SK)

__kernel __attribute__((reqd_work_group_size(LSTM_SU, LSTM_SK, 1)))
void lstm_forward_step_split(const int B, const int H, const int Hout, const int t,
                             __global const float4* W4,                   // [Hout, H] of (i, f, g, o)
                             __global float* gates,                       // [T, B, 4H]
                             __global const float* h_prev, __global const float* c_prev,
                             __global float* h_next, __global float* c_next,
                             __global float* out, const int out_offset, const int out_stride,
                             __global const int* lengths,
                             const int save, __global float* saved_cell, __global float* saved_prev_h,
                             __global float* saved_prev_c, __global float* saved_r,
                             const int project)
{
    const int lj = get_local_id(0), slice = get_local_id(1);
    const int j = get_group_id(0) * LSTM_SU + lj;
    const int b0 = get_group_id(2) * LSTM_SB;
    const int rows = min(LSTM_SB, B - b0);
    __local float4 partial[LSTM_SK][LSTM_SU];
    float4 acc[LSTM_SB];
    for (int bb = 0; bb < LSTM_SB; bb++) acc[bb] = (float4)(0.0f);
    if (j < H) {
        for (int k = slice; k < Hout; k += LSTM_SK) {
            const float4 w = W4[k * H + j];
            for (int bb = 0; bb < LSTM_SB; bb++) {
                const float h = bb < rows ? h_prev[(b0 + bb) * Hout + k] : 0.0f;
                acc[bb] = fma((float4)(h), w, acc[bb]);
            }
        }
    }
    // Sum the slices row by row; slice bb % LSTM_SK keeps row bb's total.
    float4 mine[LSTM_SPLIT_ROWS];
    for (int bb = 0; bb < LSTM_SB; bb++) {
        partial[slice][lj] = acc[bb];
        barrier(CLK_LOCAL_MEM_FENCE);
        if (slice == bb % LSTM_SK) {
            float4 sum = partial[0][lj];
            for (int s = 1; s < LSTM_SK; s++) sum += partial[s][lj];
            mine[bb / LSTM_SK] = sum;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (j >= H) return;
    for (int bb = slice; bb < rows; bb += LSTM_SK) {
        finish_unit(B, H, Hout, t, j, b0 + bb, mine[bb / LSTM_SK], gates, h_prev, c_prev, h_next, c_next,
                    out, out_offset, out_stride, lengths, save, saved_cell, saved_prev_h, saved_prev_c, saved_r,
                    project);
    }
}

__kernel void lstm_projection_step(const int B, const int H, const int Hout, const int t,
                                   __global const float* WrT,     // [H, Hout]
                                   __global const float* r,       // [B, H]
                                   __global const float* h_prev, __global float* h_next,  // [B, Hout]
                                   __global float* out, const int out_offset, const int out_stride,
                                   __global const int* lengths)
{
    const int p = get_global_id(0), b = get_global_id(1);
    if (p >= Hout || b >= B) return;
    const int row = t * B + b;
    if (t < lengths[b]) {
        float acc = 0.0f;
        for (int j = 0; j < H; j++) acc = fma(r[b * H + j], WrT[j * Hout + p], acc);
        h_next[b * Hout + p] = acc;
        out[out_offset + row * out_stride + p] = acc;
    } else {
        h_next[b * Hout + p] = h_prev[b * Hout + p];
        out[out_offset + row * out_stride + p] = 0.0f;
    }
}
