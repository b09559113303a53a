import CBLAS
import Foundation

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
    if m == 1, !transposeA {
        // One row: a matrix-vector product (OpenBLAS's sgemm is slow for M = 1).
        if transposeB {   // c[n] = B[n, k] · a[k]
            cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(n), Int32(k), alpha, b, Int32(ldb), a, 1, beta, c, 1)
        } else {          // c[n] = B[k, n]ᵀ · a[k]
            cblas_sgemv(CblasRowMajor, CblasTrans, Int32(k), Int32(n), alpha, b, Int32(ldb), a, 1, beta, c, 1)
        }
        return
    }
    cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// The CPU path's parallelism. The CPU path splits its work over its own team of threads
/// (`WorkerTeam`) and calls OpenBLAS single-threaded from each, so OpenBLAS's own pool is
/// kept at one thread.
public enum CPUThreads {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var count = ProcessInfo.processInfo.activeProcessorCount

    /// The most threads a CPU backend uses: the active cores. The step loop meets at a barrier
    /// once or twice per time step, so threads beyond the cores only wait on each other.
    public static var maximum: Int { ProcessInfo.processInfo.activeProcessorCount }

    /// Threads of CPU backends created from now on (default: the active cores), clamped to
    /// 1...`maximum`. Returns the count that will be used.
    @discardableResult
    public static func set(_ threads: Int) -> Int {
        lock.lock(); defer { lock.unlock() }
        count = min(max(1, threads), maximum)
        return count
    }

    public static var current: Int {
        lock.lock(); defer { lock.unlock() }
        return count
    }

    static func singleThreadedBLAS() { openblas_set_num_threads(1) }
}
