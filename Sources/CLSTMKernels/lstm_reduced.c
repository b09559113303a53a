// See include/lstm_reduced.h. Every body computes the same integers (int8) or the same sequence
// of float operations (bf16, fp16) as the portable one, so results agree bit for bit across
// variants; the SIMD bodies are compiled with function-level target attributes and chosen at
// run time (lstm_kernels_variant), never at build time.
#include "lstm_reduced.h"
#include "lstm_kernels.h"
#include <float.h>
#include <math.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define LSTM_X86 1
#endif

// Products and sums are written as separate operations on purpose: a contracted a*b + c would
// round differently from the SIMD bodies' explicit multiply and add.
#pragma STDC FP_CONTRACT OFF

#define PN LSTM_PANEL_ROWS

#if defined(__clang__)
#define UNROLL _Pragma("clang loop unroll(full)")
#else
#define UNROLL _Pragma("GCC unroll 16")
#endif
#define INLINE static inline __attribute__((always_inline))

static int panel_count_even(int n) {
    const int panels = (n + PN - 1) / PN;
    return (panels + 1) & ~1;
}

// ---------------------------------------------------------------- conversions

uint16_t lstm_float_to_bf16(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u);  // NaN, kept quiet
    if ((u & 0x7f800000u) == 0) return (uint16_t)((u >> 16) & 0x8000u);         // ±0, subnormals flushed
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float lstm_bf16_to_float(uint16_t b) {
    const uint32_t u = (uint32_t)b << 16;
    float x;
    memcpy(&x, &u, 4);
    return x;
}

uint16_t lstm_float_to_f16(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    const uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    const uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));  // NaN
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);  // rounds to ≥ 65520: ±Inf (Inf included)
    if (a < 0x38800000u) {                                    // below 2^-14: a half subnormal (or 0)
        if (a < 0x33000000u) return sign;                     // below half the smallest subnormal: ±0
        const uint32_t mantissa = (a & 0x7fffffu) | 0x800000u;
        const int shift = 126 - (int)(a >> 23);  // 14..24: the subnormal's shift
        const uint32_t value = mantissa >> shift;
        const uint32_t rest = mantissa & ((1u << shift) - 1), half = 1u << (shift - 1);
        const uint32_t rounded = value + (rest > half || (rest == half && (value & 1u)));
        return (uint16_t)(sign | rounded);
    }
    uint32_t r = a - 0x38000000u;  // rebias the exponent (127 → 15)
    r += 0xfffu + ((r >> 13) & 1u);
    return (uint16_t)(sign | (r >> 13));
}

float lstm_f16_to_float(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu;
    uint32_t u;
    if (exponent == 0x1f) {
        u = sign | 0x7f800000u | (mantissa << 13);
    } else if (exponent == 0) {
        if (mantissa == 0) {
            u = sign;
        } else {  // subnormal half: normalise
            float x = ldexpf((float)mantissa, -24);
            return sign ? -x : x;
        }
    } else {
        u = sign | ((exponent + 112) << 23) | (mantissa << 13);
    }
    float x;
    memcpy(&x, &u, 4);
    return x;
}

// ---------------------------------------------------------------- which body

static int has_avx512_bf16(void) {
#ifdef LSTM_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16");
#else
    return 0;
#endif
}

static int has_f16c(void) {
#ifdef LSTM_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("f16c");
#else
    return 0;
#endif
}

enum body { BODY_PORTABLE, BODY_AVX2, BODY_AVX2_VNNI, BODY_AVX512, BODY_AVX512_VNNI, BODY_AVX512_BF16 };

static int s8_body(void) {
    switch (lstm_kernels_variant()) {
    case LSTM_VARIANT_AVX512_VNNI: return BODY_AVX512_VNNI;
    case LSTM_VARIANT_AVX2_VNNI: return BODY_AVX2_VNNI;
    case LSTM_VARIANT_AVX512:
    case LSTM_VARIANT_AVX2: return BODY_AVX2;
    default: return BODY_PORTABLE;
    }
}

static int bf16_body(void) {
    switch (lstm_kernels_variant()) {
    case LSTM_VARIANT_AVX512_VNNI: return has_avx512_bf16() ? BODY_AVX512_BF16 : BODY_AVX512;
    case LSTM_VARIANT_AVX512: return BODY_AVX512;
    case LSTM_VARIANT_AVX2_VNNI:
    case LSTM_VARIANT_AVX2: return BODY_AVX2;
    default: return BODY_PORTABLE;
    }
}

static int f16_body(void) {
    switch (lstm_kernels_float_variant()) {
    case LSTM_VARIANT_AVX512: return has_f16c() ? BODY_AVX512 : BODY_PORTABLE;
    case LSTM_VARIANT_AVX2: return has_f16c() ? BODY_AVX2 : BODY_PORTABLE;
    default: return BODY_PORTABLE;
    }
}

