import Foundation
import XCTest

@testable import LSTMCPU
@testable import LSTMCore
@testable import LSTMData
@testable import LSTMKit
@testable import LSTMNN
@testable import LSTMOpenCL
@testable import LSTMReference

/// The committed slices of the application data sets (scripts/fetch-*), next to this file.
let appFixtureFolder = fixtureFolder + "/apps"

/// Writes `text` to a file called `name` in a fresh temporary folder and returns its path.
func dataFile(_ name: String, _ text: String) throws -> String {
    let path = try temporaryFolder() + "/" + name
    try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    return path
}

/// The data loaders of Sources/LSTMData: good files, the committed application slices, and
/// hostile files whose errors must name the file and the line (or the column).
final class DataLoaderTests: XCTestCase {
    // MARK: DelimitedTable

    func testCSVQuotesEscapesEmbeddedLineBreaksCRLFAndBOM() throws {
        let path = try dataFile(
            "t.csv",
            "\u{FEFF}id,text\r\n1,\"a, b\"\r\n2,\"say \"\"hi\"\"\"\r\n3,\"two\r\nlines\"\r\n\r\n4,plain \"x\"\r\n")
        let table = try DelimitedTable(contentsOf: path)
        XCTAssertEqual(table.header, ["id", "text"])
        XCTAssertEqual(
            table.rows, [["1", "a, b"], ["2", "say \"hi\""], ["3", "two\r\nlines"], ["4", "plain \"x\""]])
        XCTAssertEqual(table.lineNumbers, [2, 3, 4, 7])
        XCTAssertEqual(try table.column(named: "id"), ["1", "2", "3", "4"])
    }

    func testTSVHasNoQuotingAndEmptyFieldsCount() throws {
        let path = try dataFile("t.tsv", "a\tb\tc\n\"x\t\t\"y\"\n")
        let table = try DelimitedTable(contentsOf: path)
        XCTAssertEqual(table.rows, [["\"x", "", "\"y\""]])
        let explicit = try DelimitedTable(contentsOf: try dataFile("t.txt", "a;b\n1;2"), separator: ";")
        XCTAssertEqual(explicit.rows, [["1", "2"]])
        let headerless = try DelimitedTable(contentsOf: try dataFile("h.csv", "1,2\n3,4\n"), hasHeader: false)
        XCTAssertEqual(headerless.header, ["column1", "column2"])
        XCTAssertEqual(headerless.rows.count, 2)
    }

    func testHostileTables() throws {
        let wrong = try dataFile("wrong.csv", "a,b,c\n1,2,3\n\n4,5\n")
        assertThrows(["wrong.csv", "line 4", "2 fields", "has 3"]) { _ = try DelimitedTable(contentsOf: wrong) }
        let open = try dataFile("open.csv", "a,b\n1,2\n3,\"never\nclosed\n")
        assertThrows(["open.csv", "line 3", "never closed"]) { _ = try DelimitedTable(contentsOf: open) }
        let after = try dataFile("after.csv", "a,b\n1,\"x\"y\n")
        assertThrows(["after.csv", "line 2", "field 2", "after its closing quote"]) {
            _ = try DelimitedTable(contentsOf: after)
        }
        let empty = try dataFile("empty.csv", "\u{FEFF}\n\n")
        assertThrows(["empty.csv", "empty"]) { _ = try DelimitedTable(contentsOf: empty) }
        let unknown = try dataFile("data.dat", "a,b\n")
        assertThrows(["data.dat", "separator"]) { _ = try DelimitedTable(contentsOf: unknown) }
        assertThrows(["no such file"]) { _ = try DelimitedTable(contentsOf: unknown + ".csv") }
        let binary = try dataFile("binary.csv", "a,b\n1,\0\n")
        assertThrows(["binary.csv", "NUL"]) { _ = try DelimitedTable(contentsOf: binary) }
        let table = try DelimitedTable(contentsOf: try dataFile("cols.csv", "name,value,value\nx,1,2\n"))
        assertThrows(["cols.csv", "no column \"the label\"", "name, value, value"]) {
            _ = try table.column(named: "the label")
        }
        assertThrows(["2 columns are called value", "columns 2, 3"]) { _ = try table.column(named: "value") }
        assertThrows(["separator"]) { _ = try DelimitedTable(text: "a", separator: "\"") }
    }

