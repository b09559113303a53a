// See include/lstm_kernels.h. Each public function dispatches once per call on the
// process-wide variant (lstm_kernels_variant): an AVX-512 or AVX2+FMA body (compiled with a
// function-level target attribute, so the build itself stays generic) or the portable body.
#include "lstm_kernels.h"
#include "lstm_reduced.h"
#include <math.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define LSTM_X86 1
#endif

// Full unrolling of the micro-kernels' loops over their register tile, so that the accumulator
// arrays live in registers: without it clang may keep them on the stack (a load and a store
// around every FMA; seen with the AVX-512 tile at -O2).
#if defined(__clang__)
#define UNROLL _Pragma("clang loop unroll(full)")
#elif defined(__GNUC__)
#define UNROLL _Pragma("GCC unroll 32")
#else
#define UNROLL
#endif

// -1 until first asked; then the CPUID set (bit v = variant v runs here) and the variant in force.
static int supported_state = -1;
static int variant_state = -1;

int lstm_kernels_supported(void) {
    int mask = __atomic_load_n(&supported_state, __ATOMIC_RELAXED);
    if (mask >= 0) return mask;
    mask = 1 << LSTM_VARIANT_PORTABLE;
#ifdef LSTM_X86
    __builtin_cpu_init();
    // __builtin_cpu_supports also checks that the OS saves the ymm/zmm state (XGETBV).
    const int fma = __builtin_cpu_supports("fma");
    if (__builtin_cpu_supports("avx2") && fma) mask |= 1 << LSTM_VARIANT_AVX2;
    const int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                       __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") && fma;
    // The reduced-precision bodies' extensions (lstm_reduced.h): AVX-VNNI (the VEX form) on top of
    // AVX2, AVX-512 VNNI on top of AVX-512; F16C comes with every AVX2 processor made.
    const int f16c = __builtin_cpu_supports("f16c");
    if ((mask & (1 << LSTM_VARIANT_AVX2)) && f16c && __builtin_cpu_supports("avxvnni"))
        mask |= 1 << LSTM_VARIANT_AVX2_VNNI;
    if (avx512) mask |= 1 << LSTM_VARIANT_AVX512;
    if (avx512 && f16c && __builtin_cpu_supports("avx512vnni")) mask |= 1 << LSTM_VARIANT_AVX512_VNNI;
    // AMX: the CPU's AMX-INT8 and Linux's permission for the tile state (lstm_amx_usable asks).
    if ((mask & (1 << LSTM_VARIANT_AVX512_VNNI)) && lstm_amx_usable()) mask |= 1 << LSTM_VARIANT_AVX512_AMX;
#endif
    __atomic_store_n(&supported_state, mask, __ATOMIC_RELAXED);
    return mask;
}

int lstm_kernels_best_variant(void) {
    const int mask = lstm_kernels_supported();
    for (int v = LSTM_VARIANT_COUNT - 1; v > 0; v--)
        if (mask & (1 << v)) return v;
    return LSTM_VARIANT_PORTABLE;
}

int lstm_kernels_variant(void) {
    const int v = __atomic_load_n(&variant_state, __ATOMIC_RELAXED);
    if (v >= 0) return v;
    const int best = lstm_kernels_best_variant();
    __atomic_store_n(&variant_state, best, __ATOMIC_RELAXED);
    return best;
}

int lstm_kernels_float_variant(void) {
    switch (lstm_kernels_variant()) {
    case LSTM_VARIANT_AVX512:
    case LSTM_VARIANT_AVX512_VNNI:
    case LSTM_VARIANT_AVX512_AMX: return LSTM_VARIANT_AVX512;
    case LSTM_VARIANT_AVX2:
    case LSTM_VARIANT_AVX2_VNNI: return LSTM_VARIANT_AVX2;
    default: return LSTM_VARIANT_PORTABLE;
    }
}

int lstm_kernels_set_variant(int variant) {
    if (variant < 0) { __atomic_store_n(&variant_state, lstm_kernels_best_variant(), __ATOMIC_RELAXED); return 0; }
    if (variant >= LSTM_VARIANT_COUNT || !(lstm_kernels_supported() & (1 << variant))) return -1;
    __atomic_store_n(&variant_state, variant, __ATOMIC_RELAXED);
    return 0;
}

// ---------------------------------------------------------------- portable bodies

// IEEE semantics as in PyTorch: sigmoid(+inf) = 1, sigmoid(-inf) = 0 (expf(+inf) = +inf,
// 1/inf = 0), NaN in gives NaN out; tanhf gives exactly ±1 for large |x| and at ±inf.
static inline float sigmoid_scalar(float x) { return 1.0f / (1.0f + expf(-x)); }

