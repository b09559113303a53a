import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One field's value in a JSON-lines record.
public enum JSONLineValue: Sendable, Equatable {
    case int(Int)
    case double(Double)
    case string(String)
}

/// One JSON object on one line (no newline): the fields in the order given, keys and strings
/// escaped by `JSONEncoder` (quotes, backslashes and control characters are safe), numbers
/// as Swift prints them, and a non-finite number as `null` (JSON has no NaN or Infinity).
public func jsonLine(_ fields: [(key: String, value: JSONLineValue)]) -> String {
    let encoder = JSONEncoder()
    func quoted(_ text: String) -> String {
        // Encoding a String cannot fail; the fallback keeps the line valid JSON regardless.
        (try? encoder.encode(text)).map { String(decoding: $0, as: UTF8.self) } ?? "\"\""
    }
    let body = fields.map { field -> String in
        let value: String
        switch field.value {
        case let .int(v): value = "\(v)"
        case let .double(v): value = v.isFinite ? "\(v)" : "null"
        case let .string(v): value = quoted(v)
        }
        return quoted(field.key) + ":" + value
    }
    return "{" + body.joined(separator: ",") + "}"
}

/// An append-only file of JSON lines, written as events happen (a training run's per-step
/// log); a failed write (a full disk, a removed folder) is a thrown error naming the file.
public final class JSONLineLog {
    public let path: String
    private let fd: Int32

    /// Opens `path`, appended to when `append` (a resumed run), else truncated.
    /// - Throws: `LSTMError.io` naming the file when it cannot be opened.
    public init(path: String, append: Bool) throws {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC), 0o644)
        guard fd >= 0 else {
            throw LSTMError.io(path: path, reason: "--log: cannot open: \(String(cString: strerror(errno)))")
        }
        if append { lseek(fd, 0, SEEK_END) }
    }

    deinit { close(fd) }

    /// Writes one record, its keys sorted.
    public func write(_ fields: [String: JSONLineValue]) throws {
        let line = jsonLine(fields.keys.sorted().map { ($0, fields[$0]!) }) + "\n"
        let failure = Array(line.utf8).withUnsafeBytes { writeAll(fd, $0) }
        if let failure { throw LSTMError.io(path: path, reason: "--log: write failed: \(failure)") }
    }
}
