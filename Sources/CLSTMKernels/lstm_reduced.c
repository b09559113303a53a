// See include/lstm_reduced.h. Every body computes the same integers (int8) or the same sequence
// of float operations (bf16, fp16) as the portable one, so results agree bit for bit across
// variants; the SIMD bodies are compiled with function-level target attributes and chosen at
// run time (lstm_kernels_variant), never at build time.
#include "lstm_reduced.h"
#include "lstm_kernels.h"
#include <float.h>
#include <math.h>
#include <string.h>
#include <time.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define LSTM_X86 1
#endif

// Products and sums are written as separate operations on purpose: a contracted a*b + c would
// round differently from the SIMD bodies' explicit multiply and add.
#pragma STDC FP_CONTRACT OFF
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")  // GCC ignores the standard pragma
#endif

#define PN LSTM_PANEL_ROWS

#if defined(__clang__)
#define UNROLL _Pragma("clang loop unroll(full)")
#else
#define UNROLL _Pragma("GCC unroll 16")
#endif
#define INLINE static inline __attribute__((always_inline))

// Panels a packed matrix is allocated with: its own rounded up to even, and 8 more of zeros, so
// that a tile of up to 8 panels starting at any of its panels reads allocated memory.
static int panel_count_even(int n) {
    const int panels = (n + PN - 1) / PN;
    return ((panels + 1) & ~1) + 8;
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

enum body { BODY_PORTABLE, BODY_AVX2, BODY_AVX2_VNNI, BODY_AVX512, BODY_AVX512_VNNI, BODY_AVX512_BF16, BODY_AMX };

static int s8_body(void) {
    switch (lstm_kernels_variant()) {
    case LSTM_VARIANT_AVX512_AMX: return BODY_AMX;
    case LSTM_VARIANT_AVX512_VNNI: return BODY_AVX512_VNNI;
    case LSTM_VARIANT_AVX2_VNNI: return BODY_AVX2_VNNI;
    case LSTM_VARIANT_AVX512:
    case LSTM_VARIANT_AVX2: return BODY_AVX2;
    default: return BODY_PORTABLE;
    }
}

#ifdef LSTM_X86
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma,avx512bf16"))) static double time_dpbf16(int rounds);
__attribute__((target("avx512f,fma"))) static double time_fma_pairs(int rounds);
#endif

// -1 until measured; then 1 when vdpbf16ps computes bf16 products faster than the two FMAs per
// pair of the emulation on this CPU (it does not on the Xeon here: ~42 GMAC/s against ~80 for
// FMA, per core), else 0. lstm_bf16_set_hardware overrides it (tests).
static int bf16_hardware_state = -1;

static int bf16_hardware_faster(void) {
    int state = __atomic_load_n(&bf16_hardware_state, __ATOMIC_RELAXED);
    if (state >= 0) return state;
#ifdef LSTM_X86
    state = 0;
    if (has_avx512_bf16()) {
        double hardware = 1e30, emulated = 1e30;  // the best of 3, after a warm-up
        for (int round = 0; round < 4; round++) {
            const double h = time_dpbf16(2000), e = time_fma_pairs(2000);
            if (round > 0 && h < hardware) hardware = h;
            if (round > 0 && e < emulated) emulated = e;
        }
        state = hardware * 1.1 < emulated;  // both loops do the same number of MACs
    }
#else
    state = 0;
#endif
    // Threads that measured at once agree on the first result stored.
    int unset = -1;
    __atomic_compare_exchange_n(&bf16_hardware_state, &unset, state, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
    return __atomic_load_n(&bf16_hardware_state, __ATOMIC_ACQUIRE);
}

int lstm_bf16_set_hardware(int use) {
    if (use < 0) {
        __atomic_store_n(&bf16_hardware_state, -1, __ATOMIC_RELAXED);
        return 0;
    }
    if (use && !has_avx512_bf16()) return -1;
    __atomic_store_n(&bf16_hardware_state, use ? 1 : 0, __ATOMIC_RELAXED);
    return 0;
}

static int bf16_body(void) {
    switch (lstm_kernels_variant()) {
    case LSTM_VARIANT_AVX512_AMX:
    case LSTM_VARIANT_AVX512_VNNI: return has_avx512_bf16() && bf16_hardware_faster() ? BODY_AVX512_BF16 : BODY_AVX512;
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
        case BODY_AMX: return "avx512-amx (tdpbusd)";
        case BODY_AVX512_VNNI: return "avx512-vnni (vpdpbusd)";
        case BODY_AVX2_VNNI: return "avx-vnni (vpdpbusd)";
        case BODY_AVX2: return "avx2 (vpmaddwd)";
        default: return "portable";
        }
    case 1:
        switch (bf16_body()) {
        case BODY_AVX512_BF16: return "avx512-bf16 (vdpbf16ps)";
        case BODY_AVX512: return "avx512 (fma, vdpbf16ps's arithmetic)";
        case BODY_AVX2: return "avx2 (fma, vdpbf16ps's arithmetic)";
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

// k padded to a multiple of 64: whole AMX tiles of 64 bytes per row (and 16 groups of 4 for
// vpdpbusd); the padding is zeros in the weights, so it adds nothing to any sum.
int lstm_s8_padded_k(int k) { return (k + 63) & ~63; }

size_t lstm_s8_packed_bytes(int n, int k) {
    return (size_t)panel_count_even(n) * PN * (size_t)lstm_s8_padded_k(k);
}

void lstm_s8_pack(const int8_t *w, int n, int k, int ldw, int8_t *packed, int32_t *compensation) {
    const int k4 = lstm_s8_padded_k(k), panels = panel_count_even(n);
    for (int p = 0; p < panels; p++) {
        int8_t *panel = packed + (size_t)p * PN * k4;
        for (int r = 0; r < PN; r++) {
            const int row = PN * p + r;
            int32_t sum = 0;  // |Σ| ≤ 127·k: 128·Σ fits int32 for k ≤ LSTM_S8_MAX_K
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
    // A row whose largest value is below 127 / FLT_MAX (about 3.7e-37) has no finite inverse
    // scale: it quantizes as a row of zeros (scale 0), as the Swift rule does.
    const float inverse = finite && amax > 0.0f ? 127.0f / amax : 0.0f;
    if (!finite || !(inverse <= FLT_MAX) || amax == 0.0f) {
        memset(q, 128, (size_t)k4);
        *scale = finite ? 0.0f : NAN;
        return;
    }
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
    const float scalar_inverse = finite == 0xffff && top > 0.0f ? 127.0f / top : 0.0f;
    if (finite != 0xffff || top == 0.0f || !(scalar_inverse <= FLT_MAX)) {  // as quantize_row_portable
        memset(q, 128, (size_t)k4);
        *scale = finite != 0xffff ? NAN : 0.0f;
        return;
    }
    const __m512 inverse = _mm512_set1_ps(scalar_inverse);
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

// A tile of MR rows × NP panels with vpdpbusd (MR·NP ≤ 24 accumulators): 12 × 2 for row blocks
// (measured fastest of 6×2 ... 14×2, 8×3, 6×4 and 4×4 on the Xeon here), and for the last rows
// of a product wider tiles (3 × 8, 6 × 4), so that a single row still has 8 independent sums
// in flight (a vpdpbusd's latency is ~5 cycles). Every output's sum is the same sequence of
// vpdpbusd whatever the tile, so results do not depend on the tiling.
AVX512VNNI INLINE void s8_tile_vnni512(const int MR, const int NP, int k4, const uint8_t *a, int lda, const float *as,
                                       const int8_t *w, const int32_t *comp, const float *ws, float *c, int ldc,
                                       int columns) {
    __m512i acc[12][8];
    UNROLL for (int r = 0; r < 12; r++) UNROLL for (int p = 0; p < 8; p++) acc[r][p] = _mm512_setzero_si512();
    for (int kq = 0; kq < k4 / 4; kq++) {
        __m512i b[8];
        UNROLL for (int p = 0; p < 8; p++) if (p < NP) b[p] = _mm512_loadu_si512(w + (size_t)p * PN * k4 + (size_t)kq * 64);
        UNROLL for (int r = 0; r < 12; r++) {
            if (r < MR) {
                int32_t word;
                memcpy(&word, a + (size_t)r * lda + 4 * kq, 4);
                const __m512i x = _mm512_set1_epi32(word);
                UNROLL for (int p = 0; p < 8; p++) if (p < NP) acc[r][p] = _mm512_dpbusd_epi32(acc[r][p], x, b[p]);
            }
        }
    }
    UNROLL for (int r = 0; r < 12; r++) {
        if (r < MR) {
            UNROLL for (int p = 0; p < 8; p++) {
                if (p < NP && columns > 16 * p)
                    s8_store16(acc[r][p], comp + 16 * p, ws + 16 * p, as[r], c + (size_t)r * ldc + 16 * p,
                               columns - 16 * p);
            }
        }
    }
}

// The order the zmm bodies cover a product in, blocked for the caches: a block of
// COLUMN_BLOCK columns (its weights L2-resident) at a time; within it each tile of rows of A
// (L1-resident) meets every group of panels of the block in turn. TILE_CALL(MR, NP) runs one
// tile at rows i, columns j (of which `columns` are wanted).
#define COLUMN_BLOCK 256
#define ZMM_TILES(TILE_CALL)                                                                                         \
    for (int jb = 0; jb < n; jb += COLUMN_BLOCK) {                                                                   \
        const int jend = n - jb < COLUMN_BLOCK ? n : jb + COLUMN_BLOCK;                                              \
        for (int i = 0; i < m; i += 12) {                                                                            \
            const int rows = m - i < 12 ? m - i : 12;                                                                \
            const int np = rows <= 3 ? 8 : rows <= 6 ? 4 : 2;                                                        \
            for (int j = jb; j < jend; j += np * PN) {                                                               \
                const int columns = jend - j < np * PN ? jend - j : np * PN;                                         \
                switch (rows) {                                                                                      \
                case 1: TILE_CALL(1, 8); break;                                                                      \
                case 2: TILE_CALL(2, 8); break;                                                                      \
                case 3: TILE_CALL(3, 8); break;                                                                      \
                case 4: TILE_CALL(4, 4); break;                                                                      \
                case 5: TILE_CALL(5, 4); break;                                                                      \
                case 6: TILE_CALL(6, 4); break;                                                                      \
                case 7: TILE_CALL(7, 2); break;                                                                      \
                case 8: TILE_CALL(8, 2); break;                                                                      \
                case 9: TILE_CALL(9, 2); break;                                                                      \
                case 10: TILE_CALL(10, 2); break;                                                                    \
                case 11: TILE_CALL(11, 2); break;                                                                    \
                default: TILE_CALL(12, 2); break;                                                                    \
                }                                                                                                    \
            }                                                                                                        \
        }                                                                                                            \
    }

AVX512VNNI static void s8_gemm_vnni512(int m, int n, int k4, const uint8_t *a, int lda, const float *as,
                                       const int8_t *packed, const int32_t *comp, const float *ws, float *c, int ldc) {
#define S8_TILE(MR, NP)                                                                                             \
    s8_tile_vnni512(MR, NP, k4, a + (size_t)i * lda, lda, as + i, packed + (size_t)(j / PN) * PN * k4, comp + j, ws + j, \
                    c + (size_t)i * ldc + j, ldc, columns)
    ZMM_TILES(S8_TILE)
#undef S8_TILE
}

// ---------------------------------------------------------------- int8 with AMX

#if defined(LSTM_X86) && defined(__linux__)
#define LSTM_AMX 1
#include <sys/syscall.h>
#include <unistd.h>
#define AMX __attribute__((target("amx-tile,amx-int8,avx512f,avx512bw,avx512dq,avx512vl,fma,f16c")))

// Whether this process may use AMX tiles: the CPU has AMX-INT8 and Linux grants the tile data
// state on request (arch_prctl ARCH_REQ_XCOMP_PERM, Linux 5.16+). Asked once.
static int amx_state = -1;

// Whether the CPU has AMX-INT8 and the kernel supports the tile state (ARCH_GET_XCOMP_SUPP,
// which changes nothing); the process asks for the state itself only before its first AMX
// product (amx_permitted), so a process that never runs one keeps its signal frames small.
int lstm_amx_usable(void) {
    int state = __atomic_load_n(&amx_state, __ATOMIC_RELAXED);
    if (state >= 0) return state;
    __builtin_cpu_init();
    state = 0;
    if (__builtin_cpu_supports("amx-tile") && __builtin_cpu_supports("amx-int8")) {
        const long ARCH_GET_XCOMP_SUPP = 0x1021, XFEATURE_XTILEDATA = 18;
        unsigned long long features = 0;
        state = syscall(SYS_arch_prctl, ARCH_GET_XCOMP_SUPP, &features) == 0 &&
                (features & (1ull << XFEATURE_XTILEDATA)) != 0;
    }
    __atomic_store_n(&amx_state, state, __ATOMIC_RELAXED);
    return state;
}

// -1 until asked; then whether Linux granted this process the AMX tile state.
static int amx_permission = -1;

static int amx_permitted(void) {
    int state = __atomic_load_n(&amx_permission, __ATOMIC_ACQUIRE);
    if (state >= 0) return state;
    const long ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18;
    state = syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
    __atomic_store_n(&amx_permission, state, __ATOMIC_RELEASE);
    return state;
}

// The tile configuration (palette 1): tiles 0-3 C (int32 sums), 4-5 A (rows × 64 bytes), 6-7 B
// (16 rows of 4 k × 16 outputs: one panel's 64 k, exactly the packed layout).
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} amx_config;

AMX static void amx_configure(int rows0, int rows1) {
    amx_config config;
    memset(&config, 0, sizeof config);
    config.palette = 1;
    const int rows[8] = {rows0, rows0, rows1, rows1, rows0, rows1, 16, 16};
    for (int t = 0; t < 8; t++) {
        config.rows[t] = (uint8_t)(rows[t] > 0 ? rows[t] : 1);
        config.colsb[t] = 64;
    }
    _tile_loadconfig(&config);
}

// C[i, j] += dequantized sums for a block of up to 32 rows (rows0 + rows1) and 2 panels, k4 a
// multiple of 64: A tiles of 16 rows × 64 k, B tiles of a panel's 64 k, 4 tdpbusd per chunk.
AMX static void s8_block_amx(int rows0, int rows1, int k4, const uint8_t *a, int lda, const float *as,
                             const int8_t *w, const int32_t *comp, const float *ws, float *c, int ldc, int columns) {
    const int8_t *w1 = w + (size_t)PN * k4;
    _tile_zero(0);
    _tile_zero(1);
    if (rows1 > 0) {
        _tile_zero(2);
        _tile_zero(3);
    }
    for (int kc = 0; kc < k4; kc += 64) {
        _tile_loadd(4, a + kc, lda);
        _tile_loadd(6, w + (size_t)kc * PN, 64);
        _tile_loadd(7, w1 + (size_t)kc * PN, 64);
        _tile_dpbusd(0, 4, 6);
        _tile_dpbusd(1, 4, 7);
        if (rows1 > 0) {
            _tile_loadd(5, a + (size_t)16 * lda + kc, lda);
            _tile_dpbusd(2, 5, 6);
            _tile_dpbusd(3, 5, 7);
        }
    }
    int32_t sums[32][32];
    _tile_stored(0, &sums[0][0], 128);
    _tile_stored(1, &sums[0][16], 128);
    if (rows1 > 0) {
        _tile_stored(2, &sums[16][0], 128);
        _tile_stored(3, &sums[16][16], 128);
    }
    for (int r = 0; r < rows0 + rows1; r++) {
        s8_store16(_mm512_loadu_si512(&sums[r][0]), comp, ws, as[r], c + (size_t)r * ldc, columns);
        if (columns > 16)
            s8_store16(_mm512_loadu_si512(&sums[r][16]), comp + 16, ws + 16, as[r], c + (size_t)r * ldc + 16,
                       columns - 16);
    }
}

// Blocked as s8_gemm_vnni512: a block of COLUMN_BLOCK columns at a time, 32 rows of A against
// each pair of its panels; the tiles are configured per shape of row block.
AMX static void s8_gemm_amx(int m, int n, int k4, const uint8_t *a, int lda, const float *as, const int8_t *packed,
                            const int32_t *comp, const float *ws, float *c, int ldc) {
    int configured0 = -1, configured1 = -1;
    for (int jb = 0; jb < n; jb += COLUMN_BLOCK) {
        const int jend = n - jb < COLUMN_BLOCK ? n : jb + COLUMN_BLOCK;
        for (int i = 0; i < m; i += 32) {
            const int rows = m - i < 32 ? m - i : 32;
            const int rows0 = rows < 16 ? rows : 16, rows1 = rows - rows0;
            if (rows0 != configured0 || rows1 != configured1) {
                amx_configure(rows0, rows1);
                configured0 = rows0;
                configured1 = rows1;
            }
            for (int j = jb; j < jend; j += 2 * PN) {
                const int columns = jend - j < 2 * PN ? jend - j : 2 * PN;
                s8_block_amx(rows0, rows1, k4, a + (size_t)i * lda, lda, as + i, packed + (size_t)(j / PN) * PN * k4,
                             comp + j, ws + j, c + (size_t)i * ldc + j, ldc, columns);
            }
        }
    }
    _tile_release();
}
#endif

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

#ifndef LSTM_AMX
int lstm_amx_usable(void) { return 0; }
#endif

void lstm_s8_gemm(int m, int n, int k, const uint8_t *a, int lda, const float *a_scales, const int8_t *packed,
                  const int32_t *compensation, const float *w_scales, float *c, int ldc) {
    if (m <= 0 || n <= 0) return;
    const int k4 = lstm_s8_padded_k(k);
#ifdef LSTM_X86
    switch (s8_body()) {
#ifdef LSTM_AMX
    case BODY_AMX:
        // Below 4 rows a tile is mostly empty and the vpdpbusd tiles are faster (measured); where
        // Linux refuses the tile state, vpdpbusd too (the same numbers).
        if (m >= 4 && amx_permitted()) {
            s8_gemm_amx(m, n, k4, a, lda, a_scales, packed, compensation, w_scales, c, ldc);
        } else {
            s8_gemm_vnni512(m, n, k4, a, lda, a_scales, packed, compensation, w_scales, c, ldc);
        }
        return;
#else
    case BODY_AMX:
#endif
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

int lstm_bf16_activation_bytes(void) { return bf16_body() == BODY_AVX512_BF16 ? 2 : 4; }

#ifdef LSTM_X86
// lstm_float_to_bf16 then back to float, 16 lanes at a time (the same bit operations).
AVX512 static void bf16_round_row_avx512(const float *x, int k, float *out) {
    const __m512i magnitude = _mm512_set1_epi32(0x7fffffff), infinity = _mm512_set1_epi32(0x7f800000);
    const __m512i high = _mm512_set1_epi32((int)0xffff0000u), sign = _mm512_set1_epi32((int)0x80000000u);
    const __m512i quiet = _mm512_set1_epi32(0x00400000), half = _mm512_set1_epi32(0x7fff), one = _mm512_set1_epi32(1);
    for (int j = 0; j < k; j += 16) {
        const __mmask16 m = k - j >= 16 ? 0xffff : (__mmask16)((1u << (k - j)) - 1);
        const __m512i u = _mm512_castps_si512(_mm512_maskz_loadu_ps(m, x + j));
        const __m512i even = _mm512_and_si512(_mm512_srli_epi32(u, 16), one);
        __m512i v = _mm512_and_si512(_mm512_add_epi32(u, _mm512_add_epi32(half, even)), high);
        const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, magnitude), infinity);
        v = _mm512_mask_mov_epi32(v, nan, _mm512_and_si512(_mm512_or_si512(u, quiet), high));
        const __mmask16 tiny = _mm512_testn_epi32_mask(u, infinity);  // zero or subnormal: ±0
        v = _mm512_mask_mov_epi32(v, tiny, _mm512_and_si512(u, sign));
        _mm512_mask_storeu_ps(out + j, m, _mm512_castsi512_ps(v));
    }
}
#endif

void lstm_bf16_round_rows(const float *x, int m, int k, int ldx, void *out, int ldo) {
    const int k2 = lstm_bf16_padded_k(k);
    const int packed = lstm_bf16_activation_bytes() == 2;
    for (int i = 0; i < m; i++) {
        const float *row = x + (size_t)i * ldx;
#ifdef LSTM_X86
        if (!packed && lstm_kernels_float_variant() == LSTM_VARIANT_AVX512) {
            float *o = (float *)out + (size_t)i * ldo;
            bf16_round_row_avx512(row, k, o);
            for (int j = k; j < k2; j++) o[j] = 0.0f;
            continue;
        }
#endif
        if (packed) {
            uint16_t *o = (uint16_t *)out + (size_t)i * ldo;
            for (int j = 0; j < k; j++) o[j] = lstm_float_to_bf16(row[j]);
            for (int j = k; j < k2; j++) o[j] = 0;
        } else {
            float *o = (float *)out + (size_t)i * ldo;
            for (int j = 0; j < k; j++) o[j] = lstm_bf16_to_float(lstm_float_to_bf16(row[j]));
            for (int j = k; j < k2; j++) o[j] = 0.0f;
        }
    }
}

static void bf16_gemm_portable(int m, int n, int k2, const float *a, int lda, const uint16_t *packed, float *c,
                               int ldc) {
    for (int j = 0; j < n; j++) {
        const uint16_t *panel = packed + (size_t)(j / PN) * PN * k2;
        const int r = j % PN;
        for (int i = 0; i < m; i++) {
            const float *row = a + (size_t)i * lda;
            float s = 0.0f;
            for (int kp = 0; kp < k2 / 2; kp++) {
                const uint16_t *pair = panel + (size_t)kp * PN * 2 + r * 2;
                s = fmaf(row[2 * kp + 1], lstm_bf16_to_float(pair[1]), s);
                s = fmaf(row[2 * kp], lstm_bf16_to_float(pair[0]), s);
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

// MR rows × NP panels with vdpbf16ps (tiles as s8_tile_vnni512's).
AVX512BF16 INLINE void bf16_tile_hw(const int MR, const int NP, int k2, const uint16_t *a, int lda, const uint16_t *w,
                                   float *c, int ldc, int columns) {
    __m512 acc[12][8];
    UNROLL for (int r = 0; r < 12; r++) UNROLL for (int p = 0; p < 8; p++) acc[r][p] = _mm512_setzero_ps();
    for (int kp = 0; kp < k2 / 2; kp++) {
        __m512bh b[8];
        UNROLL for (int p = 0; p < 8; p++) if (p < NP) b[p] = (__m512bh)_mm512_loadu_si512(w + (size_t)p * PN * k2 + (size_t)kp * 32);
        UNROLL for (int r = 0; r < 12; r++) {
            if (r < MR) {
                int32_t word;
                memcpy(&word, a + (size_t)r * lda + 2 * kp, 4);
                const __m512bh x = (__m512bh)_mm512_set1_epi32(word);
                UNROLL for (int p = 0; p < 8; p++) if (p < NP) acc[r][p] = _mm512_dpbf16_ps(acc[r][p], x, b[p]);
            }
        }
    }
    UNROLL for (int r = 0; r < 12; r++)
        if (r < MR) UNROLL for (int p = 0; p < 8; p++)
            if (p < NP && columns > 16 * p) add16(acc[r][p], c + (size_t)r * ldc + 16 * p, columns - 16 * p);
}

// The same arithmetic with AVX-512F: a bf16 pair of weights widened to two float32 vectors (odd:
// the high half of each 32-bit lane; even: the low half shifted up), the activations already
// float32 (bf16 values), two FMAs, odd first.
AVX512 INLINE void bf16_tile_emulated512(const int MR, const int NP, int k2, const float *a, int lda,
                                         const uint16_t *w, float *c, int ldc, int columns) {
    __m512 acc[12][8];
    UNROLL for (int r = 0; r < 12; r++) UNROLL for (int p = 0; p < 8; p++) acc[r][p] = _mm512_setzero_ps();
    const __m512i high = _mm512_set1_epi32((int)0xffff0000u);
    for (int kp = 0; kp < k2 / 2; kp++) {
        __m512 bo[8], be[8];
        UNROLL for (int p = 0; p < 8; p++) {
            if (p < NP) {
                const __m512i b = _mm512_loadu_si512(w + (size_t)p * PN * k2 + (size_t)kp * 32);
                bo[p] = _mm512_castsi512_ps(_mm512_and_si512(b, high));
                be[p] = _mm512_castsi512_ps(_mm512_slli_epi32(b, 16));
            }
        }
        UNROLL for (int r = 0; r < 12; r++) {
            if (r < MR) {
                const float *pair = a + (size_t)r * lda + 2 * kp;
                const __m512 xo = _mm512_set1_ps(pair[1]), xe = _mm512_set1_ps(pair[0]);
                UNROLL for (int p = 0; p < 8; p++)
                    if (p < NP) acc[r][p] = _mm512_fmadd_ps(xe, be[p], _mm512_fmadd_ps(xo, bo[p], acc[r][p]));
            }
        }
    }
    UNROLL for (int r = 0; r < 12; r++)
        if (r < MR) UNROLL for (int p = 0; p < 8; p++)
            if (p < NP && columns > 16 * p) add16(acc[r][p], c + (size_t)r * ldc + 16 * p, columns - 16 * p);
}

// MR rows × 1 panel in ymm (activations float32, as the AVX-512 emulation).
AVX2 INLINE void bf16_tile_emulated256(const int MR, int k2, const float *a, int lda, const uint16_t *w, float *c,
                                       int ldc, int columns) {
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
                const float *pair = a + (size_t)r * lda + 2 * kp;
                const __m256 xo = _mm256_set1_ps(pair[1]), xe = _mm256_set1_ps(pair[0]);
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

// fp16 weights: 16 halves of one k widen to one zmm (a panel's 16 rows); FMA with a broadcast x
// (tiles as s8_tile_vnni512's).
AVX512 INLINE void f16_tile512(const int MR, const int NP, int k, const float *a, int lda, const uint16_t *w, float *c,
                               int ldc, int columns) {
    __m512 acc[12][8];
    UNROLL for (int r = 0; r < 12; r++) UNROLL for (int p = 0; p < 8; p++) acc[r][p] = _mm512_setzero_ps();
    for (int kk = 0; kk < k; kk++) {
        __m512 b[8];
        UNROLL for (int p = 0; p < 8; p++)
            if (p < NP) b[p] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(w + (size_t)p * PN * k + (size_t)kk * PN)));
        UNROLL for (int r = 0; r < 12; r++) {
            if (r < MR) {
                const __m512 x = _mm512_set1_ps(a[(size_t)r * lda + kk]);
                UNROLL for (int p = 0; p < 8; p++) if (p < NP) acc[r][p] = _mm512_fmadd_ps(x, b[p], acc[r][p]);
            }
        }
    }
    UNROLL for (int r = 0; r < 12; r++)
        if (r < MR) UNROLL for (int p = 0; p < 8; p++)
            if (p < NP && columns > 16 * p) add16(acc[r][p], c + (size_t)r * ldc + 16 * p, columns - 16 * p);
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

// The loop over the products' tiles, blocked for the caches as s8_gemm_vnni512: a block of
// COLUMN_BLOCK columns (its weights L2-resident) at a time; each tile of MRMAX rows of A
// (L1-resident) meets every group of PANELS panels of the block in turn.
#define TILED_GEMM(NAME, ATTR, TILE, MRMAX, PANELS, ATYPE, KWIDTH)                                                   \
    ATTR static void NAME(int m, int n, int kw, const ATYPE *a, int lda, const uint16_t *packed, float *c, int ldc) { \
        for (int jb = 0; jb < n; jb += COLUMN_BLOCK) {                                                            \
            const int jend = n - jb < COLUMN_BLOCK ? n : jb + COLUMN_BLOCK;                                    \
            for (int i = 0; i < m; i += MRMAX) {                                                                     \
                const int rows = m - i < MRMAX ? m - i : MRMAX;                                                      \
                for (int j = jb; j < jend; j += PANELS * PN) {                                                       \
                    const uint16_t *w = packed + (size_t)(j / PN) * PN * kw;                                         \
                    const int columns = jend - j < PANELS * PN ? jend - j : PANELS * PN;                             \
                    const ATYPE *ai = a + (size_t)i * lda;                                                           \
                    float *ci = c + (size_t)i * ldc + j;                                                             \
                    switch (rows) {                                                                                  \
                    case 1: TILE(1, kw, ai, lda, w, ci, ldc, columns); break;                                        \
                    case 2: TILE(2, kw, ai, lda, w, ci, ldc, columns); break;                                        \
                    case 3: TILE(3, kw, ai, lda, w, ci, ldc, columns); break;                                        \
                    case 4: TILE(4, kw, ai, lda, w, ci, ldc, columns); break;                                        \
                    case 5: TILE(5, kw, ai, lda, w, ci, ldc, columns); break;                                        \
                    case 6: TILE(6, kw, ai, lda, w, ci, ldc, columns); break;                                        \
                    case 7: TILE(7, kw, ai, lda, w, ci, ldc, columns); break;                                        \
                    case 8: TILE(8, kw, ai, lda, w, ci, ldc, columns); break;                                        \
                    case 9: TILE(9, kw, ai, lda, w, ci, ldc, columns); break;                                        \
                    case 10: TILE(10, kw, ai, lda, w, ci, ldc, columns); break;                                      \
                    case 11: TILE(11, kw, ai, lda, w, ci, ldc, columns); break;                                      \
                    case 12: TILE(12, kw, ai, lda, w, ci, ldc, columns); break;                                      \
                    default: break;                                                                                  \
                    }                                                                                                \
                }                                                                                                    \
            }                                                                                                        \
        }                                                                                                            \
    }
TILED_GEMM(bf16_gemm_emulated256, AVX2, bf16_tile_emulated256, 4, 1, float, k2)
TILED_GEMM(f16_gemm256, AVX2, f16_tile256, 6, 1, float, k)

#define ZMM_GEMM(NAME, ATTR, TILE, ATYPE)                                                                            \
    ATTR static void NAME(int m, int n, int kw, const ATYPE *a, int lda, const uint16_t *packed, float *c, int ldc) { \
        ZMM_TILES(ZMM_TILE_CALL)                                                                                     \
    }
#define ZMM_TILE_CALL(MR, NP)                                                                                        \
    ZMM_TILE(MR, NP, kw, a + (size_t)i * lda, lda, packed + (size_t)(j / PN) * PN * kw, c + (size_t)i * ldc + j, ldc,    \
             columns)
#define ZMM_TILE bf16_tile_hw
ZMM_GEMM(bf16_gemm_hw, AVX512BF16, bf16_tile_hw, uint16_t)
#undef ZMM_TILE
#define ZMM_TILE bf16_tile_emulated512
ZMM_GEMM(bf16_gemm_emulated512, AVX512, bf16_tile_emulated512, float)
#undef ZMM_TILE
#define ZMM_TILE f16_tile512
ZMM_GEMM(f16_gemm512, AVX512, f16_tile512, float)
#undef ZMM_TILE
#undef TILED_GEMM
#endif

void lstm_bf16_gemm(int m, int n, int k, const void *a, int lda, const uint16_t *packed, float *c, int ldc) {
    if (m <= 0 || n <= 0) return;
    const int k2 = lstm_bf16_padded_k(k);
#ifdef LSTM_X86
    switch (bf16_body()) {
    case BODY_AVX512_BF16: bf16_gemm_hw(m, n, k2, (const uint16_t *)a, lda, packed, c, ldc); return;
    case BODY_AVX512: bf16_gemm_emulated512(m, n, k2, (const float *)a, lda, packed, c, ldc); return;
    case BODY_AVX2: bf16_gemm_emulated256(m, n, k2, (const float *)a, lda, packed, c, ldc); return;
    default: break;
    }
#endif
    bf16_gemm_portable(m, n, k2, (const float *)a, lda, packed, c, ldc);
}

#ifdef LSTM_X86
// The calibration loops of bf16_hardware_faster: `rounds` × 12 independent sums, the same MACs
// (12 × 32 per round) by vdpbf16ps and by two FMAs per pair; seconds taken.
static double seconds_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

// In inline assembly, so that the measurement is the instructions' and not the compiler's (a
// debug build keeps C accumulators in memory): 12 independent sums of 1.0 × 1.0 per round.
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma,avx512bf16"))) static double time_dpbf16(int rounds) {
    const __m512 one = _mm512_set1_ps(1.0f);
    const double start = seconds_now();
    for (int round = 0; round < rounds; round++) {
        __asm__ volatile(
            "vdpbf16ps %0, %0, %%zmm0\n\tvdpbf16ps %0, %0, %%zmm1\n\tvdpbf16ps %0, %0, %%zmm2\n\t"
            "vdpbf16ps %0, %0, %%zmm3\n\tvdpbf16ps %0, %0, %%zmm4\n\tvdpbf16ps %0, %0, %%zmm5\n\t"
            "vdpbf16ps %0, %0, %%zmm6\n\tvdpbf16ps %0, %0, %%zmm7\n\tvdpbf16ps %0, %0, %%zmm8\n\t"
            "vdpbf16ps %0, %0, %%zmm9\n\tvdpbf16ps %0, %0, %%zmm10\n\tvdpbf16ps %0, %0, %%zmm11"
            :
            : "v"(one)
            : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11");
    }
    return seconds_now() - start;
}

__attribute__((target("avx512f,fma"))) static double time_fma_pairs(int rounds) {
    const __m512 one = _mm512_set1_ps(1.0f);
    const double start = seconds_now();
    for (int round = 0; round < rounds; round++) {
        __asm__ volatile(
            "vfmadd231ps %0, %0, %%zmm0\n\tvfmadd231ps %0, %0, %%zmm1\n\tvfmadd231ps %0, %0, %%zmm2\n\t"
            "vfmadd231ps %0, %0, %%zmm3\n\tvfmadd231ps %0, %0, %%zmm4\n\tvfmadd231ps %0, %0, %%zmm5\n\t"
            "vfmadd231ps %0, %0, %%zmm6\n\tvfmadd231ps %0, %0, %%zmm7\n\tvfmadd231ps %0, %0, %%zmm8\n\t"
            "vfmadd231ps %0, %0, %%zmm9\n\tvfmadd231ps %0, %0, %%zmm10\n\tvfmadd231ps %0, %0, %%zmm11\n\t"
            "vfmadd231ps %0, %0, %%zmm0\n\tvfmadd231ps %0, %0, %%zmm1\n\tvfmadd231ps %0, %0, %%zmm2\n\t"
            "vfmadd231ps %0, %0, %%zmm3\n\tvfmadd231ps %0, %0, %%zmm4\n\tvfmadd231ps %0, %0, %%zmm5\n\t"
            "vfmadd231ps %0, %0, %%zmm6\n\tvfmadd231ps %0, %0, %%zmm7\n\tvfmadd231ps %0, %0, %%zmm8\n\t"
            "vfmadd231ps %0, %0, %%zmm9\n\tvfmadd231ps %0, %0, %%zmm10\n\tvfmadd231ps %0, %0, %%zmm11"
            :
            : "v"(one)
            : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11");
    }
    return seconds_now() - start;
}
#endif

// ---------------------------------------------------------------- fp16

#ifdef LSTM_X86
// out[kk] = the float value of column[kk·16] for kk < k (one packed row's halves), 8 at a time.
AVX2 static void widen_f16_column(const uint16_t *column, int k, float *out) {
    int kk = 0;
    for (; kk + 8 <= k; kk += 8) {
        const __m128i halves = _mm_setr_epi16(
            (short)column[(size_t)kk * PN], (short)column[(size_t)(kk + 1) * PN], (short)column[(size_t)(kk + 2) * PN],
            (short)column[(size_t)(kk + 3) * PN], (short)column[(size_t)(kk + 4) * PN],
            (short)column[(size_t)(kk + 5) * PN], (short)column[(size_t)(kk + 6) * PN],
            (short)column[(size_t)(kk + 7) * PN]);
        _mm256_storeu_ps(out + kk, _mm256_cvtph_ps(halves));
    }
    for (; kk < k; kk++) out[kk] = lstm_f16_to_float(column[(size_t)kk * PN]);
}
#endif

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

void lstm_bf16_widen_rows(const uint16_t *packed, int k, int row0, int rows, float *out, int ldo) {
    const int k2 = lstm_bf16_padded_k(k);
    for (int i = 0; i < rows; i++) {
        const int row = row0 + i;
        const uint16_t *panel = packed + (size_t)(row / PN) * PN * k2;
        float *o = out + (size_t)i * ldo;
        for (int kk = 0; kk < k; kk++) o[kk] = lstm_bf16_to_float(panel[(size_t)(kk / 2) * PN * 2 + (row % PN) * 2 + kk % 2]);
    }
}

void lstm_f16_widen_rows(const uint16_t *packed, int k, int row0, int rows, float *out, int ldo) {
    for (int i = 0; i < rows; i++) {
        const int row = row0 + i;
        const uint16_t *panel = packed + (size_t)(row / PN) * PN * k;
        float *o = out + (size_t)i * ldo;
#ifdef LSTM_X86
        if (f16_body() != BODY_PORTABLE) {  // the variant in force has F16C and AVX2
            widen_f16_column(panel + row % PN, k, o);
            continue;
        }
#endif
        for (int kk = 0; kk < k; kk++) o[kk] = lstm_f16_to_float(panel[(size_t)kk * PN + row % PN]);
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