// The block layout and the panel width come from lstm_kernels.h (LSTM_GATE_BLOCK, LSTM_PANEL_ROWS).
#define BK LSTM_GATE_BLOCK
#define PN LSTM_PANEL_ROWS

static void cell_forward_portable(float *gates, const float *prev_cell, float *cell, float *hidden, int blocks) {
    for (int b = 0; b < blocks; b++) {
        float *g = gates + 4 * BK * b;
        for (int j = 0; j < BK; j++) {
            const float i = sigmoid_scalar(g[j]), f = sigmoid_scalar(g[BK + j]);
            const float gg = tanhf(g[2 * BK + j]), o = sigmoid_scalar(g[3 * BK + j]);
            const float c = f * prev_cell[BK * b + j] + i * gg;
            g[j] = i; g[BK + j] = f; g[2 * BK + j] = gg; g[3 * BK + j] = o;
            cell[BK * b + j] = c;
            hidden[BK * b + j] = o * tanhf(c);
        }
    }
}

static void cell_backward_portable(const float *gates, const float *cell, const float *prev_cell, const float *dhidden,
                                   float *dcell, float *dgates, int blocks) {
    for (int b = 0; b < blocks; b++) {
        const float *g = gates + 4 * BK * b;
        float *dg = dgates + 4 * BK * b;
        for (int j = 0; j < BK; j++) {
            const int u = BK * b + j;
            const float i = g[j], f = g[BK + j], gg = g[2 * BK + j], o = g[3 * BK + j];
            const float tc = tanhf(cell[u]), dr = dhidden[u];
            const float dc = dcell[u] + dr * o * (1 - tc * tc);
            dg[j] = dc * gg * i * (1 - i);
            dg[BK + j] = dc * prev_cell[u] * f * (1 - f);
            dg[2 * BK + j] = dc * i * (1 - gg * gg);
            dg[3 * BK + j] = dr * tc * o * (1 - o);
            dcell[u] = dc * f;
        }
    }
}

static void gemm_packed_portable(int m, int n, int k, const float *a, int lda, const float *packed, float *c, int ldc) {
    for (int p = 0; p * PN < n; p++) {
        const float *panel = packed + (size_t)p * PN * k;
        const int cols = n - PN * p < PN ? n - PN * p : PN;
        for (int r = 0; r < m; r++) {
            float acc[PN] = {0};
            for (int kk = 0; kk < k; kk++) {
                const float av = a[(size_t)r * lda + kk];
                for (int j = 0; j < PN; j++) acc[j] += av * panel[kk * PN + j];
            }
            for (int j = 0; j < cols; j++) c[(size_t)r * ldc + PN * p + j] += acc[j];
        }
    }
}

// The SIMD bodies below are written for these values (one ymm per gate of a block; two
// ymm, or one zmm, per panel row of the packed weights).
_Static_assert(LSTM_GATE_BLOCK == 8, "the AVX2 and AVX-512 bodies are written for 8-unit gate blocks");
_Static_assert(LSTM_PANEL_ROWS == 16, "the AVX2 and AVX-512 GEMM micro-kernels are written for 16-row panels");

// exp(x) in both SIMD bodies: x = n·ln2 + r (ln2 split in a high and a low part so n·ln2 is
// exact), exp(r) by Cephes' degree-5 polynomial, 2^n from the exponent bits. One set of
// constants for the AVX2 and AVX-512 bodies.
#define EXP_LOG2E 1.44269504f
#define EXP_LN2_HI 0.693359375f
#define EXP_LN2_LO 2.12194440e-4f
#define EXP_P0 1.9875691500e-4f
#define EXP_P1 1.3981999507e-3f
#define EXP_P2 8.3334519073e-3f
#define EXP_P3 4.1665795894e-2f
#define EXP_P4 1.6666665459e-1f
#define EXP_P5 5.0000001201e-1f

// ---------------------------------------------------------------- AVX2 + FMA bodies
#ifdef LSTM_X86
#define AVX2 __attribute__((target("avx2,fma")))

