import Foundation
import XCTest

@testable import LSTMCPU
@testable import LSTMCore
@testable import LSTMData
@testable import LSTMKit
@testable import LSTMNN
@testable import LSTMONNX
@testable import LSTMOpenCL
@testable import LSTMReference

/// The ONNX test models, written by `scripts/onnx-check --write-fixtures`: NAME.onnx and
/// NAME.safetensors with the inputs (input, h0, c0, lengths) and onnxruntime's output, hn, cn.
let onnxFixtureFolder = fixtureFolder + "/onnx"

/// The committed ONNX models without cell options, and those with them.
let plainONNXFixtures = ["plain", "bidirectional-2layer", "reverse", "layout1", "external-data", "torch-batch-first"]
let optionONNXFixtures = ["peepholes", "cifg-peepholes", "clip", "everything"]

final class ONNXTests: XCTestCase, ONNXModelMaking {
    // MARK: GateOrder

    func testGateOrderPermutesBlocksAsTheTableSays() throws {
        // Blocks tagged by gate in PyTorch's order i f g o: 0 1 2 3.
        let pytorch: [Float] = [0, 0, 1, 1, 2, 2, 3, 3]
        XCTAssertEqual(try GateOrder.pytorch.convert(pytorch, to: .onnx), [0, 0, 3, 3, 1, 1, 2, 2])  // i o f c
        XCTAssertEqual(try GateOrder.pytorch.convert(pytorch, to: .keras), pytorch)  // i f c o
        XCTAssertEqual(try GateOrder.pytorch.convert(pytorch, to: .miopen), [0, 0, 1, 1, 3, 3, 2, 2])  // i f o g
        XCTAssertEqual(try GateOrder.onnx.convert([0, 1, 2, 3], to: .pytorch), [0, 2, 3, 1])
        XCTAssertEqual(GateOrder.onnx.gates, [.input, .output, .forget, .cell])
        XCTAssertEqual(GateOrder.miopen.block(of: .cell), 3)
        // A [4H, 2] matrix moves whole rows.
        let matrix = try Tensor(shape: [4, 2], scalars: [0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5])
        XCTAssertEqual(try GateOrder.pytorch.convert(matrix, to: .onnx).scalars, [0, 0.5, 3, 3.5, 1, 1.5, 2, 2.5])
    }

    func testGateOrderRoundTripsBetweenEveryPair() throws {
        let values = randomTensor([12, 5], seed: 3)
        for from in GateOrder.allCases {
            for to in GateOrder.allCases {
                let there = try from.convert(values, to: to)
                XCTAssertEqual(try to.convert(there, to: from), values, "\(from) → \(to) → \(from)")
                XCTAssertEqual(from.permutation(to: to).map { to.permutation(to: from)[$0] }, [0, 1, 2, 3])
            }
        }
        assertThrows(["first dimension of 4·H, got 6"]) {
            _ = try GateOrder.onnx.convert(randomTensor([6, 2], seed: 1), to: .pytorch)
        }
    }

    // MARK: the committed models against onnxruntime

    func testPlainONNXModelsMatchOnnxruntime() throws {
        for name in plainONNXFixtures { try checkFixture(name) }
    }

    func testONNXModelsWithCellOptionsMatchOnnxruntime() throws {
        for name in optionONNXFixtures { try checkFixture(name) }
    }

    func testPlainONNXModelsMatchOnnxruntimeOnOpenCL() throws {
        _ = try requireOpenCL()
        for name in plainONNXFixtures { try checkFixture(name, backend: .opencl) }
    }

    func testONNXModelsWithCellOptionsMatchOnnxruntimeOnOpenCL() throws {
        _ = try requireOpenCL()
        for name in optionONNXFixtures { try checkFixture(name, backend: .opencl) }
    }

