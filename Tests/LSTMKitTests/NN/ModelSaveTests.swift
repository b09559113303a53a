import Foundation
import XCTest

@testable import LSTMCPU
@testable import LSTMCore
@testable import LSTMData
@testable import LSTMKit
@testable import LSTMNN
@testable import LSTMOpenCL
@testable import LSTMReference

/// Whole-model files: `Sequential.save(to:)` and `Sequential(contentsOf:backend:)`.
/// With LSTM_GPU_MODEL_EXPORT=<folder>, the round-trip tests also leave `classifier` and
/// `tagger` model files and their `.inputs.safetensors` there for `scripts/model-in-torch`.
final class ModelSaveTests: XCTestCase {
    static let (steps, batch) = (6, 3)
    static let ids = (0..<(steps * batch)).map { ($0 * 7 + 3) % 11 }
    static let lengths = [6, 4, 1]

    /// `testClassifier` with H = 5 and mean pooling.
    func classifier<B: ModelOps>(_ b: B) throws -> Sequential<B> {
        try testClassifier(b, hiddenSize: 5, pooling: .mean)
    }

    /// Embedding → LSTM with projection → per-step Linear (a tagger).
    func tagger<B: ModelOps>(_ b: B, cell: LSTMCellOptions = LSTMCellOptions()) throws -> Sequential<B> {
        try Sequential<B>([
            Embedding(backend: b, vocabularySize: 11, dimension: 4, seed: 5),
            LSTMLayer(
                LSTMConfiguration(inputSize: 4, hiddenSize: 6, projectionSize: 3, cell: cell), backend: b, seed: 6),
            Linear(backend: b, inputSize: 3, outputSize: 5, seed: 7),
        ])
    }

    func outputs<B: ModelOps>(_ model: Sequential<B>, _ b: B) throws -> (values: [Float], shape: [Int]) {
        let x = try LayerValue.tokens(
            ids: Self.ids, steps: Self.steps, batch: Self.batch, lengths: Self.lengths, on: b)
        let y = try model.forward(x, training: false)
        return (try b.read(y.buffer!, offset: 0, count: y.elementCount), y.shape)
    }

    /// Saves, loads on the same backend, compares outputs bit for bit and trains the loaded model.
    func checkRoundTrip<B: ModelOps>(_ b: B, _ name: String, _ model: Sequential<B>) throws {
        let path = try temporaryFolder() + "/\(name).safetensors"
        try model.save(to: path)
        let file = try SafeTensorsFile(contentsOf: path)
        XCTAssertEqual(Set(file.names), Set(model.parameters.map(\.name)))
        let loaded = try Sequential<B>(contentsOf: path, backend: b)
        XCTAssertEqual(try loaded.architecture(), try model.architecture())
        XCTAssertEqual(loaded.parameters.map(\.name), model.parameters.map(\.name))
        let expected = try outputs(model, b)
        XCTAssertEqual(try outputs(loaded, b).values, expected.values, name)
        XCTAssertEqual(try outputs(loaded, b).shape, expected.shape, name)
        // The loaded model trains: one Adam step moves its weights and keeps outputs finite.
        let x = try LayerValue.tokens(
            ids: Self.ids, steps: Self.steps, batch: Self.batch, lengths: Self.lengths, on: b)
        let logits = try loaded.forward(x, training: true)
        let rows = logits.elementCount / logits.shape.last!
        let loss = try CrossEntropyLoss(backend: b)(logits, targets: (0..<rows).map { $0 % 3 })
        try loaded.backward(loss.gradient)
        try loaded.step(Optimizer(backend: b, kind: .adam()), learningRate: 0.01)
        let after = try outputs(loaded, b).values
        XCTAssertNotEqual(after, expected.values)
        XCTAssertTrue(after.allSatisfy(\.isFinite))
        if let folder = ProcessInfo.processInfo.environment["LSTM_GPU_MODEL_EXPORT"] {
            try model.save(to: folder + "/\(name).safetensors")
            try SafeTensorsFile.write(
                [
                    ("ids", .int64(shape: [Self.steps, Self.batch], values: Self.ids)),
                    ("lengths", .int64(shape: [Self.batch], values: Self.lengths)),
                    ("expected", .float32(try Tensor(shape: expected.shape, scalars: expected.values))),
                ], to: folder + "/\(name).inputs.safetensors")
        }
    }

