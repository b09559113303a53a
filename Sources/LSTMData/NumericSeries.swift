import Foundation
import LSTMCore

/// One numeric column of a CSV or TSV table (with a header), as a time series for forecasting.
///
/// The column is `column` when given; else the last column, other than `timeColumn`, whose
/// non-empty cells all read as numbers (the selected column is then checked strictly). Every
/// cell of the selected column must be a finite number (leading and trailing spaces allowed):
/// an empty cell, "NaN", "inf" or text throws `LSTMError.io` naming the file, the 1-based line,
/// the column and the value; fill or drop missing values before. `timeColumn`, when given, is
/// kept as it is in `times` (labels for plots and reports, not parsed).
public struct NumericSeries: Sendable {
    /// The file the series was read from.
    public let path: String
    /// The name of the column read.
    public let name: String
    /// The values in file order.
    public let values: [Double]
    /// The time column's cells, one per value, when a time column was asked for.
    public let times: [String]?
    /// The 1-based line of each value.
    public let lineNumbers: [Int]

    /// Reads the table at `path` (see `DelimitedTable(contentsOf:separator:)`) and takes the series.
    public init(
        contentsOf path: String, separator: Character? = nil, column: String? = nil, timeColumn: String? = nil
    )
        throws
    {
        try self.init(
            table: DelimitedTable(contentsOf: path, separator: separator), column: column, timeColumn: timeColumn)
    }

    /// Takes the series from `table` (columns as the type's documentation says).
    public init(table: DelimitedTable, column: String? = nil, timeColumn: String? = nil) throws {
        let timeIndex = try timeColumn.map { try table.columnIndex(named: $0) }
        let index: Int
        if let column {
            index = try table.columnIndex(named: column)
        } else {
            let numeric = table.header.indices.filter { candidate in
                candidate != timeIndex
                    && table.rows.allSatisfy {
                        let cell = $0[candidate].trimmingCharacters(in: .whitespaces)
                        return cell.isEmpty || Double(cell) != nil
                    }
            }
            // A column to the right of the one chosen (or any, when none is numeric) that is numeric
            // but for a few cells ("NA", "?") is most likely the series the user meant: say so
            // rather than take another or say there is none.
            for candidate in table.header.indices.reversed()
            where candidate > (numeric.last ?? -1) && candidate != timeIndex {
                let cells = zip(table.rows, table.lineNumbers).map {
                    ($0[candidate].trimmingCharacters(in: .whitespaces), $1)
                }
                let numbers = cells.filter { Double($0.0) != nil }.count
                guard numbers * 2 > cells.count, let bad = cells.first(where: { !$0.0.isEmpty && Double($0.0) == nil })
                else { continue }
                throw dataFileError(
                    table.path, line: bad.1,
                    "\(displayedValue(bad.0)) in column \(displayedValue(table.header[candidate])) is not a number, "
                        + "so that column is not a series; give --column to choose one, or fill in the value")
            }
            guard let last = numeric.last else {
                throw LSTMError.invalidArgument(
                    "\(table.path): no numeric column to read as a series; the columns are \(table.columnList)")
            }
            index = last
        }
        let name = table.header[index]
        values = try zip(table.rows, table.lineNumbers).map { row, line in
            let cell = row[index].trimmingCharacters(in: .whitespaces)
            guard !cell.isEmpty else {
                throw dataFileError(
                    table.path, line: line, "empty cell in column \(displayedValue(name)) (a missing value)")
            }
            guard let value = Double(cell), value.isFinite else {
                throw dataFileError(
                    table.path, line: line,
                    "\(displayedValue(cell)) in column \(displayedValue(name)) is not a finite number")
            }
            return value
        }
        path = table.path
        self.name = name
        times = timeIndex.map { t in table.rows.map { $0[t] } }
        lineNumbers = table.lineNumbers
    }

    /// Sliding windows over `values` (see `slidingWindows(_:input:horizon:)`).
    public func windows(input: Int, horizon: Int) throws -> [(input: [Float], target: [Float])] {
        try slidingWindows(values, input: input, horizon: horizon)
    }
}

/// Sliding windows for forecasting: for every start s, the `input` values s..<s+input and the
/// `horizon` values that follow them as the target; there are `values.count - input - horizon + 1`.
/// Throws when `input` or `horizon` is below 1, when the series is shorter than one window, or
/// when a value does not fit float32 (standardize first).
public func slidingWindows(_ values: [Double], input: Int, horizon: Int) throws -> [(input: [Float], target: [Float])] {
    try SizeLimits.requireSize(input, "the window's input length", limit: SizeLimits.maxCount)
    try SizeLimits.requireSize(horizon, "the forecast horizon", limit: SizeLimits.maxCount)
    let span = SizeLimits.saturatingSum([input, horizon])
    guard values.count >= span else {
        throw LSTMError.invalidArgument(
            "a series of \(values.count) values is too short for one window of \(input) inputs and \(horizon) targets")
    }
    let floats = values.map { Float($0) }
    if let bad = floats.firstIndex(where: { !$0.isFinite }) {
        throw LSTMError.invalidArgument(
            "value \(values[bad]) at index \(bad) does not fit float32 (standardize the series first)")
    }
    try SizeLimits.requireHostMemory(
        floats: SizeLimits.saturatingProduct([values.count - span + 1, span]), for: "forecasting windows")
    return (0...(values.count - span)).map { start in
        (Array(floats[start..<(start + input)]), Array(floats[(start + input)..<(start + span)]))
    }
}