    func checkFixture(
        _ name: String, backend: BackendKind = .cpu, file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let url = URL(fileURLWithPath: onnxFixtureFolder + "/\(name).onnx")
        let imported = try ONNXImport(contentsOf: url)
        let expected = try SafeTensorsFile(contentsOf: onnxFixtureFolder + "/\(name).safetensors")
        let lstm = try LSTM(onnx: url, backend: backend)
        XCTAssertEqual(lstm.configuration, imported.configuration, file: file, line: line)
        let result = try lstm.forward(
            expected.floatTensor("input"), h0: expected.contains("h0") ? expected.floatTensor("h0") : nil,
            c0: expected.contains("c0") ? expected.floatTensor("c0") : nil,
            lengths: expected.contains("lengths") ? expected.intTensor("lengths").values : nil)
        print("\(name) [\(lstm.backendName)]: \(imported.configuration)")
        for (tensor, ours) in [("output", result.output), ("hn", result.hn), ("cn", result.cn)] {
            assertClose(
                ours, try expected.floatTensor(tensor), "\(name) \(tensor)", tolerance: .outputs, file: file, line: line
            )
        }
    }

    func testImportReadsTheAttributes() throws {
        func configuration(_ name: String) throws -> LSTMConfiguration {
            try ONNXImport(contentsOf: URL(fileURLWithPath: onnxFixtureFolder + "/\(name).onnx")).configuration
        }
        let everything = try configuration("everything")
        XCTAssertEqual(everything.numLayers, 2)
        XCTAssertTrue(everything.bidirectional && everything.peepholes && everything.coupledInputForget)
        XCTAssertEqual(everything.activationClip, 0.7)
        XCTAssertTrue(try configuration("reverse").reverse)
        XCTAssertTrue(try configuration("layout1").batchFirst)
        XCTAssertEqual(try configuration("external-data").numLayers, 2)
        let torch = try configuration("torch-batch-first")
        XCTAssertTrue(torch.batchFirst && torch.bidirectional && torch.numLayers == 2, "\(torch)")
        let plain = try configuration("plain")
        XCTAssertEqual(plain, LSTMConfiguration(inputSize: 4, hiddenSize: 5))
    }

    // MARK: export

    func testExportThenImportGivesTheSameModel() throws {
        var cifg = LSTMCellOptions()
        cifg.peepholes = true
        cifg.coupledInputForget = true
        cifg.activationClip = 0.5
        let configurations = [
            LSTMConfiguration(inputSize: 3, hiddenSize: 4),
            LSTMConfiguration(
                inputSize: 3, hiddenSize: 4, numLayers: 3, bias: false, batchFirst: true, bidirectional: true),
            LSTMConfiguration(inputSize: 2, hiddenSize: 5, numLayers: 2, cell: cifg, reverse: true),
            LSTMConfiguration(inputSize: 2, hiddenSize: 3, bidirectional: true, cell: LSTMCellOptions(peepholes: true)),
        ]
        for (k, configuration) in configurations.enumerated() {
            let weights = LSTM.initialWeights(configuration, seed: UInt64(k))
            let data = try ONNXExport.data(configuration: configuration, weights: weights)
            let imported = try ONNXImport(data: data, source: "exported #\(k)")
            XCTAssertEqual(imported.configuration, configuration, "#\(k)")
            XCTAssertEqual(imported.weights, weights, "#\(k)")
            XCTAssertEqual(imported.opsetVersion, ONNXExport.opsetVersion)
            XCTAssertEqual(imported.layerNodes, (0..<configuration.numLayers).map { "lstm_l\($0)" })
        }
    }

    func testExportONNXWritesAFileThatImports() throws {
        let folder = try temporaryFolder()
        let lstm = try LSTM(LSTMConfiguration(inputSize: 3, hiddenSize: 4, numLayers: 2), seed: 5)
        let url = URL(fileURLWithPath: folder + "/model.onnx")
        try lstm.exportONNX(to: url)
        let back = try LSTM(onnx: url)
        XCTAssertEqual(try back.weights(), try lstm.weights())
        let x = randomTensor([4, 2, 3], seed: 9)
        XCTAssertEqual(try back.forward(x).output, try lstm.forward(x).output)
        // Atomic: no temporary file left beside it.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder), ["model.onnx"])
    }

