// The general LSTM cell of the CPU path's options path: peepholes, CIFG, layer normalisation
// and the clips in one pass over one sequence's row per step (LSTMCellOptions in Swift has the
// formulas). Plain C around the SIMD activations of lstm_kernels.h (lstm_activate, in the
// variant in force); the plain cell keeps its fused SIMD kernels.
//
// Layout: a row of gates holds G blocks of H floats in the order of the weight rows, i, f, g, o
// (G = 4) or f, g, o with CIFG (G = 3), as PyTorch stores them (not GateLayout's blocks of 8).
#ifndef LSTM_CELL_OPTIONS_H
#define LSTM_CELL_OPTIONS_H

/// The cell variant and its per-unit weights. Pointers that an option does not use may be NULL.
typedef struct lstm_cell_options {
    int hidden;               ///< H
    int cifg;                 ///< i = 1 − f; G = 3 gate blocks (f, g, o)
    int layer_norm;           ///< normalise each gate's sum over its H units
    float epsilon;            ///< ε of the normalisation
    float activation_clip;    ///< clamp of every pre-activation (0: off)
    float cell_clip;          ///< clamp of the cell (0: off)
    const float *peephole_i;  ///< [H] each, NULL without peepholes (peephole_i NULL with CIFG)
    const float *peephole_f;
    const float *peephole_o;
    const float *norm_weight[4];  ///< γ of gates i, f, g, o [H] (layer norm only; [0] NULL with CIFG)
    const float *bias;            ///< [G·H]: b_ih + b_hh, added after the normalisation (layer norm
                                  ///< only; NULL: no bias). Without layer norm the biases are in the sums.
} lstm_cell_options;

/// One step of one sequence, forward.
/// - gates [G·H]: in, the sums s = W_ih·x + W_hh·h(prev) (+ biases without layer norm); out,
///   the activations (f, g, o with CIFG: i = 1 − f is not stored).
/// - pre [G·H] out: z, the pre-activations before the activation clip.
/// - normalized [G·H], inverse_deviation [G] out (layer norm only, else NULL): x̂, 1/√(var + ε).
/// - prev_cell [H] in; cell [H] out (clipped); unclipped_cell [H] out or NULL.
/// - hidden [H] out: m = o·tanh(c).
void lstm_cell_options_forward(const lstm_cell_options *options, float *gates, float *pre, float *normalized,
                               float *inverse_deviation, const float *prev_cell, float *cell, float *unclipped_cell,
                               float *hidden);

/// One step of one sequence, backward (the forward's saved values in; gradients out).
/// - dhidden [H]: dL/dm. dcell [H]: in dL/dc(t) carried from the next step, out dL/dc(prev).
/// - dsum [G·H] out: dL/ds, the gradient of the weights' products (what the GEMMs take).
/// - dpre [G·H] out: dL/dz after the normalisation (the biases' and γ's gradient; with layer
///   norm only, else NULL: then it equals dsum).
/// - scratch [H]: room for tanh(c), overwritten.
void lstm_cell_options_backward(const lstm_cell_options *options, const float *gates, const float *pre,
                                const float *normalized, const float *inverse_deviation, const float *prev_cell,
                                const float *cell, const float *unclipped_cell, const float *dhidden, float *dcell,
                                float *dsum, float *dpre, float *scratch);

/// x[i] = clamp(x[i], −limit, limit) for i < n, keeping the unclipped values in `unclipped`.
void lstm_clip(float *x, float *unclipped, int n, float limit);

/// dx[i] = 0 where |unclipped[i]| > limit (the clamp's gradient), for i < n.
void lstm_clip_backward(float *dx, const float *unclipped, int n, float limit);

#endif
