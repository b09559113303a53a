import Foundation
import LSTMCore

/// Sums gradient buffers across the replicas of a data-parallel run: processes (the MPI
/// implementation in LSTMDistributed) or model replicas in one process (`InProcessReducerGroup`,
/// e.g. one per OpenCL device). Every replica calls every method in the same order.
public protocol GradientReducer: AnyObject {
    /// This replica's index, 0..<size.
    var rank: Int { get }
    /// Replicas in the run.
    var size: Int { get }
    /// values ← Σ over replicas of values, in place.
    func allreduceSum(_ values: inout [Float]) throws
    /// values ← root's values.
    func broadcast(_ values: inout [Float], root: Int) throws
    /// Throws, on every replica, when the replicas' `fingerprint`s differ (mismatched
    /// configuration or data); `description` says what this replica has.
    func requireAgreement(fingerprint: UInt64, description: String) throws
    /// Seconds spent inside collectives so far (for the scaling figures).
    var secondsInCollectives: Double { get }
}

/// Why a data-parallel run cannot go on.
public enum DistributedError: Error, CustomStringConvertible {
    case mismatch(String)
    case collectiveFailed(String)

    public var description: String {
        switch self {
        case let .mismatch(message): return "replicas disagree: \(message)"
        case let .collectiveFailed(message): return "collective operation failed: \(message)"
        }
    }
}

/// N reducers for N replicas running on N threads of one process: each call is a rendezvous
/// (the last arrival combines everyone's values and releases the others), summing in rank
/// order so the result does not depend on arrival order.
public final class InProcessReducerGroup: @unchecked Sendable {
    public let size: Int
    private let condition = NSCondition()
    private var contributions: [[Float]?]
    private var result: [Float] = []
    private var generation = 0
    private var arrived = 0
    private var fingerprints: [UInt64] = []
    private var descriptions: [String] = []

    public init(size: Int) {
        self.size = size
        contributions = Array(repeating: nil, count: size)
        fingerprints = Array(repeating: 0, count: size)
        descriptions = Array(repeating: "", count: size)
    }

    /// The reducer for replica `rank`.
    public func reducer(rank: Int) -> GradientReducer { Member(group: self, rank: rank) }

    /// Everyone contributes `values`; returns `combine` of all contributions (in rank order).
    fileprivate func rendezvous(rank: Int, values: [Float], combine: ([[Float]]) -> [Float]) -> [Float] {
        condition.lock()
        defer { condition.unlock() }
        let myGeneration = generation
        contributions[rank] = values
        arrived += 1
        if arrived == size {
            result = combine(contributions.map { $0! })
            contributions = Array(repeating: nil, count: size)
            arrived = 0
            generation += 1
            condition.broadcast()
        } else {
            while generation == myGeneration { condition.wait() }
        }
        return result
    }

    fileprivate func agree(rank: Int, fingerprint: UInt64, description: String) throws {
        condition.lock()
        fingerprints[rank] = fingerprint
        descriptions[rank] = description
        condition.unlock()
        _ = rendezvous(rank: rank, values: [], combine: { _ in [] })
        condition.lock()
        defer { condition.unlock() }
        if let other = fingerprints.firstIndex(where: { $0 != fingerprints[0] }) {
            throw DistributedError.mismatch(
                "replica 0 has \(descriptions[0]), replica \(other) has \(descriptions[other])")
        }
    }

    private final class Member: GradientReducer {
        let group: InProcessReducerGroup
        let rank: Int
        var size: Int { group.size }
        private(set) var secondsInCollectives = 0.0

        init(group: InProcessReducerGroup, rank: Int) {
            self.group = group
            self.rank = rank
        }

        func allreduceSum(_ values: inout [Float]) throws {
            let start = Date()
            let count = values.count
            values = group.rendezvous(rank: rank, values: values) { all in
                var sum = all[0]
                for other in all.dropFirst() {
                    guard other.count == sum.count else { return [] }
                    for i in sum.indices { sum[i] += other[i] }
                }
                return sum
            }
            secondsInCollectives += Date().timeIntervalSince(start)
            if values.count != count {
                throw DistributedError.collectiveFailed("replicas passed buffers of different sizes")
            }
        }

        func broadcast(_ values: inout [Float], root: Int) throws {
            values = group.rendezvous(rank: rank, values: values) { $0[root] }
        }

        func requireAgreement(fingerprint: UInt64, description: String) throws {
            try group.agree(rank: rank, fingerprint: fingerprint, description: description)
        }
    }
}

/// FNV-1a over a string (configuration fingerprints).
public func configurationFingerprint(_ text: String) -> UInt64 { FNV1a.hash(text) }

extension GradientReducer {
    /// Throws, on every replica, when the replicas disagree on any of `fields` (e.g. the
    /// options that decide the sequence of collectives), naming each field that differs.
    /// Two collectives: rank 0's per-field fingerprints are broadcast (as exact 16-bit pieces),
    /// then every replica's per-field mismatch flags are summed, so all replicas name the same fields.
    public func requireAgreement(on fields: [(name: String, value: String)]) throws {
        guard size > 1, !fields.isEmpty else { return }
        let mine = fields.map { configurationFingerprint($0.name + "=" + $0.value) }
        var pieces = mine.flatMap { fingerprint in (0..<4).map { Float((fingerprint >> (16 * UInt64($0))) & 0xFFFF) } }
        try broadcast(&pieces, root: 0)
        var differs = mine.indices.map { index -> Float in
            let root = (0..<4).reduce(UInt64(0)) { $0 | UInt64(pieces[4 * index + $1]) << (16 * UInt64($1)) }
            return root == mine[index] ? 0 : 1
        }
        try allreduceSum(&differs)
        let names = fields.indices.filter { differs[$0] > 0 }.map {
            "\(fields[$0].name) (rank \(rank) has \(fields[$0].value))"
        }
        guard names.isEmpty else {
            throw DistributedError.mismatch(
                "the ranks were started with different options: \(names.joined(separator: ", ")); every rank "
                    + "must run the same command"
            )
        }
    }
}