    func testExportRefusesWhatONNXCannotExpress() throws {
        let cases: [(LSTMConfiguration, String)] = [
            (LSTMConfiguration(inputSize: 3, hiddenSize: 4, projectionSize: 2), "projection"),
            (
                LSTMConfiguration(inputSize: 3, hiddenSize: 4, cell: LSTMCellOptions(layerNorm: true)),
                "layer normalisation"
            ),
            (LSTMConfiguration(inputSize: 3, hiddenSize: 4, cell: LSTMCellOptions(cellClip: 1)), "cell clip"),
            (
                LSTMConfiguration(
                    inputSize: 3, hiddenSize: 4, projectionSize: 2, cell: LSTMCellOptions(projectionClip: 1)),
                "projection clip"
            ),
        ]
        for (configuration, message) in cases {
            let weights = LSTM.initialWeights(configuration, seed: 1)
            assertONNXError([message, "cannot export to ONNX"]) {
                _ = try ONNXExport.data(configuration: configuration, weights: weights)
            }
        }
        let plain = LSTMConfiguration(inputSize: 3, hiddenSize: 4)
        var weights = LSTM.initialWeights(plain, seed: 1)
        weights["weight_hh_l0"] = Tensor(zeros: [16, 3])
        assertONNXError(["weight_hh_l0", "[16, 3]"]) { _ = try ONNXExport.data(configuration: plain, weights: weights) }
    }

    // MARK: refusals

    func lstmNode(_ model: inout Onnx_ModelProto, _ layer: Int = 0) -> Int {
        model.graph.node.firstIndex { $0.name == "lstm_l\(layer)" }!
    }

    func testImportRefusesUnsupportedAttributesNamingNodeAndAttribute() throws {
        func attribute(
            _ name: String, strings: [String] = [], float: Float? = nil, int: Int? = nil
        )
            -> Onnx_AttributeProto
        {
            var a = Onnx_AttributeProto()
            a.name = name
            if !strings.isEmpty {
                a.type = .strings
                a.strings = strings.map { Data($0.utf8) }
            } else if let float {
                a.type = .float
                a.f = float
            } else if let int {
                a.type = .int
                a.i = Int64(int)
            }
            return a
        }
        let cases: [(Onnx_AttributeProto, [String])] = [
            (
                attribute("activations", strings: ["Relu", "Tanh", "Tanh"]),
                ["'lstm_l0' (LSTM)", "activations", "Relu"]
            ),
            (attribute("activation_alpha", float: 0.5), ["'lstm_l0' (LSTM)", "activation_alpha"]),
            (attribute("activation_beta", float: 0.5), ["activation_beta"]),
            (attribute("hidden_size", int: 5), ["hidden_size = 5", "[1, 16, 4]"]),
            (attribute("layout", int: 2), ["layout = 2"]),
            (attribute("input_forget", int: 3), ["input_forget = 3"]),
            (attribute("clip", float: -1), ["clip = -1"]),
            (attribute("sharpness", int: 1), ["unknown attribute 'sharpness'"]),
        ]
        for (added, fragments) in cases {
            var broken = try model()
            let node = lstmNode(&broken)
            broken.graph.node[node].attribute.removeAll { $0.name == added.name }
            broken.graph.node[node].attribute.append(added)
            assertONNXError(fragments + ["test.onnx"]) { _ = try importing(broken) }
        }
        var direction = try model()
        let node = lstmNode(&direction)
        var sideways = Onnx_AttributeProto()
        sideways.name = "direction"
        sideways.type = .string
        sideways.s = Data("sideways".utf8)
        direction.graph.node[node].attribute.append(sideways)
        assertONNXError(["direction = 'sideways'"]) { _ = try importing(direction) }
        // The defaults spelled out are accepted.
        var defaults = try model()
        defaults.graph.node[lstmNode(&defaults)].attribute.append(
            attribute("activations", strings: ["Sigmoid", "Tanh", "Tanh"]))
        XCTAssertNoThrow(try importing(defaults))
    }

