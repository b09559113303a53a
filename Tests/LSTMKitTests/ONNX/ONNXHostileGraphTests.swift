import Foundation
import XCTest

@testable import LSTMCore
@testable import LSTMKit
@testable import LSTMONNX

/// Graphs that mean something lstm-gpu does not run (initial states computed in the graph,
/// glue that changes the layout between layers), graphs with a cycle, and files too large
/// to read: each is refused naming the node or file, in the library and through the command
/// (exit 2); nothing runs differently from onnxruntime without a word.
final class ONNXHostileGraphTests: XCTestCase, ONNXModelMaking {
    func index(_ model: Onnx_ModelProto, _ name: String) -> Int { model.graph.node.firstIndex { $0.name == name }! }

    /// `lstm-gpu import` of `model` as a user runs it: exit 2 and every fragment in the message.
    func assertCommandRefuses(
        _ model: Onnx_ModelProto, _ fragments: [String], file: StaticString = #filePath, line: UInt = #line
    ) throws {
        try requireLSTMGPU()
        let folder = try temporaryFolder()
        let path = folder + "/hostile.onnx"
        try (model.serializedBytes() as Data).write(to: URL(fileURLWithPath: path))
        for arguments in [
            ["import", path, "--output", folder + "/out.safetensors"],
            ["run", path, "--input", folder + "/in.safetensors", "--output", folder + "/out.safetensors"],
        ] {
            let result = try runProcess(lstmGPUExecutable.path, arguments)
            XCTAssertEqual(result.status, 2, result.output, file: file, line: line)
            for fragment in fragments where !result.output.contains(fragment) {
                XCTFail("\(arguments[0]): '\(result.output)' does not mention '\(fragment)'", file: file, line: line)
            }
            XCTAssertFalse(result.output.contains("\u{1B}"), "raw control character: \(result.output)")
        }
    }

    // MARK: initial states

    func testInitialStatesCarriedFromAnotherLayerAreRefused() throws {
        for (slot, output) in [(5, "Y_h"), (6, "Y_c")] {
            var carried = try model(layers: 2)
            carried.graph.node[index(carried, "lstm_l1")].input[slot] = "\(output)_l0"
            let fragments = [
                "'lstm_l1' (LSTM)", slot == 5 ? "initial_h" : "initial_c", "output \(output) of LSTM node 'lstm_l0'",
                "a state carried from another layer",
            ]
            assertONNXError(fragments) { _ = try importing(carried) }
            if slot == 5 { try assertCommandRefuses(carried, fragments) }
        }
        // The same through glue.
        var glued = try model(layers: 2)
        glued.graph.node.append(node("Identity", "pass", ["Y_h_l0"], ["Y_h_l0_copy"]))
        glued.graph.node[index(glued, "lstm_l1")].input[5] = "Y_h_l0_copy"
        assertONNXError(["output Y_h of LSTM node 'lstm_l0' (LSTM) through 'pass' (Identity)"]) {
            _ = try importing(glued)
        }
    }

    func testInitialStatesComputedInTheGraphAreRefused() throws {
        var computed = try model()
        computed.graph.node.insert(node("Sigmoid", "squash", ["h0"], ["h0_squashed"]), at: 0)
        computed.graph.node[index(computed, "lstm_l0")].input[5] = "h0_squashed"
        assertONNXError(["'lstm_l0' (LSTM)", "initial_h ('h0_squashed')", "computed by node 'squash' (Sigmoid)"]) {
            _ = try importing(computed)
        }
        var dangling = try model()
        dangling.graph.node[index(dangling, "lstm_l0")].input[6] = "nowhere"
        assertONNXError(["initial_c ('nowhere')", "neither a graph input"]) { _ = try importing(dangling) }
    }

    func testZeroStatesMadeInTheGraphAreAccepted() throws {
        var zeros = try model()
        zeros.graph.initializer.append(int64Tensor("state_shape", [1, 2, 4]))
        zeros.graph.node.insert(node("ConstantOfShape", "zeros", ["state_shape"], ["zero_state"]), at: 0)
        zeros.graph.node[index(zeros, "lstm_l0")].input[5] = "zero_state"
        XCTAssertEqual(try importing(zeros).weights, try importing(model()).weights)
        var ones = zeros
        var value = Onnx_AttributeProto()
        value.name = "value"
        value.type = .tensor
        value.t.dims = [1]
        value.t.dataType = 1
        value.t.floatData = [1]
        ones.graph.node[index(ones, "zeros")].attribute = [value]
        assertONNXError(["initial_h", "'zeros' (ConstantOfShape)", "non-zero value"]) { _ = try importing(ones) }
    }