const char *lstm_reduced_body(int precision) {
    switch (precision) {
    case 0:
        switch (s8_body()) {
        case BODY_AVX512_VNNI: return "avx512-vnni (vpdpbusd)";
        case BODY_AVX2_VNNI: return "avx-vnni (vpdpbusd)";
        case BODY_AVX2: return "avx2 (vpmaddwd)";
        default: return "portable";
        }
    case 1:
        switch (bf16_body()) {
        case BODY_AVX512_BF16: return "avx512-bf16 (vdpbf16ps)";
        case BODY_AVX512: return "avx512 (vdpbf16ps emulated by fma)";
        case BODY_AVX2: return "avx2 (vdpbf16ps emulated by fma)";
        default: return "portable";
        }
    case 2:
        switch (f16_body()) {
        case BODY_AVX512: return "avx512-f16c";
        case BODY_AVX2: return "avx2-f16c";
        default: return "portable";
        }
    default: return "none";
    }
}

// ---------------------------------------------------------------- int8: packing, quantization

int lstm_s8_padded_k(int k) { return (k + 3) & ~3; }

size_t lstm_s8_packed_bytes(int n, int k) {
    return (size_t)panel_count_even(n) * PN * (size_t)lstm_s8_padded_k(k);
}

void lstm_s8_pack(const int8_t *w, int n, int k, int ldw, int8_t *packed, int32_t *compensation) {
    const int k4 = lstm_s8_padded_k(k), panels = panel_count_even(n);
    for (int p = 0; p < panels; p++) {
        int8_t *panel = packed + (size_t)p * PN * k4;
        for (int r = 0; r < PN; r++) {
            const int row = PN * p + r;
            int32_t sum = 0;
            for (int kk = 0; kk < k4; kk++) {
                const int8_t v = (row < n && kk < k) ? w[(size_t)row * ldw + kk] : 0;
                panel[(size_t)(kk / 4) * PN * 4 + r * 4 + kk % 4] = v;
                sum += v;
            }
            compensation[row] = 128 * sum;
        }
    }
}

static void quantize_row_portable(const float *x, int k, int k4, uint8_t *q, float *scale) {
    float amax = 0.0f;
    int finite = 1;
    for (int j = 0; j < k; j++) {
        const float a = fabsf(x[j]);
        if (!(a <= FLT_MAX)) finite = 0;
        else if (a > amax) amax = a;
    }
    if (!finite || amax == 0.0f) {
        memset(q, 128, (size_t)k4);
        *scale = finite ? 0.0f : NAN;
        return;
    }
    const float inverse = 127.0f / amax;
    for (int j = 0; j < k; j++) {
        float v = nearbyintf(x[j] * inverse);
        v = v > 127.0f ? 127.0f : (v < -127.0f ? -127.0f : v);
        q[j] = (uint8_t)((int)v + 128);
    }
    memset(q + k, 128, (size_t)(k4 - k));
    *scale = amax / 127.0f;
}

#ifdef LSTM_X86
#define AVX2 __attribute__((target("avx2,fma,f16c")))
#define AVX2VNNI __attribute__((target("avx2,fma,f16c,avxvnni")))
#define AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma,f16c")))
#define AVX512VNNI __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma,f16c,avx512vnni")))
#define AVX512BF16 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma,f16c,avx512bf16")))

AVX512 static void quantize_row_avx512(const float *x, int k, int k4, uint8_t *q, float *scale) {
    const __m512 sign = _mm512_set1_ps(-0.0f), largest = _mm512_set1_ps(FLT_MAX);
    __m512 amax = _mm512_setzero_ps();
    __mmask16 finite = 0xffff;
    int j = 0;
    for (; j < k; j += 16) {
        const __mmask16 m = k - j >= 16 ? 0xffff : (__mmask16)((1u << (k - j)) - 1);
        const __m512 a = _mm512_andnot_ps(sign, _mm512_maskz_loadu_ps(m, x + j));
        finite &= _mm512_cmp_ps_mask(a, largest, _CMP_LE_OQ) | (__mmask16)~m;
        amax = _mm512_max_ps(amax, a);
    }
    const float top = _mm512_reduce_max_ps(amax);
    if (finite != 0xffff || top == 0.0f) {
        memset(q, 128, (size_t)k4);
        *scale = finite != 0xffff ? NAN : 0.0f;
        return;
    }
    const __m512 inverse = _mm512_set1_ps(127.0f / top);
    const __m512i low = _mm512_set1_epi32(-127), high = _mm512_set1_epi32(127), offset = _mm512_set1_epi32(128);
    for (j = 0; j < k; j += 16) {
        const __mmask16 m = k - j >= 16 ? 0xffff : (__mmask16)((1u << (k - j)) - 1);
        __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + j), inverse));  // RNE
        v = _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(v, low), high), offset);
        _mm_mask_storeu_epi8(q + j, m, _mm512_cvtepi32_epi8(v));
    }
    memset(q + k, 128, (size_t)(k4 - k));
    *scale = top / 127.0f;
}
#endif