    func testImportRefusesBadWeights() throws {
        var missing = try model()
        missing.graph.initializer.removeAll { $0.name == "R_l0" }
        assertONNXError(["input R", "'R_l0'", "not a constant"]) { _ = try importing(missing) }

        var shape = try model()
        let w = shape.graph.initializer.firstIndex { $0.name == "W_l0" }!
        shape.graph.initializer[w].dims = [1, 12, 4]
        assertONNXError(["'lstm_l0' (LSTM)", "input W has shape [1, 12, 4]", "[1, 16, I]"]) { _ = try importing(shape) }
        shape.graph.initializer[w].dims = [1, 16, 4]
        assertONNXError(["W_l0", "need 64 float32 values (256 bytes), raw data has 192"]) { _ = try importing(shape) }

        var double = try model()
        double.graph.initializer[w].dataType = 11
        assertONNXError(["W_l0", "DOUBLE", "only FLOAT"]) { _ = try importing(double) }

        var bias = try model()
        let b = bias.graph.initializer.firstIndex { $0.name == "B_l0" }!
        bias.graph.initializer[b].dims = [1, 16]
        bias.graph.initializer[b].rawData = bias.graph.initializer[b].rawData.prefix(64)
        assertONNXError(["input B has shape [1, 16]", "[1, 32]"]) { _ = try importing(bias) }

        // float_data instead of raw_data is read too.
        var floats = try model()
        let values = try TensorDecoder(source: "t", folder: nil).floats(floats.graph.initializer[w], "W").values
        floats.graph.initializer[w].clearRawData()
        floats.graph.initializer[w].floatData = values
        XCTAssertEqual(try importing(floats).weights, try importing(try model()).weights)
        floats.graph.initializer[w].floatData.removeLast()
        assertONNXError(["float_data holds 47"]) { _ = try importing(floats) }
    }

    func testImportTakesStatesAndLengthsAtRunTimeOnly() throws {
        var zeros = try model()
        var state = Onnx_TensorProto()
        state.name = "h_const"
        state.dims = [1, 2, 4]
        state.dataType = 1
        state.floatData = [Float](repeating: 0, count: 8)
        zeros.graph.initializer.append(state)
        let node = lstmNode(&zeros)
        zeros.graph.node[node].input[5] = "h_const"
        XCTAssertNoThrow(try importing(zeros))
        var nonzero = zeros
        nonzero.graph.initializer[nonzero.graph.initializer.count - 1].floatData[3] = 1
        assertONNXError(["initial_h is a non-zero constant"]) { _ = try importing(nonzero) }
        var lengths = try model()
        var constant = Onnx_TensorProto()
        constant.name = "fixed_lengths"
        constant.dims = [2]
        constant.dataType = 6
        constant.int32Data = [3, 3]
        lengths.graph.initializer.append(constant)
        lengths.graph.node[lstmNode(&lengths)].input[4] = "fixed_lengths"
        assertONNXError(["sequence_lens", "constant"]) { _ = try importing(lengths) }
    }

    func testImportRefusesLSTMNodesThatAreNotOneChain() throws {
        // A second LSTM beside the first, reading the same input.
        var twoHeads = try model()
        var twin = twoHeads.graph.node[lstmNode(&twoHeads)]
        twin.name = "twin"
        twin.output = ["Y_twin", "", ""]
        twoHeads.graph.node.append(twin)
        assertONNXError(["not one chain", "'lstm_l0' (LSTM)", "'twin' (LSTM)"]) { _ = try importing(twoHeads) }

        // Layer 1 reading layer 0's Y_h instead of Y.
        var state = try model(layers: 2)
        let transpose = state.graph.node.firstIndex { $0.name == "y_transpose_l0" }!
        state.graph.node[transpose].input[0] = "Y_h_l0"
        assertONNXError(["'lstm_l1' (LSTM)", "Y_h", "'lstm_l0'"]) { _ = try importing(state) }

        // Two directions joined without the Transpose [0, 2, 1, 3]: not [T, B, D·H].
        var perm = try model(layers: 2, bidirectional: true)
        let glue = perm.graph.node.firstIndex { $0.name == "y_transpose_l0" }!
        perm.graph.node[glue].attribute[0].ints = [0, 1, 2, 3]
        assertONNXError(["'lstm_l1' (LSTM)", "perm [0, 1, 2, 3]"]) { _ = try importing(perm) }

        // Layers that differ in an option.
        var clip = try model(layers: 2)
        var attribute = Onnx_AttributeProto()
        attribute.name = "clip"
        attribute.type = .float
        attribute.f = 2
        clip.graph.node[lstmNode(&clip, 1)].attribute.append(attribute)
        assertONNXError(["'lstm_l1' (LSTM)", "clip is 2.0", "layer 0"]) { _ = try importing(clip) }

        // Something else between the layers.
        var between = try model(layers: 2)
        let reshape = between.graph.node.firstIndex { $0.name == "y_reshape_l0" }!
        between.graph.node[reshape].opType = "Relu"
        between.graph.node[reshape].input = ["Y_tbdh_l0"]
        assertONNXError(["not one chain"]) { _ = try importing(between) }
    }

