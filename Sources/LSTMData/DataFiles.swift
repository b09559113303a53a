import Foundation
import LSTMCore

extension SizeLimits {
    /// Largest data file (table, tagging file, parallel text) the loaders in `Data/` read:
    /// 2 GiB. A bigger file is refused before it is read.
    public static let maxDataFileBytes = 1 << 31
}

/// The text of the data file at `path`: a regular UTF-8 file without NUL bytes, at most
/// `SizeLimits.maxDataFileBytes` long, with a leading byte-order mark removed.
func readDataFile(_ path: String) throws -> String {
    let text = try readTextFile(
        path, maximumBytes: SizeLimits.maxDataFileBytes, limitReason: "bytes a data file may have")
    return text.unicodeScalars.first == "\u{FEFF}" ? String(text.unicodeScalars.dropFirst()) : text
}

/// The error for malformed content at 1-based `line` of the data file `path`:
/// "PATH: line N: REASON".
func dataFileError(_ path: String, line: Int, _ reason: String) -> LSTMError {
    .io(path: path, reason: "line \(line): \(reason)")
}

/// The lines of `text` with their 1-based numbers; "\n", "\r\n" and a lone "\r" end a line,
/// and a final line break does not start another (empty) line.
func numberedLines(_ text: String) -> [(number: Int, text: Substring)] {
    // "\r\n" is one Character in Swift, so it ends one line, not two.
    let pieces = text.split(omittingEmptySubsequences: false) { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }
    let count = pieces.last?.isEmpty == true ? pieces.count - 1 : pieces.count
    return pieces.prefix(count).enumerated().map { ($0.offset + 1, $0.element) }
}