// exp with Cephes' range reduction and degree-5 polynomial, with IEEE edge cases:
// NaN gives NaN, x > ln(FLT_MAX) gives +inf (so +inf gives +inf), x < -103.97 gives 0 (so
// -inf gives 0), and the range between gives normal or subnormal results. The clamp puts x
// SECOND in max/min: those return their second operand when either is NaN, so NaN passes.
// 2^n is applied as two factors 2^(n/2)·2^(n-n/2) so that n may reach 128 and go down to -150.
AVX2 static inline __m256 exp_avx2(__m256 x) {
    const __m256 lo = _mm256_set1_ps(-103.97208f), hi = _mm256_set1_ps(88.72283935546875f);
    const __m256 xc = _mm256_min_ps(hi, _mm256_max_ps(lo, x));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(EXP_LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(EXP_LN2_HI), xc);
    r = _mm256_fmadd_ps(n, _mm256_set1_ps(EXP_LN2_LO), r);
    __m256 p = _mm256_set1_ps(EXP_P0);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P5));
    __m256 e = _mm256_add_ps(_mm256_fmadd_ps(_mm256_mul_ps(p, r), r, r), _mm256_set1_ps(1.0f));
    const __m256i ni = _mm256_cvtps_epi32(n), half = _mm256_srai_epi32(ni, 1), rest = _mm256_sub_epi32(ni, half);
    const __m256i bias = _mm256_set1_epi32(127);
    e = _mm256_mul_ps(e, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(half, bias), 23)));
    e = _mm256_mul_ps(e, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(rest, bias), 23)));
    // Ordered compares are false for NaN, so NaN survives both blends.
    e = _mm256_blendv_ps(e, _mm256_set1_ps(INFINITY), _mm256_cmp_ps(x, hi, _CMP_GT_OQ));
    return _mm256_blendv_ps(e, _mm256_setzero_ps(), _mm256_cmp_ps(x, lo, _CMP_LT_OQ));
}

