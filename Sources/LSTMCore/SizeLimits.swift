import Foundation

/// Sizes that come from outside (files, options, checkpoints) are untrusted: every product
/// of them is overflow-checked, every allocation that depends on them is checked against
/// the memory there is first, and each is bounded by a documented limit, so a hostile number
/// gives a thrown `LSTMError` instead of a trap, an allocator abort or a machine out of memory.
public enum SizeLimits {
    /// Largest I, H, P, embedding size or vocabulary accepted: 2²⁴ (16 777 216).
    public static let maxWidth = 1 << 24
    /// Largest L (stacked layers) accepted.
    public static let maxLayers = 1024
    /// Largest T, B or any other count of items accepted: 2⁴⁰.
    public static let maxCount = 1 << 40

    /// The product of `factors`, or an `invalidArgument` error naming `what` when it overflows.
    public static func product(_ factors: [Int], _ what: String) throws -> Int {
        var total = 1
        for factor in factors {
            guard factor >= 0 else { throw LSTMError.invalidArgument("\(what): negative size \(factor) in \(factors)") }
            let (value, overflow) = total.multipliedReportingOverflow(by: factor)
            guard !overflow else {
                throw LSTMError.invalidArgument("\(what): the size \(factors) overflows 64-bit arithmetic")
            }
            total = value
        }
        return total
    }

    /// The product of `factors`, clamped to `Int.max` (for capacity checks that then refuse it).
    public static func saturatingProduct(_ factors: [Int]) -> Int {
        var total = 1
        for factor in factors {
            let (value, overflow) = total.multipliedReportingOverflow(by: max(factor, 0))
            if overflow { return Int.max }
            total = value
        }
        return total
    }

    /// The sum of `terms` (negative ones count as 0), clamped to `Int.max`.
    public static func saturatingSum(_ terms: [Int]) -> Int {
        var total = 0
        for term in terms {
            let (value, overflow) = total.addingReportingOverflow(max(term, 0))
            if overflow { return Int.max }
            total = value
        }
        return total
    }

    /// Throws when `value` is outside 1...`limit`, naming `what`.
    public static func requireSize(_ value: Int, _ what: String, limit: Int = maxWidth, minimum: Int = 1) throws {
        guard value >= minimum else {
            throw LSTMError.invalidConfiguration("\(what) must be at least \(minimum), got \(value)")
        }
        guard value <= limit else {
            throw LSTMError.invalidConfiguration("\(what) is \(value), above the limit of \(limit)")
        }
    }

    /// Bytes of memory this host has (physical memory), read once per process (every CPU
    /// buffer allocation checks against it).
    public static let hostMemory = Int(clamping: ProcessInfo.processInfo.physicalMemory)

    /// Throws `outOfMemory` when `floats` float32 values (computed with `saturatingProduct`
    /// and `saturatingSum`) exceed the host's memory, saying what needed them.
    public static func requireHostMemory(floats: Int, for what: String) throws {
        let bytes = floats > Int.max / 4 ? Int.max : 4 * floats
        guard bytes <= hostMemory else {
            throw LSTMError.outOfMemory(device: "host (\(what))", needed: bytes, available: hostMemory)
        }
    }
}
