import Foundation
import LSTMCore

/// A table read from a CSV or TSV file: a header row, then rows with exactly as many fields.
///
/// - CSV (separator ","): RFC 4180. A field that begins with `"` is quoted: it may hold the
///   separator, line breaks and `""` (one `"`); after its closing quote only the separator or
///   the end of the line may follow. A `"` inside an unquoted field is kept as it is.
/// - TSV (separator tab): no quoting; every `"` is data.
/// - Lines end with "\n", "\r\n" or "\r"; a byte-order mark at the start is removed; empty lines
///   (no characters at all) are skipped. Fields are kept exactly, spaces included.
///
/// Malformed input throws `LSTMError.io` naming the file and the 1-based line: a row with the
/// wrong number of fields, a quoted field that is never closed (the line where it opened), text
/// after a closing quote, an empty file.
public struct DelimitedTable: Sendable {
    /// The file the table was read from (or the name given to `init(text:path:separator:)`).
    public let path: String
    /// The field separator.
    public let separator: Character
    /// Column names: the first row, or "column1", "column2", … when the file has no header.
    public let header: [String]
    /// The data rows (the header excluded); each has `header.count` fields.
    public let rows: [[String]]
    /// The 1-based line where each row of `rows` begins (for error messages).
    public let lineNumbers: [Int]

    /// Reads the table at `path`. The separator is `separator` when given, else chosen by the
    /// extension: ".csv" is ",", ".tsv" and ".tab" are tab (any other extension throws, asking
    /// for `separator`). `hasHeader: false` names the columns "column1", "column2", ….
    public init(contentsOf path: String, separator: Character? = nil, hasHeader: Bool = true) throws {
        var info = stat()
        if stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR {
            throw LSTMError.io(path: path, reason: "is a directory, not a data file")
        }
        let chosen: Character
        if let separator {
            chosen = separator
        } else {
            switch URL(fileURLWithPath: path).pathExtension.lowercased() {
            case "csv": chosen = ","
            case "tsv", "tab": chosen = "\t"
            default:
                throw LSTMError.invalidArgument(
                    "\(path): cannot tell the separator from the file name: name it .csv (comma-separated) or "
                        + ".tsv (tab-separated)")
            }
        }
        try self.init(text: readDataFile(path), path: path, separator: chosen, hasHeader: hasHeader)
    }

    /// Parses `text` as a table; `path` names it in errors.
    public init(text: String, path: String = "<text>", separator: Character, hasHeader: Bool = true) throws {
        guard separator.unicodeScalars.count == 1, let scalar = separator.unicodeScalars.first,
            !separator.isNewline, separator != "\""
        else {
            throw LSTMError.invalidArgument(
                "the separator must be one character other than a quote or a line break, got "
                    + displayedValue(String(separator)))
        }
        var parser = DelimitedParser(path: path, separator: scalar, quoting: separator != "\t")
        let (records, lines) = try parser.parse(text.unicodeScalars)
        guard let first = records.first else { throw LSTMError.io(path: path, reason: "is empty: no header row") }
        let width = first.count
        let header = hasHeader ? first : (1...width).map { "column\($0)" }
        let dataStart = hasHeader ? 1 : 0
        for (record, line) in zip(records, lines).dropFirst(dataStart) where record.count != width {
            throw dataFileError(
                path, line: line,
                "\(record.count) field\(record.count == 1 ? "" : "s") where the "
                    + (hasHeader ? "header (line \(lines[0])) has \(width)" : "first row has \(width)"))
        }
        self.path = path
        self.separator = separator
        self.header = header
        rows = Array(records.dropFirst(dataStart))
        lineNumbers = Array(lines.dropFirst(dataStart))
    }

    /// The index of the column called `name`; throws naming the columns there are when there is
    /// none, or when two columns have that name.
    public func columnIndex(named name: String) throws -> Int {
        let matches = header.indices.filter { header[$0] == name }
        guard matches.count == 1 else {
            if matches.isEmpty {
                throw LSTMError.invalidArgument(
                    "\(path): no column \(displayedValue(name)); the columns are \(columnList)")
            }
            throw LSTMError.invalidArgument(
                "\(path): \(matches.count) columns are called \(displayedValue(name)) (columns "
                    + "\(matches.map { String($0 + 1) }.joined(separator: ", ")))")
        }
        return matches[0]
    }

    /// The values of the column called `name`, one per row (see `columnIndex(named:)`).
    public func column(named name: String) throws -> [String] {
        let index = try columnIndex(named: name)
        return rows.map { $0[index] }
    }

    /// The header as an error message lists it: `a, b, "c d"`.
    var columnList: String { header.map(displayedValue).joined(separator: ", ") }
}

/// The state machine that cuts text into records of fields (see `DelimitedTable`).
private struct DelimitedParser {
    let path: String
    let separator: Unicode.Scalar
    let quoting: Bool
    var records: [[String]] = []
    var lines: [Int] = []
    var fields: [String] = []
    var field = String.UnicodeScalarView()
    var line = 1
    var recordLine = 1
    var recordStarted = false  // any character (a quote or separator included) in this record
    var fieldStarted = false  // any character in this field
    var afterClosingQuote = false

    mutating func parse(_ text: String.UnicodeScalarView) throws -> (records: [[String]], lines: [Int]) {
        var scalars = text.makeIterator()
        var pending: Unicode.Scalar?
        func next() -> Unicode.Scalar? {
            defer { pending = nil }
            return pending ?? scalars.next()
        }
        while let c = next() {
            switch c {
            case separator:
                endField()
                recordStarted = true
            case "\n", "\r":
                if c == "\r", let following = next(), following != "\n" { pending = following }
                endRecord()
                line += 1
                recordLine = line
            case "\"" where quoting && !fieldStarted:
                let openedAt = line
                fieldStarted = true
                recordStarted = true
                quoted: while true {
                    guard let q = next() else {
                        throw dataFileError(
                            path, line: openedAt, "a quoted field opens here and is never closed (a missing \")")
                    }
                    switch q {
                    case "\"":
                        let following = next()
                        if following == "\"" {
                            field.append("\"")
                        } else {
                            pending = following
                            break quoted
                        }
                    case "\n": line += 1; field.append(q)
                    case "\r":
                        line += 1
                        field.append(q)
                        if let following = next() {
                            if following == "\n" { field.append(following) } else { pending = following }
                        }
                    default: field.append(q)
                    }
                }
                afterClosingQuote = true
            default:
                if afterClosingQuote {
                    throw dataFileError(
                        path, line: line,
                        "field \(fields.count + 1) has \(displayedValue(String(c))) after its closing quote "
                            + "(a quote inside a quoted field is written \"\")")
                }
                field.append(c)
                fieldStarted = true
                recordStarted = true
            }
        }
        endRecord()
        return (records, lines)
    }

    private mutating func endField() {
        fields.append(String(field))
        field = String.UnicodeScalarView()
        fieldStarted = false
        afterClosingQuote = false
    }

    private mutating func endRecord() {
        if recordStarted {
            endField()
            records.append(fields)
            lines.append(recordLine)
        }
        fields = []
        field = String.UnicodeScalarView()
        fieldStarted = false
        afterClosingQuote = false
        recordStarted = false
    }
}
