import Foundation
import XCTest

@testable import LSTMCPU
@testable import LSTMCore
@testable import LSTMData
@testable import LSTMKit
@testable import LSTMNN
@testable import LSTMOpenCL
@testable import LSTMReference

final class SafeTensorsTests: XCTestCase {
    func testRoundTripKeepsValuesMetadataAndOrder() throws {
        let a = randomTensor([3, 4], seed: 1), b = randomTensor([5], seed: 2)
        let data = SafeTensorsFile.encode(
            [("b", .float32(b)), ("a", .float32(a)), ("n", .int64(shape: [2], values: [7, -3]))],
            metadata: ["format": "x", "quote\"d": "line\nbreak"])
        let headerSize = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        XCTAssertEqual((8 + headerSize) % 8, 0, "header padded so the data section is 8-byte aligned")
        let file = try SafeTensorsFile(data: data)
        XCTAssertEqual(file.names, ["b", "a", "n"])
        XCTAssertEqual(try file.floatTensor("a"), a)
        XCTAssertEqual(try file.floatTensor("b"), b)
        XCTAssertEqual(try file.intTensor("n").values, [7, -3])
        XCTAssertEqual(file.metadata, ["format": "x", "quote\"d": "line\nbreak"])
    }

    func testModelWeightsRoundTripUnderTorchNames() throws {
        let folder = try temporaryFolder()
        let config = LSTMConfiguration(
            inputSize: 3, hiddenSize: 5, numLayers: 2, bidirectional: true, projectionSize: 2)
        let lstm = try LSTM(config, seed: 5)
        let path = folder + "/model.safetensors"
        try lstm.saveWeights(to: path)
        let file = try SafeTensorsFile(contentsOf: path)
        XCTAssertEqual(file.names, config.parameterSpecs.map(\.name), "state_dict order and names")
        for (name, shape) in config.parameterSpecs {
            XCTAssertEqual(file.entries[name]?.shape, shape)
            XCTAssertEqual(file.entries[name]?.dtype, .f32)
        }
        let loaded = try LSTM(contentsOf: path)
        XCTAssertEqual(loaded.configuration, config, "configuration inferred from names and shapes")
        XCTAssertEqual(try loaded.weights(), try lstm.weights())
        // Only the temporary-free final file is left behind.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder), ["model.safetensors"])
    }

    func testPrefixSelectsASubmodule() throws {
        let folder = try temporaryFolder()
        let config = LSTMConfiguration(inputSize: 2, hiddenSize: 3)
        let lstm = try LSTM(config, seed: 6)
        let path = folder + "/model.safetensors"
        let weights = try lstm.weights()
        try SafeTensorsFile.write(
            config.parameterSpecs.map { ("lstm." + $0.name, .float32(weights[$0.name]!)) }
                + [("head.weight", .float32(Tensor(zeros: [4, 3])))], to: path)
        let other = try LSTM(config, seed: 7)
        try other.loadWeights(from: path, prefix: "lstm.")
        XCTAssertEqual(try other.weights(), weights)
        XCTAssertEqual(try LSTM(contentsOf: path, prefix: "lstm.").configuration, config)
    }

    func testTorchWrittenFixturesLoad() throws {
        // The fixtures were written by safetensors.torch.save_file from a state_dict.
        let file = try SafeTensorsFile(contentsOf: fixtureFolder + "/everything.safetensors")
        XCTAssertEqual(file.metadata["format"], "lstm-fixture/1")
        XCTAssertEqual(try file.intTensor("lengths").values, [2, 6, 0])
        XCTAssertEqual(try file.floatTensor("weight_hr_l2_reverse").shape, [5, 11])
    }

    func testHalfPrecisionConversion() {
        XCTAssertEqual(SafeTensorsFile.halfToFloat(0x3C00), 1)
        XCTAssertEqual(SafeTensorsFile.halfToFloat(0xC000), -2)
        XCTAssertEqual(SafeTensorsFile.halfToFloat(0x0001), Float(sign: .plus, exponent: -24, significand: 1))
        XCTAssertEqual(SafeTensorsFile.halfToFloat(0x7C00), .infinity)
    }

    func testFailedWriteLeavesTheOldFile() throws {
        let folder = try temporaryFolder()
        let path = folder + "/keep.safetensors"
        try SafeTensorsFile.write([("a", .float32(Tensor(zeros: [2])))], to: path)
        XCTAssertThrowsError(try writeAtomically(Data([1]), to: folder + "/no-such-folder/x.safetensors"))
        XCTAssertEqual(try SafeTensorsFile(contentsOf: path).names, ["a"])
    }
}

/// JSON lines (the training logs) escape what they write: keys and strings by JSONEncoder,
/// non-finite numbers as null, so every line parses whatever a class name or path holds.
final class JSONLineTests: XCTestCase {
    func testStringsAreEscapedAndNonFiniteNumbersAreNull() throws {
        let line = jsonLine([
            ("name", .string("a \"quoted\"\\ name\n\u{1B}[31m")), ("loss", .double(.nan)), ("step", .int(3)),
            ("lr", .double(0.25)), ("inf", .double(-.infinity)),
        ])
        XCTAssertFalse(line.contains("\n"), line)
        let parsed = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
        XCTAssertEqual(parsed["name"] as? String, "a \"quoted\"\\ name\n\u{1B}[31m")
        XCTAssertTrue(parsed["loss"] is NSNull, line)
        XCTAssertTrue(parsed["inf"] is NSNull, line)
        XCTAssertEqual(parsed["step"] as? Int, 3)
        XCTAssertEqual(parsed["lr"] as? Double, 0.25)
        XCTAssertTrue(line.hasPrefix("{\"name\":"), "fields keep their order: \(line)")
    }

    func testTheLogWritesOneParsableLinePerRecord() throws {
        let path = try temporaryFolder() + "/log.jsonl"
        let log = try JSONLineLog(path: path, append: false)
        try log.write(["b": .string("x\ty"), "a": .int(1)])
        try log.write(["a": .double(.infinity)])
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines, ["{\"a\":1,\"b\":\"x\\ty\"}", "{\"a\":null}"])
    }
}
