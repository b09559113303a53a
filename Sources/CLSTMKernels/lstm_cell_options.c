// The general cell of the CPU path's options path (see lstm_cell_options.h for the layout and
// LSTMCellOptions.swift for the formulas). Clamps compare explicitly so that NaN passes through
// unchanged, as torch.clamp lets it.
#include "lstm_cell_options.h"
#include "lstm_kernels.h"

#include <math.h>
#include <stddef.h>

enum { GATE_I = 0, GATE_F = 1, GATE_G = 2, GATE_O = 3 };

/// The block of gate q in a row of gates: q, or q − 1 with CIFG (no input-gate block).
static int slot(const lstm_cell_options *o, int q) { return o->cifg ? q - 1 : q; }

static float clamp(float x, float limit) {
    if (limit <= 0) return x;
    return x < -limit ? -limit : (x > limit ? limit : x);
}

/// The clamp's derivative: 0 outside [−limit, limit], 1 inside (bounds included).
static float clamp_slope(float x, float limit) { return limit > 0 && fabsf(x) > limit ? 0.0f : 1.0f; }

/// Gate q from its sums s [H] (in place): z (normalised, biased) into pre, clamped, activated.
static void finish_gate(const lstm_cell_options *o, int q, float *s, float *pre, float *normalized,
                        float *inverse_deviation, int use_tanh) {
    const int h = o->hidden, k = slot(o, q);
    float *z = pre + k * h;
    if (o->layer_norm) {
        double mean = 0, variance = 0;
        for (int j = 0; j < h; j++) mean += s[j];
        mean /= h;
        for (int j = 0; j < h; j++) variance += ((double)s[j] - mean) * ((double)s[j] - mean);
        variance /= h;
        const float r = (float)(1.0 / sqrt(variance + (double)o->epsilon));
        const float *gamma = o->norm_weight[q], *bias = o->bias ? o->bias + k * h : NULL;
        float *xhat = normalized + k * h;
        inverse_deviation[k] = r;
        for (int j = 0; j < h; j++) {
            xhat[j] = (float)((s[j] - mean) * r);
            z[j] = gamma[j] * xhat[j] + (bias ? bias[j] : 0.0f);
        }
    } else {
        for (int j = 0; j < h; j++) z[j] = s[j];
    }
    for (int j = 0; j < h; j++) s[j] = clamp(z[j], o->activation_clip);
    lstm_activate(s, h, use_tanh);
}

void lstm_cell_options_forward(const lstm_cell_options *o, float *gates, float *pre, float *normalized,
                               float *inverse_deviation, const float *prev_cell, float *cell, float *unclipped_cell,
                               float *hidden) {
    const int h = o->hidden;
    float *si = o->cifg ? NULL : gates + slot(o, GATE_I) * h;
    float *sf = gates + slot(o, GATE_F) * h, *sg = gates + slot(o, GATE_G) * h, *so = gates + slot(o, GATE_O) * h;
    for (int j = 0; j < h; j++) {
        if (si && o->peephole_i) si[j] += o->peephole_i[j] * prev_cell[j];
        if (o->peephole_f) sf[j] += o->peephole_f[j] * prev_cell[j];
    }
    finish_gate(o, GATE_F, sf, pre, normalized, inverse_deviation, 0);
    finish_gate(o, GATE_G, sg, pre, normalized, inverse_deviation, 1);
    if (si) finish_gate(o, GATE_I, si, pre, normalized, inverse_deviation, 0);
    for (int j = 0; j < h; j++) {
        const float i = si ? si[j] : 1.0f - sf[j];
        const float c = sf[j] * prev_cell[j] + i * sg[j];
        if (unclipped_cell) unclipped_cell[j] = c;
        cell[j] = clamp(c, o->cell_clip);
        if (o->peephole_o) so[j] += o->peephole_o[j] * cell[j];
    }
    finish_gate(o, GATE_O, so, pre, normalized, inverse_deviation, 0);
    for (int j = 0; j < h; j++) hidden[j] = cell[j];
    lstm_activate(hidden, h, 1);
    for (int j = 0; j < h; j++) hidden[j] *= so[j];
}

