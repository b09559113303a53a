// lstm_options.cl: the general LSTM cell (peepholes, CIFG, layer normalisation, activation /
// cell / projection clips; LSTMCellOptions.swift has the formulas), one time step per launch,
// forward and backward. The recurrent and projection products around it are GEMMs
// (gemm.cl); this file is the per-step cell math between them.
//
// Layout: a row of gates holds G blocks of H in weight-row order, i, f, g, o (G = 4) or, with
// CIFG, f, g, o (G = 3; i = 1 − f is not stored). Shapes: B batch, H hidden, Hout = P or H,
// GW = G·H. gates/pre/xhat [T·B, GW], rstd [T·B, G], saved cell and states [T·B, ·]. Without
// OPT_SAVE, pre/xhat/rstd are per-step scratch indexed by b instead of t·B + b.
// Padded steps (t >= lengths[b]) carry the state, write output 0 and gradients dG = dZ = 0.
//
// Kernels:
//   lstm_options_forward_cell    one work-group of OPTIONS_GROUP items per sequence b (global
//                                (OPTIONS_GROUP, B)), items striding over the H units; layer norm
//                                sums each gate over its H units in local memory. In: the sums
//                                s = x·W_ihᵀ + h·W_hhᵀ (+ biases without layer norm) in gates[t];
//                                out: activations (in place), c, m = o·tanh(c) (the output row when
//                                not projecting), and the saved values.
//   lstm_options_project_finish  after the projection GEMM: the projection clip, the output row,
//                                padded rows carried. global (Hout, B), any work-group size.
//   lstm_options_hidden_gradient dL/dh(t) = carried dh + dy(t) through the projection clip slope
//                                (0 when padded), into dst (projected gradients, or dm).
//                                global (Hout, B), any work-group size.
//   lstm_options_backward_cell   the cell's backward, work-groups as the forward's: dm, carried
//                                dc, saved values → dG = dL/ds, dZ = dL/dz (layer norm only),
//                                dc ← dL/dc(prev).
//   lstm_options_carry_hidden    dh[b] = src[b] for running sequences. global (Hout, B).
//   lstm_options_unit_gradients  per unit j: the peepholes' Σ ds ⊙ c and the layer-norm
//                                weights' Σ dz ⊙ x̂ over the valid rows. global (H), any group.
// Activations: sigmoid_f / tanh_f as in lstm_forward.cl (exact saturation, NaN propagates).
// Clamps compare explicitly, so NaN passes through as in torch.clamp.

#define OPTIONS_GROUP 64
// Functions holding barriers are forced inline: PoCL compiles a barrier in a function it has
// not inlined into wrong results (seen with PoCL 3.1: layer-norm sums off by up to 0.3).
#define BARRIER_FN static inline __attribute__((always_inline))
#define OPT_CIFG 1
#define OPT_LAYER_NORM 2
#define OPT_PEEPHOLES 4
#define OPT_SAVE 8
#define OPT_PROJECT 16
#define OPT_CELL_CLIP 32

static inline float sigmoid_f(float x) {
    const float e = exp(-fabs(x));
    const float s = 1.0f / (1.0f + e);
    return x >= 0.0f ? s : e * s;
}
static inline float tanh_f(float x) {
    const float e = expm1(-2.0f * fabs(x));
    return copysign(-e / (2.0f + e), x);
}
static inline float clamp_f(const float x, const float limit) {
    if (limit <= 0.0f) return x;
    return x < -limit ? -limit : (x > limit ? limit : x);
}
static inline float clamp_slope(const float x, const float limit) {
    return limit > 0.0f && fabs(x) > limit ? 0.0f : 1.0f;
}
/// The block of gate q (0 i, 1 f, 2 g, 3 o) in a row of gates.
static inline int slot(const int flags, const int q) { return (flags & OPT_CIFG) ? q - 1 : q; }

