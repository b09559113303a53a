import Foundation
import LSTMCore

/// Sentences of tagged tokens from a token-per-line file (CoNLL style), for sequence tagging.
///
/// Format, line by line:
/// - a blank line (empty or only whitespace) ends the current sentence;
/// - a line whose first character is `#` is a comment and is skipped (so a token cannot begin
///   with `#` at the start of a line);
/// - a line whose first field is `-DOCSTART-` (CoNLL-2003 document marks) ends the current
///   sentence and is otherwise skipped;
/// - any other line is split at runs of spaces and tabs: the FIRST field is the token and the
///   LAST field is the tag (middle columns, such as CoNLL-2003's chunk tags, are ignored).
/// A line with a single field throws `LSTMError.io` naming the file and the 1-based line.
public struct TaggedSentences: Sendable {
    /// The sentences in file order; each is a non-empty list of (token, tag).
    public let sentences: [[(token: String, tag: String)]]
    /// The 1-based line of each sentence's first token.
    public let lineNumbers: [Int]
    /// The sorted distinct tags (a tag's class id is its index here).
    public let tags: [String]

    /// Reads the tagging file at `path`.
    public init(contentsOf path: String) throws {
        try self.init(text: readDataFile(path), path: path)
    }

    /// Parses `text` in the tagging format; `path` names it in errors.
    public init(text: String, path: String = "<text>") throws {
        var sentences: [[(token: String, tag: String)]] = []
        var lineNumbers: [Int] = []
        var current: [(token: String, tag: String)] = []
        func endSentence() {
            if !current.isEmpty { sentences.append(current) }
            current = []
        }
        for (number, line) in numberedLines(text) {
            if line.first == "#" { continue }
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if fields.isEmpty || fields[0] == "-DOCSTART-" {
                endSentence()
                continue
            }
            guard fields.count >= 2 else {
                throw dataFileError(
                    path, line: number,
                    "one field \(displayedValue(String(fields[0]))): a line needs a token and a tag separated by "
                        + "spaces or a tab")
            }
            if current.isEmpty { lineNumbers.append(number) }
            current.append((String(fields[0]), String(fields[fields.count - 1])))
        }
        endSentence()
        self.sentences = sentences
        self.lineNumbers = lineNumbers
        tags = Array(Set(sentences.joined().map(\.tag))).sorted()
    }

    /// The class id of `tag` (its index in `tags`), or nil when the files had no such tag.
    public func tagIndex(_ tag: String) -> Int? {
        let i = tags.partitioningIndex { $0 >= tag }
        return i < tags.count && tags[i] == tag ? i : nil
    }
}

extension Array {
    /// The first index whose element satisfies `predicate`, for a predicate that is false and
    /// then true along the array (binary search); `count` when it is never true.
    func partitioningIndex(where predicate: (Element) -> Bool) -> Int {
        var low = 0, high = count
        while low < high {
            let middle = (low + high) / 2
            if predicate(self[middle]) { high = middle } else { low = middle + 1 }
        }
        return low
    }
}
