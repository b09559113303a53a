import Foundation
import XCTest

@testable import LSTMCPU
@testable import LSTMCore
@testable import LSTMData
@testable import LSTMKit
@testable import LSTMNN
@testable import LSTMOpenCL
@testable import LSTMReference

/// Bad input gives a thrown error that names the problem.
final class ErrorTests: XCTestCase {
    let config = LSTMConfiguration(inputSize: 4, hiddenSize: 6, numLayers: 2)

    func testShapeMismatchesAreNamed() throws {
        let lstm = try LSTM(config, seed: 1)
        assertThrows(["input", "[5, 2, 4]", "[5, 2, 3]"]) { _ = try lstm.forward(Tensor(zeros: [5, 2, 3])) }
        assertThrows(["input must be 3-D"]) { _ = try lstm.forward(Tensor(zeros: [5, 4])) }
        assertThrows(["h0", "[2, 2, 6]", "[2, 3, 6]"]) {
            _ = try lstm.forward(Tensor(zeros: [5, 2, 4]), h0: Tensor(zeros: [2, 3, 6]))
        }
        assertThrows(["c0", "[2, 2, 6]"]) {
            _ = try lstm.forward(Tensor(zeros: [5, 2, 4]), c0: Tensor(zeros: [1, 2, 6]))
        }
        assertThrows(["lengths[1] = 6", "0...5"]) { _ = try lstm.forward(Tensor(zeros: [5, 2, 4]), lengths: [5, 6]) }
        assertThrows(["lengths[0] = -1"]) { _ = try lstm.forward(Tensor(zeros: [5, 2, 4]), lengths: [-1, 2]) }
        assertThrows(["lengths", "[2]", "[3]"]) { _ = try lstm.forward(Tensor(zeros: [5, 2, 4]), lengths: [1, 2, 3]) }
        assertThrows(["at least one step"]) { _ = try lstm.forward(Tensor(zeros: [0, 2, 4])) }
        let result = try lstm.forward(Tensor(zeros: [5, 2, 4]), training: true)
        assertThrows(["output gradient", "[5, 2, 6]"]) {
            _ = try lstm.backward(result, outputGradient: Tensor(zeros: [5, 2, 5]))
        }
        let inference = try lstm.forward(Tensor(zeros: [5, 2, 4]))
        assertThrows(["training: true"]) { _ = try lstm.backward(inference, outputGradient: nil) }
    }

    func testInvalidConfigurationsAreRefused() {
        assertThrows(["projectionSize (6) must be smaller than hiddenSize (6)"]) {
            _ = try LSTM(LSTMConfiguration(inputSize: 2, hiddenSize: 6, projectionSize: 6))
        }
        assertThrows(["hiddenSize must be at least 1, got 0"]) {
            _ = try LSTM(LSTMConfiguration(inputSize: 2, hiddenSize: 0))
        }
        assertThrows(["numLayers must be at least 1, got 0"]) {
            _ = try LSTM(LSTMConfiguration(inputSize: 2, hiddenSize: 3, numLayers: 0))
        }
    }

    func testWeightFileProblemsAreNamed() throws {
        let folder = try temporaryFolder()
        let lstm = try LSTM(config, seed: 2)
        var weights = try lstm.weights()

        let missing = folder + "/missing.safetensors"
        try SafeTensorsFile.write(
            config.parameterSpecs.filter { $0.name != "bias_hh_l1" }
                .map { ($0.name, .float32(weights[$0.name]!)) }, to: missing)
        assertThrows(["missing.safetensors", "missing tensor 'bias_hh_l1'"]) { try lstm.loadWeights(from: missing) }

        let misshaped = folder + "/misshaped.safetensors"
        weights["weight_hh_l0"] = Tensor(zeros: [24, 5])
        try SafeTensorsFile.write(config.parameterSpecs.map { ($0.name, .float32(weights[$0.name]!)) }, to: misshaped)
        assertThrows(["weight_hh_l0", "expected [24, 6], got [24, 5]"]) { try lstm.loadWeights(from: misshaped) }

        let wrongType = folder + "/wrong-dtype.safetensors"
        weights = try lstm.weights()
        try SafeTensorsFile.write(
            config.parameterSpecs.map {
                $0.name == "bias_ih_l0"
                    ? ($0.name, .int64(shape: [24], values: Array(0..<24))) : ($0.name, .float32(weights[$0.name]!))
            }, to: wrongType)
        assertThrows(["bias_ih_l0", "I64"]) { try lstm.loadWeights(from: wrongType) }

        let extra = folder + "/extra.safetensors"
        try SafeTensorsFile.write(
            config.parameterSpecs.map { ($0.name, .float32(weights[$0.name]!)) }
                + [("weight_ih_l2", .float32(Tensor(zeros: [24, 6])))], to: extra)
        assertThrows(["unexpected tensor 'weight_ih_l2'"]) { try lstm.loadWeights(from: extra) }

        assertThrows(["does-not-exist.safetensors: no such file"]) {
            try lstm.loadWeights(from: folder + "/does-not-exist.safetensors")
        }
        // A failed load leaves the model's weights as they were.
        XCTAssertEqual(try lstm.weights(), try LSTM(config, seed: 2).weights())
    }

