import CLSTMKernels
import Foundation
@_spi(Backend) import LSTMCore
import Synchronization

/// A spinning barrier for `size` threads: the LSTM step loops meet once or twice per
/// step, and a step can take only microseconds, so waiting spins (yielding after a while).
final class SpinBarrier: @unchecked Sendable {
    let size: Int
    private let arrived = Atomic<Int>(0)
    private let generation = Atomic<Int>(0)
    /// Pause-hint spins before yielding the core: none when the team outnumbers the cores
    /// (a spinning waiter would then hold the core the late thread needs).
    private let spinLimit: Int

    init(size: Int) {
        self.size = size
        spinLimit = size > ProcessInfo.processInfo.activeProcessorCount ? 0 : 100_000
    }

    func wait() {
        if size == 1 { return }
        let current = generation.load(ordering: .acquiring)
        if arrived.wrappingAdd(1, ordering: .acquiringAndReleasing).newValue == size {
            arrived.store(0, ordering: .relaxed)
            generation.wrappingAdd(1, ordering: .releasing)
            return
        }
        // Spin with the processor's pause hint; only after ~1 ms give the core away (the
        // team then outnumbers the free cores, and spinning would slow the others).
        var spins = 0
        while generation.load(ordering: .acquiring) == current {
            spins += 1
            if spins > spinLimit { sched_yield() } else { lstm_cpu_relax() }
        }
    }
}

/// The threads that work on one job together: this thread's `rank` among `size`.
struct Crew {
    let rank: Int
    let size: Int
    let barrier: SpinBarrier

    /// The [start, end) share of `count` items for this thread.
    func share(_ count: Int) -> Range<Int> { (count * rank / size)..<(count * (rank + 1) / size) }
    func sync() { barrier.wait() }
}

/// A fixed team of threads for the CPU path: `run` executes one body on every member
/// (the caller is member 0) and returns when all are done. Members sleep on a semaphore
/// between runs. A run may split the team into groups that work on independent jobs
/// (e.g. the two directions of a bidirectional layer), each group with its own barrier.
final class WorkerTeam: @unchecked Sendable {
    /// Members, the caller included.
    let size: Int
    private var body: ((Int) -> Void)?
    private let wake: [DispatchSemaphore]
    private let finished = DispatchSemaphore(value: 0)
    private let running = Mutex<Bool>(false)

    init(size: Int) {
        self.size = max(1, size)
        wake = (1..<max(1, size)).map { _ in DispatchSemaphore(value: 0) }
        for member in 1..<self.size {
            let thread = Thread { [unowned self] in self.serve(member) }
            thread.name = "lstm-gpu cpu \(member)"
            thread.start()
        }
    }

    private func serve(_ member: Int) {
        while true {
            wake[member - 1].wait()
            body?(member)
            finished.signal()
        }
    }

    /// Splits the team into `groups` groups of consecutive members (at most `size`) and runs
    /// `body(group, crew)` on every member; returns when all are done. Runs are serialised.
    func run(groups: Int = 1, _ body: @escaping (Int, Crew) -> Void) {
        let groups = max(1, min(groups, size))
        let barriers = (0..<groups).map { g in SpinBarrier(size: size * (g + 1) / groups - size * g / groups) }
        let perMember: (Int) -> Void = { member in
            let group = (0..<groups).first { member < self.size * ($0 + 1) / groups }!
            let first = self.size * group / groups
            body(group, Crew(rank: member - first, size: barriers[group].size, barrier: barriers[group]))
        }
        if size == 1 { perMember(0); return }
        running.withLock { _ in
            self.body = perMember
            for semaphore in wake { semaphore.signal() }
            perMember(0)
            for _ in 1..<size { finished.wait() }
            self.body = nil
        }
    }

    private static let teamsLock = NSLock()
    nonisolated(unsafe) private static var teams: [Int: WorkerTeam] = [:]

    /// The process's team of `size` members (threads are created once and kept).
    static func shared(size: Int) -> WorkerTeam {
        teamsLock.lock(); defer { teamsLock.unlock() }
        if let team = teams[size] { return team }
        let team = WorkerTeam(size: size)
        teams[size] = team
        return team
    }
}