// sigmoid(x) = 1/(1 + exp(-x)): exactly 1 for x ≥ 17 or so and at +inf, exactly 0 at -inf
// (1/inf) and for x below about -88.7; NaN stays NaN.
AVX2 static inline __m256 sigmoid_avx2(__m256 x) {
    const __m256 one = _mm256_set1_ps(1.0f);
    return _mm256_div_ps(one, _mm256_add_ps(one, exp_avx2(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

// tanh(x) = 2·sigmoid(2x) - 1: exactly ±1 for large |x| and at ±inf, NaN stays NaN.
AVX2 static inline __m256 tanh_avx2(__m256 x) {
    const __m256 one = _mm256_set1_ps(1.0f), two = _mm256_set1_ps(2.0f);
    return _mm256_sub_ps(_mm256_div_ps(two, _mm256_add_ps(one, exp_avx2(_mm256_mul_ps(x, _mm256_set1_ps(-2.0f))))), one);
}

AVX2 static void cell_forward_avx2(float *gates, const float *prev_cell, float *cell, float *hidden, int blocks) {
    for (int b = 0; b < blocks; b++) {
        float *g = gates + 32 * b;
        const __m256 i = sigmoid_avx2(_mm256_loadu_ps(g)), f = sigmoid_avx2(_mm256_loadu_ps(g + 8));
        const __m256 gg = tanh_avx2(_mm256_loadu_ps(g + 16)), o = sigmoid_avx2(_mm256_loadu_ps(g + 24));
        const __m256 c = _mm256_fmadd_ps(f, _mm256_loadu_ps(prev_cell + 8 * b), _mm256_mul_ps(i, gg));
        _mm256_storeu_ps(g, i); _mm256_storeu_ps(g + 8, f); _mm256_storeu_ps(g + 16, gg); _mm256_storeu_ps(g + 24, o);
        _mm256_storeu_ps(cell + 8 * b, c);
        _mm256_storeu_ps(hidden + 8 * b, _mm256_mul_ps(o, tanh_avx2(c)));
    }
}

AVX2 static void cell_backward_avx2(const float *gates, const float *cell, const float *prev_cell, const float *dhidden,
                                    float *dcell, float *dgates, int blocks) {
    const __m256 one = _mm256_set1_ps(1.0f);
    for (int b = 0; b < blocks; b++) {
        const float *g = gates + 32 * b;
        float *dg = dgates + 32 * b;
        const __m256 i = _mm256_loadu_ps(g), f = _mm256_loadu_ps(g + 8), gg = _mm256_loadu_ps(g + 16), o = _mm256_loadu_ps(g + 24);
        const __m256 tc = tanh_avx2(_mm256_loadu_ps(cell + 8 * b));
        const __m256 dr = _mm256_loadu_ps(dhidden + 8 * b);
        const __m256 dc = _mm256_fmadd_ps(_mm256_mul_ps(dr, o), _mm256_fnmadd_ps(tc, tc, one), _mm256_loadu_ps(dcell + 8 * b));
        _mm256_storeu_ps(dg, _mm256_mul_ps(_mm256_mul_ps(dc, gg), _mm256_mul_ps(i, _mm256_sub_ps(one, i))));
        _mm256_storeu_ps(dg + 8, _mm256_mul_ps(_mm256_mul_ps(dc, _mm256_loadu_ps(prev_cell + 8 * b)),
                                               _mm256_mul_ps(f, _mm256_sub_ps(one, f))));
        _mm256_storeu_ps(dg + 16, _mm256_mul_ps(_mm256_mul_ps(dc, i), _mm256_fnmadd_ps(gg, gg, one)));
        _mm256_storeu_ps(dg + 24, _mm256_mul_ps(_mm256_mul_ps(dr, tc), _mm256_mul_ps(o, _mm256_sub_ps(one, o))));
        _mm256_storeu_ps(dcell + 8 * b, _mm256_mul_ps(dc, f));
    }
}

// C[MR rows, 16 cols] += A[MR, k] · panel, with `cols` (≤ 16) columns stored.
#define MICRO_KERNEL(MR)                                                                                      \
AVX2 static void micro_##MR(int k, const float *a, int lda, const float *panel, float *c, int ldc, int cols) { \
    __m256 acc0[MR], acc1[MR];                                                                                \
    UNROLL for (int r = 0; r < MR; r++) { acc0[r] = _mm256_setzero_ps(); acc1[r] = _mm256_setzero_ps(); }     \
    for (int kk = 0; kk < k; kk++) {                                                                          \
        const __m256 w0 = _mm256_loadu_ps(panel + 16 * kk), w1 = _mm256_loadu_ps(panel + 16 * kk + 8);       \
        UNROLL for (int r = 0; r < MR; r++) {                                                                 \
            const __m256 av = _mm256_broadcast_ss(a + (size_t)r * lda + kk);                                  \
            acc0[r] = _mm256_fmadd_ps(av, w0, acc0[r]);                                                       \
            acc1[r] = _mm256_fmadd_ps(av, w1, acc1[r]);                                                       \
        }                                                                                                     \
    }                                                                                                         \
    UNROLL for (int r = 0; r < MR; r++) {                                                                     \
        float *cr = c + (size_t)r * ldc;                                                                      \
        if (cols == 16) {                                                                                     \
            _mm256_storeu_ps(cr, _mm256_add_ps(_mm256_loadu_ps(cr), acc0[r]));                                \
            _mm256_storeu_ps(cr + 8, _mm256_add_ps(_mm256_loadu_ps(cr + 8), acc1[r]));                         \
        } else {                                                                                              \
            float tmp[16];                                                                                    \
            _mm256_storeu_ps(tmp, acc0[r]); _mm256_storeu_ps(tmp + 8, acc1[r]);                                \
            for (int j = 0; j < cols; j++) cr[j] += tmp[j];                                                   \
        }                                                                                                     \
    }                                                                                                         \
}
MICRO_KERNEL(1)
MICRO_KERNEL(2)
MICRO_KERNEL(3)
MICRO_KERNEL(4)
MICRO_KERNEL(5)
MICRO_KERNEL(6)

// Rows of A are taken in blocks that stay in L2 (about 96 KiB) while every panel of W
// streams past them; within a block, 6-row tiles run against one panel held in L1.
AVX2 static void gemm_packed_avx2(int m, int n, int k, const float *a, int lda, const float *packed, float *c, int ldc) {
    int block = (96 * 1024 / 4) / (k > 0 ? k : 1);
    block = block < 6 ? 6 : block - block % 6;
    for (int r0 = 0; r0 < m; r0 += block) {
        const int rows = m - r0 < block ? m - r0 : block;
        const float *ab = a + (size_t)r0 * lda;
        float *cb = c + (size_t)r0 * ldc;
        for (int p = 0; p * 16 < n; p++) {
            const float *panel = packed + (size_t)p * 16 * k;
            const int cols = n - 16 * p < 16 ? n - 16 * p : 16;
            float *cp = cb + 16 * p;
            int r = 0;
            for (; r + 6 <= rows; r += 6) micro_6(k, ab + (size_t)r * lda, lda, panel, cp + (size_t)r * ldc, ldc, cols);
            switch (rows - r) {
            case 5: micro_5(k, ab + (size_t)r * lda, lda, panel, cp + (size_t)r * ldc, ldc, cols); break;
            case 4: micro_4(k, ab + (size_t)r * lda, lda, panel, cp + (size_t)r * ldc, ldc, cols); break;
            case 3: micro_3(k, ab + (size_t)r * lda, lda, panel, cp + (size_t)r * ldc, ldc, cols); break;
            case 2: micro_2(k, ab + (size_t)r * lda, lda, panel, cp + (size_t)r * ldc, ldc, cols); break;
            case 1: micro_1(k, ab + (size_t)r * lda, lda, panel, cp + (size_t)r * ldc, ldc, cols); break;
            default: break;
            }
        }
    }
}

// ---------------------------------------------------------------- AVX-512 bodies
#define AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma")))

// exp as exp_avx2 (same reduction, polynomial and IEEE edge cases: NaN passes the clamps as
// their second operand, x > ln(FLT_MAX) gives +inf, x < -103.97 gives 0), 16-wide; 2^n is
// applied by vscalefps, which rounds once and reaches the subnormals and +inf by itself.
AVX512 static inline __m512 exp_avx512(__m512 x) {
    const __m512 lo = _mm512_set1_ps(-103.97208f), hi = _mm512_set1_ps(88.72283935546875f);
    const __m512 xc = _mm512_min_ps(hi, _mm512_max_ps(lo, x));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(EXP_LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(EXP_LN2_HI), xc);
    r = _mm512_fmadd_ps(n, _mm512_set1_ps(EXP_LN2_LO), r);
    __m512 p = _mm512_set1_ps(EXP_P0);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_P1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_P2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_P3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_P4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_P5));
    __m512 e = _mm512_add_ps(_mm512_fmadd_ps(_mm512_mul_ps(p, r), r, r), _mm512_set1_ps(1.0f));
    e = _mm512_scalef_ps(e, n);
    // Ordered compares are false for NaN, so NaN survives both blends.
    e = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, hi, _CMP_GT_OQ), e, _mm512_set1_ps(INFINITY));
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ), e, _mm512_setzero_ps());
}