void lstm_s8_quantize_rows(const float *x, int m, int k, int ldx, uint8_t *q_rows, int ldq, float *scales) {
    const int k4 = lstm_s8_padded_k(k);
#ifdef LSTM_X86
    if (lstm_kernels_float_variant() == LSTM_VARIANT_AVX512) {
        for (int i = 0; i < m; i++) quantize_row_avx512(x + (size_t)i * ldx, k, k4, q_rows + (size_t)i * ldq, scales + i);
        return;
    }
#endif
    for (int i = 0; i < m; i++) quantize_row_portable(x + (size_t)i * ldx, k, k4, q_rows + (size_t)i * ldq, scales + i);
}

// ---------------------------------------------------------------- int8: GEMM bodies

static void s8_gemm_portable(int m, int n, int k4, const uint8_t *a, int lda, const float *as, const int8_t *packed,
                             const int32_t *comp, const float *ws, float *c, int ldc) {
    for (int j = 0; j < n; j++) {
        const int8_t *panel = packed + (size_t)(j / PN) * PN * k4;
        const int r = j % PN;
        for (int i = 0; i < m; i++) {
            const uint8_t *row = a + (size_t)i * lda;
            int32_t sum = 0;
            for (int kk = 0; kk < k4; kk++) sum += (int32_t)row[kk] * panel[(size_t)(kk / 4) * PN * 4 + r * 4 + kk % 4];
            const float product = (float)(sum - comp[j]) * as[i];
            c[(size_t)i * ldc + j] += product * ws[j];
        }
    }
}

#ifdef LSTM_X86
// C[i, 16·panel + lane] += ((float)(sum − compensation) · a_scale) · w_scale, 16 lanes, masked to n.
AVX512 INLINE void s8_store16(__m512i sum, const int32_t *comp, const float *ws, float a_scale, float *c, int count) {
    const __mmask16 m = count >= 16 ? 0xffff : (__mmask16)((1u << count) - 1);
    const __m512 product = _mm512_mul_ps(
        _mm512_cvtepi32_ps(_mm512_sub_epi32(sum, _mm512_maskz_loadu_epi32(m, comp))), _mm512_set1_ps(a_scale));
    const __m512 value = _mm512_mul_ps(product, _mm512_maskz_loadu_ps(m, ws));
    _mm512_mask_storeu_ps(c, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, c), value));
}

// A tile of MR (≤ 12) rows × 2 panels (32 columns) with vpdpbusd: 24 accumulators, 2 weight
// vectors and a broadcast in the 32 zmm registers (12×2 measured fastest of 6×2 ... 14×2, 8×3,
// 6×4 and 4×4 on the Xeon here, for M = 16, 64 and 1600).
AVX512VNNI INLINE void s8_tile_vnni512(const int MR, int k4, const uint8_t *a, int lda, const float *as,
                                       const int8_t *w, const int32_t *comp, const float *ws, float *c, int ldc,
                                       int columns) {
    __m512i acc[12][2];
    UNROLL for (int r = 0; r < 12; r++) acc[r][0] = acc[r][1] = _mm512_setzero_si512();
    const int8_t *w1 = w + (size_t)PN * k4;
    for (int kq = 0; kq < k4 / 4; kq++) {
        const __m512i b0 = _mm512_loadu_si512(w + (size_t)kq * 64), b1 = _mm512_loadu_si512(w1 + (size_t)kq * 64);
        UNROLL for (int r = 0; r < 12; r++) {
            if (r < MR) {
                int32_t word;
                memcpy(&word, a + (size_t)r * lda + 4 * kq, 4);
                const __m512i x = _mm512_set1_epi32(word);
                acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], x, b0);
                acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], x, b1);
            }
        }
    }
    UNROLL for (int r = 0; r < 12; r++) {
        if (r < MR) {
            s8_store16(acc[r][0], comp, ws, as[r], c + (size_t)r * ldc, columns);
            if (columns > 16) s8_store16(acc[r][1], comp + 16, ws + 16, as[r], c + (size_t)r * ldc + 16, columns - 16);
        }
    }
}

// Blocked for the caches: a block of columns (S8_COLUMN_BLOCK, its weights L2-resident) at a
// time; within it each tile of 12 rows of A (L1-resident) meets every pair of panels in turn.
#define S8_COLUMN_BLOCK 256
AVX512VNNI static void s8_gemm_vnni512(int m, int n, int k4, const uint8_t *a, int lda, const float *as,
                                       const int8_t *packed, const int32_t *comp, const float *ws, float *c, int ldc) {
    for (int jb = 0; jb < n; jb += S8_COLUMN_BLOCK) {
        const int jend = n - jb < S8_COLUMN_BLOCK ? n : jb + S8_COLUMN_BLOCK;
        for (int i = 0; i < m; i += 12) {
            const int rows = m - i < 12 ? m - i : 12;
            for (int j = jb; j < jend; j += 2 * PN) {
                const int8_t *w = packed + (size_t)(j / PN) * PN * k4;
                const int columns = jend - j < 2 * PN ? jend - j : 2 * PN;
                const uint8_t *ai = a + (size_t)i * lda;
                float *ci = c + (size_t)i * ldc + j;
                switch (rows) {
#define TILE(R)                                                                                                   \
    case R: s8_tile_vnni512(R, k4, ai, lda, as + i, w, comp + j, ws + j, ci, ldc, columns); break;
                    TILE(1) TILE(2) TILE(3) TILE(4) TILE(5) TILE(6) TILE(7) TILE(8) TILE(9) TILE(10) TILE(11) TILE(12)
#undef TILE
                default: break;
                }
            }
        }
    }
}

