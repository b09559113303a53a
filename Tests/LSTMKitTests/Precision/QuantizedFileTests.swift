import Foundation
import XCTest

@testable import LSTMApplications
@testable import LSTMCPU
@testable import LSTMCore
@testable import LSTMKit
@testable import LSTMNN

/// Quantized files (`ReducedStateDict`): state dicts, whole-model and Seq2Seq files stored in
/// bf16, fp16 and int8 load back exactly (the same outputs, bit for bit), are a fraction of the
/// float32 file's size, and hostile ones (scales NaN, 0, negative or missing; matrices of the
/// wrong dtype or shape; an unknown precision) give errors that say what and where.
final class QuantizedFileTests: XCTestCase {
    func fileSize(_ path: String) throws -> Int {
        try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int
    }

    func testStateDictsRoundTripExactlyAndShrink() throws {
        let folder = try temporaryFolder()
        let c = LSTMConfiguration(inputSize: 48, hiddenSize: 64, numLayers: 2, projectionSize: 32)
        let model = try LSTM(c, seed: 5)
        try model.saveWeights(to: folder + "/fp32.safetensors", prefix: "lstm.")
        let float = try fileSize(folder + "/fp32.safetensors")
        let input = randomTensor([7, 3, 48], seed: 2)
        for (precision, ratio) in [(Precision.int8, 0.32), (.bf16, 0.53), (.fp16, 0.53)] {
            let quantized = try model.quantized(precision)
            let path = folder + "/\(precision).safetensors"
            try quantized.saveWeights(to: path, prefix: "lstm.")
            let size = try fileSize(path)
            print("\(precision): \(size) bytes, \(Double(size) / Double(float))× the float32 file (\(float))")
            XCTAssertLessThan(Double(size), ratio * Double(float), "\(precision)")
            let loaded = try LSTM(contentsOf: path, prefix: "lstm.")
            XCTAssertEqual(loaded.precision, precision)
            XCTAssertEqual(try loaded.forward(input).output.scalars, try quantized.forward(input).output.scalars)
            XCTAssertEqual(try loaded.weights(), try quantized.weights())
            let reference = try LSTM(contentsOf: path, prefix: "lstm.", backend: .reference)
            XCTAssertEqual(reference.precision, precision)
            assertClose(
                try loaded.forward(input).output, try reference.forward(input).output, "\(precision) file, reference",
                tolerance: ReducedPrecisionParityTests.tolerances[precision]!)
        }
    }

    /// Writes `model`'s int8 entries with `edit` applied, returns the path.
    func writeEdited(
        _ model: LSTM, _ folder: String, _ name: String, metadata: [String: String]? = nil,
        _ edit: (inout [(name: String, value: SafeTensorsValue)]) -> Void
    ) throws -> String {
        var entries = try model.weightEntries(prefix: "")
        edit(&entries)
        let path = folder + "/" + name
        try SafeTensorsFile.write(entries, metadata: metadata ?? model.weightMetadata, to: path)
        return path
    }

    func testHostileQuantizedFilesAreRefusedClearly() throws {
        let folder = try temporaryFolder()
        let model = try LSTM(LSTMConfiguration(inputSize: 4, hiddenSize: 8), seed: 1).quantized(.int8)
        func scale(
            _ values: @escaping (inout [Float]) -> Void
        ) -> (inout [(name: String, value: SafeTensorsValue)]) -> Void {
            { entries in
                let index = entries.firstIndex { $0.name == "weight_hh_l0.scale" }!
                guard case .float32(var t) = entries[index].value else { return }
                values(&t.scalars)
                entries[index].value = .float32(t)
            }
        }
        let cases: [(String, (inout [(name: String, value: SafeTensorsValue)]) -> Void, [String])] = [
            ("nan-scale", scale { $0[3] = .nan }, ["'weight_hh_l0' row 3 has scale nan", "positive finite"]),
            ("zero-scale", scale { $0[0] = 0 }, ["'weight_hh_l0' row 0 has scale 0.0"]),
            ("negative-scale", scale { $0[1] = -0.5 }, ["row 1 has scale -0.5"]),
            ("missing-scale", { $0.removeAll { $0.name == "weight_ih_l0.scale" } }, ["weight_ih_l0.scale"]),
            (
                "short-scale",
                { entries in
                    let i = entries.firstIndex { $0.name == "weight_ih_l0.scale" }!
                    entries[i].value = .float32(Tensor(zeros: [31]))
                }, ["weight_ih_l0.scale", "one scale per row", "[32]"]
            ),
            (
                "float-matrix",
                { entries in
                    let i = entries.firstIndex { $0.name == "weight_hh_l0" }!
                    entries[i].value = .float32(Tensor(zeros: [32, 8]))
                }, ["weight_hh_l0", "I8", "F32"]
            ),
            (
                "wrong-shape",
                { entries in
                    let i = entries.firstIndex { $0.name == "weight_hh_l0" }!
                    entries[i].value = .int8(shape: [32, 7], values: [Int8](repeating: 1, count: 224))
                }, ["weight_hh_l0"]
            ),
            (
                "extra", { $0.append((name: "weight_xx.scale", value: .float32(Tensor(zeros: [1])))) },
                ["weight_xx.scale"]
            ),
        ]
        for (name, edit, fragments) in cases {
            let path = try writeEdited(model, folder, name + ".safetensors", edit)
            assertThrows(fragments) { _ = try LSTM(contentsOf: path) }
        }
        var metadata = model.weightMetadata
        metadata["lstm_gpu_precision"] = "int4"
        let unknown = try writeEdited(model, folder, "int4.safetensors", metadata: metadata) { _ in }
        assertThrows(["metadata 'lstm_gpu_precision' is 'int4'", "fp32, bf16, fp16, int8"]) {
            _ = try LSTM(contentsOf: unknown)
        }
        // A file whose precision says fp16 but holds int8 tensors.
        metadata["lstm_gpu_precision"] = "fp16"
        let mismatched = try writeEdited(model, folder, "mismatch.safetensors", metadata: metadata) { _ in }
        assertThrows(["unexpected tensor", ".scale"]) { _ = try LSTM(contentsOf: mismatched) }
    }

