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
// The saved gate activations are exactly 0, 1 or ±1 when saturated (lstm_forward.cl), so
// the derivatives i·(1−i), f·(1−f), o·(1−o), 1−g² and 1−tanh²(c) are exactly 0 there.

static inline int active(const int t, __global const int* lengths, const int b) { return t < lengths[b]; }

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
    __global const float* gr = gates + row * G;
    const float i = gr[j], f = gr[H + j], g = gr[2 * H + j], o = gr[3 * H + j];
    const float tc = tanh_f(cell[row * H + j]);
    const float dct = dc[b * H + j] + d * o * (1.0f - tc * tc);
    dg[j] = dct * g * i * (1.0f - i);
    dg[H + j] = dct * prev_cell[row * H + j] * f * (1.0f - f);
    dg[2 * H + j] = dct * i * (1.0f - g * g);
    dg[3 * H + j] = d * tc * o * (1.0f - o);
    dc[b * H + j] = dct * f;
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
