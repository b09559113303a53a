import Foundation
import LSTMCore

/// Sentence pairs for translation from two line-aligned files: line n of `source` is the
/// translation of line n of `target`.
///
/// The files must have the same number of lines (else `LSTMError.invalidArgument` naming both
/// files and both counts). Pairs where either side is empty or only whitespace are dropped and
/// counted in `droppedBlank`; with `maximumLength`, pairs where either side has more tokens
/// than that (tokens as `lengthUnit` cuts them) are dropped and counted in `droppedLong`. Lines
/// are kept as the files have them (line breaks removed).
public struct ParallelText: Sendable {
    /// The kept pairs in file order.
    public let pairs: [(source: String, target: String)]
    /// The 1-based line of each kept pair.
    public let lineNumbers: [Int]
    /// Pairs dropped because a side was blank.
    public let droppedBlank: Int
    /// Pairs dropped because a side was longer than `maximumLength`.
    public let droppedLong: Int

    /// Reads the two files; see the type's documentation.
    public init(
        source sourcePath: String, target targetPath: String, maximumLength: Int? = nil,
        lengthUnit: Tokenization = .words
    ) throws {
        let source = try numberedLines(readDataFile(sourcePath))
        let target = try numberedLines(readDataFile(targetPath))
        guard source.count == target.count else {
            throw LSTMError.invalidArgument(
                "parallel files must have the same number of lines: \(sourcePath) has \(source.count), "
                    + "\(targetPath) has \(target.count)")
        }
        if let maximumLength { try SizeLimits.requireSize(maximumLength, "the maximum length", limit: .max) }
        var pairs: [(source: String, target: String)] = []
        var lineNumbers: [Int] = []
        var blank = 0, long = 0
        for (s, t) in zip(source, target) {
            if s.text.allSatisfy(\.isWhitespace) || t.text.allSatisfy(\.isWhitespace) {
                blank += 1
                continue
            }
            if let maximumLength,
                lengthUnit.tokens(s.text).count > maximumLength || lengthUnit.tokens(t.text).count > maximumLength
            {
                long += 1
                continue
            }
            pairs.append((String(s.text), String(t.text)))
            lineNumbers.append(s.number)
        }
        guard !pairs.isEmpty else {
            var reasons: [String] = []
            if long > 0 { reasons.append("\(long) longer than the maximum length of \(maximumLength ?? 0) tokens") }
            if blank > 0 { reasons.append("\(blank) with a blank side") }
            throw LSTMError.invalidArgument(
                "\(sourcePath), \(targetPath): no sentence pair is left of \(source.count)"
                    + (reasons.isEmpty ? "" : ": " + reasons.joined(separator: ", ") + " (--max-length sets the limit)")
            )
        }
        self.pairs = pairs
        self.lineNumbers = lineNumbers
        droppedBlank = blank
        droppedLong = long
    }
}
