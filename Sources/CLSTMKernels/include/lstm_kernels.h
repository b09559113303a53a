// Hot loops of the CPU path, in C so each has AVX-512 and AVX2+FMA bodies beside a portable
// one, chosen at run time from CPUID (never at build time); no special compiler flags needed.
// Gate layout: blocks of 8 hidden units, each block [i(8) f(8) g(8) o(8)] (GateLayout).
//
// Variants (lstm_kernel_variant), one in force for the whole process:
//   portable  plain C (any CPU, Arm included)
//   avx2      AVX2 + FMA, 8-wide; GEMM micro-kernel 6 rows x 16 columns
//   avx2-vnni avx2's float bodies; the reduced-precision ones also use AVX-VNNI and F16C
//   avx512    AVX-512 F/BW/DQ/VL + FMA, 16-wide (cell math on [i|f] and [g|o] halves of a
//             block, two blocks per tanh(c) pass); GEMM micro-kernel up to 12 rows x 32 columns
//             (two 16-column panels of the shared packing)
//   avx512-vnni avx512's float bodies; the reduced-precision ones also use AVX-512 VNNI, F16C
//             and, where the CPU has it, AVX512-BF16 (lstm_reduced.h lists which body runs)
//   avx512-amx avx512-vnni's bodies, with int8 products on AMX tiles (tdpbusd) where the CPU has
//             AMX-INT8 and Linux grants the process the tile state
// The Swift side (CPUKernelVariant) applies LSTM_GPU_CPU_ISA before the first kernel runs.
#ifndef LSTM_KERNELS_H
#define LSTM_KERNELS_H
#include <stddef.h>

/// Hidden units per gate block (GateLayout.block in Swift is this): a block's gates are
/// [i f g o], each LSTM_GATE_BLOCK wide. The SIMD bodies are written for 8 (one ymm, half a zmm).
#define LSTM_GATE_BLOCK 8
/// Rows per panel of the packed recurrent weights (lstm_pack_rows, lstm_gemm_packed).
#define LSTM_PANEL_ROWS 16

/// A spin-wait hint to the processor (x86 `pause`), for barrier loops.
static inline void lstm_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/// The kernel bodies, in the order of preference on a CPU that has them all.
typedef enum lstm_kernel_variant {
    LSTM_VARIANT_PORTABLE = 0,
    LSTM_VARIANT_AVX2 = 1,
    LSTM_VARIANT_AVX2_VNNI = 2,
    LSTM_VARIANT_AVX512 = 3,
    LSTM_VARIANT_AVX512_VNNI = 4,
    LSTM_VARIANT_AVX512_AMX = 5,
    LSTM_VARIANT_COUNT = 6
} lstm_kernel_variant;

/// The variants this processor (and OS) can run, from CPUID: bit v set for variant v.
/// Portable is always there.
int lstm_kernels_supported(void);

/// The best variant this processor can run.
int lstm_kernels_best_variant(void);

/// The variant every kernel runs from now on (the best one until set).
int lstm_kernels_variant(void);

/// The float32 bodies the variant in force runs: portable, avx2 (for avx2 and avx2-vnni) or
/// avx512 (for avx512 and avx512-vnni).
int lstm_kernels_float_variant(void);

/// Makes every kernel run `variant` from the next call on; a negative value goes back to the
/// best one. Returns 0, or -1 (and changes nothing) for a variant this processor lacks.
/// Not for use while kernels are running.
int lstm_kernels_set_variant(int variant);

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

/// x[i] = tanh(x[i]) when use_tanh, else sigmoid(x[i]), for i < n, in the variant's SIMD
/// (saturation exact, NaN propagates, as the cell kernels).
void lstm_activate(float *x, int n, int use_tanh);

/// Floats needed to pack an [n, k] matrix into panels of 16 rows.
size_t lstm_packed_size(int n, int k);

/// Packs w [n, k] (row-major, leading dimension ldw) as panels of 16 rows, each stored
/// k-major: packed[p·16·k + kk·16 + r] = w[(16p + r)·ldw + kk], zero beyond row n.
void lstm_pack_rows(const float *w, int n, int k, int ldw, float *packed);

/// Packs the transpose of w [k, n] (row-major, leading dimension ldw) as lstm_pack_rows packs
/// an [n, k] matrix: packed[p·16·k + kk·16 + r] = w[kk·ldw + 16p + r], zero beyond column n.
/// Copies 16 contiguous floats at a time (no strided transpose).
void lstm_pack_columns(const float *w, int k, int n, int ldw, float *packed);

/// C[m, n] += A[m, k] · Wᵀ with W [n, k] packed by lstm_pack_rows; `packed` may point at any
/// panel boundary (16-row multiple). Register-blocked micro-kernels (see the variants above).
void lstm_gemm_packed(int m, int n, int k, const float *a, int lda, const float *packed, float *c, int ldc);

#endif
