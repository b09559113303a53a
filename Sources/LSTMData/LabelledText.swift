import Foundation
import LSTMCore

/// Text classification examples: (text, class id) pairs read from two columns of a table.
///
/// Columns: `labelColumn` and `textColumn` when given; else "label" and "text" when the table
/// has both; else, for a table of exactly two columns, the first is the label and the second
/// the text. A named column that is missing throws, listing the columns there are.
///
/// Rows whose text is empty or only whitespace are dropped and counted in `droppedEmptyText`.
/// With `.names`, the class names are the sorted distinct labels of the kept rows, and an empty
/// label throws naming the line. With `.numericSign`, a label must be a finite number: above 0
/// is "positive" (class 1), below 0 "negative" (class 0), and 0 is dropped and counted in
/// `droppedNeutral`; anything else throws naming the line and the value.
public struct LabelledText: Sendable {
    /// How the label column becomes class ids.
    public enum Labels: Sendable {
        /// Each distinct label is a class; ids follow the sorted names.
        case names
        /// The sign of a numeric score: classes ["negative", "positive"]; 0 is dropped.
        case numericSign
        /// `.numericSign` when every label of the table is a finite number and some label is
        /// negative or not a whole number (scores such as 2.27 and −0.6); else `.names`, so
        /// class ids written as 0, 1, 2 stay classes.
        case automatic
    }

    /// One example: the text as the file has it, and its class id (an index into `classNames`).
    public struct Example: Sendable, Equatable {
        /// The text column's cell.
        public var text: String
        /// The class id.
        public var label: Int
        /// The 1-based line of the file where the example's row begins.
        public var line: Int
    }

    /// The examples in file order.
    public let examples: [Example]
    /// Class names; `examples[i].label` indexes this array.
    public let classNames: [String]
    /// Rows dropped because their text was empty or only whitespace.
    public let droppedEmptyText: Int
    /// Rows dropped because their numeric label was 0 (`.numericSign` only).
    public let droppedNeutral: Int

    /// Reads a CSV or TSV file (see `DelimitedTable`) and takes the examples from it.
    public init(
        contentsOf path: String, separator: Character? = nil, labelColumn: String? = nil,
        textColumn: String? = nil, labels: Labels = .names
    ) throws {
        try self.init(
            table: DelimitedTable(contentsOf: path, separator: separator), labelColumn: labelColumn,
            textColumn: textColumn, labels: labels)
    }

    /// Takes the examples from `table` (columns and labels as the type's documentation says).
    public init(
        table: DelimitedTable, labelColumn: String? = nil, textColumn: String? = nil, labels: Labels = .names
    )
        throws
    {
        let (labelIndex, textIndex) = try Self.columns(table, label: labelColumn, text: textColumn)
        let labels: Labels = labels == .automatic ? Self.automaticLabels(table, labelIndex) : labels
        var kept: [(text: String, label: String, line: Int)] = []
        var droppedEmpty = 0, droppedNeutral = 0
        for (row, line) in zip(table.rows, table.lineNumbers) {
            let text = row[textIndex], label = row[labelIndex].trimmingCharacters(in: .whitespaces)
            if text.allSatisfy(\.isWhitespace) {
                droppedEmpty += 1
                continue
            }
            switch labels {
            case .names, .automatic:
                guard !label.isEmpty else {
                    throw dataFileError(table.path, line: line, "empty label in column \(table.header[labelIndex])")
                }
                kept.append((text, label, line))
            case .numericSign:
                guard let score = Double(label), score.isFinite else {
                    throw dataFileError(
                        table.path, line: line,
                        "label \(displayedValue(label)) in column \(displayedValue(table.header[labelIndex])) is "
                            + "not a finite number (numeric-sign labels)")
                }
                if score == 0 {
                    droppedNeutral += 1
                    continue
                }
                kept.append((text, score > 0 ? "positive" : "negative", line))
            }
        }
        if labels == .numericSign, !kept.isEmpty, let only = kept.first?.label, kept.allSatisfy({ $0.label == only }) {
            // Two classes by sign, and every example in one of them: a model of one class.
            throw LSTMError.invalidArgument(
                "\(table.path): every label in column \(displayedValue(table.header[labelIndex])) is "
                    + "\(only == "positive" ? "above" : "below") 0, so its sign gives one class; numeric labels are "
                    + "classified by sign (> 0 positive, < 0 negative): give labels of both signs, or class names")
        }
        let names = labels == .numericSign ? ["negative", "positive"] : Array(Set(kept.map(\.label))).sorted()
        let ids = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($0.element, $0.offset) })
        examples = kept.map { Example(text: $0.text, label: ids[$0.label]!, line: $0.line) }
        classNames = names
        droppedEmptyText = droppedEmpty
        self.droppedNeutral = droppedNeutral
    }

    /// What `.automatic` means for `table`: `.numericSign` for scores (every label a finite
    /// number, some negative or not whole), else `.names`.
    private static func automaticLabels(_ table: DelimitedTable, _ labelIndex: Int) -> Labels {
        let scores = table.rows.map { Double($0[labelIndex].trimmingCharacters(in: .whitespaces)) }
        let numeric =
            scores.allSatisfy { $0?.isFinite ?? false } && scores.contains { $0! < 0 || $0! != $0!.rounded() }
        return numeric ? .numericSign : .names
    }

    /// The (label, text) column indices of `table` (see the type's documentation).
    private static func columns(_ table: DelimitedTable, label: String?, text: String?) throws -> (Int, Int) {
        if label == nil, text == nil, !table.header.contains("label") || !table.header.contains("text") {
            guard table.header.count == 2 else {
                throw LSTMError.invalidArgument(
                    "\(table.path): no columns \"label\" and \"text\", and not exactly two columns to take "
                        + "as label, text; the columns are \(table.columnList)")
            }
            return (0, 1)
        }
        return try (table.columnIndex(named: label ?? "label"), table.columnIndex(named: text ?? "text"))
    }
}