    func testInitialStatesFromTheWrongRowsOfTheGraphInputAreRefused() throws {
        var rows = try model(layers: 2)
        let start = rows.graph.initializer.firstIndex { $0.name == "state_start_l1" }!
        let end = rows.graph.initializer.firstIndex { $0.name == "state_end_l1" }!
        rows.graph.initializer[start].int64Data = [0]
        rows.graph.initializer[end].int64Data = [1]
        assertONNXError([
            "'lstm_l1' (LSTM)", "initial_h", "sliced by 'h0_slice_l1' (Slice) (starts [0], ends [1]",
            "reads rows 1..<2 of axis 0",
        ]) { _ = try importing(rows) }

        var whole = try model(layers: 2)
        for l in 0..<2 { whole.graph.node[index(whole, "lstm_l\(l)")].input[5] = "h0" }
        assertONNXError(["'lstm_l1' (LSTM)", "graph input 'h0' whole, as for layer 0"]) { _ = try importing(whole) }
    }

    // MARK: glue between layers

    func testGlueThatKeepsTheLayoutIsAccepted() throws {
        let reference = try importing(model(layers: 2, bidirectional: true))
        // D = 2, H = 4: D·H = 8.
        for shape in [[0, 0, 8], [0, -1, 8], [-1, 0, 8], [0, 0, -1]] {
            var variant = try model(layers: 2, bidirectional: true)
            variant.graph.initializer.append(int64Tensor("shape_variant", shape))
            variant.graph.node[index(variant, "y_reshape_l0")].input[1] = "shape_variant"
            XCTAssertEqual(try importing(variant).weights, reference.weights, "\(shape)")
        }
        // One direction: Squeeze axis 1 of Y [T, 1, B, H], as torch.onnx.export writes it.
        var squeezed = try model(layers: 2)
        squeezed.graph.initializer.append(int64Tensor("axis1", [1]))
        squeezed.graph.node.removeAll { $0.name == "y_transpose_l0" || $0.name == "y_reshape_l0" }
        squeezed.graph.node.append(node("Squeeze", "squeeze_l0", ["Y_l0", "axis1"], ["X_l1"]))
        XCTAssertEqual(try importing(squeezed).weights, try importing(model(layers: 2)).weights)
    }

    func testGlueThatChangesTheLayoutBetweenLayersIsRefused() throws {
        // A Reshape with literal sizes: T and B are only known at run time.
        var literal = try model(layers: 2, bidirectional: true)
        literal.graph.initializer.append(int64Tensor("shape_literal", [3, 6, -1]))
        literal.graph.node[index(literal, "y_reshape_l0")].input[1] = "shape_literal"
        let fragments = ["'y_reshape_l0' (Reshape)", "shape [3, 6, -1]", "literal size 3", "contain T"]
        assertONNXError(fragments) { _ = try importing(literal) }
        try assertCommandRefuses(literal, fragments)

        // T and B swapped by the Transpose: Y [T, D, B, H] made [B, T, D·H].
        var swapped = try model(layers: 2, bidirectional: true)
        swapped.graph.node[index(swapped, "y_transpose_l0")].attribute[0].ints = [2, 0, 1, 3]
        assertONNXError([
            "'lstm_l1' (LSTM)", "Y [T, D, B, H] made [B, T, D·H]",
            "'y_transpose_l0' (Transpose) perm [2, 0, 1, 3] → [B, T, D, H]",
            "must be [T, B, D·H]",
        ]) { _ = try importing(swapped) }

        // D and H swapped: the directions' halves interleaved.
        var interleaved = try model(layers: 2, bidirectional: true)
        interleaved.graph.node[index(interleaved, "y_transpose_l0")].attribute[0].ints = [0, 2, 3, 1]
        assertONNXError(["made [T, B, H·D]"]) { _ = try importing(interleaved) }

        // A shape computed at run time, and a Squeeze of an axis that is not 1.
        var computed = try model(layers: 2)
        computed.graph.node[index(computed, "y_reshape_l0")].input[1] = "lengths"
        assertONNXError(["'y_reshape_l0' (Reshape)", "not a constant integer list"]) { _ = try importing(computed) }
        var squeeze = try model(layers: 2)
        squeeze.graph.initializer.append(int64Tensor("axis2", [2]))
        squeeze.graph.node.removeAll { $0.name == "y_transpose_l0" || $0.name == "y_reshape_l0" }
        squeeze.graph.node.append(node("Squeeze", "squeeze_l0", ["Y_l0", "axis2"], ["X_l1"]))
        assertONNXError(["'squeeze_l0' (Squeeze)", "squeezes axis 2, which is B"]) { _ = try importing(squeeze) }

        // Before layer 0: a Reshape that is not the identity.
        var before = try model()
        before.graph.initializer.append(int64Tensor("shape_flat", [-1, 1, 0]))
        before.graph.node.insert(node("Reshape", "flatten_input", ["input", "shape_flat"], ["input_flat"]), at: 0)
        before.graph.node[index(before, "lstm_l0")].input[0] = "input_flat"
        assertONNXError(["'lstm_l0' (LSTM)", "[d0·d1, 1, d2]", "'flatten_input' (Reshape)"]) {
            _ = try importing(before)
        }
    }