    // MARK: LabelledText

    func testLabelledTextNamesDefaultsAndTwoColumnFallback() throws {
        let path = try dataFile(
            "reviews.csv", "id,label,text\n1,pos,good film\n2,neg,\"bad, bad\"\n3,pos,  \n4,meh,ok\n")
        let data = try LabelledText(contentsOf: path)
        XCTAssertEqual(data.classNames, ["meh", "neg", "pos"])
        XCTAssertEqual(data.examples.map(\.label), [2, 1, 0])
        XCTAssertEqual(data.examples.map(\.text), ["good film", "bad, bad", "ok"])
        XCTAssertEqual(data.examples.map(\.line), [2, 3, 5])
        XCTAssertEqual(data.droppedEmptyText, 1)
        let pair = try LabelledText(contentsOf: try dataFile("pair.tsv", "y\tsentence\nb\tone\na\ttwo\n"))
        XCTAssertEqual(pair.classNames, ["a", "b"])
        XCTAssertEqual(pair.examples.map(\.label), [1, 0])
    }

    func testLabelledTextNumericSign() throws {
        let path = try dataFile("scores.tsv", "id\tsentiment\ttext\n1\t2.5\tgreat\n2\t-0.7\tawful\n3\t0\tmeh\n")
        let data = try LabelledText(contentsOf: path, labelColumn: "sentiment", labels: .numericSign)
        XCTAssertEqual(data.classNames, ["negative", "positive"])
        XCTAssertEqual(data.examples.map(\.label), [1, 0])
        XCTAssertEqual(data.droppedNeutral, 1)
        let bad = try dataFile("bad.tsv", "sentiment\ttext\n1\tfine\nNaN\twhat\n")
        assertThrows(["bad.tsv", "line 3", "NaN", "sentiment"]) {
            _ = try LabelledText(contentsOf: bad, labelColumn: "sentiment", labels: .numericSign)
        }
        let three = try dataFile("three.csv", "a,b,c\n1,2,3\n")
        assertThrows(["three.csv", "label", "a, b, c"]) { _ = try LabelledText(contentsOf: three) }
        assertThrows(["three.csv", "no column", "tone"]) {
            _ = try LabelledText(contentsOf: three, labelColumn: "tone")
        }
        let unlabelled = try dataFile("unlabelled.csv", "label,text\nx,fine\n ,oops\n")
        assertThrows(["unlabelled.csv", "line 3", "empty label"]) { _ = try LabelledText(contentsOf: unlabelled) }
    }

    // MARK: TaggedSentences

    func testTaggedSentencesCommentsBlankLinesAndColumns() throws {
        let path = try dataFile(
            "tags.txt", "# comment\n-DOCSTART- -X- O\n\nThe DT B-NP O\ncat\tNN\n \n\nsat  VBD\r\n. .\n")
        let data = try TaggedSentences(contentsOf: path)
        XCTAssertEqual(data.sentences.count, 2)
        XCTAssertEqual(data.sentences[0].map(\.token), ["The", "cat"])
        XCTAssertEqual(data.sentences[0].map(\.tag), ["O", "NN"])
        XCTAssertEqual(data.sentences[1].map(\.tag), ["VBD", "."])
        XCTAssertEqual(data.lineNumbers, [4, 8])
        XCTAssertEqual(data.tags, [".", "NN", "O", "VBD"])
        XCTAssertEqual(data.tagIndex("O"), 2)
        XCTAssertNil(data.tagIndex("X"))
        let bad = try dataFile("bad.txt", "a DT\nb NN\n\nlonely\n")
        assertThrows(["bad.txt", "line 4", "one field", "lonely"]) { _ = try TaggedSentences(contentsOf: bad) }
    }

