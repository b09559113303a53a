import CBLAS

/// Row-major sgemm: C[m, n] = alpha · op(A)[m, k] · op(B)[k, n] + beta · C.
@inline(__always)
func sgemm(transposeA: Bool = false, transposeB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
           a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
           beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
    guard m > 0, n > 0 else { return }
    guard k > 0 else {
        for r in 0..<m { for col in 0..<n { c[r * ldc + col] = beta == 0 ? 0 : beta * c[r * ldc + col] } }
        return
    }
    cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// OpenBLAS's thread pool size (the CPU path's parallelism).
public enum BLASThreads {
    public static func set(_ count: Int) { openblas_set_num_threads(Int32(count)) }
    public static var current: Int { Int(openblas_get_num_threads()) }
}