// sigmoid(x·scale)·scale - shift: with scale = 1, shift = 0 the sigmoid; with scale = 2,
// shift = 1 tanh(x) = 2·sigmoid(2x) - 1. Exact 0/1/±1 at saturation and at ±inf; NaN stays NaN.
AVX512 static inline __m512 scaled_sigmoid_avx512(__m512 x, __m512 scale, __m512 shift) {
    const __m512 one = _mm512_set1_ps(1.0f);
    const __m512 e = exp_avx512(_mm512_mul_ps(x, _mm512_sub_ps(_mm512_setzero_ps(), scale)));
    return _mm512_sub_ps(_mm512_div_ps(scale, _mm512_add_ps(one, e)), shift);
}

AVX512 static inline __m512 tanh_avx512(__m512 x) {
    return scaled_sigmoid_avx512(x, _mm512_set1_ps(2.0f), _mm512_set1_ps(1.0f));
}

AVX512 static inline __m512 join256(__m256 low, __m256 high) {
    return _mm512_insertf32x8(_mm512_castps256_ps512(low), high, 1);
}
#define LOW256(v) _mm512_castps512_ps256(v)
#define HIGH256(v) _mm512_extractf32x8_ps((v), 1)

// A block is two zmm: [i | f] (both sigmoid) and [g | o] (tanh, sigmoid: one pass with a
// per-half scale and shift). tanh(c) runs once per pair of blocks.
AVX512 static void cell_forward_avx512(float *gates, const float *prev_cell, float *cell, float *hidden, int blocks) {
    const __m512 one = _mm512_set1_ps(1.0f), zero = _mm512_setzero_ps();
    const __m512 go_scale = join256(_mm256_set1_ps(2.0f), _mm256_set1_ps(1.0f));
    const __m512 go_shift = join256(_mm256_set1_ps(1.0f), _mm256_setzero_ps());
    for (int b = 0; b < blocks; b += 2) {
        const int pair = b + 1 < blocks;
        __m256 c[2], o[2];
        for (int k = 0; k <= pair; k++) {
            float *g = gates + 32 * (b + k);
            const __m512 if_ = scaled_sigmoid_avx512(_mm512_loadu_ps(g), one, zero);
            const __m512 go = scaled_sigmoid_avx512(_mm512_loadu_ps(g + 16), go_scale, go_shift);
            _mm512_storeu_ps(g, if_); _mm512_storeu_ps(g + 16, go);
            c[k] = _mm256_fmadd_ps(HIGH256(if_), _mm256_loadu_ps(prev_cell + 8 * (b + k)), _mm256_mul_ps(LOW256(if_), LOW256(go)));
            o[k] = HIGH256(go);
        }
        if (pair) {
            const __m512 c2 = join256(c[0], c[1]);
            _mm512_storeu_ps(cell + 8 * b, c2);
            _mm512_storeu_ps(hidden + 8 * b, _mm512_mul_ps(join256(o[0], o[1]), tanh_avx512(c2)));
        } else {
            _mm256_storeu_ps(cell + 8 * b, c[0]);
            _mm256_storeu_ps(hidden + 8 * b, _mm256_mul_ps(o[0], LOW256(tanh_avx512(_mm512_castps256_ps512(c[0])))));
        }
    }
}