/// Σ over the work-group of each item's v; every item reads the partials in the same order,
/// so all get the same total. (No barrier inside a loop: PoCL's work-group compiler takes
/// minutes over a tree reduction unrolled into every call site.)
BARRIER_FN float group_sum(float v, __local float* scratch) {
    const int l = get_local_id(0);
    scratch[l] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    float total = 0.0f;
    for (int i = 0; i < OPTIONS_GROUP; i++) total += scratch[i];
    barrier(CLK_LOCAL_MEM_FENCE);
    return total;
}

/// Gate q of one row: z (normalised and biased with layer norm) into pre, then clamped and
/// activated in place. s, z, xhat point at the row's start; rstd at the row's G entries.
/// Every item of the group calls it with the same arguments, and its barriers run whatever
/// `active` (the row is running and gate q has weights) and the flags say: PoCL compiles a
/// barrier under a condition by replicating the code after it, which blows up over four gates.
BARRIER_FN void finish_gate(const int q, const int active, const int H, const int flags, const float eps,
                        const float clip, __global float* s, __global float* z, __global float* xhat,
                        __global float* rstd, __global const float* gamma, __global const float* bias,
                        const int use_tanh, __local float* scratch) {
    const int l = get_local_id(0), k = slot(flags, q), norm = flags & OPT_LAYER_NORM;
    float part = 0.0f;
    if (active && norm) for (int j = l; j < H; j += OPTIONS_GROUP) part += s[k * H + j];
    const float mean = group_sum(part, scratch) / H;
    part = 0.0f;
    if (active && norm) {
        for (int j = l; j < H; j += OPTIONS_GROUP) {
            const float d = s[k * H + j] - mean;
            part += d * d;
        }
    }
    const float r = 1.0f / sqrt(group_sum(part, scratch) / H + eps);
    if (active) {
        if (norm && l == 0) rstd[k] = r;
        for (int j = l; j < H; j += OPTIONS_GROUP) {
            float v = s[k * H + j];
            if (norm) {
                const float x = (v - mean) * r;
                xhat[k * H + j] = x;
                v = gamma[q * H + j] * x + bias[k * H + j];
            }
            z[k * H + j] = v;
            const float a = clamp_f(v, clip);
            s[k * H + j] = use_tanh ? tanh_f(a) : sigmoid_f(a);
        }
    }
}