    func testImportListsTheOtherOperators() throws {
        var head = try model()
        var sigmoid = Onnx_NodeProto()
        sigmoid.opType = "Sigmoid"
        sigmoid.name = "classifier"
        sigmoid.input = ["output"]
        sigmoid.output = ["probabilities"]
        head.graph.node.append(sigmoid)
        let imported = try importing(head)
        XCTAssertTrue(imported.warnings.contains { $0.contains("Sigmoid ×1 ('classifier')") }, "\(imported.warnings)")
        XCTAssertTrue(imported.warnings.contains { $0.contains("Identity ×2") }, "\(imported.warnings)")
    }

    func testImportRefusesMalformedFiles() throws {
        assertONNXError(["x.onnx", "not an ONNX protobuf model"]) {
            _ = try ONNXImport(data: Data("garbage, not protobuf".utf8), source: "x.onnx")
        }
        var old = try model()
        old.opsetImport[0].version = 6
        assertONNXError(["opset is 6", "opset 7 and later"]) { _ = try importing(old) }
        var none = try model()
        none.graph.node.removeAll { $0.opType == "LSTM" }
        assertONNXError(["no LSTM node", "Transpose"]) { _ = try importing(none) }
        var empty = Onnx_ModelProto()
        empty.opsetImport = try model().opsetImport
        assertONNXError(["no graph"]) { _ = try importing(empty) }
        let folder = try temporaryFolder()
        assertThrows(["is a directory"]) { _ = try ONNXImport(contentsOf: URL(fileURLWithPath: folder)) }
        assertThrows(["no such file"]) { _ = try ONNXImport(contentsOf: URL(fileURLWithPath: folder + "/none.onnx")) }
    }

    func testHostileDimensionsAreRefusedBeforeAllocating() throws {
        for dims in [[1, 1 << 40, 1 << 20], [1 << 40, 1 << 40, 4], [-1, 16, 3]] as [[Int64]] {
            var hostile = try model()
            let w = hostile.graph.initializer.firstIndex { $0.name == "W_l0" }!
            hostile.graph.initializer[w].dims = dims
            assertONNXError(["W_l0"]) { _ = try importing(hostile) }
        }
    }

    func testMutatedModelsThrowAndNeverCrash() throws {
        let bytes = try Data(contentsOf: URL(fileURLWithPath: onnxFixtureFolder + "/everything.onnx"))
        var generator = SeededGenerator(seed: 14)
        var refused = 0
        for round in 0..<400 {
            var mutated = [UInt8](bytes)
            switch round % 3 {
            case 0: mutated = Array(mutated.prefix(Int(generator.next() % UInt64(mutated.count))))
            case 1:
                for _ in 0..<4 {
                    mutated[Int(generator.next() % UInt64(mutated.count))] = UInt8(generator.next() & 0xFF)
                }
            default:
                let at = Int(generator.next() % UInt64(mutated.count))
                mutated[at] ^= 1 << UInt8(generator.next() % 8)
            }
            do { _ = try ONNXImport(data: Data(mutated), source: "mutated") } catch is ONNXError {
                refused += 1
            } catch is LSTMError { refused += 1 }
        }
        XCTAssertGreaterThan(refused, 100)
    }