    func testRoundTripOnTheCPU() throws {
        let cpu = CPUBackend()
        try checkRoundTrip(cpu, "classifier", try classifier(cpu))
        try checkRoundTrip(cpu, "tagger", try tagger(cpu))
        try checkRoundTrip(
            cpu, "tagger-cell", try tagger(cpu, cell: LSTMCellOptions(peepholes: true, layerNorm: true, cellClip: 3)))
    }

    func testRoundTripOnOpenCL() throws {
        let gpu = try requireOpenCL()
        try checkRoundTrip(gpu, "classifier-opencl", try classifier(gpu))
        try checkRoundTrip(gpu, "tagger-opencl", try tagger(gpu))
    }

    /// A file written on the CPU loads on OpenCL and gives the same outputs (to float rounding).
    func testCPUFileLoadsOnOpenCL() throws {
        let gpu = try requireOpenCL()
        let cpu = CPUBackend()
        for (name, model) in [("classifier", try classifier(cpu)), ("tagger", try tagger(cpu))] {
            let path = try temporaryFolder() + "/\(name).safetensors"
            try model.save(to: path)
            let loaded = try Sequential<OpenCLBackend>(contentsOf: path, backend: gpu)
            let (a, b) = (try outputs(model, cpu), try outputs(loaded, gpu))
            XCTAssertEqual(a.shape, b.shape)
            let worst = zip(a.values, b.values).map { abs($0 - $1) }.max()!
            XCTAssertLessThan(worst, 1e-5, name)
        }
    }