// 8 lanes of the epilogue (ymm), masked to `count` by a scalar tail.
AVX2 INLINE void s8_store8(__m256i sum, const int32_t *comp, const float *ws, float a_scale, float *c, int count) {
    if (count >= 8) {
        const __m256 product = _mm256_mul_ps(
            _mm256_cvtepi32_ps(_mm256_sub_epi32(sum, _mm256_loadu_si256((const __m256i *)comp))),
            _mm256_set1_ps(a_scale));
        _mm256_storeu_ps(c, _mm256_add_ps(_mm256_loadu_ps(c), _mm256_mul_ps(product, _mm256_loadu_ps(ws))));
        return;
    }
    int32_t lanes[8];
    _mm256_storeu_si256((__m256i *)lanes, sum);
    for (int j = 0; j < count; j++) {
        const float product = (float)(lanes[j] - comp[j]) * a_scale;
        c[j] += product * ws[j];
    }
}

// A tile of MR rows × 1 panel (16 columns) with AVX-VNNI.
AVX2VNNI INLINE void s8_tile_avxvnni(const int MR, int k4, const uint8_t *a, int lda, const float *as,
                                     const int8_t *w, const int32_t *comp, const float *ws, float *c, int ldc,
                                     int columns) {
    __m256i acc[6][2];
    UNROLL for (int r = 0; r < 6; r++) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
    for (int kq = 0; kq < k4 / 4; kq++) {
        const __m256i b0 = _mm256_loadu_si256((const __m256i *)(w + (size_t)kq * 64));
        const __m256i b1 = _mm256_loadu_si256((const __m256i *)(w + (size_t)kq * 64 + 32));
        UNROLL for (int r = 0; r < 6; r++) {
            if (r < MR) {
                int32_t word;
                memcpy(&word, a + (size_t)r * lda + 4 * kq, 4);
                const __m256i x = _mm256_set1_epi32(word);
                acc[r][0] = _mm256_dpbusd_avx_epi32(acc[r][0], x, b0);
                acc[r][1] = _mm256_dpbusd_avx_epi32(acc[r][1], x, b1);
            }
        }
    }
    UNROLL for (int r = 0; r < 6; r++) {
        if (r < MR) {
            s8_store8(acc[r][0], comp, ws, as[r], c + (size_t)r * ldc, columns);
            if (columns > 8) s8_store8(acc[r][1], comp + 8, ws + 8, as[r], c + (size_t)r * ldc + 8, columns - 8);
        }
    }
}

// A tile of MR rows × 1 panel with vpmaddwd on 16-bit halves: a is de-offset (u8 − 128) and w
// sign-extended, even and odd bytes apart, so no 16-bit sum can saturate; no compensation.
AVX2 INLINE void s8_tile_avx2(const int MR, int k4, const uint8_t *a, int lda, const float *as, const int8_t *w,
                              const int32_t *comp, const float *ws, float *c, int ldc, int columns) {
    __m256i acc[4][2];
    UNROLL for (int r = 0; r < 4; r++) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
    const __m256i low_bytes = _mm256_set1_epi16(0x00ff), offset = _mm256_set1_epi16(128);
    for (int kq = 0; kq < k4 / 4; kq++) {
        const __m256i b0 = _mm256_loadu_si256((const __m256i *)(w + (size_t)kq * 64));
        const __m256i b1 = _mm256_loadu_si256((const __m256i *)(w + (size_t)kq * 64 + 32));
        const __m256i b0e = _mm256_srai_epi16(_mm256_slli_epi16(b0, 8), 8), b0o = _mm256_srai_epi16(b0, 8);
        const __m256i b1e = _mm256_srai_epi16(_mm256_slli_epi16(b1, 8), 8), b1o = _mm256_srai_epi16(b1, 8);
        UNROLL for (int r = 0; r < 4; r++) {
            if (r < MR) {
                int32_t word;
                memcpy(&word, a + (size_t)r * lda + 4 * kq, 4);
                const __m256i x = _mm256_set1_epi32(word);
                const __m256i xe = _mm256_sub_epi16(_mm256_and_si256(x, low_bytes), offset);
                const __m256i xo = _mm256_sub_epi16(_mm256_srli_epi16(x, 8), offset);
                acc[r][0] = _mm256_add_epi32(
                    acc[r][0], _mm256_add_epi32(_mm256_madd_epi16(xe, b0e), _mm256_madd_epi16(xo, b0o)));
                acc[r][1] = _mm256_add_epi32(
                    acc[r][1], _mm256_add_epi32(_mm256_madd_epi16(xe, b1e), _mm256_madd_epi16(xo, b1o)));
            }
        }
    }
    // The sums are already Σ q·w: add back what s8_store8 subtracts.
    int32_t lanes[16];
    for (int j = 0; j < 16; j++) lanes[j] = j < columns ? comp[j] : 0;
    const __m256i back0 = _mm256_loadu_si256((const __m256i *)lanes), back1 = _mm256_loadu_si256((const __m256i *)(lanes + 8));
    UNROLL for (int r = 0; r < 4; r++) {
        if (r < MR) {
            s8_store8(_mm256_add_epi32(acc[r][0], back0), comp, ws, as[r], c + (size_t)r * ldc, columns);
            if (columns > 8)
                s8_store8(_mm256_add_epi32(acc[r][1], back1), comp + 8, ws + 8, as[r], c + (size_t)r * ldc + 8,
                          columns - 8);
        }
    }
}