    func testExternalDataIsReadInsideTheModelsFolderOnly() throws {
        let folder = try temporaryFolder()
        let source = try model()
        let w = source.graph.initializer.firstIndex { $0.name == "W_l0" }!
        let raw = source.graph.initializer[w].rawData
        try (Data(count: 16) + raw).write(to: URL(fileURLWithPath: folder + "/weights.bin"))
        func external(_ location: String, offset: Int = 16, length: Int? = nil) throws -> URL {
            var model = source
            model.graph.initializer[w].clearRawData()
            model.graph.initializer[w].dataLocation = .external
            var entries = [("location", location), ("offset", "\(offset)")]
            if let length { entries.append(("length", "\(length)")) }
            model.graph.initializer[w].externalData = entries.map {
                var entry = Onnx_StringStringEntryProto()
                entry.key = $0.0
                entry.value = $0.1
                return entry
            }
            let url = URL(fileURLWithPath: folder + "/model.onnx")
            try (model.serializedBytes() as Data).write(to: url)
            return url
        }
        XCTAssertEqual(try ONNXImport(contentsOf: external("weights.bin")).weights, try importing(source).weights)
        XCTAssertNoThrow(try ONNXImport(contentsOf: external("./weights.bin", length: raw.count)))
        assertONNXError(["relative path inside the model's folder"]) {
            _ = try ONNXImport(contentsOf: external(folder + "/weights.bin"))
        }
        assertONNXError(["relative path inside the model's folder"]) {
            _ = try ONNXImport(contentsOf: external("../weights.bin"))
        }
        assertONNXError(["runs past its end"]) { _ = try ONNXImport(contentsOf: external("weights.bin", offset: 100)) }
        assertONNXError(["length 8 does not match"]) {
            _ = try ONNXImport(contentsOf: external("weights.bin", length: 8))
        }
        assertONNXError(["cannot be read"]) { _ = try ONNXImport(contentsOf: external("missing.bin")) }
        assertONNXError(["not read from a file"]) { _ = try ONNXImport(data: external("weights.bin").contents()) }
    }
}

extension URL {
    fileprivate func contents() throws -> Data { try Data(contentsOf: self) }
}

/// Asserts that `body` throws an `ONNXError` (or `LSTMError`) whose description contains every fragment.
func assertONNXError(
    _ fragments: [String], file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void
) {
    do {
        try body()
        XCTFail("expected an error mentioning \(fragments)", file: file, line: line)
    } catch {
        let text = "\(error)"
        XCTAssertTrue(
            error is ONNXError || error is LSTMError, "unexpected error type: \(text)", file: file, line: line)
        for fragment in fragments where !text.contains(fragment) {
            XCTFail("error '\(text)' does not mention '\(fragment)'", file: file, line: line)
        }
    }
}