/// ds of gate q from its dz (in the dz block): the layer norm's backward, or ds = dz.
static void gate_sum_gradient(const lstm_cell_options *o, int q, const float *normalized,
                              const float *inverse_deviation, const float *dz, float *dsum) {
    const int h = o->hidden, k = slot(o, q);
    float *ds = dsum + k * h;
    if (!o->layer_norm) {
        if (ds != dz) for (int j = 0; j < h; j++) ds[j] = dz[j];
        return;
    }
    const float *gamma = o->norm_weight[q], *xhat = normalized + k * h;
    const float r = inverse_deviation[k];
    double mean_d = 0, mean_dx = 0;
    for (int j = 0; j < h; j++) {
        const double d = (double)dz[j] * gamma[j];
        mean_d += d;
        mean_dx += d * xhat[j];
    }
    mean_d /= h;
    mean_dx /= h;
    for (int j = 0; j < h; j++) ds[j] = (float)(r * ((double)dz[j] * gamma[j] - mean_d - xhat[j] * mean_dx));
}

void lstm_cell_options_backward(const lstm_cell_options *o, const float *gates, const float *pre,
                                const float *normalized, const float *inverse_deviation, const float *prev_cell,
                                const float *cell, const float *unclipped_cell, const float *dhidden, float *dcell,
                                float *dsum, float *dpre, float *scratch) {
    const int h = o->hidden;
    float *tanh_cell = scratch;
    for (int j = 0; j < h; j++) tanh_cell[j] = cell[j];
    lstm_activate(tanh_cell, h, 1);
    const int ki = o->cifg ? -1 : slot(o, GATE_I), kf = slot(o, GATE_F), kg = slot(o, GATE_G),
              ko = slot(o, GATE_O);
    const float *af = gates + kf * h, *ag = gates + kg * h, *ao = gates + ko * h;
    float *dz = o->layer_norm ? dpre : dsum;  // where dz goes: its own buffer only with layer norm
    const float clip = o->activation_clip;
    // The output gate first: its sum's gradient feeds dc through the o peephole.
    for (int j = 0; j < h; j++) {
        dz[ko * h + j] = dhidden[j] * tanh_cell[j] * ao[j] * (1 - ao[j]) * clamp_slope(pre[ko * h + j], clip);
    }
    gate_sum_gradient(o, GATE_O, normalized, inverse_deviation, dz + ko * h, dsum);
    for (int j = 0; j < h; j++) {
        const float tc = tanh_cell[j];
        float dc = dcell[j] + dhidden[j] * ao[j] * (1 - tc * tc);
        if (o->peephole_o) dc += dsum[ko * h + j] * o->peephole_o[j];
        if (unclipped_cell) dc *= clamp_slope(unclipped_cell[j], o->cell_clip);
        const float i = ki >= 0 ? gates[ki * h + j] : 1.0f - af[j];
        const float di = dc * ag[j];
        float df = dc * prev_cell[j];
        if (ki < 0) df -= di;  // i = 1 − f
        else dz[ki * h + j] = di * i * (1 - i) * clamp_slope(pre[ki * h + j], clip);
        dz[kf * h + j] = df * af[j] * (1 - af[j]) * clamp_slope(pre[kf * h + j], clip);
        dz[kg * h + j] = dc * i * (1 - ag[j] * ag[j]) * clamp_slope(pre[kg * h + j], clip);
        dcell[j] = dc;  // dc(t), until the carried value replaces it below
    }
    gate_sum_gradient(o, GATE_F, normalized, inverse_deviation, dz + kf * h, dsum);
    gate_sum_gradient(o, GATE_G, normalized, inverse_deviation, dz + kg * h, dsum);
    if (ki >= 0) gate_sum_gradient(o, GATE_I, normalized, inverse_deviation, dz + ki * h, dsum);
    for (int j = 0; j < h; j++) {
        float carried = dcell[j] * af[j];
        if (ki >= 0 && o->peephole_i) carried += dsum[ki * h + j] * o->peephole_i[j];
        if (o->peephole_f) carried += dsum[kf * h + j] * o->peephole_f[j];
        dcell[j] = carried;
    }
}

void lstm_clip(float *x, float *unclipped, int n, float limit) {
    for (int i = 0; i < n; i++) {
        if (unclipped) unclipped[i] = x[i];
        x[i] = clamp(x[i], limit);
    }
}

void lstm_clip_backward(float *dx, const float *unclipped, int n, float limit) {
    for (int i = 0; i < n; i++) dx[i] *= clamp_slope(unclipped[i], limit);
}