AVX512 static void cell_backward_avx512(const float *gates, const float *cell, const float *prev_cell, const float *dhidden,
                                        float *dcell, float *dgates, int blocks) {
    const __m512 one = _mm512_set1_ps(1.0f);
    for (int b = 0; b < blocks; b += 2) {
        const int pair = b + 1 < blocks;
        const __mmask16 lanes = pair ? 0xFFFF : 0x00FF;
        const float *g0 = gates + 32 * b, *g1 = gates + 32 * (b + pair);
        // Units of both blocks: o, f, tanh(c), dL/dr, carried dL/dc.
        const __m512 o = join256(_mm256_loadu_ps(g0 + 24), _mm256_loadu_ps(g1 + 24));
        const __m512 f = join256(_mm256_loadu_ps(g0 + 8), _mm256_loadu_ps(g1 + 8));
        const __m512 tc = tanh_avx512(_mm512_maskz_loadu_ps(lanes, cell + 8 * b));
        const __m512 dr = _mm512_maskz_loadu_ps(lanes, dhidden + 8 * b);
        const __m512 dc = _mm512_fmadd_ps(_mm512_mul_ps(dr, o), _mm512_fnmadd_ps(tc, tc, one), _mm512_maskz_loadu_ps(lanes, dcell + 8 * b));
        _mm512_mask_storeu_ps(dcell + 8 * b, lanes, _mm512_mul_ps(dc, f));
        for (int k = 0; k <= pair; k++) {
            const float *g = gates + 32 * (b + k);
            float *dg = dgates + 32 * (b + k);
            const __m256 dck = k ? HIGH256(dc) : LOW256(dc), drk = k ? HIGH256(dr) : LOW256(dr), tck = k ? HIGH256(tc) : LOW256(tc);
            const __m512 if_ = _mm512_loadu_ps(g), go = _mm512_loadu_ps(g + 16);
            // [dc·g·i(1-i) | dc·c_prev·f(1-f)]
            const __m512 left = _mm512_mul_ps(join256(dck, dck), join256(LOW256(go), _mm256_loadu_ps(prev_cell + 8 * (b + k))));
            _mm512_storeu_ps(dg, _mm512_mul_ps(left, _mm512_fnmadd_ps(if_, if_, if_)));
            // [dc·i·(1-g²) | dr·tanh(c)·o(1-o)]
            const __m512 right = join256(_mm256_mul_ps(dck, LOW256(if_)), _mm256_mul_ps(drk, tck));
            const __m512 slope = _mm512_fnmadd_ps(go, go, _mm512_mask_blend_ps(0xFF00, one, go));
            _mm512_storeu_ps(dg + 16, _mm512_mul_ps(right, slope));
        }
    }
}

// C[MR rows, 16·NP cols] += A[MR, k] · NP consecutive panels, with `last` (≤ 16) columns
// stored in the last panel. Accumulators: MR·NP zmm.
#define MICRO512(MR, NP)                                                                                       \
AVX512 static void micro512_##MR##x##NP(int k, const float *a, int lda, const float *panel, size_t stride,     \
                                        float *c, int ldc, int last) {                                         \
    __m512 acc[MR][NP];                                                                                        \
    UNROLL for (int r = 0; r < MR; r++) UNROLL for (int q = 0; q < NP; q++) acc[r][q] = _mm512_setzero_ps();  \
    for (int kk = 0; kk < k; kk++) {                                                                           \
        __m512 w[NP];                                                                                          \
        UNROLL for (int q = 0; q < NP; q++) w[q] = _mm512_loadu_ps(panel + q * stride + 16 * kk);                     \
        UNROLL for (int r = 0; r < MR; r++) {                                                                  \
            const __m512 av = _mm512_set1_ps(a[(size_t)r * lda + kk]);                                         \
            UNROLL for (int q = 0; q < NP; q++) acc[r][q] = _mm512_fmadd_ps(av, w[q], acc[r][q]);                     \
        }                                                                                                      \
    }                                                                                                          \
    const __mmask16 tail = (__mmask16)((1u << last) - 1);                                                      \
    UNROLL for (int r = 0; r < MR; r++) {                                                                      \
        float *cr = c + (size_t)r * ldc;                                                                       \
        UNROLL for (int q = 0; q < NP - 1; q++) _mm512_storeu_ps(cr + 16 * q, _mm512_add_ps(_mm512_loadu_ps(cr + 16 * q), acc[r][q])); \
        float *cl = cr + 16 * (NP - 1);                                                                        \
        _mm512_mask_storeu_ps(cl, tail, _mm512_add_ps(_mm512_maskz_loadu_ps(tail, cl), acc[r][NP - 1]));       \
    }                                                                                                          \
}
#define MICRO512_ROWS(NP) \
    MICRO512(1, NP) MICRO512(2, NP) MICRO512(3, NP) MICRO512(4, NP) MICRO512(5, NP) MICRO512(6, NP) \
    MICRO512(7, NP) MICRO512(8, NP) MICRO512(9, NP) MICRO512(10, NP) MICRO512(11, NP) MICRO512(12, NP)
