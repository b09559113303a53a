// Hot loops of the CPU path, in C so each has an AVX2+FMA version chosen at run time
// (__builtin_cpu_supports) beside a portable one; no special compiler flags needed.
// Gate layout: blocks of 8 hidden units, each block [i(8) f(8) g(8) o(8)] (GateLayout).
#ifndef LSTM_KERNELS_H
#define LSTM_KERNELS_H
#include <stddef.h>

/// A spin-wait hint to the processor (x86 `pause`), for barrier loops.
static inline void lstm_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/// 1 when the AVX2+FMA versions run on this processor (and are not switched off below).
int lstm_kernels_use_avx2(void);

/// Internal, for tests: a nonzero `on` makes every kernel run its portable body from the
/// next call on; 0 goes back to the CPUID choice. Not for use while kernels are running.
void lstm_kernels_force_portable(int on);

/// Forward cell math over `blocks` full blocks of one sequence: gates [32·blocks]
/// (pre-activations in, activations out), prev_cell/cell/hidden [8·blocks]:
/// c = f·c_prev + i·g, hidden = o·tanh(c).
void lstm_cell_forward_blocks(float *gates, const float *prev_cell, float *cell, float *hidden, int blocks);

/// Backward cell math over `blocks` full blocks: gates (activations), cell c(t), prev_cell,
/// dhidden = dL/d(o·tanh c) in; dcell (dL/dc(t) in, dL/dc(prev) out); dgates (pre-activation
/// gradients) out.
void lstm_cell_backward_blocks(const float *gates, const float *cell, const float *prev_cell, const float *dhidden,
                               float *dcell, float *dgates, int blocks);

/// The same two operations for one partial block of `width` < 8 units (a hidden size that
/// is not a multiple of 8 ends with one): gates [4·width] = [i f g o], each `width` wide.
void lstm_cell_forward_partial(float *gates, const float *prev_cell, float *cell, float *hidden, int width);
void lstm_cell_backward_partial(const float *gates, const float *cell, const float *prev_cell, const float *dhidden,
                                float *dcell, float *dgates, int width);

/// Floats needed to pack an [n, k] matrix into panels of 16 rows.
size_t lstm_packed_size(int n, int k);

/// Packs w [n, k] (row-major, leading dimension ldw) as panels of 16 rows, each stored
/// k-major: packed[p·16·k + kk·16 + r] = w[(16p + r)·ldw + kk], zero beyond row n.
void lstm_pack_rows(const float *w, int n, int k, int ldw, float *packed);

/// C[m, n] += A[m, k] · Wᵀ with W [n, k] packed by lstm_pack_rows; `packed` may point at any
/// panel boundary (16-row multiple). Register-blocked 6×16 micro-kernel.
void lstm_gemm_packed(int m, int n, int k, const float *a, int lda, const float *packed, float *c, int ldc);

#endif