    // MARK: cycles

    func testACycleIsReportedNamingItsNodes() throws {
        var cycle = try model(layers: 2)
        cycle.graph.node[index(cycle, "lstm_l0")].input[0] = "output"
        cycle.graph.node[index(cycle, "y_transpose_l0")].name = "evil\u{1B}[31m"
        let fragments = [
            "its graph has a cycle",
            "'lstm_l0' (LSTM) → 'evil\\u{1b}[31m' (Transpose) → 'y_reshape_l0' (Reshape) → "
                + "'lstm_l1' (LSTM) → 'y_transpose_l1' (Transpose) → 'y_reshape_l1' (Reshape) → 'lstm_l0' (LSTM)",
        ]
        assertONNXError(fragments) { _ = try importing(cycle) }
        try assertCommandRefuses(cycle, fragments)
        // A cycle of glue alone.
        var glue = try model()
        glue.graph.node.append(node("Identity", "a", ["b_out"], ["a_out"]))
        glue.graph.node.append(node("Identity", "b", ["a_out"], ["b_out"]))
        assertONNXError(["cycle", "'a' (Identity) → 'b' (Identity) → 'a' (Identity)"]) { _ = try importing(glue) }
    }

    // MARK: files

    func testExternalDataTooLargeForTheHostIsRefusedBeforeReading() throws {
        let folder = try temporaryFolder()
        var huge = try model()
        let w = huge.graph.initializer.firstIndex { $0.name == "W_l0" }!
        // 16 · 2³⁶ float32 values: 4 TiB, in a sparse file of that size.
        huge.graph.initializer[w].dims = [1, 16, 1 << 36]
        huge.graph.initializer[w].clearRawData()
        huge.graph.initializer[w].dataLocation = .external
        var location = Onnx_StringStringEntryProto()
        location.key = "location"
        location.value = "weights.bin"
        huge.graph.initializer[w].externalData = [location]
        let weights = folder + "/weights.bin"
        XCTAssertTrue(FileManager.default.createFile(atPath: weights, contents: nil))
        let handle = try XCTUnwrap(FileHandle(forWritingAtPath: weights))
        try handle.truncate(atOffset: 1 << 42)
        try handle.close()
        let path = folder + "/huge.onnx"
        try (huge.serializedBytes() as Data).write(to: URL(fileURLWithPath: path))
        let fragments = [
            "W_l0", "4398046511104 bytes of external data from", "weights.bin", "needs 8.00 TiB", "the host has",
        ]
        let started = Date()
        assertONNXError(fragments) { _ = try ONNXImport(contentsOf: URL(fileURLWithPath: path)) }
        XCTAssertLessThan(Date().timeIntervalSince(started), 5, "read before refusing")
        try requireLSTMGPU()
        let result = try runProcess(lstmGPUExecutable.path, ["import", path, "--output", folder + "/out.safetensors"])
        XCTAssertEqual(result.status, 2, result.output)
        for fragment in fragments { XCTAssertTrue(result.output.contains(fragment), result.output) }

        // A FIFO as external data is refused without blocking.
        try FileManager.default.removeItem(atPath: weights)
        XCTAssertEqual(mkfifo(weights, 0o600), 0)
        huge.graph.initializer[w].dims = [1, 16, 3]
        try (huge.serializedBytes() as Data).write(to: URL(fileURLWithPath: path))
        assertONNXError(["W_l0", "external data file", "weights.bin", "not a regular file"]) {
            _ = try ONNXImport(contentsOf: URL(fileURLWithPath: path))
        }
    }