MICRO512_ROWS(1)
MICRO512_ROWS(2)

typedef void (*micro512_fn)(int, const float *, int, const float *, size_t, float *, int, int);
static const micro512_fn micro512_table[2][12] = {
    {micro512_1x1, micro512_2x1, micro512_3x1, micro512_4x1, micro512_5x1, micro512_6x1,
     micro512_7x1, micro512_8x1, micro512_9x1, micro512_10x1, micro512_11x1, micro512_12x1},
    {micro512_1x2, micro512_2x2, micro512_3x2, micro512_4x2, micro512_5x2, micro512_6x2,
     micro512_7x2, micro512_8x2, micro512_9x2, micro512_10x2, micro512_11x2, micro512_12x2},
};
#define MR512 12

// As gemm_packed_avx2, with pairs of panels (32 columns) per tile and the rows of an L2
// block cut into near-equal tiles of at most 12 (B = 32 runs as 11+11+10, not 12+12+8).
AVX512 static void gemm_packed_avx512(int m, int n, int k, const float *a, int lda, const float *packed, float *c, int ldc) {
    int block = (96 * 1024 / 4) / (k > 0 ? k : 1);
    block = block < MR512 ? MR512 : block - block % MR512;
    const int panels = (n + 15) / 16;
    const size_t stride = (size_t)16 * k;
    for (int r0 = 0; r0 < m; r0 += block) {
        const int rows = m - r0 < block ? m - r0 : block;
        const int tiles = (rows + MR512 - 1) / MR512;
        for (int p = 0; p < panels; p += 2) {
            const int np = panels - p >= 2 ? 2 : 1;
            const int last = n - 16 * (p + np - 1) < 16 ? n - 16 * (p + np - 1) : 16;
            const float *panel = packed + (size_t)p * stride;
            int r = 0;
            for (int t = 0; t < tiles; t++) {
                const int mr = (rows - r) / (tiles - t) + ((rows - r) % (tiles - t) != 0);
                micro512_table[np - 1][mr - 1](k, a + (size_t)(r0 + r) * lda, lda, panel, stride,
                                               c + (size_t)(r0 + r) * ldc + 16 * p, ldc, last);
                r += mr;
            }
        }
    }
}
#endif

// ---------------------------------------------------------------- activations over an array
// (the options path's cell, lstm_cell_options.c: its gates are blocks of H, not of 8)
#ifdef LSTM_X86
AVX2 static void activate_avx2(float *x, int n, int use_tanh) {
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        _mm256_storeu_ps(x + i, use_tanh ? tanh_avx2(v) : sigmoid_avx2(v));
    }
    for (; i < n; i++) x[i] = use_tanh ? tanhf(x[i]) : sigmoid_scalar(x[i]);
}

AVX512 static void activate_avx512(float *x, int n, int use_tanh) {
    const __m512 scale = _mm512_set1_ps(use_tanh ? 2.0f : 1.0f), shift = _mm512_set1_ps(use_tanh ? 1.0f : 0.0f);
    int i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, scaled_sigmoid_avx512(_mm512_loadu_ps(x + i), scale, shift));
    if (i < n) {  // the tail under a mask, so every element takes the same formula
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(x + i, m, scaled_sigmoid_avx512(_mm512_maskz_loadu_ps(m, x + i), scale, shift));
    }
}
#endif

void lstm_activate(float *x, int n, int use_tanh) {
#ifdef LSTM_X86
    switch (lstm_kernels_float_variant()) {
    case LSTM_VARIANT_AVX512: activate_avx512(x, n, use_tanh); return;
    case LSTM_VARIANT_AVX2: activate_avx2(x, n, use_tanh); return;
    default: break;
    }
#endif
    for (int i = 0; i < n; i++) x[i] = use_tanh ? tanhf(x[i]) : sigmoid_scalar(x[i]);
}

