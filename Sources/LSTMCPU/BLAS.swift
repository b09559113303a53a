import CBLASLoader
import Foundation
@_spi(Backend) import LSTMCore

/// The CPU path's BLAS library, loaded at first use (dlopen, see Sources/CBLASLoader) rather
/// than linked: OpenBLAS picks its kernels once, in its library constructor, from
/// OPENBLAS_CORETYPE or its own CPU detection, and an OpenBLAS that does not know this
/// processor falls back to old kernels (Debian's 0.3.21 runs SSE3 "Prescott" kernels on new
/// AVX-512 Xeons, 6x slower). So unless the user set OPENBLAS_CORETYPE, the variable is set
/// from CPUID (`CPUInfo.openBLASCore(for:)`) just for the load, then restored.
/// LSTM_GPU_BLAS names another library to load instead (a file name or path, e.g. MKL's
/// libmkl_rt.so; any library with cblas_sgemm and cblas_sgemv).
enum BLASLibrary {
    struct State: Sendable {
        /// Why no library could be loaded; nil when one was.
        var error: String?
        /// Who chose the kernels: see `CPUInfo.blasCoreChosenBy`.
        var chosenBy: String
        /// The core LSTMKit asked for (OPENBLAS_CORETYPE during the load), when it asked.
        var requestedCore: String?
    }

    static let variable = "OPENBLAS_CORETYPE"
    static let libraryVariable = "LSTM_GPU_BLAS"

    /// Loads the library (once, on first access).
    static let state: State = load()

    /// Throws `LSTMError.missingLibrary` when no BLAS library could be loaded.
    static func require() throws {
        if let error = state.error { throw LSTMError.missingLibrary(error) }
    }

    private static func load() -> State {
        let userValue = getenv(variable).map { String(cString: $0) }
        let only = getenv(libraryVariable).map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 }
        var requested: String?
        var chosenBy: String
        if let userValue, !userValue.isEmpty {
            chosenBy = "environment"
        } else if lstm_blas_already_loaded(only) != 0 {
            chosenBy = "preloaded"  // in the process before LSTMKit: its constructor has run
        } else if let core = CPUInfo.openBLASCore(for: .current) {
            setenv(variable, core, 1)  // unset or empty: nothing the user chose is overwritten
            requested = core
            chosenBy = "cpuid"
        } else {
            chosenBy = "library"
        }
        var message = [CChar](repeating: 0, count: 1024)
        let loaded = lstm_blas_open(only, &message, message.count) != 0
        if requested != nil {
            // OpenBLAS has read it; child processes see the environment the user gave.
            if let userValue { setenv(variable, userValue, 1) } else { unsetenv(variable) }
        }
        if loaded, lstm_blas_corename() == nil { chosenBy = "not-openblas" }
        let error = loaded ? nil : message.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        return State(error: error, chosenBy: chosenBy, requestedCore: requested)
    }
}

/// Row-major sgemm: C[m, n] = alpha · op(A)[m, k] · op(B)[k, n] + beta · C.
@inline(__always)
func sgemm(
    transposeA: Bool = false, transposeB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
    a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
) {
    guard m > 0, n > 0 else { return }
    guard k > 0 else {
        for r in 0..<m { for col in 0..<n { c[r * ldc + col] = beta == 0 ? 0 : beta * c[r * ldc + col] } }
        return
    }
    let rowMajor = Int32(LSTM_BLAS_ROW_MAJOR), noTrans = Int32(LSTM_BLAS_NO_TRANS), trans = Int32(LSTM_BLAS_TRANS)
    if m == 1, !transposeA {
        // One row: a matrix-vector product (OpenBLAS's sgemm is slow for M = 1).
        if transposeB {  // c[n] = B[n, k] · a[k]
            lstm_blas_sgemv(rowMajor, noTrans, Int32(n), Int32(k), alpha, b, Int32(ldb), a, 1, beta, c, 1)
        } else {  // c[n] = B[k, n]ᵀ · a[k]
            lstm_blas_sgemv(rowMajor, trans, Int32(k), Int32(n), alpha, b, Int32(ldb), a, 1, beta, c, 1)
        }
        return
    }
    lstm_blas_sgemm(
        rowMajor, transposeA ? trans : noTrans, transposeB ? trans : noTrans,
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

    /// Loads the BLAS library if it is not yet loaded and keeps its own pool at one thread.
    static func singleThreadedBLAS() {
        _ = BLASLibrary.state
        lstm_blas_set_num_threads(1)
    }

    /// The least recurrent work per thread and step, in FLOPs, for which a CPU backend made
    /// without an explicit thread count (`CPUBackend()`) adds a thread to one direction.
    ///
    /// The threads of a direction meet at a barrier every step, so a step must carry enough
    /// work to pay for the meeting. Measured on the 2-core Intel Xeon (KVM, AVX-512) of the
    /// development machine, idle (`bench --threads 1` vs `2`, forward / training step median):
    /// H=128 B=8 T=20 (1.0 MFLOP of recurrent work per step) 0.31 / 0.97 vs 0.28 / 1.13 ms;
    /// H=128 B=8 T=50 (1.0 M) 0.92 / 2.72 vs 0.76 / 2.51 ms; serve-512-b1 (2.1 M) 4.8 / 12.1
    /// vs 2.1 / 6.3 ms; H=256 B=8 (4.2 M) 3.2 / 10.2 vs 2.0 / 6.4 ms; the char-LM's 1×512
    /// B=32 (67 M) 61.8 / 191 vs 31.4 / 104 ms. Hence 2^20 (1 MFLOP): a direction gets
    /// ⌊work per step / this⌋ threads (at least 1, at most its share of the team). On a busy
    /// machine a waiting thread can lose a whole scheduler slice at the barrier and larger
    /// shapes gain less (under a load average of ~3 a 2-thread stack-2x512 forward took 674 ms
    /// against 350 on 1): raise this, or make the backend with `CPUBackend(threads:)`, which
    /// uses exactly that many; 0 always uses every thread.
    public static var minimumStepWorkPerThread: Double {
        get { lock.lock(); defer { lock.unlock() }; return stepWork }
        set { lock.lock(); defer { lock.unlock() }; stepWork = max(0, newValue) }
    }
    nonisolated(unsafe) private static var stepWork: Double = 1_048_576

    /// Threads one direction of this shape is worth: ⌊2·B·4H·Hout (+ 2·B·H·P) / minimumStepWorkPerThread⌋,
    /// between 1 and `limit`.
    static func threads(hiddenSize: Int, outputSize: Int, batch: Int, limit: Int) -> Int {
        let threshold = minimumStepWorkPerThread
        guard threshold > 0 else { return max(1, limit) }
        var work = 2 * Double(batch) * 4 * Double(hiddenSize) * Double(outputSize)
        if outputSize != hiddenSize { work += 2 * Double(batch) * Double(hiddenSize) * Double(outputSize) }
        return max(1, min(limit, Int(min(work / threshold, Double(Int32.max)))))
    }
}