    func testModelFileAboveTheProtobufLimitIsRefusedBeforeReading() throws {
        let folder = try temporaryFolder()
        let path = folder + "/large.onnx"
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: nil))
        let handle = try XCTUnwrap(FileHandle(forWritingAtPath: path))
        try handle.truncate(atOffset: 3 << 30)
        try handle.close()
        let fragments = [path, "is 3221225472 bytes, more than the 2147483647 an ONNX model file may have"]
        assertONNXError(fragments) { _ = try ONNXImport(contentsOf: URL(fileURLWithPath: path)) }
        try requireLSTMGPU()
        for arguments in [
            ["import", path, "--output", folder + "/out.safetensors"],
            ["run", path, "--input", folder + "/in.safetensors", "--output", folder + "/out.safetensors"],
        ] {
            let result = try runProcess(lstmGPUExecutable.path, arguments)
            XCTAssertEqual(result.status, 2, result.output)
            for fragment in fragments { XCTAssertTrue(result.output.contains(fragment), result.output) }
            XCTAssertFalse(result.output.contains("NSCocoaErrorDomain"), result.output)
        }
    }
}

/// ONNX files mutated at the byte level (truncated, bytes overwritten, bits flipped, the
/// external data file cut short) through `lstm-gpu import` in a child process with a time and
/// memory limit: no signal, no time-out, exit 0 (a harmless mutation) or 2 with a message.
final class ONNXFuzzTests: XCTestCase {
    func testMutatedONNXFilesGiveCleanErrors() throws {
        try requireLSTMGPU()
        let folder = try temporaryFolder()
        let bases = ["everything", "torch-batch-first", "external-data"].map { onnxFixtureFolder + "/\($0).onnx" }
        let weights = try Data(contentsOf: URL(fileURLWithPath: onnxFixtureFolder + "/external-data.weights"))
        var generator = SeededGenerator(seed: 2026)
        var counts: [Int32: Int] = [:]
        for index in 0..<60 {
            var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: bases[index % bases.count])))
            var external = [UInt8](weights)
            let at = Int(generator.next() % UInt64(bytes.count))
            switch index / 3 % 4 {
            case 0: bytes = Array(bytes.prefix(at))
            case 1:
                for _ in 0..<4 { bytes[Int(generator.next() % UInt64(bytes.count))] = UInt8(generator.next() & 0xFF) }
            case 2: bytes[at] ^= 1 << UInt8(generator.next() % 8)
            default: external = Array(external.prefix(Int(generator.next() % UInt64(external.count))))
            }
            try Data(bytes).write(to: URL(fileURLWithPath: folder + "/mutant.onnx"))
            try Data(external).write(to: URL(fileURLWithPath: folder + "/external-data.weights"))
            let (code, signal, output) = try runLimited(
                lstmGPUExecutable.path, ["import", folder + "/mutant.onnx", "--output", folder + "/out.safetensors"])
            let status = signal != 0 ? 128 + signal : code
            counts[status, default: 0] += 1
            XCTAssertTrue(status == 0 || status == 2, "mutant \(index): exit \(status): \(output)")
            if status == 2 { XCTAssertTrue(output.contains("lstm-gpu import: error:"), "mutant \(index): \(output)") }
            XCTAssertFalse(output.contains("NSCocoaErrorDomain"), "mutant \(index): \(output)")
        }
        print("ONNX fuzz: exit codes \(counts.sorted { $0.key < $1.key })")
        XCTAssertGreaterThan(counts[2] ?? 0, 20)
    }
}