#define PANEL_LOOP(TILE, MRMAX, ATTR, NAME)                                                                          \
    ATTR static void NAME(int m, int n, int k4, const uint8_t *a, int lda, const float *as, const int8_t *packed,   \
                          const int32_t *comp, const float *ws, float *c, int ldc) {                                 \
        for (int j = 0; j < n; j += PN) {                                                                            \
            const int8_t *w = packed + (size_t)(j / PN) * PN * k4;                                                   \
            const int columns = n - j < PN ? n - j : PN;                                                             \
            int i = 0;                                                                                               \
            for (; i + MRMAX <= m; i += MRMAX)                                                                       \
                TILE(MRMAX, k4, a + (size_t)i * lda, lda, as + i, w, comp + j, ws + j, c + (size_t)i * ldc + j, ldc, \
                     columns);                                                                                       \
            for (; i < m; i++)                                                                                       \
                TILE(1, k4, a + (size_t)i * lda, lda, as + i, w, comp + j, ws + j, c + (size_t)i * ldc + j, ldc,     \
                     columns);                                                                                       \
        }                                                                                                            \
    }
PANEL_LOOP(s8_tile_avxvnni, 6, AVX2VNNI, s8_gemm_avxvnni)
PANEL_LOOP(s8_tile_avx2, 4, AVX2, s8_gemm_avx2)
#undef PANEL_LOOP
#endif

void lstm_s8_gemm(int m, int n, int k, const uint8_t *a, int lda, const float *a_scales, const int8_t *packed,
                  const int32_t *compensation, const float *w_scales, float *c, int ldc) {
    if (m <= 0 || n <= 0) return;
    const int k4 = lstm_s8_padded_k(k);
#ifdef LSTM_X86
    switch (s8_body()) {
    case BODY_AVX512_VNNI: s8_gemm_vnni512(m, n, k4, a, lda, a_scales, packed, compensation, w_scales, c, ldc); return;
    case BODY_AVX2_VNNI: s8_gemm_avxvnni(m, n, k4, a, lda, a_scales, packed, compensation, w_scales, c, ldc); return;
    case BODY_AVX2: s8_gemm_avx2(m, n, k4, a, lda, a_scales, packed, compensation, w_scales, c, ldc); return;
    default: break;
    }
#endif
    s8_gemm_portable(m, n, k4, a, lda, a_scales, packed, compensation, w_scales, c, ldc);
}

// ---------------------------------------------------------------- bf16

int lstm_bf16_padded_k(int k) { return (k + 1) & ~1; }

size_t lstm_bf16_packed_count(int n, int k) {
    return (size_t)panel_count_even(n) * PN * (size_t)lstm_bf16_padded_k(k);
}

void lstm_bf16_pack(const uint16_t *w, int n, int k, int ldw, uint16_t *packed) {
    const int k2 = lstm_bf16_padded_k(k), panels = panel_count_even(n);
    for (int p = 0; p < panels; p++) {
        uint16_t *panel = packed + (size_t)p * PN * k2;
        for (int r = 0; r < PN; r++) {
            const int row = PN * p + r;
            for (int kk = 0; kk < k2; kk++)
                panel[(size_t)(kk / 2) * PN * 2 + r * 2 + kk % 2] = (row < n && kk < k) ? w[(size_t)row * ldw + kk] : 0;
        }
    }
}

void lstm_bf16_round_rows(const float *x, int m, int k, int ldx, uint16_t *out, int ldo) {
    const int k2 = lstm_bf16_padded_k(k);
    for (int i = 0; i < m; i++) {
        const float *row = x + (size_t)i * ldx;
        uint16_t *o = out + (size_t)i * ldo;
        for (int j = 0; j < k; j++) o[j] = lstm_float_to_bf16(row[j]);
        for (int j = k; j < k2; j++) o[j] = 0;
    }
}