    func testModelFilesKeepTheirPrecision() throws {
        let folder = try temporaryFolder()
        let cpu = CPUBackend()
        let model = try countingModel(cpu)
        let input = try LayerValue<CPUBackend>.tokens(
            ids: [1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4], steps: 4, batch: 3, lengths: [4, 2, 3], on: cpu)
        let float = try cpu.read(model.forward(input, training: false).buffer!, offset: 0, count: 6)
        try model.save(to: folder + "/fp32.safetensors", metadata: ["lstm_gpu_classes": "[\"a\",\"b\"]"])
        for precision in [Precision.int8, .bf16, .fp16] {
            let quantized = try model.quantized(precision)
            XCTAssertEqual(quantized.precision, precision)
            XCTAssertEqual(model.precision, .fp32, "the original is unchanged")
            let ours = try cpu.read(quantized.forward(input, training: false).buffer!, offset: 0, count: 6)
            XCTAssertLessThan(zip(ours, float).map { abs($0 - $1) }.max()!, 0.05, "\(precision) is close to fp32")
            XCTAssertNotEqual(ours, float, "\(precision) is not float32")
            let path = folder + "/\(precision).safetensors"
            try quantized.save(to: path, metadata: ["lstm_gpu_classes": "[\"a\",\"b\"]"])
            let loaded = try Sequential(contentsOf: path, backend: cpu)
            XCTAssertEqual(loaded.precision, precision)
            XCTAssertEqual(try cpu.read(loaded.forward(input, training: false).buffer!, offset: 0, count: 6), ours)
            assertThrows(["inference only", "train in fp32"]) { _ = try loaded.forward(input, training: true) }
            // The LSTM inside reads with --prefix, in its precision.
            let lstm = try LSTM(contentsOf: path, prefix: "1.")
            XCTAssertEqual(lstm.precision, precision)
        }
        assertThrows(["already int8"]) { _ = try model.quantized(.int8).quantized(.fp16) }
        // LSTM layers of two precisions in one model: a file holds one, so saving is refused.
        let c = LSTMConfiguration(inputSize: 8, hiddenSize: 8)
        let mixed = try Sequential<CPUBackend>([
            LSTMLayer(
                stack: LSTMStack(configuration: c, backend: cpu, weights: c.initialWeights(seed: 1), precision: .int8)),
            LSTMLayer(
                stack: LSTMStack(configuration: c, backend: cpu, weights: c.initialWeights(seed: 2), precision: .bf16)),
        ])
        assertThrows(["bf16 and int8", "one precision"]) { try mixed.save(to: folder + "/mixed.safetensors") }
    }

    func testSeq2SeqFilesKeepTheirPrecision() throws {
        let folder = try temporaryFolder()
        let cpu = CPUBackend()
        let configuration = Seq2SeqConfiguration(
            sourceVocabularySize: 12, targetVocabularySize: 10, embeddingSize: 8, hiddenSize: 16, numLayers: 2,
            attention: true)
        let model = try Seq2Seq(configuration, backend: cpu, seed: 4)
        model.metadata = ["lstm_gpu_source_vocabulary": "x"]
        let sources = [[4, 5, 6], [7, 8]]
        for precision in [Precision.int8, .bf16] {
            let quantized = try model.quantized(precision)
            XCTAssertEqual(quantized.precision, precision)
            let path = folder + "/\(precision).safetensors"
            try quantized.save(to: path)
            let loaded = try Seq2Seq(contentsOf: path, backend: cpu)
            XCTAssertEqual(loaded.precision, precision)
            XCTAssertEqual(loaded.metadata, model.metadata)
            XCTAssertEqual(
                try loaded.translate(sources, maxLength: 6, beamWidth: 2),
                try quantized.translate(sources, maxLength: 6, beamWidth: 2))
        }
    }
}