/// `lstm-gpu import`, `export` and `run`, as a user runs them.
final class ONNXCommandTests: XCTestCase {
    func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try runProcess(lstmGPUExecutable.path, arguments)
    }

    /// Writes the inputs of fixture `name` (without its expected outputs) to `folder`/in.safetensors.
    func inputs(_ name: String, in folder: String) throws -> (path: String, expected: SafeTensorsFile) {
        let expected = try SafeTensorsFile(contentsOf: onnxFixtureFolder + "/\(name).safetensors")
        var tensors: [(name: String, value: SafeTensorsValue)] = []
        for tensor in ["input", "h0", "c0"] where expected.contains(tensor) {
            tensors.append((tensor, .float32(try expected.floatTensor(tensor))))
        }
        if expected.contains("lengths") {
            let (shape, values) = try expected.intTensor("lengths")
            tensors.append(("lengths", .int64(shape: shape, values: values)))
        }
        let path = folder + "/in.safetensors"
        try SafeTensorsFile.write(tensors, to: path)
        return (path, expected)
    }

    func assertOutputs(
        _ path: String, _ expected: SafeTensorsFile, file: StaticString = #filePath, line: UInt = #line
    )
        throws
    {
        let out = try SafeTensorsFile(contentsOf: path)
        XCTAssertEqual(Set(out.entries.keys), ["output", "hn", "cn"], file: file, line: line)
        for name in ["output", "hn", "cn"] {
            assertClose(
                try out.floatTensor(name), try expected.floatTensor(name), name, tolerance: .outputs, file: file,
                line: line)
        }
    }

    func testImportRunExportRun() throws {
        try requireLSTMGPU()
        let folder = try temporaryFolder()
        for name in ["bidirectional-2layer", "layout1", "everything"] {
            let model = onnxFixtureFolder + "/\(name).onnx"
            let (input, expected) = try inputs(name, in: folder)
            let direct = try run(["run", model, "--input", input, "--output", folder + "/direct.safetensors"])
            XCTAssertEqual(direct.status, 0, direct.output)
            try assertOutputs(folder + "/direct.safetensors", expected)

            let imported = try run(["import", model, "--output", folder + "/\(name).safetensors"])
            XCTAssertEqual(imported.status, 0, imported.output)
            XCTAssertTrue(
                imported.output.contains("from 2 LSTM node(s)") || name != "bidirectional-2layer", imported.output)
            let viaWeights = try run([
                "run", folder + "/\(name).safetensors", "--input", input, "--output", folder + "/weights.safetensors",
            ])
            XCTAssertEqual(viaWeights.status, 0, viaWeights.output)
            try assertOutputs(folder + "/weights.safetensors", expected)

            let exported = try run(["export", folder + "/\(name).safetensors", "--output", folder + "/\(name).onnx"])
            XCTAssertEqual(exported.status, 0, exported.output)
            let again = try run([
                "run", folder + "/\(name).onnx", "--input", input, "--output", folder + "/again.safetensors",
            ])
            XCTAssertEqual(again.status, 0, again.output)
            try assertOutputs(folder + "/again.safetensors", expected)
        }
    }

    func testRunRefusesBadInputs() throws {
        try requireLSTMGPU()
        let folder = try temporaryFolder()
        let model = onnxFixtureFolder + "/plain.onnx"  // I = 4, H = 5, T = 6, B = 3
        func write(_ tensors: [(name: String, value: SafeTensorsValue)]) throws -> String {
            let path = folder + "/bad.safetensors"
            try SafeTensorsFile.write(tensors, to: path)
            return path
        }
        let x = SafeTensorsValue.float32(randomTensor([6, 3, 4], seed: 1))
        let cases: [([(name: String, value: SafeTensorsValue)], String)] = [
            ([("h0", .float32(Tensor(zeros: [1, 3, 5])))], "missing tensor 'input'"),
            ([("input", x), ("h_0", .float32(Tensor(zeros: [1, 3, 5])))], "unexpected tensor 'h_0'"),
            ([("input", .float32(randomTensor([6, 3, 5], seed: 1)))], "input size I = 4"),
            ([("input", .float32(randomTensor([6, 12], seed: 1)))], "must be 3-D"),
            ([("input", x), ("h0", .float32(Tensor(zeros: [2, 3, 5])))], "h0"),
            ([("input", x), ("lengths", .int64(shape: [3], values: [6, 7, 1]))], "holds 7, outside 0...T = 0...6"),
            ([("input", x), ("lengths", .int64(shape: [2], values: [6, 1]))], "'lengths' ([B])"),
            ([("input", x), ("lengths", .float32(Tensor(zeros: [3])))], "dtype F32"),
            ([("input", .int64(shape: [6, 3, 4], values: [Int](repeating: 0, count: 72)))], "dtype I64"),
        ]
        for (tensors, message) in cases {
            let result = try run(["run", model, "--input", write(tensors), "--output", folder + "/out.safetensors"])
            XCTAssertEqual(result.status, 2, "\(message): \(result.output)")
            XCTAssertTrue(result.output.contains(message), "\(message): \(result.output)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/out.safetensors"))
        }
    }

    func testCommandErrors() throws {
        try requireLSTMGPU()
        let folder = try temporaryFolder()
        try Data("not a model".utf8).write(to: URL(fileURLWithPath: folder + "/bad.onnx"))
        let garbage = try run(["import", folder + "/bad.onnx", "--output", folder + "/x.safetensors"])
        XCTAssertEqual(garbage.status, 2, garbage.output)
        XCTAssertTrue(garbage.output.contains("lstm-gpu import: error:"), garbage.output)
        XCTAssertTrue(garbage.output.contains("not an ONNX protobuf model"), garbage.output)

        let projected = try LSTM(LSTMConfiguration(inputSize: 3, hiddenSize: 4, projectionSize: 2), seed: 1)
        try projected.saveWeights(to: folder + "/projected.safetensors")
        let refused = try run(["export", folder + "/projected.safetensors", "--output", folder + "/p.onnx"])
        XCTAssertEqual(refused.status, 2, refused.output)
        XCTAssertTrue(refused.output.contains("no projection"), refused.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/p.onnx"))

        let prefix = try run([
            "run", onnxFixtureFolder + "/plain.onnx", "--prefix", "lstm.", "--input", "x", "--output", "y",
        ])
        XCTAssertEqual(prefix.status, 64, prefix.output)

        for command in ["import", "export", "run"] {
            let help = try run([command, "--help"])
            XCTAssertEqual(help.status, 0, help.output)
            XCTAssertTrue(help.output.contains("USAGE: lstm-gpu \(command)"), help.output)
        }
    }
}
