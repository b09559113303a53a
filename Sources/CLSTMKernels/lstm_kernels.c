// See include/lstm_kernels.h. Each public function dispatches once per call to an
// AVX2+FMA body (compiled with a function-level target attribute) or a portable body.
#include "lstm_kernels.h"
#include <math.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define LSTM_X86 1
#endif

static int avx2_state = -1;
static int force_portable = 0;

void lstm_kernels_force_portable(int on) { force_portable = on != 0; }

int lstm_kernels_use_avx2(void) {
#ifdef LSTM_X86
    if (force_portable) return 0;
    if (avx2_state < 0) {
        __builtin_cpu_init();
        avx2_state = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    return avx2_state;
#else
    return 0;
#endif
}

// ---------------------------------------------------------------- portable bodies

// IEEE semantics as in PyTorch: sigmoid(+inf) = 1, sigmoid(-inf) = 0 (expf(+inf) = +inf,
// 1/inf = 0), NaN in gives NaN out; tanhf gives exactly ±1 for large |x| and at ±inf.
static inline float sigmoid_scalar(float x) { return 1.0f / (1.0f + expf(-x)); }

static void cell_forward_portable(float *gates, const float *prev_cell, float *cell, float *hidden, int blocks) {
    for (int b = 0; b < blocks; b++) {
        float *g = gates + 32 * b;
        for (int j = 0; j < 8; j++) {
            const float i = sigmoid_scalar(g[j]), f = sigmoid_scalar(g[8 + j]);
            const float gg = tanhf(g[16 + j]), o = sigmoid_scalar(g[24 + j]);
            const float c = f * prev_cell[8 * b + j] + i * gg;
            g[j] = i; g[8 + j] = f; g[16 + j] = gg; g[24 + j] = o;
            cell[8 * b + j] = c;
            hidden[8 * b + j] = o * tanhf(c);
        }
    }
}

static void cell_backward_portable(const float *gates, const float *cell, const float *prev_cell, const float *dhidden,
                                   float *dcell, float *dgates, int blocks) {
    for (int b = 0; b < blocks; b++) {
        const float *g = gates + 32 * b;
        float *dg = dgates + 32 * b;
        for (int j = 0; j < 8; j++) {
            const int u = 8 * b + j;
            const float i = g[j], f = g[8 + j], gg = g[16 + j], o = g[24 + j];
            const float tc = tanhf(cell[u]), dr = dhidden[u];
            const float dc = dcell[u] + dr * o * (1 - tc * tc);
            dg[j] = dc * gg * i * (1 - i);
            dg[8 + j] = dc * prev_cell[u] * f * (1 - f);
            dg[16 + j] = dc * i * (1 - gg * gg);
            dg[24 + j] = dr * tc * o * (1 - o);
            dcell[u] = dc * f;
        }
    }
}

static void gemm_packed_portable(int m, int n, int k, const float *a, int lda, const float *packed, float *c, int ldc) {
    for (int p = 0; p * 16 < n; p++) {
        const float *panel = packed + (size_t)p * 16 * k;
        const int cols = n - 16 * p < 16 ? n - 16 * p : 16;
        for (int r = 0; r < m; r++) {
            float acc[16] = {0};
            for (int kk = 0; kk < k; kk++) {
                const float av = a[(size_t)r * lda + kk];
                for (int j = 0; j < 16; j++) acc[j] += av * panel[kk * 16 + j];
            }
            for (int j = 0; j < cols; j++) c[(size_t)r * ldc + 16 * p + j] += acc[j];
        }
    }
}

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
    __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), xc);
    r = _mm256_fmadd_ps(n, _mm256_set1_ps(2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
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
    for (int r = 0; r < MR; r++) { acc0[r] = _mm256_setzero_ps(); acc1[r] = _mm256_setzero_ps(); }            \
    for (int kk = 0; kk < k; kk++) {                                                                          \
        const __m256 w0 = _mm256_loadu_ps(panel + 16 * kk), w1 = _mm256_loadu_ps(panel + 16 * kk + 8);       \
        for (int r = 0; r < MR; r++) {                                                                        \
            const __m256 av = _mm256_broadcast_ss(a + (size_t)r * lda + kk);                                  \
            acc0[r] = _mm256_fmadd_ps(av, w0, acc0[r]);                                                       \
            acc1[r] = _mm256_fmadd_ps(av, w1, acc1[r]);                                                       \
        }                                                                                                     \
    }                                                                                                         \
    for (int r = 0; r < MR; r++) {                                                                            \
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
#endif

// ---------------------------------------------------------------- dispatch

void lstm_cell_forward_blocks(float *gates, const float *prev_cell, float *cell, float *hidden, int blocks) {
#ifdef LSTM_X86
    if (lstm_kernels_use_avx2()) { cell_forward_avx2(gates, prev_cell, cell, hidden, blocks); return; }
#endif
    cell_forward_portable(gates, prev_cell, cell, hidden, blocks);
}

void lstm_cell_backward_blocks(const float *gates, const float *cell, const float *prev_cell, const float *dhidden,
                               float *dcell, float *dgates, int blocks) {
#ifdef LSTM_X86
    if (lstm_kernels_use_avx2()) { cell_backward_avx2(gates, cell, prev_cell, dhidden, dcell, dgates, blocks); return; }
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

size_t lstm_packed_size(int n, int k) { return (size_t)((n + 15) / 16) * 16 * (size_t)k; }

void lstm_pack_rows(const float *w, int n, int k, int ldw, float *packed) {
    for (int p = 0; p * 16 < n; p++) {
        float *panel = packed + (size_t)p * 16 * k;
        for (int kk = 0; kk < k; kk++)
            for (int r = 0; r < 16; r++) {
                const int row = 16 * p + r;
                panel[kk * 16 + r] = row < n ? w[(size_t)row * ldw + kk] : 0.0f;
            }
    }
}

void lstm_gemm_packed(int m, int n, int k, const float *a, int lda, const float *packed, float *c, int ldc) {
    if (m <= 0 || n <= 0 || k <= 0) return;
#ifdef LSTM_X86
    if (lstm_kernels_use_avx2()) { gemm_packed_avx2(m, n, k, a, lda, packed, c, ldc); return; }
#endif
    gemm_packed_portable(m, n, k, a, lda, packed, c, ldc);
}