    // MARK: NumericSeries and Standardizer

    func testNumericSeriesPicksTheLastNumericColumnAndMakesWindows() throws {
        let path = try dataFile("s.csv", "date,name,value\n2001-01,a,1\n2001-02,b, 2.5\n2001-03,c,4\n2001-04,d,8\n")
        let series = try NumericSeries(contentsOf: path, timeColumn: "date")
        XCTAssertEqual(series.name, "value")
        XCTAssertEqual(series.values, [1, 2.5, 4, 8])
        XCTAssertEqual(series.times ?? [], ["2001-01", "2001-02", "2001-03", "2001-04"])
        let windows = try series.windows(input: 2, horizon: 1)
        XCTAssertEqual(windows.map(\.input), [[1, 2.5], [2.5, 4]])
        XCTAssertEqual(windows.map(\.target), [[4], [8]])
        assertThrows(["too short", "4 values"]) { _ = try series.windows(input: 4, horizon: 1) }
        assertThrows(["horizon"]) { _ = try series.windows(input: 1, horizon: 0) }
    }

    func testHostileNumericCells() throws {
        let empty = try dataFile("co2.csv", "date,co2\n1958,316.1\n1959,\n")
        assertThrows(["co2.csv", "line 3", "empty cell", "co2", "missing"]) { _ = try NumericSeries(contentsOf: empty) }
        let nan = try dataFile("nan.tsv", "t\tx\n1\t1\n2\tNaN\n")
        assertThrows(["nan.tsv", "line 3", "NaN", "not a finite number"]) {
            _ = try NumericSeries(contentsOf: nan, column: "x")
        }
        let text = try dataFile("text.csv", "t,x\n1,1\n2,3 apples\n")
        assertThrows(["text.csv", "line 3", "3 apples"]) { _ = try NumericSeries(contentsOf: text, column: "x") }
        let words = try dataFile("words.csv", "a,b\nx,y\n")
        assertThrows(["words.csv", "no numeric column", "a, b"]) { _ = try NumericSeries(contentsOf: words) }
        assertThrows(["words.csv", "no column", "time"]) {
            _ = try NumericSeries(contentsOf: words, timeColumn: "time")
        }
    }