    /// A layer of one's own cannot be described: save names it and leaves an existing file as it was.
    func testUserLayerIsRefusedAndTheExistingFileStays() throws {
        let cpu = CPUBackend()
        let path = try temporaryFolder() + "/model.safetensors"
        try classifier(cpu).save(to: path)
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        let custom = try Sequential<CPUBackend>([
            Embedding(backend: cpu, vocabularySize: 11, dimension: 4, seed: 1), Scale(backend: cpu, factor: 2),
        ])
        XCTAssertThrowsError(try custom.save(to: path)) { error in
            XCTAssertTrue("\(error)".contains("cannot save layer 1 (Scale<CPUBackend>)"), "\(error)")
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), before)
        // A write that fails (the target is a folder) leaves no file behind and says where.
        let folder = try temporaryFolder()
        XCTAssertThrowsError(try classifier(cpu).save(to: folder)) { error in
            XCTAssertTrue("\(error)".contains(folder), "\(error)")
        }
        var isFolder: ObjCBool = false
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder) && isFolder.boolValue)
    }

    /// Rewrites a saved classifier with its architecture JSON and tensors edited, then loads it.
    func loadEdited(
        json edit: (inout [String: Any]) -> Void = { _ in }, rawJSON: String? = nil,
        tensors editTensors: (inout [(name: String, value: SafeTensorsValue)]) -> Void = { _ in }
    ) throws -> Error? {
        let cpu = CPUBackend()
        let folder = try temporaryFolder()
        try classifier(cpu).save(to: folder + "/good.safetensors")
        let file = try SafeTensorsFile(contentsOf: folder + "/good.safetensors")
        var object =
            try JSONSerialization.jsonObject(
                with: Data(file.metadata[ModelArchitecture.metadataKey]!.utf8)) as! [String: Any]
        edit(&object)
        let json = try rawJSON ?? String(decoding: JSONSerialization.data(withJSONObject: object), as: UTF8.self)
        var tensors: [(name: String, value: SafeTensorsValue)] = try file.names.map {
            ($0, .float32(try file.floatTensor($0)))
        }
        editTensors(&tensors)
        let path = folder + "/bad.safetensors"
        try SafeTensorsFile.write(tensors, metadata: [ModelArchitecture.metadataKey: json], to: path)
        do {
            _ = try Sequential<CPUBackend>(contentsOf: path, backend: cpu)
            return nil
        } catch { return error }
    }

    func assertRefused(_ error: Error?, _ fragments: String..., line: UInt = #line) {
        guard let error else { return XCTFail("loaded a malformed file", line: line) }
        XCTAssertTrue(error is LSTMError, "\(error)", line: line)
        for fragment in fragments {
            XCTAssertTrue("\(error)".contains(fragment), "'\(fragment)' not in: \(error)", line: line)
        }
    }

    func layer(_ i: Int, _ edit: @escaping (inout [String: Any]) -> Void) -> (inout [String: Any]) -> Void {
        { object in
            var layers = object["layers"] as! [[String: Any]]
            edit(&layers[i])
            object["layers"] = layers
        }
    }

    func testMalformedFilesAreRefusedWithWhatAndWhere() throws {
        XCTAssertNil(try loadEdited())
        assertRefused(try loadEdited(rawJSON: "{\"format\": "), "not valid model JSON")
        assertRefused(try loadEdited(json: { $0["version"] = 2 }), "version 2 is not supported")
        assertRefused(try loadEdited(json: { $0["format"] = "other" }), "format is 'other'")
        assertRefused(try loadEdited(json: { $0["layers"] = [] }), "has no layers")
        assertRefused(
            try loadEdited(json: layer(2) { $0["kind"] = "attention" }), "layer 2 (attention)",
            "unknown layer kind 'attention'")
        assertRefused(
            try loadEdited(json: layer(4) { $0["inputSize"] = 7 }), "layer 4 (linear)",
            "inputSize is 7 but the layer before gives width 10")
        assertRefused(
            try loadEdited(json: layer(0) { $0["vocabularySize"] = 1 << 40 }), "layer 0 (embedding)",
            "vocabularySize")
        assertRefused(
            try loadEdited(json: layer(0) { $0["dimension"] = nil }), "layer 0 (embedding)", "'dimension' is missing")
        assertRefused(try loadEdited(json: layer(2) { $0["probability"] = 1.5 }), "layer 2 (dropout)", "outside [0, 1)")
        assertRefused(try loadEdited(json: layer(3) { $0["mode"] = "median" }), "layer 3 (pooling)", "'median'")
        assertRefused(
            try loadEdited(json: layer(1) { $0["lstm"] = ["inputSize": 6, "hiddenSize": -5] }), "model metadata")
        assertRefused(
            try loadEdited(json: { o in
                var layers = o["layers"] as! [[String: Any]]
                layers.swapAt(0, 1)
                o["layers"] = layers
            }), "layer 1 (embedding)", "must be the first layer")
        assertRefused(try loadEdited(tensors: { $0.removeAll { $0.name == "4.bias" } }), "missing tensor '4.bias'")
        assertRefused(
            try loadEdited(tensors: { $0.append(("5.weight", .float32(Tensor(zeros: [2])))) }),
            "tensor '5.weight' that none of its layers has")
        assertRefused(
            try loadEdited(tensors: { t in
                let i = t.firstIndex { $0.name == "0.weight" }!
                t[i].value = .float32(Tensor(zeros: [11, 5]))
            }), "0.weight", "[11, 6]")
        assertRefused(
            try loadEdited(tensors: { t in
                let i = t.firstIndex { $0.name == "4.bias" }!
                t[i].value = .int64(shape: [3], values: [0, 1, 2])
            }), "4.bias", "I64")
        // A safetensors file that is not a model file.
        let path = try temporaryFolder() + "/weights.safetensors"
        try SafeTensorsFile.write([("w", .float32(Tensor(zeros: [2])))], to: path)
        assertRefused(
            Result { try Sequential<CPUBackend>(contentsOf: path, backend: CPUBackend()) }.failure, "lstm_gpu_model")
    }
}

extension Result {
    var failure: Failure? {
        if case let .failure(error) = self { return error }
        return nil
    }
}