    func testCorruptSafetensorsAreRefused() throws {
        let good = SafeTensorsFile.encode([
            ("a", .float32(Tensor(zeros: [2, 3]))), ("b", .float32(Tensor(zeros: [4]))),
        ])
        XCTAssertNoThrow(try SafeTensorsFile(data: good))
        assertThrows(["shorter than the 8-byte header"]) { _ = try SafeTensorsFile(data: Data([1, 2, 3])) }
        assertThrows(["truncated"]) { _ = try SafeTensorsFile(data: good.prefix(good.count - 4)) }
        assertThrows(["runs past the end of the file"]) { _ = try SafeTensorsFile(data: good.prefix(20)) }
        var huge = Data(good)
        huge.replaceSubrange(0..<8, with: withUnsafeBytes(of: UInt64(1 << 40).littleEndian) { Data($0) })
        assertThrows(["exceeds the limit"]) { _ = try SafeTensorsFile(data: huge) }
        var garbled = Data(good)
        garbled[8] = UInt8(ascii: "x")
        assertThrows(["not a JSON object"]) { _ = try SafeTensorsFile(data: garbled) }
        assertThrows(["trailing bytes"]) { _ = try SafeTensorsFile(data: good + Data([0, 0, 0, 0])) }

        func file(header: String, dataBytes: Int) -> Data {
            var bytes = Array(header.utf8)
            while bytes.count % 8 != 0 { bytes.append(32) }
            return withUnsafeBytes(of: UInt64(bytes.count).littleEndian) { Data($0) } + Data(bytes)
                + Data(count: dataBytes)
        }
        assertThrows(["'a'", "needs 24 bytes", "span 16"]) {
            _ = try SafeTensorsFile(
                data: file(header: #"{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,16]}}"#, dataBytes: 16))
        }
        assertThrows(["unknown dtype Q8"]) {
            _ = try SafeTensorsFile(
                data: file(header: #"{"a":{"dtype":"Q8","shape":[2],"data_offsets":[0,2]}}"#, dataBytes: 2))
        }
        assertThrows(["overlaps"]) {
            _ = try SafeTensorsFile(
                data: file(
                    header:
                        #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
                    dataBytes: 8))
        }
        assertThrows(["gap"]) {
            _ = try SafeTensorsFile(
                data: file(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, dataBytes: 8))
        }
        assertThrows(["invalid shape"]) {
            _ = try SafeTensorsFile(
                data: file(header: #"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, dataBytes: 4))
        }
        assertThrows(["__metadata__ value"]) {
            _ = try SafeTensorsFile(data: file(header: #"{"__metadata__":{"k":3}}"#, dataBytes: 0))
        }
    }

    func testFixtureFormatIsChecked() throws {
        let folder = try temporaryFolder()
        let path = folder + "/other.safetensors"
        try SafeTensorsFile.write(
            [("input", .float32(Tensor(zeros: [1, 1, 1])))], metadata: ["format": "lstm-fixture/9"], to: path)
        assertThrows(["not an lstm-fixture/1 parity fixture", "'lstm-fixture/9'"]) { _ = try Fixture(contentsOf: path) }
        try SafeTensorsFile.write([("input", .float32(Tensor(zeros: [1, 1, 1])))], to: path)
        assertThrows(["no __metadata__.format"]) { _ = try Fixture(contentsOf: path) }
    }

    func testForwardResultOfAnotherModelIsRefused() throws {
        let a = try LSTM(config, seed: 1), b = try LSTM(config, seed: 1)
        let result = try a.forward(Tensor(zeros: [2, 1, 4]), training: true)
        assertThrows(["different LSTM"]) { _ = try b.backward(result, outputGradient: nil) }
    }
}
