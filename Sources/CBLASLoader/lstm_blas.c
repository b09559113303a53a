// See include/lstm_blas.h.
#define _GNU_SOURCE
#include "lstm_blas.h"
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define LSTM_X86 1
#endif

unsigned lstm_cpu_features(void) {
    unsigned f = 0;
#ifdef LSTM_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx")) f |= LSTM_CPU_AVX;
    if (__builtin_cpu_supports("avx2")) f |= LSTM_CPU_AVX2;
    if (__builtin_cpu_supports("fma")) f |= LSTM_CPU_FMA;
    if (__builtin_cpu_supports("avx512f")) f |= LSTM_CPU_AVX512F;
    if (__builtin_cpu_supports("avx512bw")) f |= LSTM_CPU_AVX512BW;
    if (__builtin_cpu_supports("avx512dq")) f |= LSTM_CPU_AVX512DQ;
    if (__builtin_cpu_supports("avx512vl")) f |= LSTM_CPU_AVX512VL;
    if (__builtin_cpu_is("intel")) f |= LSTM_CPU_VENDOR_INTEL;
    if (__builtin_cpu_is("amd")) f |= LSTM_CPU_VENDOR_AMD;
#endif
    return f;
}

typedef void (*sgemm_fn)(int, int, int, int, int, int, float, const float *, int, const float *, int, float, float *, int);
typedef void (*sgemv_fn)(int, int, int, int, float, const float *, int, const float *, int, float, float *, int);
typedef void (*set_threads_fn)(int);
typedef char *(*string_fn)(void);

// Written once by lstm_blas_open (before any computation starts), read by every thread after.
static sgemm_fn blas_sgemm;
static sgemv_fn blas_sgemv;
static set_threads_fn blas_set_threads;
static string_fn blas_config, blas_corename;
static char blas_file[4096];

static const char *const library_names[] = {"libopenblas.so.0", "libopenblas.so", "libcblas.so.3", "libblas.so.3"};
enum { library_count = sizeof library_names / sizeof library_names[0] };

int lstm_blas_already_loaded(const char *only) {
    const char *const *names = only ? &only : library_names;
    const int count = only ? 1 : library_count;
    for (int i = 0; i < count; i++) {
        void *handle = dlopen(names[i], RTLD_LAZY | RTLD_NOLOAD);
        if (handle) { dlclose(handle); return 1; }
    }
    return 0;
}

int lstm_blas_open(const char *only, char *error, size_t error_size) {
    if (__atomic_load_n(&blas_sgemm, __ATOMIC_ACQUIRE)) return 1;
    const char *const *names = only ? &only : library_names;
    const int count = only ? 1 : library_count;
    char first_error[512] = "";
    for (int i = 0; i < count; i++) {
        void *handle = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (!handle) {
            if (!first_error[0]) { const char *e = dlerror(); snprintf(first_error, sizeof first_error, "%s", e ? e : names[i]); }
            continue;
        }
        sgemm_fn sgemm = (sgemm_fn)dlsym(handle, "cblas_sgemm");
        sgemv_fn sgemv = (sgemv_fn)dlsym(handle, "cblas_sgemv");
        if (!sgemm || !sgemv) {   // a BLAS without the C interface
            if (!first_error[0]) snprintf(first_error, sizeof first_error, "%s has no cblas_sgemm/cblas_sgemv", names[i]);
            dlclose(handle);
            continue;
        }
        blas_set_threads = (set_threads_fn)dlsym(handle, "openblas_set_num_threads");
        blas_config = (string_fn)dlsym(handle, "openblas_get_config");
        blas_corename = (string_fn)dlsym(handle, "openblas_get_corename");
        Dl_info info;
        if (dladdr((void *)sgemm, &info) && info.dli_fname) snprintf(blas_file, sizeof blas_file, "%s", info.dli_fname);
        else snprintf(blas_file, sizeof blas_file, "%s", names[i]);
        __atomic_store_n(&blas_sgemv, sgemv, __ATOMIC_RELEASE);
        __atomic_store_n(&blas_sgemm, sgemm, __ATOMIC_RELEASE);
        return 1;   // the handle stays open for the life of the process
    }
    if (error && error_size) {
        if (only) snprintf(error, error_size, "no usable BLAS library: %s", first_error);
        else snprintf(error, error_size, "no BLAS library found (tried libopenblas.so.0, libopenblas.so, libcblas.so.3,"
                      " libblas.so.3; first error: %s)", first_error);
    }
    return 0;
}

int lstm_blas_loaded(void) { return __atomic_load_n(&blas_sgemm, __ATOMIC_ACQUIRE) != NULL; }

const char *lstm_blas_path(void) { return lstm_blas_loaded() ? blas_file : NULL; }

const char *lstm_blas_config(void) { return lstm_blas_loaded() && blas_config ? blas_config() : NULL; }

const char *lstm_blas_corename(void) { return lstm_blas_loaded() && blas_corename ? blas_corename() : NULL; }

void lstm_blas_set_num_threads(int threads) {
    if (lstm_blas_loaded() && blas_set_threads) blas_set_threads(threads);
}

void lstm_blas_sgemm(int order, int transA, int transB, int m, int n, int k, float alpha,
                     const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc) {
    sgemm_fn f = __atomic_load_n(&blas_sgemm, __ATOMIC_ACQUIRE);
    if (f) { f(order, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc); return; }
    // Row-major reference loops (only reached when no library could be loaded).
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            float sum = 0;
            for (int p = 0; p < k; p++) {
                const float x = transA == LSTM_BLAS_TRANS ? a[(size_t)p * lda + i] : a[(size_t)i * lda + p];
                const float y = transB == LSTM_BLAS_TRANS ? b[(size_t)j * ldb + p] : b[(size_t)p * ldb + j];
                sum += x * y;
            }
            float *out = &c[(size_t)i * ldc + j];
            *out = alpha * sum + (beta == 0 ? 0 : beta * *out);
        }
    }
}

void lstm_blas_sgemv(int order, int trans, int m, int n, float alpha, const float *a, int lda,
                     const float *x, int incx, float beta, float *y, int incy) {
    sgemv_fn f = __atomic_load_n(&blas_sgemv, __ATOMIC_ACQUIRE);
    if (f) { f(order, trans, m, n, alpha, a, lda, x, incx, beta, y, incy); return; }
    const int rows = trans == LSTM_BLAS_TRANS ? n : m, inner = trans == LSTM_BLAS_TRANS ? m : n;
    for (int i = 0; i < rows; i++) {
        float sum = 0;
        for (int j = 0; j < inner; j++) {
            const float v = trans == LSTM_BLAS_TRANS ? a[(size_t)j * lda + i] : a[(size_t)i * lda + j];
            sum += v * x[(size_t)j * incx];
        }
        float *out = &y[(size_t)i * incy];
        *out = alpha * sum + (beta == 0 ? 0 : beta * *out);
    }
}
