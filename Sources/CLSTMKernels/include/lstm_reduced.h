// Reduced-precision products of the CPU path's inference: C[m, n] += A[m, k] · Wᵀ with W [n, k]
// held in int8 (per-row scales), bfloat16 or IEEE half, packed in panels of LSTM_PANEL_ROWS rows
// as the float32 kernels pack theirs. Gates, cell and states stay float32 (lstm_kernels.h).
//
// Kernels:
//   lstm_s8_quantize_rows, lstm_s8_pack, lstm_s8_gemm      int8 (dynamic quantization)
//   lstm_bf16_round_rows, lstm_bf16_pack, lstm_bf16_gemm   bfloat16 operands, float32 sums
//   lstm_f16_pack, lstm_f16_gemm                           half weights, float32 activations and sums
//   lstm_float_to_bf16/_f16, lstm_bf16/_f16_to_float       the conversions (round to nearest even)
//   lstm_reduced_body                                      which body runs, for display
//
// Bodies by lstm_kernels_variant() (LSTM_GPU_CPU_ISA forces one), all giving the same numbers:
//   int8  avx512-amx: AMX tiles, tdpbusd (16 rows × 64 k per tile) · avx512-vnni: vpdpbusd (u8 × s8, zmm) · avx2-vnni: AVX-VNNI vpdpbusd (ymm) ·
//         avx512, avx2: vpmaddwd on sign-extended 16-bit pairs (exact: no vpmaddubsw, whose
//         16-bit sums saturate) · portable: C. Integer sums are exact in every body.
//   bf16  avx512-vnni on a CPU with AVX512-BF16 where it is faster (measured once): vdpbf16ps ·
//         otherwise avx512, avx2: the same two fused multiply-adds per pair (odd element first,
//         as vdpbf16ps) · portable: C with fmaf.
//   fp16  avx512*, avx2* with F16C: vcvtph2ps then FMA · portable: C (software conversion).
//
// Preconditions: m, n ≥ 0; 0 ≤ k ≤ LSTM_S8_MAX_K for int8 (every int32 sum, and 128·Σw, then
// fits: 255·127·k < 2³¹); `packed` may point at any panel boundary of a packed matrix and the
// kernels may read up to 7 panels past the last one they need (the size functions allocate the
// matrix's panels rounded up to even, plus 8 of zeros: use them); lda ≥ the padded k of the
// kind (lstm_s8_padded_k, lstm_bf16_padded_k).
#ifndef LSTM_REDUCED_H
#define LSTM_REDUCED_H
#include <stddef.h>
#include <stdint.h>

/// The widest int8 product (k): its int32 sums cannot overflow up to here.
#define LSTM_S8_MAX_K 65536

/// Whether this process can use AMX (AMX-INT8 on the CPU, the tile state granted by Linux on
/// first ask); 0 elsewhere.
int lstm_amx_usable(void);

/// k rounded up to a multiple of 64 (whole AMX tile rows): the row width of quantized
/// activations and of packed int8 weights.
int lstm_s8_padded_k(int k);

/// Bytes of an [n, k] int8 matrix packed by lstm_s8_pack (its 16-row panels rounded up to even,
/// plus 8; lstm_s8_packed_bytes(n, 1) / 4 is the number of rows that covers, for the per-row
/// compensation and scales).
size_t lstm_s8_packed_bytes(int n, int k);

/// Packs w [n, k] (int8, leading dimension ldw) as panels of 16 rows, 4 consecutive k per row:
/// packed[p][kq][r][0..3] = w[16p + r][4kq ..< 4kq + 4] (zeros past n and k), and
/// compensation[j] = 128 · Σ_k w[j, k] for j < 16·panels (0 past n): what the u8 form of the
/// activations (q + 128) adds to each sum.
void lstm_s8_pack(const int8_t *w, int n, int k, int ldw, int8_t *packed, int32_t *compensation);

/// Dynamic quantization of rows of activations: for each row i of x [m, k] (leading dimension
/// ldx), amax = max |x[i, :]|, scale = amax / 127, q = round-half-even(x · (127 / amax)) in
/// [−127, 127], stored offset by 128 (u8 = q + 128) in q_rows [m, ldq] with 128 (zero) past k up
/// to lstm_s8_padded_k(k). A row of zeros, or one whose amax is below 127 / FLT_MAX (no finite
/// inverse), quantizes to zeros with scale 0; a row holding NaN or ±Inf gets scale NaN, which
/// makes every product of that row NaN.
void lstm_s8_quantize_rows(const float *x, int m, int k, int ldx, uint8_t *q_rows, int ldq, float *scales);