__kernel __attribute__((reqd_work_group_size(OPTIONS_GROUP, 1, 1)))
void lstm_options_forward_cell(const int t, const int B, const int H, const int Hout, const int flags,
                               const float eps, const float aclip, const float cclip,
                               __global float* gates, __global float* pre, __global float* xhat,
                               __global float* rstd, __global float* ucell,
                               __global const float* peep,    // [3H]: p_i, p_f, p_o
                               __global const float* gamma,   // [4H]: γ_i, γ_f, γ_g, γ_o
                               __global const float* bias,    // [GW]: b_ih + b_hh (layer norm only)
                               __global const float* h_prev, __global const float* c_prev,
                               __global float* m_next, __global float* c_next,
                               __global float* out, const int out_offset, const int out_stride,
                               __global const int* lengths,
                               __global float* saved_prev_h, __global float* saved_prev_c,
                               __global float* saved_cell, __global float* saved_r) {
    __local float scratch[OPTIONS_GROUP];
    const int b = get_group_id(1), l = get_local_id(0);
    const int G = (flags & OPT_CIFG) ? 3 : 4, GW = G * H;
    const int row = t * B + b, own = (flags & OPT_SAVE) ? row : b;  // rows of pre/xhat/rstd/ucell
    const int project = flags & OPT_PROJECT;
    if (flags & OPT_SAVE) {
        for (int j = l; j < H; j += OPTIONS_GROUP) saved_prev_c[row * H + j] = c_prev[b * H + j];
        for (int p = l; p < Hout; p += OPTIONS_GROUP) saved_prev_h[row * Hout + p] = h_prev[b * Hout + p];
    }
    const int valid = t < lengths[b];
    if (!valid) {  // padding: the state passes, the output is 0 (the barriers below still run)
        for (int j = l; j < H; j += OPTIONS_GROUP) {
            c_next[b * H + j] = c_prev[b * H + j];
            if (project) {
                m_next[b * H + j] = 0.0f;
                if (flags & OPT_SAVE) saved_r[row * H + j] = 0.0f;
            }
        }
        if (!project) {
            for (int p = l; p < Hout; p += OPTIONS_GROUP) {
                m_next[b * Hout + p] = h_prev[b * Hout + p];
                out[out_offset + row * out_stride + p] = 0.0f;
            }
        }
    }
    __global float* s = gates + row * GW;
    __global float* z = pre + own * GW;
    __global float* xh = xhat + own * GW;
    __global float* rs = rstd + own * G;
    const int ki = slot(flags, 0), kf = slot(flags, 1), kg = slot(flags, 2), ko = slot(flags, 3);
    if (valid && (flags & OPT_PEEPHOLES)) {
        for (int j = l; j < H; j += OPTIONS_GROUP) {
            const float cp = c_prev[b * H + j];
            if (!(flags & OPT_CIFG)) s[ki * H + j] += peep[j] * cp;
            s[kf * H + j] += peep[H + j] * cp;
        }
    }
    finish_gate(1, valid, H, flags, eps, aclip, s, z, xh, rs, gamma, bias, 0, scratch);
    finish_gate(2, valid, H, flags, eps, aclip, s, z, xh, rs, gamma, bias, 1, scratch);
    finish_gate(0, valid && !(flags & OPT_CIFG), H, flags, eps, aclip, s, z, xh, rs, gamma, bias, 0, scratch);
    if (valid) {
        for (int j = l; j < H; j += OPTIONS_GROUP) {
            const float f = s[kf * H + j];
            const float i = (flags & OPT_CIFG) ? 1.0f - f : s[ki * H + j];
            const float c = f * c_prev[b * H + j] + i * s[kg * H + j];
            if (flags & OPT_CELL_CLIP) ucell[own * H + j] = c;
            const float cc = clamp_f(c, cclip);
            c_next[b * H + j] = cc;
            if (flags & OPT_SAVE) saved_cell[row * H + j] = cc;
            if (flags & OPT_PEEPHOLES) s[ko * H + j] += peep[2 * H + j] * cc;
        }
    }
    finish_gate(3, valid, H, flags, eps, aclip, s, z, xh, rs, gamma, bias, 0, scratch);
    if (!valid) return;
    for (int j = l; j < H; j += OPTIONS_GROUP) {
        const float m = s[ko * H + j] * tanh_f(c_next[b * H + j]);
        m_next[b * (project ? H : Hout) + j] = m;
        if (project) {
            if (flags & OPT_SAVE) saved_r[row * H + j] = m;
        } else {
            out[out_offset + row * out_stride + j] = m;
        }
    }
}

__kernel void lstm_options_project_finish(const int t, const int B, const int Hout, const int save, const float pclip,
                                          __global float* h_next, __global const float* h_prev,
                                          __global float* uhidden, __global float* out, const int out_offset,
                                          const int out_stride, __global const int* lengths) {
    const int p = get_global_id(0), b = get_global_id(1);
    if (p >= Hout || b >= B) return;
    const int row = t * B + b;
    if (t < lengths[b]) {
        const float v = h_next[b * Hout + p];
        if (save && pclip > 0.0f) uhidden[row * Hout + p] = v;
        const float h = clamp_f(v, pclip);
        h_next[b * Hout + p] = h;
        out[out_offset + row * out_stride + p] = h;
    } else {
        h_next[b * Hout + p] = h_prev[b * Hout + p];
        out[out_offset + row * out_stride + p] = 0.0f;
    }
}

