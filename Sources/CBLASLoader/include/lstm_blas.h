// The CPU path's BLAS, loaded at run time (dlopen) rather than linked, so that LSTMKit can
// choose OpenBLAS's kernels (OPENBLAS_CORETYPE) before OpenBLAS's library constructor reads
// that variable, and so that a missing BLAS is an error at first use instead of a failure to
// start. The few functions the engine calls are resolved once (dlsym) into pointers kept here.
// Internal to LSTMKit: Swift reaches it through Sources/LSTMKit/CPU/BLAS.swift.
#ifndef LSTM_BLAS_H
#define LSTM_BLAS_H
#include <stddef.h>

// CBLAS's enumerations, with CBLAS's values (so no cblas.h is needed to build).
enum { LSTM_BLAS_ROW_MAJOR = 101, LSTM_BLAS_NO_TRANS = 111, LSTM_BLAS_TRANS = 112 };

/// Processor features that matter for the choice of BLAS kernels (bits of lstm_cpu_features()).
enum {
    LSTM_CPU_AVX = 1 << 0, LSTM_CPU_AVX2 = 1 << 1, LSTM_CPU_FMA = 1 << 2,
    LSTM_CPU_AVX512F = 1 << 3, LSTM_CPU_AVX512BW = 1 << 4, LSTM_CPU_AVX512DQ = 1 << 5,
    LSTM_CPU_AVX512VL = 1 << 6,
    LSTM_CPU_VENDOR_INTEL = 1 << 16, LSTM_CPU_VENDOR_AMD = 1 << 17,
};

/// This processor's features as CPUID reports them and the operating system enables them
/// (__builtin_cpu_supports checks both); 0 on other architectures.
unsigned lstm_cpu_features(void);

/// 1 when one of the libraries lstm_blas_open would try is already in the process (loaded by
/// the program or another library before LSTMKit): its kernels were chosen then.
int lstm_blas_already_loaded(const char *only);

/// Loads the first library that opens and has cblas_sgemm and cblas_sgemv: `only` when it is
/// not NULL (a file name or path, as dlopen takes it), else libopenblas.so.0, libopenblas.so,
/// libcblas.so.3, libblas.so.3. Returns 1 on success (also when already loaded); otherwise 0
/// and a message in `error`. Not thread-safe: the caller calls it once.
int lstm_blas_open(const char *only, char *error, size_t error_size);

/// 1 once lstm_blas_open has succeeded.
int lstm_blas_loaded(void);

/// The loaded library's file (as the dynamic loader found it), or NULL.
const char *lstm_blas_path(void);

/// OpenBLAS's openblas_get_config() ("OpenBLAS 0.3.21 DYNAMIC_ARCH ..."), or NULL for another BLAS.
const char *lstm_blas_config(void);

/// OpenBLAS's openblas_get_corename() (the kernels it runs, e.g. "SkylakeX"), or NULL.
const char *lstm_blas_corename(void);

/// openblas_set_num_threads where the library has it; otherwise nothing.
void lstm_blas_set_num_threads(int threads);

/// cblas_sgemm / cblas_sgemv of the loaded library (row-major only here). Without a loaded
/// library they compute the same result with plain loops (slowly): LSTMKit checks for the
/// library at first use and throws before computing, so this is only a guard against a crash.
void lstm_blas_sgemm(int order, int transA, int transB, int m, int n, int k, float alpha,
                     const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc);
void lstm_blas_sgemv(int order, int trans, int m, int n, float alpha, const float *a, int lda,
                     const float *x, int incx, float beta, float *y, int incy);

#endif