static void bf16_gemm_portable(int m, int n, int k2, const uint16_t *a, int lda, const uint16_t *packed, float *c,
                               int ldc) {
    for (int j = 0; j < n; j++) {
        const uint16_t *panel = packed + (size_t)(j / PN) * PN * k2;
        const int r = j % PN;
        for (int i = 0; i < m; i++) {
            const uint16_t *row = a + (size_t)i * lda;
            float s = 0.0f;
            for (int kp = 0; kp < k2 / 2; kp++) {
                const uint16_t *pair = panel + (size_t)kp * PN * 2 + r * 2;
                s = fmaf(lstm_bf16_to_float(row[2 * kp + 1]), lstm_bf16_to_float(pair[1]), s);
                s = fmaf(lstm_bf16_to_float(row[2 * kp]), lstm_bf16_to_float(pair[0]), s);
            }
            c[(size_t)i * ldc + j] += s;
        }
    }
}

#ifdef LSTM_X86
AVX512 INLINE void add16(__m512 s, float *c, int count) {
    const __mmask16 m = count >= 16 ? 0xffff : (__mmask16)((1u << count) - 1);
    _mm512_mask_storeu_ps(c, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, c), s));
}

AVX2 INLINE void add8(__m256 s, float *c, int count) {
    if (count >= 8) {
        _mm256_storeu_ps(c, _mm256_add_ps(_mm256_loadu_ps(c), s));
        return;
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, s);
    for (int j = 0; j < count; j++) c[j] += lanes[j];
}

