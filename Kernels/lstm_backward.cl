// lstm_backward.cl: one time step of backpropagation through time for one layer and
// direction, launched in the reverse of the forward's order. Gate order i, f, g, o.
// Shapes: B batch, H hidden, Hout = P when projecting else H; gates (activations) [T, B, 4H],
// cell c(t) and c(prev) [T, B, H]; dG [T, B, 4H] pre-activation gate gradients.
// dh [B, Hout] and dc [B, H] carry dL/dh, dL/dc between steps and are updated in place.
// Padded steps (t >= lengths[b]) write dG = 0 and carry dh, dc through unchanged.
//
// Kernels (one item per element, any work-group size, bounds-guarded):
//   lstm_projection_backward_step  dht = dh + dy(t) (0 when padded), kept in dhtot [T, B, Hout]
//                                  for dW_hr; dr[b, j] = Σ_p dht[b, p]·W_hr[p, j]. global (H, B).
//   lstm_cell_backward_step        fused cell backward: dr (from dr, or dh + dy(t) without
//                                  projection), c, gates → dG(t), dc ← dc·f. global (H, B).
//   lstm_hidden_backward_step      dh[b, k] = Σ_m dG(t)[b, m]·W_hh[m, k] for running b.
//                                  global (Hout, B).
//   lstm_hidden_backward_split     the same product shaped for GPUs (the `split` kernel variant),
//                                  from the forward's gate-interleaved W4 [Hout, H] of float4:
//                                  a work-group of LSTM_BJ lanes (splitting the sum over units j,
//                                  coalesced) × LSTM_BO outputs k for LSTM_BB batch rows, lanes
//                                  summed in local memory. With fuse = 1 (no projection: Hout = H)
//                                  the item that finishes dh[b, k] also runs the cell backward of
//                                  unit k at step tn, the next step processed: one launch per
//                                  step. Work-group (LSTM_BJ, LSTM_BO, 1); global
//                                  (LSTM_BJ, roundup(Hout, LSTM_BO), ceil(B / LSTM_BB)).
// The saved gate activations are exactly 0, 1 or ±1 when saturated (lstm_forward.cl), so
// the derivatives i·(1−i), f·(1−f), o·(1−o), 1−g² and 1−tanh²(c) are exactly 0 there.

static inline int active(const int t, __global const int* lengths, const int b) { return t < lengths[b]; }

#if !defined(LSTM_BJ) || !defined(LSTM_BO) || !defined(LSTM_BB)
#error "LSTM_BJ, LSTM_BO and LSTM_BB come from the host (OpenCLTiles.buildOptions)"
#endif
#if LSTM_BB > LSTM_BJ
#error "LSTM_BB must not exceed LSTM_BJ (one lane finishes each row)"
#endif

// tanh that is exactly ±1 once saturated (as lstm_forward.cl's tanh_f; each file is its own
// program): 1 − tc² is then exactly 0, where a vendor's tanh may stop at 0.99999994 and leave
// 1.19e-7 that large weights blow up to inf and then NaN. NaN stays NaN; no overflow.
static inline float tanh_f(float x) {
    const float e = expm1(-2.0f * fabs(x));
    return copysign(-e / (2.0f + e), x);
}

__kernel void lstm_projection_backward_step(const int B, const int H, const int Hout, const int t,
                                            __global const float* Wr,      // [Hout, H]
                                            __global const float* dh,      // [B, Hout]
                                            __global const float* dy, const int dy_offset, const int dy_stride, const int has_dy,
                                            __global float* dhtot,         // [T, B, Hout]
                                            __global float* dr,            // [B, H]
                                            __global const int* lengths)
{
    const int j = get_global_id(0), b = get_global_id(1);
    if (j >= H || b >= B) return;
    const int row = t * B + b;
    if (!active(t, lengths, b)) {
        dr[b * H + j] = 0.0f;
        if (j < Hout) dhtot[row * Hout + j] = 0.0f;
        return;
    }
    float acc = 0.0f;
    for (int p = 0; p < Hout; p++) {
        const float d = dh[b * Hout + p] + (has_dy ? dy[dy_offset + row * dy_stride + p] : 0.0f);
        acc = fma(d, Wr[p * H + j], acc);
    }
    dr[b * H + j] = acc;
    if (j < Hout) dhtot[row * Hout + j] = dh[b * Hout + j] + (has_dy ? dy[dy_offset + row * dy_stride + j] : 0.0f);
}

// The cell backward of unit j in row `row` (sequence b) of an active step, given
// d = dL/d(o·tanh c): dG of its four gates, and dc[b, j] ← dL/dc(prev).
static inline void cell_backward_unit(const int H, const int row, const int b, const int j, const float d,
                                      __global const float* gates, __global const float* cell,
                                      __global const float* prev_cell, __global float* dc, __global float* dG)
{
    __global const float* gr = gates + row * 4 * H;
    __global float* dg = dG + row * 4 * H;
    const float i = gr[j], f = gr[H + j], g = gr[2 * H + j], o = gr[3 * H + j];
    const float tc = tanh_f(cell[row * H + j]);
    const float dct = dc[b * H + j] + d * o * (1.0f - tc * tc);
    dg[j] = dct * g * i * (1.0f - i);
    dg[H + j] = dct * prev_cell[row * H + j] * f * (1.0f - f);
    dg[2 * H + j] = dct * i * (1.0f - g * g);
    dg[3 * H + j] = d * tc * o * (1.0f - o);
    dc[b * H + j] = dct * f;
}