    func testStandardizerFitsOnTheTrainingPrefix() throws {
        let values: [Double] = [1, 2, 3, 4, 100]
        let scaler = try Standardizer(fitting: values.prefix(4))
        XCTAssertEqual(scaler.mean, 2.5)
        XCTAssertEqual(scaler.standardDeviation, 1.25.squareRoot(), accuracy: 1e-12)
        let scaled = scaler.apply(values)
        XCTAssertEqual(scaled[0], -1.5 / 1.25.squareRoot(), accuracy: 1e-12)
        for (a, b) in zip(scaler.invert(scaled), values) { XCTAssertEqual(a, b, accuracy: 1e-9) }
        let constant = try Standardizer(fitting: [5.0, 5, 5])
        XCTAssertTrue(constant.isConstant)
        XCTAssertEqual(constant.apply([5, 6]), [0, 1])
        let json = try JSONEncoder().encode(scaler)
        XCTAssertEqual(try JSONDecoder().decode(Standardizer.self, from: json), scaler)
        assertThrows(["no values"]) { _ = try Standardizer(fitting: [Double]()) }
        assertThrows(["non-finite"]) { _ = try Standardizer(fitting: [1, .infinity]) }
        XCTAssertThrowsError(
            try JSONDecoder().decode(Standardizer.self, from: Data(#"{"mean":0,"standardDeviation":0}"#.utf8)))
    }

    // MARK: ParallelText

    func testParallelTextDropsBlankAndLongPairs() throws {
        let source = try dataFile("a.en", "Hello there.\n\nA very long sentence with many words.\nBye\r\n")
        let target = try dataFile("a.es", "Hola.\nVacío\nUna frase.\nAdiós\n")
        let text = try ParallelText(source: source, target: target, maximumLength: 4)
        XCTAssertEqual(text.pairs.map(\.source), ["Hello there.", "Bye"])
        XCTAssertEqual(text.pairs.map(\.target), ["Hola.", "Adiós"])
        XCTAssertEqual(text.lineNumbers, [1, 4])
        XCTAssertEqual(text.droppedBlank, 1)
        XCTAssertEqual(text.droppedLong, 1)
        let short = try dataFile("b.es", "Hola.\nVacío\n")
        assertThrows(["a.en has 4", "b.es has 2", "same number of lines"]) {
            _ = try ParallelText(source: source, target: short)
        }
    }

    // MARK: TokenVocabulary and tokenisation

    func testWordTokenisationIsAsDocumented() {
        XCTAssertEqual(Tokenization.words.tokens("Don't stop—now!"), ["don't", "stop", "—", "now", "!"])
        XCTAssertEqual(Tokenization.words.tokens("  3.5 km,\tO’Brien's  "), ["3", ".", "5", "km", ",", "o’brien's"])
        XCTAssertEqual(Tokenization.characters.tokens("Ab c"), ["A", "b", " ", "c"])
    }

    func testVocabularyFromTrainingTextEncodesDecodesAndRoundTrips() throws {
        let training = ["the cat sat.", "the dog sat!", "a cat"]
        let vocabulary = try TokenVocabulary(training: training, tokenization: .words, minimumCount: 2)
        XCTAssertEqual(vocabulary.tokens, ["<pad>", "<unk>", "<bos>", "<eos>", "cat", "sat", "the"])
        XCTAssertEqual(vocabulary.encode("The cat ran"), [6, 4, 1])
        XCTAssertEqual(vocabulary.encode("cat", addBoundaries: true), [2, 4, 3])
        XCTAssertEqual(try vocabulary.decode([2, 6, 4, 1, 3, 0, 0]), "the cat <unk>")
        assertThrows(["token id 7", "vocabulary of 7"]) { _ = try vocabulary.decode([7]) }
        let capped = try TokenVocabulary(training: training, tokenization: .words, maximumSize: 6)
        XCTAssertEqual(capped.count, 6)
        XCTAssertEqual(Array(capped.tokens.suffix(2)), ["cat", "sat"])
        let restored = try TokenVocabulary(json: vocabulary.json())
        XCTAssertEqual(restored, vocabulary)
        XCTAssertEqual(restored.encode("the cat"), vocabulary.encode("the cat"))
        let characters = try TokenVocabulary(training: ["abca"], tokenization: .characters)
        XCTAssertEqual(characters.tokens.dropFirst(4), ["a", "b", "c"])
        XCTAssertEqual(try characters.decode(characters.encode("cab")), "cab")
        assertThrows(["minimum count"]) {
            _ = try TokenVocabulary(training: training, tokenization: .words, minimumCount: 0)
        }
        assertThrows(["maximum vocabulary size"]) {
            _ = try TokenVocabulary(training: training, tokenization: .words, maximumSize: 3)
        }
    }

    func testCorruptVocabularyJSONIsRefused() {
        let specials = #""<pad>","<unk>","<bos>","<eos>""#
        assertThrows(["appears twice", "ids 4 and 5"]) {
            _ = try TokenVocabulary(json: #"{"tokenization":"words","tokens":[\#(specials),"a","a"]}"#)
        }
        assertThrows(["must begin with", "<pad>"]) {
            _ = try TokenVocabulary(json: #"{"tokenization":"words","tokens":["a","<unk>","<bos>","<eos>"]}"#)
        }
        assertThrows(["token 4 is empty"]) {
            _ = try TokenVocabulary(json: #"{"tokenization":"words","tokens":[\#(specials),""]}"#)
        }
        assertThrows(["missing key", "tokens"]) { _ = try TokenVocabulary(json: #"{"tokenization":"words"}"#) }
        assertThrows(["not a token vocabulary", "tokenization"]) {
            _ = try TokenVocabulary(json: #"{"tokenization":"bytes","tokens":[\#(specials)]}"#)
        }
        assertThrows(["not a token vocabulary"]) { _ = try TokenVocabulary(json: "{not json") }
        let huge = Array(repeating: "x", count: SizeLimits.maxWidth + 1)
        assertThrows(["above the limit"]) { _ = try TokenVocabulary(tokens: huge, tokenization: .words) }
    }

    // MARK: split

    func testSplitIsDeterministicAndValidated() throws {
        let items = Array(0..<100)
        let split = try DataSplit(shuffling: items, validationFraction: 0.1, testFraction: 0.15, seed: 7)
        XCTAssertEqual(split.validation.count, 10)
        XCTAssertEqual(split.test.count, 15)
        XCTAssertEqual(split.training.count, 75)
        XCTAssertEqual((split.training + split.validation + split.test).sorted(), items)
        XCTAssertNotEqual(split.training, Array(items.suffix(75)))
        let again = try DataSplit(shuffling: items, validationFraction: 0.1, testFraction: 0.15, seed: 7)
        XCTAssertEqual(again.validation, split.validation)
        let other = try DataSplit(shuffling: items, validationFraction: 0.1, testFraction: 0.15, seed: 8)
        XCTAssertNotEqual(other.validation, split.validation)
        assertThrows(["sum to less than 1"]) {
            _ = try DataSplit(shuffling: items, validationFraction: 0.5, testFraction: 0.5, seed: 1)
        }
        assertThrows(["at least 0"]) { _ = try DataSplit(shuffling: items, validationFraction: -0.1, seed: 1) }
        assertThrows(["none for training"]) { _ = try DataSplit(shuffling: [1], validationFraction: 0.6, seed: 1) }
        XCTAssertEqual(try DataSplit(shuffling: [Int](), validationFraction: 0.2, seed: 1).training, [])
    }

    // MARK: the committed application slices

    func testDigitsSliceReadsAsATable() throws {
        let table = try DelimitedTable(contentsOf: appFixtureFolder + "/digits-200.csv")
        XCTAssertEqual(table.header.count, 65)
        XCTAssertEqual(table.header.last, "label")
        XCTAssertEqual(table.rows.count, 200)
        let labels = try table.column(named: "label").map { Int($0)! }
        XCTAssertEqual(Array(labels.prefix(10)), Array(0..<10))
        XCTAssertTrue(table.rows.allSatisfy { $0.dropLast().allSatisfy { (0...16).contains(Int($0) ?? -1) } })
    }

    func testSunspotsSliceIsASeries() throws {
        let series = try NumericSeries(contentsOf: appFixtureFolder + "/sunspots.csv", timeColumn: "YEAR")
        XCTAssertEqual(series.name, "SUNACTIVITY")
        XCTAssertEqual(series.values.count, 309)
        XCTAssertEqual(series.times?.first, "1700")
        let scaler = try Standardizer(fitting: series.values.prefix(250))
        let windows = try slidingWindows(scaler.apply(series.values), input: 20, horizon: 3)
        XCTAssertEqual(windows.count, 309 - 23 + 1)
    }

    func testBibleSliceIsParallelText() throws {
        let text = try ParallelText(
            source: appFixtureFolder + "/bible-300.en", target: appFixtureFolder + "/bible-300.es")
        XCTAssertEqual(text.pairs.count, 300)
        XCTAssertEqual(text.pairs[0].source, "In the beginning, God created the heavens and the earth.")
        XCTAssertTrue(text.pairs[0].target.hasPrefix("EN el principio"))
        let split = try DataSplit(shuffling: text.pairs, validationFraction: 0.1, seed: 1)
        XCTAssertEqual(split.training.count, 270)
        let english = try TokenVocabulary(training: split.training.map(\.source), tokenization: .words)
        XCTAssertGreaterThan(english.count, 100)
        XCTAssertFalse(english.encode(split.training[0].source).contains(TokenVocabulary.unknown))
        let spanish = try TokenVocabulary(training: split.training.map(\.target), tokenization: .words)
        XCTAssertEqual(try spanish.decode(spanish.encode("Y dijo Dios")), "y dijo dios")
    }

    /// The whole data sets the fetch scripts write into data/, each checked when it is there.
    func testFetchedDataSetsWhenPresent() throws {
        let folder = packageRoot.appendingPathComponent("data").path
        func present(_ name: String) -> String? {
            FileManager.default.fileExists(atPath: folder + "/" + name) ? folder + "/" + name : nil
        }
        var checked = 0
        if let digits = present("digits.csv") {
            let table = try DelimitedTable(contentsOf: digits)
            XCTAssertEqual(table.rows.count, 1797)
            XCTAssertEqual(table.header.count, 65)
            checked += 1
        }
        if let sunspots = present("sunspots.csv") {
            XCTAssertEqual(try NumericSeries(contentsOf: sunspots).values.count, 309)
            checked += 1
        }
        if let co2 = present("co2.csv") {
            // scripts/fetch-sunspots fills the 59 weeks without a measurement: 2,284 weekly values.
            let series = try NumericSeries(contentsOf: co2)
            XCTAssertEqual(series.values.count, 2284)
            XCTAssertEqual(series.name, "co2")
            checked += 1
        }
        if let english = present("bible.en"), let spanish = present("bible.es"), let references = present("bible.refs")
        {
            let text = try ParallelText(source: english, target: spanish)
            let lines = try readTextFile(references).split(separator: "\n").count
            XCTAssertEqual(text.pairs.count, lines)
            XCTAssertEqual(text.droppedBlank, 0)
            checked += 1
        }
        if let reviews = present("movie-reviews.tsv") {
            let data = try LabelledText(contentsOf: reviews, labelColumn: "sentiment", labels: .numericSign)
            XCTAssertGreaterThan(data.examples.count, 10_000)
            checked += 1
        }
        if checked == 0 { throw XCTSkip("no fetched data sets in \(folder) (scripts/fetch-*)") }
    }

    func testTaggingSliceHasFortySentences() throws {
        let data = try TaggedSentences(contentsOf: appFixtureFolder + "/tagging-small.txt")
        XCTAssertEqual(data.sentences.count, 40)
        XCTAssertEqual(data.tags, ["ADJ", "ADP", "ADV", "DET", "NOUN", "PRON", "PUNCT", "VERB"])
        XCTAssertTrue(data.sentences.allSatisfy { $0.last?.tag == "PUNCT" })
    }

    /// `.automatic` labels: scores (negative or fractional) become their sign; whole numbers
    /// 0, 1, 2 stay class names.
    func testAutomaticLabels() throws {
        let ids = try DelimitedTable(text: "label,text\n0,a\n1,b\n2,c\n", separator: ",")
        let classes = try LabelledText(table: ids, labels: .automatic)
        XCTAssertEqual(classes.classNames, ["0", "1", "2"])
        XCTAssertEqual(classes.examples.map(\.label), [0, 1, 2])
        let scores = try DelimitedTable(text: "label,text\n2.25,a\n-0.5,b\n0,c\n1,d\n", separator: ",")
        let signs = try LabelledText(table: scores, labels: .automatic)
        XCTAssertEqual(signs.classNames, ["negative", "positive"])
        XCTAssertEqual(signs.examples.map(\.label), [1, 0, 1])
        XCTAssertEqual(signs.droppedNeutral, 1)
    }
}
