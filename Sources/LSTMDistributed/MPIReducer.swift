import CMPI
import Foundation
import LSTMKit

/// Data parallelism over Open MPI: the `GradientReducer` for `mpirun -np N lstm-gpu train …`.
/// MPI errors come back as thrown errors (MPI_ERRORS_RETURN); a watchdog thread ends the job
/// with a clear message when a collective makes no progress for `timeout` seconds (another
/// rank died or hangs), instead of waiting forever.
public final class MPIReducer: GradientReducer {
    public let rank: Int
    public let size: Int
    /// Ranks on this machine and this rank's index among them (for picking a GPU per rank).
    public let localRank: Int
    public private(set) var secondsInCollectives = 0.0
    private let watchdog: CollectiveWatchdog

    /// Whether this process was started by an MPI launcher with more than one rank.
    public static var launchedByMPI: Bool {
        let environment = ProcessInfo.processInfo.environment
        return environment["OMPI_COMM_WORLD_SIZE"] != nil || environment["PMI_SIZE"] != nil
            || environment["PMIX_RANK"] != nil
    }

    /// Initialises MPI (once per process).
    public init(timeout: Double = 300) throws {
        var initialised: Int32 = 0
        MPI_Initialized(&initialised)
        if initialised == 0 {
            var argc: Int32 = 0
            var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = nil
            try MPIReducer.check(MPI_Init(&argc, &argv), "MPI_Init")
        }
        MPI_Comm_set_errhandler(lstm_mpi_comm_world(), lstm_mpi_errors_return())
        var rank: Int32 = 0, size: Int32 = 0
        try MPIReducer.check(MPI_Comm_rank(lstm_mpi_comm_world(), &rank), "MPI_Comm_rank")
        try MPIReducer.check(MPI_Comm_size(lstm_mpi_comm_world(), &size), "MPI_Comm_size")
        self.rank = Int(rank)
        self.size = Int(size)
        localRank = Int(ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_LOCAL_RANK"] ?? "") ?? Int(rank)
        watchdog = CollectiveWatchdog(rank: Int(rank), timeout: timeout)
    }

    /// Ends MPI cleanly (call once, at the end of the run, on every rank).
    public func finish() { MPI_Finalize() }

    /// Ends every rank of the job (after an error on one of them).
    public func abort(_ code: Int32) -> Never {
        MPI_Abort(lstm_mpi_comm_world(), code)
        exit(code)
    }

    public func allreduceSum(_ values: inout [Float]) throws {
        let start = Date()
        try Self.requireMPICount(values.count)
        try watchdog.guarding("MPI_Allreduce of \(values.count) floats") {
            try values.withUnsafeMutableBufferPointer { buffer in
                try MPIReducer.check(
                    MPI_Allreduce(
                        lstm_mpi_in_place(), buffer.baseAddress, Int32(exactly: buffer.count)!, lstm_mpi_float(),
                        lstm_mpi_sum(), lstm_mpi_comm_world()), "MPI_Allreduce")
            }
        }
        secondsInCollectives += Date().timeIntervalSince(start)
    }

    public func broadcast(_ values: inout [Float], root: Int) throws {
        try Self.requireMPICount(values.count)
        try watchdog.guarding("MPI_Bcast of \(values.count) floats") {
            try values.withUnsafeMutableBufferPointer { buffer in
                try MPIReducer.check(
                    MPI_Bcast(
                        buffer.baseAddress, Int32(exactly: buffer.count)!, lstm_mpi_float(), Int32(root),
                        lstm_mpi_comm_world()), "MPI_Bcast")
            }
        }
    }

    public func requireAgreement(fingerprint: UInt64, description: String) throws {
        var extremes: [UInt64] = [fingerprint, ~fingerprint]  // max of both = (max, ~min)
        try watchdog.guarding("MPI_Allreduce (configuration check)") {
            try extremes.withUnsafeMutableBufferPointer { buffer in
                try MPIReducer.check(
                    MPI_Allreduce(
                        lstm_mpi_in_place(), buffer.baseAddress, 2, lstm_mpi_uint64(), lstm_mpi_max(),
                        lstm_mpi_comm_world()), "MPI_Allreduce")
            }
        }
        if extremes[0] != ~extremes[1] {
            throw DistributedError.mismatch(
                "rank \(rank) has \(description), but another rank's configuration or data differs "
                    + "(every rank must run the same command on the same text)")
        }
    }

    /// MPI counts are 32-bit: a larger buffer is refused rather than truncated.
    static func requireMPICount(_ count: Int) throws {
        guard count <= Int(Int32.max) else {
            throw DistributedError.collectiveFailed(
                "a collective of \(count) floats exceeds MPI's 32-bit count (2^31 − 1): the model is too large for data parallelism here"
            )
        }
    }

    static func check(_ status: Int32, _ call: String) throws {
        guard status != lstm_mpi_success() else { return }
        var message = [CChar](repeating: 0, count: Int(lstm_mpi_max_error_string()) + 1)
        var length: Int32 = 0
        MPI_Error_string(status, &message, &length)
        throw DistributedError.collectiveFailed(
            "\(call): \(String(decoding: message.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self))")
    }
}

/// Ends the process with a message when a guarded operation runs past its deadline.
final class CollectiveWatchdog: @unchecked Sendable {
    let rank: Int
    let timeout: Double
    private let lock = NSLock()
    private var deadline: Date?
    private var what = ""

    init(rank: Int, timeout: Double) {
        self.rank = rank
        self.timeout = timeout
        let thread = Thread { [weak self] in
            while let self {
                Thread.sleep(forTimeInterval: 1)
                self.lock.lock()
                let expired = self.deadline.map { Date() > $0 } ?? false
                let what = self.what
                self.lock.unlock()
                if expired {
                    FileHandle.standardError.write(
                        Data(
                            ("lstm-gpu: rank \(rank): no progress in \(what) for \(Int(timeout)) s; "
                                + "another rank has probably died or hangs. Stopping the job (the last "
                                + "checkpoint on disk is intact).\n")
                                .utf8))
                    MPI_Abort(lstm_mpi_comm_world(), 4)
                    exit(4)
                }
            }
        }
        thread.name = "lstm-gpu collective watchdog"
        thread.start()
    }

    func guarding<T>(_ what: String, _ body: () throws -> T) rethrows -> T {
        lock.lock(); deadline = Date().addingTimeInterval(timeout); self.what = what; lock.unlock()
        defer { lock.lock(); deadline = nil; lock.unlock() }
        return try body()
    }
}
