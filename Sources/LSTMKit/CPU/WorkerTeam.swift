import Foundation
import Synchronization

/// A fixed team of threads for the CPU path: `run` executes one body on every member
/// (the caller is member 0) and returns when all are done; inside it, `barrier()` syncs
/// the members (a spinning barrier, since the LSTM step loop meets once or twice per step
/// and a step can take only microseconds). Members sleep on a semaphore between runs.
final class WorkerTeam: @unchecked Sendable {
    /// Members, the caller included.
    let size: Int
    private var body: ((Int) -> Void)?
    private let wake: [DispatchSemaphore]
    private let finished = DispatchSemaphore(value: 0)
    private let arrived = Atomic<Int>(0)
    private let generation = Atomic<Int>(0)
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

    /// Runs `body(member)` for member 0..<size concurrently; returns when every member has.
    /// Runs are serialised: a second caller waits for the first.
    func run(_ body: @escaping (Int) -> Void) {
        if size == 1 { body(0); return }
        running.withLock { _ in
            self.body = body
            for semaphore in wake { semaphore.signal() }
            body(0)
            for _ in 1..<size { finished.wait() }
            self.body = nil
        }
    }

    /// Waits until every member has reached this barrier (call from inside `run` only).
    func barrier() {
        if size == 1 { return }
        let current = generation.load(ordering: .acquiring)
        if arrived.wrappingAdd(1, ordering: .acquiringAndReleasing).newValue == size {
            arrived.store(0, ordering: .relaxed)
            generation.wrappingAdd(1, ordering: .releasing)
            return
        }
        var spins = 0
        while generation.load(ordering: .acquiring) == current {
            spins += 1
            if spins > 2000 { sched_yield() }
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

    /// The [start, end) share of `count` items for `member`.
    func share(_ count: Int, member: Int) -> Range<Int> {
        (count * member / size)..<(count * (member + 1) / size)
    }
}
