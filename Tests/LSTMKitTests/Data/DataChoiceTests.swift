import Foundation
import XCTest

@testable import LSTMCore
@testable import LSTMData

/// What the loaders choose on their own (a series' column, classes from numeric labels, the
/// separator) is never a silent surprise: a choice that is likely not what the user meant is
/// refused with a message that says why and what to give.
final class DataChoiceTests: XCTestCase {
    func testASeriesColumnWithAMissingValueIsNamedNotSkipped() throws {
        let path = try dataFile("na.csv", "year,a,y\n1,2,3\n2,3,NA\n3,4,5\n4,5,6\n")
        assertThrows(["na.csv: line 3", "NA in column y is not a number", "--column"]) {
            _ = try NumericSeries(contentsOf: path)
        }
        // Chosen by name, the clean column is read; and the NA column is refused where it is.
        XCTAssertEqual(try NumericSeries(contentsOf: path, column: "a").values, [2, 3, 4, 5])
        assertThrows(["line 3", "NA"]) { _ = try NumericSeries(contentsOf: path, column: "y") }
        // One column with a missing value: named, not "no numeric column".
        let single = try dataFile("one.csv", "value\n1\n2\nNA\n4\n")
        assertThrows(["one.csv: line 4", "NA in column value is not a number"]) {
            _ = try NumericSeries(contentsOf: single)
        }
        // A text column to the right (mostly not numbers) is no series: the last numeric one is taken.
        let text = try dataFile("text.csv", "a,note\n1,x\n2,y\n3,z\n")
        XCTAssertEqual(try NumericSeries(contentsOf: text).name, "a")
    }

    func testNumericLabelsOfOneSignAreRefused() throws {
        let positive = try dataFile("scores.tsv", "label\ttext\n1.5\tgood\n2.5\tfine\n0.3\tnice\n")
        assertThrows(["every label in column label is above 0", "one class", "both signs"]) {
            _ = try LabelledText(contentsOf: positive, labels: .automatic)
        }
        let negative = try dataFile("neg.tsv", "label\ttext\n-1.5\tbad\n-0.5\tpoor\n0\tmeh\n")
        assertThrows(["below 0"]) { _ = try LabelledText(contentsOf: negative, labels: .numericSign) }
        let both = try dataFile("both.tsv", "label\ttext\n-1.5\tbad\n0.5\tgood\n")
        XCTAssertEqual(try LabelledText(contentsOf: both, labels: .automatic).classNames, ["negative", "positive"])
    }

    func testTheSeparatorMessageSaysWhatToDo() throws {
        let path = try dataFile("data.txt", "a,b\n1,2\n")
        assertThrows(["data.txt: cannot tell the separator", "name it .csv (comma-separated) or .tsv"]) {
            _ = try DelimitedTable(contentsOf: path)
        }
        let folder = try temporaryFolder()
        assertThrows(["is a directory, not a data file"]) { _ = try DelimitedTable(contentsOf: folder) }
    }

    func testParallelTextWithNothingLeftSaysWhy() throws {
        let source = try dataFile("a.en", "one two three four\nfive six seven\n\n")
        let target = try dataFile("a.es", "uno dos tres cuatro\ncinco seis siete\nx\n")
        assertThrows([
            "no sentence pair is left of 3", "2 longer than the maximum length of 2 tokens", "1 with a blank side",
        ]) {
            _ = try ParallelText(source: source, target: target, maximumLength: 2)
        }
        XCTAssertEqual(try ParallelText(source: source, target: target, maximumLength: 3).pairs.count, 1)
    }

    func testATestFractionThatRoundsToNoItemIsRefused() throws {
        assertThrows(["a test fraction of 0.1 of 3 items rounds to no test item"]) {
            _ = try DataSplit(shuffling: [1, 2, 3], validationFraction: 0, testFraction: 0.1, seed: 1)
        }
        XCTAssertEqual(try DataSplit(shuffling: [1, 2, 3], validationFraction: 0, testFraction: 0, seed: 1).test, [])
        XCTAssertEqual(
            try DataSplit(shuffling: Array(0..<10), validationFraction: 0, testFraction: 0.1, seed: 1).test.count, 1)
    }
}