__kernel void lstm_options_hidden_gradient(const int t, const int B, const int Hout, const float pclip,
                                           __global const float* dh, const int has_dy, __global const float* dy,
                                           const int dy_offset, const int dy_stride, __global const float* uhidden,
                                           __global float* dst, const int dst_offset, __global const int* lengths) {
    const int p = get_global_id(0), b = get_global_id(1);
    if (p >= Hout || b >= B) return;
    const int row = t * B + b;
    float v = 0.0f;
    if (t < lengths[b]) {
        v = dh[b * Hout + p] + (has_dy ? dy[dy_offset + row * dy_stride + p] : 0.0f);
        if (pclip > 0.0f) v *= clamp_slope(uhidden[row * Hout + p], pclip);
    }
    dst[dst_offset + b * Hout + p] = v;
}

/// ds of gate q from dz (dz and ds point at the row's start): the layer norm's backward, or a
/// copy. Barriers unconditional, as in finish_gate.
BARRIER_FN void gate_sum_gradient(const int q, const int active, const int H, const int flags,
                              __global const float* xhat, __global const float* rstd, __global const float* gamma,
                              __global const float* dz, __global float* ds, __local float* scratch) {
    const int l = get_local_id(0), k = slot(flags, q), norm = flags & OPT_LAYER_NORM;
    float part_d = 0.0f, part_dx = 0.0f;
    if (active && norm) {
        for (int j = l; j < H; j += OPTIONS_GROUP) {
            const float d = dz[k * H + j] * gamma[q * H + j];
            part_d += d;
            part_dx += d * xhat[k * H + j];
        }
    }
    const float mean_d = group_sum(part_d, scratch) / H;
    const float mean_dx = group_sum(part_dx, scratch) / H;
    if (active && !norm && ds != dz) {
        for (int j = l; j < H; j += OPTIONS_GROUP) ds[k * H + j] = dz[k * H + j];
    }
    if (active && norm) {
        const float r = rstd[k];
        for (int j = l; j < H; j += OPTIONS_GROUP) {
            ds[k * H + j] = r * (dz[k * H + j] * gamma[q * H + j] - mean_d - xhat[k * H + j] * mean_dx);
        }
    }
}

__kernel __attribute__((reqd_work_group_size(OPTIONS_GROUP, 1, 1)))
void lstm_options_backward_cell(const int t, const int B, const int H, const int flags, const float aclip,
                                const float cclip, __global const float* gates, __global const float* pre,
                                __global const float* xhat, __global const float* rstd,
                                __global const float* ucell, __global const float* peep,
                                __global const float* gamma, __global const float* saved_prev_c,
                                __global const float* saved_cell, __global const float* dm,
                                __global float* dc, __global float* dG, __global float* dZ,
                                __global const int* lengths) {
    __local float scratch[OPTIONS_GROUP];
    const int b = get_group_id(1), l = get_local_id(0);
    const int G = (flags & OPT_CIFG) ? 3 : 4, GW = G * H;
    const int row = t * B + b, cifg = flags & OPT_CIFG;
    __global float* ds = dG + row * GW;
    __global float* dz = (flags & OPT_LAYER_NORM) ? dZ + row * GW : ds;
    const int valid = t < lengths[b];
    if (!valid) {  // padding: no gradient here; dc passes (the barriers below still run)
        for (int c = l; c < GW; c += OPTIONS_GROUP) {
            ds[c] = 0.0f;
            if (flags & OPT_LAYER_NORM) dz[c] = 0.0f;
        }
    }
    __global const float* a = gates + row * GW;
    __global const float* z = pre + row * GW;
    __global const float* xh = xhat + row * GW;
    __global const float* rs = rstd + row * G;
    const int ki = slot(flags, 0), kf = slot(flags, 1), kg = slot(flags, 2), ko = slot(flags, 3);
    if (valid) {
        for (int j = l; j < H; j += OPTIONS_GROUP) {
            const float o = a[ko * H + j], tc = tanh_f(saved_cell[row * H + j]);
            dz[ko * H + j] = dm[b * H + j] * tc * o * (1.0f - o) * clamp_slope(z[ko * H + j], aclip);
        }
    }
    gate_sum_gradient(3, valid, H, flags, xh, rs, gamma, dz, ds, scratch);
    if (valid) {
        for (int j = l; j < H; j += OPTIONS_GROUP) {
            const float o = a[ko * H + j], tc = tanh_f(saved_cell[row * H + j]);
            float d = dc[b * H + j] + dm[b * H + j] * o * (1.0f - tc * tc);
            if (flags & OPT_PEEPHOLES) d += ds[ko * H + j] * peep[2 * H + j];
            if (flags & OPT_CELL_CLIP) d *= clamp_slope(ucell[row * H + j], cclip);
            const float f = a[kf * H + j], g = a[kg * H + j];
            const float i = cifg ? 1.0f - f : a[ki * H + j];
            const float di = d * g;
            float df = d * saved_prev_c[row * H + j];
            if (cifg) df -= di;
            else dz[ki * H + j] = di * i * (1.0f - i) * clamp_slope(z[ki * H + j], aclip);
            dz[kf * H + j] = df * f * (1.0f - f) * clamp_slope(z[kf * H + j], aclip);
            dz[kg * H + j] = d * i * (1.0f - g * g) * clamp_slope(z[kg * H + j], aclip);
            dc[b * H + j] = d;  // dc(t), until the carried value replaces it below
        }
    }
    gate_sum_gradient(1, valid, H, flags, xh, rs, gamma, dz, ds, scratch);
    gate_sum_gradient(2, valid, H, flags, xh, rs, gamma, dz, ds, scratch);
    gate_sum_gradient(0, valid && !cifg, H, flags, xh, rs, gamma, dz, ds, scratch);
    if (!valid) return;
    for (int j = l; j < H; j += OPTIONS_GROUP) {
        float carried = dc[b * H + j] * a[kf * H + j];
        if (flags & OPT_PEEPHOLES) {
            if (!cifg) carried += ds[ki * H + j] * peep[j];
            carried += ds[kf * H + j] * peep[H + j];
        }
        dc[b * H + j] = carried;
    }
}