// ---------------------------------------------------------------- dispatch

void lstm_cell_forward_blocks(float *gates, const float *prev_cell, float *cell, float *hidden, int blocks) {
#ifdef LSTM_X86
    switch (lstm_kernels_float_variant()) {
    case LSTM_VARIANT_AVX512: cell_forward_avx512(gates, prev_cell, cell, hidden, blocks); return;
    case LSTM_VARIANT_AVX2: cell_forward_avx2(gates, prev_cell, cell, hidden, blocks); return;
    default: break;
    }
#endif
    cell_forward_portable(gates, prev_cell, cell, hidden, blocks);
}

void lstm_cell_backward_blocks(const float *gates, const float *cell, const float *prev_cell, const float *dhidden,
                               float *dcell, float *dgates, int blocks) {
#ifdef LSTM_X86
    switch (lstm_kernels_float_variant()) {
    case LSTM_VARIANT_AVX512: cell_backward_avx512(gates, cell, prev_cell, dhidden, dcell, dgates, blocks); return;
    case LSTM_VARIANT_AVX2: cell_backward_avx2(gates, cell, prev_cell, dhidden, dcell, dgates, blocks); return;
    default: break;
    }
#endif
    cell_backward_portable(gates, cell, prev_cell, dhidden, dcell, dgates, blocks);
}

void lstm_cell_forward_partial(float *g, const float *prev_cell, float *cell, float *hidden, int w) {
    for (int j = 0; j < w; j++) {
        const float i = sigmoid_scalar(g[j]), f = sigmoid_scalar(g[w + j]);
        const float gg = tanhf(g[2 * w + j]), o = sigmoid_scalar(g[3 * w + j]);
        const float c = f * prev_cell[j] + i * gg;
        g[j] = i; g[w + j] = f; g[2 * w + j] = gg; g[3 * w + j] = o;
        cell[j] = c;
        hidden[j] = o * tanhf(c);
    }
}

void lstm_cell_backward_partial(const float *g, const float *cell, const float *prev_cell, const float *dhidden,
                                float *dcell, float *dg, int w) {
    for (int j = 0; j < w; j++) {
        const float i = g[j], f = g[w + j], gg = g[2 * w + j], o = g[3 * w + j];
        const float tc = tanhf(cell[j]), dr = dhidden[j];
        const float dc = dcell[j] + dr * o * (1 - tc * tc);
        dg[j] = dc * gg * i * (1 - i);
        dg[w + j] = dc * prev_cell[j] * f * (1 - f);
        dg[2 * w + j] = dc * i * (1 - gg * gg);
        dg[3 * w + j] = dr * tc * o * (1 - o);
        dcell[j] = dc * f;
    }
}

size_t lstm_packed_size(int n, int k) { return (size_t)((n + PN - 1) / PN) * PN * (size_t)k; }

void lstm_pack_rows(const float *w, int n, int k, int ldw, float *packed) {
    for (int p = 0; p * PN < n; p++) {
        float *panel = packed + (size_t)p * PN * k;
        for (int kk = 0; kk < k; kk++)
            for (int r = 0; r < PN; r++) {
                const int row = PN * p + r;
                panel[kk * PN + r] = row < n ? w[(size_t)row * ldw + kk] : 0.0f;
            }
    }
}

void lstm_pack_columns(const float *w, int k, int n, int ldw, float *packed) {
    for (int p = 0; p * PN < n; p++) {
        float *panel = packed + (size_t)p * PN * k;
        const int width = n - PN * p < PN ? n - PN * p : PN;
        for (int kk = 0; kk < k; kk++) {
            float *dst = panel + (size_t)kk * PN;
            memcpy(dst, w + (size_t)kk * ldw + PN * p, sizeof(float) * (size_t)width);
            for (int r = width; r < PN; r++) dst[r] = 0.0f;
        }
    }
}

void lstm_gemm_packed(int m, int n, int k, const float *a, int lda, const float *packed, float *c, int ldc) {
    if (m <= 0 || n <= 0 || k <= 0) return;
#ifdef LSTM_X86
    switch (lstm_kernels_float_variant()) {
    case LSTM_VARIANT_AVX512: gemm_packed_avx512(m, n, k, a, lda, packed, c, ldc); return;
    case LSTM_VARIANT_AVX2: gemm_packed_avx2(m, n, k, a, lda, packed, c, ldc); return;
    default: break;
    }
#endif
    gemm_packed_portable(m, n, k, a, lda, packed, c, ldc);
}