// MR rows × 2 panels with vdpbf16ps.
AVX512BF16 INLINE void bf16_tile_hw(const int MR, int k2, const uint16_t *a, int lda, const uint16_t *w, float *c,
                                   int ldc, int columns) {
    __m512 acc[6][2];
    UNROLL for (int r = 0; r < 6; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    const uint16_t *w1 = w + (size_t)PN * k2;
    for (int kp = 0; kp < k2 / 2; kp++) {
        const __m512bh b0 = (__m512bh)_mm512_loadu_si512(w + (size_t)kp * 32);
        const __m512bh b1 = (__m512bh)_mm512_loadu_si512(w1 + (size_t)kp * 32);
        UNROLL for (int r = 0; r < 6; r++) {
            if (r < MR) {
                int32_t word;
                memcpy(&word, a + (size_t)r * lda + 2 * kp, 4);
                const __m512bh x = (__m512bh)_mm512_set1_epi32(word);
                acc[r][0] = _mm512_dpbf16_ps(acc[r][0], x, b0);
                acc[r][1] = _mm512_dpbf16_ps(acc[r][1], x, b1);
            }
        }
    }
    UNROLL for (int r = 0; r < 6; r++) {
        if (r < MR) {
            add16(acc[r][0], c + (size_t)r * ldc, columns);
            if (columns > 16) add16(acc[r][1], c + (size_t)r * ldc + 16, columns - 16);
        }
    }
}

// The same arithmetic with AVX-512F: a bf16 pair widened to two float32 vectors (odd: the high
// half of each 32-bit lane; even: the low half shifted up), two FMAs, odd first.
AVX512 INLINE void bf16_tile_emulated512(const int MR, int k2, const uint16_t *a, int lda, const uint16_t *w,
                                         float *c, int ldc, int columns) {
    __m512 acc[6][2];
    UNROLL for (int r = 0; r < 6; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    const uint16_t *w1 = w + (size_t)PN * k2;
    const __m512i high = _mm512_set1_epi32((int)0xffff0000u);
    for (int kp = 0; kp < k2 / 2; kp++) {
        const __m512i b0 = _mm512_loadu_si512(w + (size_t)kp * 32), b1 = _mm512_loadu_si512(w1 + (size_t)kp * 32);
        const __m512 b0o = _mm512_castsi512_ps(_mm512_and_si512(b0, high));
        const __m512 b0e = _mm512_castsi512_ps(_mm512_slli_epi32(b0, 16));
        const __m512 b1o = _mm512_castsi512_ps(_mm512_and_si512(b1, high));
        const __m512 b1e = _mm512_castsi512_ps(_mm512_slli_epi32(b1, 16));
        UNROLL for (int r = 0; r < 6; r++) {
            if (r < MR) {
                const uint16_t *pair = a + (size_t)r * lda + 2 * kp;
                const __m512 xo = _mm512_set1_ps(lstm_bf16_to_float(pair[1]));
                const __m512 xe = _mm512_set1_ps(lstm_bf16_to_float(pair[0]));
                acc[r][0] = _mm512_fmadd_ps(xe, b0e, _mm512_fmadd_ps(xo, b0o, acc[r][0]));
                acc[r][1] = _mm512_fmadd_ps(xe, b1e, _mm512_fmadd_ps(xo, b1o, acc[r][1]));
            }
        }
    }
    UNROLL for (int r = 0; r < 6; r++) {
        if (r < MR) {
            add16(acc[r][0], c + (size_t)r * ldc, columns);
            if (columns > 16) add16(acc[r][1], c + (size_t)r * ldc + 16, columns - 16);
        }
    }
}

// MR rows × 1 panel in ymm.
AVX2 INLINE void bf16_tile_emulated256(const int MR, int k2, const uint16_t *a, int lda, const uint16_t *w,
                                       float *c, int ldc, int columns) {
    __m256 acc[4][2];
    UNROLL for (int r = 0; r < 4; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    const __m256i high = _mm256_set1_epi32((int)0xffff0000u);
    for (int kp = 0; kp < k2 / 2; kp++) {
        const __m256i b0 = _mm256_loadu_si256((const __m256i *)(w + (size_t)kp * 32));
        const __m256i b1 = _mm256_loadu_si256((const __m256i *)(w + (size_t)kp * 32 + 16));
        const __m256 b0o = _mm256_castsi256_ps(_mm256_and_si256(b0, high));
        const __m256 b0e = _mm256_castsi256_ps(_mm256_slli_epi32(b0, 16));
        const __m256 b1o = _mm256_castsi256_ps(_mm256_and_si256(b1, high));
        const __m256 b1e = _mm256_castsi256_ps(_mm256_slli_epi32(b1, 16));
        UNROLL for (int r = 0; r < 4; r++) {
            if (r < MR) {
                const uint16_t *pair = a + (size_t)r * lda + 2 * kp;
                const __m256 xo = _mm256_set1_ps(lstm_bf16_to_float(pair[1]));
                const __m256 xe = _mm256_set1_ps(lstm_bf16_to_float(pair[0]));
                acc[r][0] = _mm256_fmadd_ps(xe, b0e, _mm256_fmadd_ps(xo, b0o, acc[r][0]));
                acc[r][1] = _mm256_fmadd_ps(xe, b1e, _mm256_fmadd_ps(xo, b1o, acc[r][1]));
            }
        }
    }
    UNROLL for (int r = 0; r < 4; r++) {
        if (r < MR) {
            add8(acc[r][0], c + (size_t)r * ldc, columns);
            if (columns > 8) add8(acc[r][1], c + (size_t)r * ldc + 8, columns - 8);
        }
    }
}

// fp16 weights: 16 halves of one k widen to one zmm (a panel's 16 rows); FMA with a broadcast x.
AVX512 INLINE void f16_tile512(const int MR, int k, const float *a, int lda, const uint16_t *w, float *c, int ldc,
                               int columns) {
    __m512 acc[6][2];
    UNROLL for (int r = 0; r < 6; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    const uint16_t *w1 = w + (size_t)PN * k;
    for (int kk = 0; kk < k; kk++) {
        const __m512 b0 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(w + (size_t)kk * PN)));
        const __m512 b1 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(w1 + (size_t)kk * PN)));
        UNROLL for (int r = 0; r < 6; r++) {
            if (r < MR) {
                const __m512 x = _mm512_set1_ps(a[(size_t)r * lda + kk]);
                acc[r][0] = _mm512_fmadd_ps(x, b0, acc[r][0]);
                acc[r][1] = _mm512_fmadd_ps(x, b1, acc[r][1]);
            }
        }
    }
    UNROLL for (int r = 0; r < 6; r++) {
        if (r < MR) {
            add16(acc[r][0], c + (size_t)r * ldc, columns);
            if (columns > 16) add16(acc[r][1], c + (size_t)r * ldc + 16, columns - 16);
        }
    }
}

AVX2 INLINE void f16_tile256(const int MR, int k, const float *a, int lda, const uint16_t *w, float *c, int ldc,
                             int columns) {
    __m256 acc[6][2];
    UNROLL for (int r = 0; r < 6; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    for (int kk = 0; kk < k; kk++) {
        const __m256 b0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + (size_t)kk * PN)));
        const __m256 b1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + (size_t)kk * PN + 8)));
        UNROLL for (int r = 0; r < 6; r++) {
            if (r < MR) {
                const __m256 x = _mm256_set1_ps(a[(size_t)r * lda + kk]);
                acc[r][0] = _mm256_fmadd_ps(x, b0, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(x, b1, acc[r][1]);
            }
        }
    }
    UNROLL for (int r = 0; r < 6; r++) {
        if (r < MR) {
            add8(acc[r][0], c + (size_t)r * ldc, columns);
            if (columns > 8) add8(acc[r][1], c + (size_t)r * ldc + 8, columns - 8);
        }
    }
}

