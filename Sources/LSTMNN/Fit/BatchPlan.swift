import LSTMCore

/// The order in which `fit` visits examples: which examples make each batch, epoch by epoch.
enum BatchPlan {
    /// One epoch's training batches (indices into the examples), drawn from `generator`:
    /// shuffled, and with `bucketing` sorted by length within pools of `pool` batches, the
    /// batches then shuffled again. Deterministic for a generator state.
    static func training(
        lengths: [Int], batchSize: Int, bucketing: Bool, pool: Int, generator: inout SeededGenerator
    ) -> [[Int]] {
        var order = Array(lengths.indices)
        order.shuffle(using: &generator)
        guard bucketing else { return chunks(order, batchSize) }
        var batches: [[Int]] = []
        for poolStart in stride(from: 0, to: order.count, by: batchSize * pool) {
            let members = order[poolStart..<min(poolStart + batchSize * pool, order.count)]
            // Stable: equal lengths keep their shuffled order.
            let sorted = members.enumerated().sorted { a, b in
                lengths[a.element] != lengths[b.element]
                    ? lengths[a.element] < lengths[b.element] : a.offset < b.offset
            }.map(\.element)
            batches += chunks(sorted, batchSize)
        }
        batches.shuffle(using: &generator)
        return batches
    }

    /// Evaluation batches: every example once, sorted by length (least padding), no randomness.
    static func evaluation(lengths: [Int], batchSize: Int) -> [[Int]] {
        let order = lengths.indices.sorted { lengths[$0] != lengths[$1] ? lengths[$0] < lengths[$1] : $0 < $1 }
        return chunks(order, batchSize)
    }

    static func chunks(_ items: [Int], _ size: Int) -> [[Int]] {
        stride(from: 0, to: items.count, by: size).map { Array(items[$0..<min($0 + size, items.count)]) }
    }
}
