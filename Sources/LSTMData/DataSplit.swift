import Foundation
import LSTMCore

/// A deterministic training / validation / test split: the items are shuffled with a
/// `SeededGenerator` (a Fisher–Yates shuffle written here, so the same seed gives the same split
/// on every platform and Swift version), then the first ⌊n·validationFraction⌉ items (rounded to
/// nearest) are the validation set, the next ⌊n·testFraction⌉ the test set, and the rest training.
public struct DataSplit<Element> {
    /// The items to train on.
    public let training: [Element]
    /// The items for choosing settings and early stopping.
    public let validation: [Element]
    /// The items for the final report.
    public let test: [Element]

    /// Splits `items`. Throws unless both fractions are finite, at least 0 and sum to less
    /// than 1, or when a non-empty `items` would leave the training set empty.
    public init(
        shuffling items: [Element], validationFraction: Double, testFraction: Double = 0, seed: UInt64
    )
        throws
    {
        guard validationFraction.isFinite, testFraction.isFinite, validationFraction >= 0, testFraction >= 0,
            validationFraction + testFraction < 1
        else {
            throw LSTMError.invalidArgument(
                "split fractions must be at least 0 and sum to less than 1, got validation \(validationFraction) "
                    + "and test \(testFraction)")
        }
        var shuffled = items
        var generator = SeededGenerator(seed: seed)
        for i in stride(from: shuffled.count - 1, to: 0, by: -1) {
            // Multiply-high maps a 64-bit draw onto 0...i (bias below 2⁻²⁴ for i < 2⁴⁰).
            let j = Int(UInt64(i + 1).multipliedFullWidth(by: generator.next()).high)
            shuffled.swapAt(i, j)
        }
        let count = Double(items.count)
        let validationCount = Int((count * validationFraction).rounded())
        let testCount = Int((count * testFraction).rounded())
        guard items.isEmpty || validationCount + testCount < items.count else {
            throw LSTMError.invalidArgument(
                "\(items.count) items split \(validationCount) validation and \(testCount) test leave none for "
                    + "training")
        }
        guard items.isEmpty || testFraction == 0 || testCount > 0 else {
            throw LSTMError.invalidArgument(
                "a test fraction of \(testFraction) of \(items.count) items rounds to no test item: use more data or "
                    + "a larger test fraction")
        }
        validation = Array(shuffled[..<validationCount])
        test = Array(shuffled[validationCount..<(validationCount + testCount)])
        training = Array(shuffled[(validationCount + testCount)...])
    }
}

extension DataSplit: Sendable where Element: Sendable {}