__kernel void lstm_options_carry_hidden(const int t, const int B, const int Hout, __global const float* src,
                                        __global float* dh, __global const int* lengths) {
    const int p = get_global_id(0), b = get_global_id(1);
    if (p >= Hout || b >= B || t >= lengths[b]) return;
    dh[b * Hout + p] = src[b * Hout + p];
}

__kernel void lstm_options_unit_gradients(const int T, const int B, const int H, const int flags,
                                          __global const float* dG, __global const float* dZ,
                                          __global const float* saved_prev_c, __global const float* saved_cell,
                                          __global const float* xhat, __global const int* lengths,
                                          __global float* dpeep,    // [3H]: i, f, o
                                          __global float* dgamma) { // [4H]: i, f, g, o
    const int j = get_global_id(0);
    if (j >= H) return;
    const int G = (flags & OPT_CIFG) ? 3 : 4, GW = G * H, cifg = flags & OPT_CIFG;
    float pi = 0.0f, pf = 0.0f, po = 0.0f, gq[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int t = 0; t < T; t++) {
        for (int b = 0; b < B; b++) {
            if (t >= lengths[b]) continue;
            const int row = t * B + b;
            if (flags & OPT_PEEPHOLES) {
                const float cp = saved_prev_c[row * H + j];
                if (!cifg) pi += dG[row * GW + slot(flags, 0) * H + j] * cp;
                pf += dG[row * GW + slot(flags, 1) * H + j] * cp;
                po += dG[row * GW + slot(flags, 3) * H + j] * saved_cell[row * H + j];
            }
            if (flags & OPT_LAYER_NORM) {
                for (int q = cifg ? 1 : 0; q < 4; q++) {
                    const int c = row * GW + slot(flags, q) * H + j;
                    gq[q] += dZ[c] * xhat[c];
                }
            }
        }
    }
    if (flags & OPT_PEEPHOLES) { dpeep[j] = pi; dpeep[H + j] = pf; dpeep[2 * H + j] = po; }
    if (flags & OPT_LAYER_NORM) { for (int q = 0; q < 4; q++) dgamma[q * H + j] = gq[q]; }
}
