import Foundation
@_spi(Backend) import LSTMCore

/// How the threads of one direction share its time-step loop on the CPU path.
///
/// The input projection before the loop and the weight gradients after it are always shared
/// by gate columns; this chooses only the recurrence in between.
public enum CPUStepSplit: String, Sendable, CaseIterable, CustomStringConvertible {
    /// Each thread owns a range of hidden units, for every batch row: it reads only its
    /// share of W_hh each step, but every thread needs all of h(t) before step t+1, so the
    /// threads meet at a barrier every step (two with projection). Right for small batches
    /// and for recurrent weights too large for one core's L2 cache.
    case units
    /// Each thread owns a range of batch rows, for every unit: the rows of a batch are
    /// independent, so the loop needs no barrier at all, but every thread reads all of W_hh
    /// (and W_hr) every step. Right when the weights stay in each core's L2 cache and each
    /// thread has rows enough to fill its GEMM micro-kernel's register tile.
    case batch
    /// `batch` where it pays (`CPUStepSplit.resolved`), `units` elsewhere.
    case automatic

    public var description: String { rawValue }

    /// Rows each thread needs under `.batch` for `.automatic` to choose it: below this the
    /// micro-kernel's tile (up to 12 rows) runs mostly empty and `units` wins.
    public static let minimumRowsPerThread = 8

    /// The bytes of a core's L2 cache (sysconf; 1 MiB when the system does not say), the
    /// budget `.automatic` allows the recurrent weights under `.batch`.
    public static let levelTwoCacheBytes: Int = {
        #if os(Linux)
        let reported = sysconf(Int32(_SC_LEVEL2_CACHE_SIZE))
        if reported > 0 { return reported }
        #endif
        return 1 << 20
    }()

    /// The split `threads` threads use for a direction of shape `s`: `.units` or `.batch`.
    /// `.automatic` takes `.batch` when there are at least two threads, each gets at least
    /// `minimumRowsPerThread` rows, and the recurrent weights read every step (4H·Hout, plus
    /// P·H with projection, in float32) fill at most half of `levelTwoCacheBytes`, so the
    /// rest stays for the rows' states and gates.
    func resolved(for s: DirectionShape, threads: Int) -> CPUStepSplit {
        guard threads > 1 else { return .units }
        switch self {
        case .units, .batch: return s.batch >= threads ? self : .units
        case .automatic:
            let weights = 4 * (s.gateWidth * s.outputSize + (s.projects ? s.outputSize * s.hiddenSize : 0))
            let fits = weights <= Self.levelTwoCacheBytes / 2
            return fits && s.batch >= threads * Self.minimumRowsPerThread ? .batch : .units
        }
    }
}