/// C[i, j] += ((float)Σ_k q_a[i, k]·w[j, k] · a_scales[i]) · w_scales[j] (int32 sum, exact; then two
/// float multiplies and an add, in this order, in every body). `a`: rows from
/// lstm_s8_quantize_rows; packed, compensation and w_scales start at the same panel.
void lstm_s8_gemm(int m, int n, int k, const uint8_t *a, int lda, const float *a_scales, const int8_t *packed,
                  const int32_t *compensation, const float *w_scales, float *c, int ldc);

/// k rounded up to even: the row width of bf16 activations and the pairs of packed bf16 weights.
int lstm_bf16_padded_k(int k);

/// uint16 elements of an [n, k] bf16 matrix packed by lstm_bf16_pack.
size_t lstm_bf16_packed_count(int n, int k);

/// Packs w [n, k] (bf16 bits) as panels of 16 rows, pairs of k per row:
/// packed[p][kp][r][0..1] = w[16p + r][2kp], w[16p + r][2kp + 1] (zeros past n and k).
void lstm_bf16_pack(const uint16_t *w, int n, int k, int ldw, uint16_t *packed);

/// Bytes per element of bf16 activations as the body in force reads them: 2 (bf16 bits, the
/// vdpbf16ps body) or 4 (float32 holding bf16 values, the FMA bodies).
int lstm_bf16_activation_bytes(void);

/// out[i, :] = x[i, :] rounded to bf16 (lstm_float_to_bf16), zero-padded to
/// lstm_bf16_padded_k(k), in the body's form (lstm_bf16_activation_bytes); ldo in elements.
void lstm_bf16_round_rows(const float *x, int m, int k, int ldx, void *out, int ldo);

/// C[i, j] += s, where s starts at 0 and for each pair kp in order takes
/// s = fma(a[2kp+1], w[2kp+1], s) then s = fma(a[2kp], w[2kp], s) (products of bf16 are exact
/// in float32, so this is vdpbf16ps's arithmetic). `a`: rows from lstm_bf16_round_rows.
void lstm_bf16_gemm(int m, int n, int k, const void *a, int lda, const uint16_t *packed, float *c, int ldc);

/// Which bf16 body the avx512-vnni variant runs on a CPU with AVX512-BF16: by default (-1) the
/// faster of vdpbf16ps and the FMA emulation, measured once with register-only loops (on the
/// Xeon here vdpbf16ps gives about half the FMAs' rate); 1 forces vdpbf16ps, 0 the emulation.
/// Returns -1 (and changes nothing) for 1 on a CPU without AVX512-BF16. For tests.
int lstm_bf16_set_hardware(int use);

/// out[i, 0..<k] = the float32 values of packed rows row0 + i (i < rows) of a bf16 / half matrix
/// packed by lstm_bf16_pack / lstm_f16_pack (exact): for a product whose rows are many enough
/// that OpenBLAS's sgemm on the widened weights is faster than the kernels.
void lstm_bf16_widen_rows(const uint16_t *packed, int k, int row0, int rows, float *out, int ldo);
void lstm_f16_widen_rows(const uint16_t *packed, int k, int row0, int rows, float *out, int ldo);

/// uint16 elements of an [n, k] half matrix packed by lstm_f16_pack.
size_t lstm_f16_packed_count(int n, int k);

/// Packs w [n, k] (half bits) as panels of 16 rows: packed[p][kk][r] = w[16p + r][kk].
void lstm_f16_pack(const uint16_t *w, int n, int k, int ldw, uint16_t *packed);

/// C[i, j] += s, s = Σ_k fma over k in order of a[i, k] and the float value of w[j, k], from 0.
void lstm_f16_gemm(int m, int n, int k, const float *a, int lda, const uint16_t *packed, float *c, int ldc);

/// bfloat16 of x, rounded to nearest even; NaN stays a (quiet) NaN, ±Inf stays; subnormal
/// inputs become ±0 (vdpbf16ps treats subnormal operands as 0: flushing them here makes every
/// body agree).
uint16_t lstm_float_to_bf16(float x);
float lstm_bf16_to_float(uint16_t b);

/// IEEE half of x, rounded to nearest even (overflow to ±Inf, subnormals kept, NaN quiet).
uint16_t lstm_float_to_f16(float x);
float lstm_f16_to_float(uint16_t h);

/// The body a precision's products run under the variant in force: precision 0 int8, 1 bf16,
/// 2 fp16. A static string ("avx512-vnni", "avx2 (vpmaddwd)", "avx512 (emulated)", ...).
const char *lstm_reduced_body(int precision);

#endif