// The loop over column blocks (2 panels for the zmm tiles, 1 for the ymm ones) and row tiles.
#define TILED_GEMM(NAME, ATTR, TILE, MRMAX, PANELS, ATYPE, KWIDTH)                                                   \
    ATTR static void NAME(int m, int n, int kw, const ATYPE *a, int lda, const uint16_t *packed, float *c, int ldc) { \
        for (int j = 0; j < n; j += PANELS * PN) {                                                                   \
            const uint16_t *w = packed + (size_t)(j / PN) * PN * kw;                                                 \
            const int columns = n - j < PANELS * PN ? n - j : PANELS * PN;                                           \
            int i = 0;                                                                                               \
            for (; i + MRMAX <= m; i += MRMAX)                                                                       \
                TILE(MRMAX, kw, a + (size_t)i * lda, lda, w, c + (size_t)i * ldc + j, ldc, columns);                 \
            switch (m - i) {                                                                                         \
            case 1: TILE(1, kw, a + (size_t)i * lda, lda, w, c + (size_t)i * ldc + j, ldc, columns); break;          \
            case 2: TILE(2, kw, a + (size_t)i * lda, lda, w, c + (size_t)i * ldc + j, ldc, columns); break;          \
            case 3: TILE(3, kw, a + (size_t)i * lda, lda, w, c + (size_t)i * ldc + j, ldc, columns); break;          \
            case 4: TILE(4, kw, a + (size_t)i * lda, lda, w, c + (size_t)i * ldc + j, ldc, columns); break;          \
            case 5: TILE(5, kw, a + (size_t)i * lda, lda, w, c + (size_t)i * ldc + j, ldc, columns); break;          \
            default: break;                                                                                          \
            }                                                                                                        \
        }                                                                                                            \
    }
TILED_GEMM(bf16_gemm_hw, AVX512BF16, bf16_tile_hw, 6, 2, uint16_t, k2)
TILED_GEMM(bf16_gemm_emulated512, AVX512, bf16_tile_emulated512, 6, 2, uint16_t, k2)
TILED_GEMM(bf16_gemm_emulated256, AVX2, bf16_tile_emulated256, 4, 1, uint16_t, k2)
TILED_GEMM(f16_gemm512, AVX512, f16_tile512, 6, 2, float, k)
TILED_GEMM(f16_gemm256, AVX2, f16_tile256, 6, 1, float, k)
#undef TILED_GEMM
#endif

void lstm_bf16_gemm(int m, int n, int k, const uint16_t *a, int lda, const uint16_t *packed, float *c, int ldc) {
    if (m <= 0 || n <= 0) return;
    const int k2 = lstm_bf16_padded_k(k);
#ifdef LSTM_X86
    switch (bf16_body()) {
    case BODY_AVX512_BF16: bf16_gemm_hw(m, n, k2, a, lda, packed, c, ldc); return;
    case BODY_AVX512: bf16_gemm_emulated512(m, n, k2, a, lda, packed, c, ldc); return;
    case BODY_AVX2: bf16_gemm_emulated256(m, n, k2, a, lda, packed, c, ldc); return;
    default: break;
    }
#endif
    bf16_gemm_portable(m, n, k2, a, lda, packed, c, ldc);
}

// ---------------------------------------------------------------- fp16

size_t lstm_f16_packed_count(int n, int k) { return (size_t)panel_count_even(n) * PN * (size_t)k; }

void lstm_f16_pack(const uint16_t *w, int n, int k, int ldw, uint16_t *packed) {
    const int panels = panel_count_even(n);
    for (int p = 0; p < panels; p++) {
        uint16_t *panel = packed + (size_t)p * PN * k;
        for (int kk = 0; kk < k; kk++)
            for (int r = 0; r < PN; r++) {
                const int row = PN * p + r;
                panel[(size_t)kk * PN + r] = row < n ? w[(size_t)row * ldw + kk] : 0;
            }
    }
}

static void f16_gemm_portable(int m, int n, int k, const float *a, int lda, const uint16_t *packed, float *c,
                              int ldc) {
    for (int j = 0; j < n; j++) {
        const uint16_t *panel = packed + (size_t)(j / PN) * PN * k;
        const int r = j % PN;
        for (int i = 0; i < m; i++) {
            const float *row = a + (size_t)i * lda;
            float s = 0.0f;
            for (int kk = 0; kk < k; kk++) s = fmaf(row[kk], lstm_f16_to_float(panel[(size_t)kk * PN + r]), s);
            c[(size_t)i * ldc + j] += s;
        }
    }
}

void lstm_f16_gemm(int m, int n, int k, const float *a, int lda, const uint16_t *packed, float *c, int ldc) {
    if (m <= 0 || n <= 0) return;
#ifdef LSTM_X86
    switch (f16_body()) {
    case BODY_AVX512: f16_gemm512(m, n, k, a, lda, packed, c, ldc); return;
    case BODY_AVX2: f16_gemm256(m, n, k, a, lda, packed, c, ldc); return;
    default: break;
    }
#endif
    f16_gemm_portable(m, n, k, a, lda, packed, c, ldc);
}