__kernel void lstm_cell_backward_step(const int B, const int H, const int t,
                                      __global const float* gates, __global const float* cell,
                                      __global const float* prev_cell,
                                      const int project, __global const float* dr,     // [B, H] when projecting
                                      __global const float* dh,                        // [B, H] otherwise
                                      __global const float* dy, const int dy_offset, const int dy_stride, const int has_dy,
                                      __global float* dc, __global float* dG, __global const int* lengths)
{
    const int j = get_global_id(0), b = get_global_id(1);
    if (j >= H || b >= B) return;
    const int row = t * B + b;
    const int G = 4 * H;
    __global float* dg = dG + row * G;
    if (!active(t, lengths, b)) {
        dg[j] = 0.0f; dg[H + j] = 0.0f; dg[2 * H + j] = 0.0f; dg[3 * H + j] = 0.0f;
        return;
    }
    const float d = project ? dr[b * H + j]
                            : dh[b * H + j] + (has_dy ? dy[dy_offset + row * dy_stride + j] : 0.0f);
    cell_backward_unit(H, row, b, j, d, gates, cell, prev_cell, dc, dG);
}

__kernel void lstm_hidden_backward_step(const int B, const int H, const int Hout, const int t,
                                        __global const float* W,       // W_hh [4H, Hout]
                                        __global const float* dG,      // [T, B, 4H]
                                        __global float* dh,            // [B, Hout]
                                        __global const int* lengths)
{
    const int k = get_global_id(0), b = get_global_id(1);
    if (k >= Hout || b >= B) return;
    if (!active(t, lengths, b)) return;
    __global const float* dg = dG + (t * B + b) * 4 * H;
    float acc = 0.0f;
    for (int m = 0; m < 4 * H; m++) acc = fma(dg[m], W[m * Hout + k], acc);
    dh[b * Hout + k] = acc;
}

__kernel __attribute__((reqd_work_group_size(LSTM_BJ, LSTM_BO, 1)))
void lstm_hidden_backward_split(const int B, const int H, const int Hout, const int t,
                                __global const float4* W4,     // [Hout, H] of (i, f, g, o) rows of W_hh
                                __global float* dG,            // [T, B, 4H]
                                __global float* dh,            // [B, Hout]
                                __global const int* lengths,
                                const int fuse, const int tn,  // fuse: then the cell backward of step tn
                                __global const float* gates, __global const float* cell,
                                __global const float* prev_cell,
                                __global const float* dy, const int dy_offset, const int dy_stride, const int has_dy,
                                __global float* dc)
{
    const int lane = get_local_id(0), lo = get_local_id(1);
    const int k = get_group_id(1) * LSTM_BO + lo;
    const int b0 = get_group_id(2) * LSTM_BB;
    const int rows = min(LSTM_BB, B - b0);
    const int G = 4 * H;
    __local float partial[LSTM_BO][LSTM_BB][LSTM_BJ];
    float acc[LSTM_BB];
    for (int bb = 0; bb < LSTM_BB; bb++) acc[bb] = 0.0f;
    if (k < Hout) {
        for (int j = lane; j < H; j += LSTM_BJ) {
            const float4 w = W4[k * H + j];
            for (int bb = 0; bb < LSTM_BB; bb++) {
                if (bb < rows) {
                    __global const float* dg = dG + (t * B + b0 + bb) * G + j;
                    acc[bb] += dot((float4)(dg[0], dg[H], dg[2 * H], dg[3 * H]), w);
                }
            }
        }
    }
    for (int bb = 0; bb < LSTM_BB; bb++) partial[lo][bb][lane] = acc[bb];
    barrier(CLK_LOCAL_MEM_FENCE);
    // Lane bb finishes row bb of output k.
    if (k >= Hout || lane >= rows) return;
    const int b = b0 + lane;
    float d;
    if (active(t, lengths, b)) {
        float sum = 0.0f;
        for (int l = 0; l < LSTM_BJ; l++) sum += partial[lo][lane][l];
        dh[b * Hout + k] = sum;
        d = sum;
    } else {
        d = dh[b * Hout + k];                                // padded: dh carried unchanged
    }
    if (!fuse) return;
    const int row = tn * B + b;
    __global float* dg = dG + row * G;
    if (!active(tn, lengths, b)) {
        dg[k] = 0.0f; dg[H + k] = 0.0f; dg[2 * H + k] = 0.0f; dg[3 * H + k] = 0.0f;
        return;
    }
    d += has_dy ? dy[dy_offset + row * dy_stride + k] : 0.0f;
    cell_backward_unit(H, row, b, k, d, gates, cell, prev_cell, dc, dG);
}
