import Foundation
import XCTest

@testable import LSTMCPU
@testable import LSTMCore
@testable import LSTMData
@testable import LSTMKit
@testable import LSTMNN
@testable import LSTMOpenCL
@testable import LSTMReference

/// The cell options (peepholes, CIFG, layer norm, clips, a single reverse direction) on the
/// fast paths against the readable reference, element by element, on every option alone and
/// combined with layers, directions, projection, lengths, batch-first and no bias.
final class CellOptionsTests: XCTestCase {
    /// Each option alone, then combined; sizes odd and not multiples of 8 (the CPU path's blocks).
    static var cases: [ParityCase] {
        func make(
            _ cell: LSTMCellOptions, input: Int = 5, hidden: Int = 13, layers: Int = 1, bidirectional: Bool = false,
            projection: Int = 0, batchFirst: Bool = false, bias: Bool = true, reverse: Bool = false, steps: Int = 4,
            batch: Int = 3, lengths: [Int]? = nil
        ) -> ParityCase {
            ParityCase(
                configuration: LSTMConfiguration(
                    inputSize: input, hiddenSize: hidden, numLayers: layers, bias: bias, batchFirst: batchFirst,
                    bidirectional: bidirectional, projectionSize: projection, cell: cell, reverse: reverse),
                sequenceLength: steps, batch: batch, lengths: lengths, givenState: true)
        }
        let peephole = LSTMCellOptions(peepholes: true), cifg = LSTMCellOptions(coupledInputForget: true)
        let norm = LSTMCellOptions(layerNorm: true)
        return [
            make(peephole), make(cifg), make(norm), make(LSTMCellOptions(activationClip: 0.6)),
            make(LSTMCellOptions(cellClip: 0.3)), make(LSTMCellOptions(projectionClip: 0.1), projection: 4),
            make(LSTMCellOptions(), reverse: true, lengths: [4, 1, 0]),
            make(LSTMCellOptions(peepholes: true, coupledInputForget: true), bidirectional: true, lengths: [2, 4, 3]),
            make(
                LSTMCellOptions(peepholes: true, layerNorm: true, activationClip: 0.8, cellClip: 0.4),
                layers: 2, bidirectional: true, projection: 5, lengths: [3, 0, 4]),
            make(
                LSTMCellOptions(coupledInputForget: true, layerNorm: true, layerNormEpsilon: 1e-3), hidden: 17,
                batchFirst: true, bias: false, reverse: true, lengths: [1, 4, 2]),
            make(
                LSTMCellOptions(
                    peepholes: true, coupledInputForget: true, layerNorm: true, activationClip: 1, cellClip: 0.5,
                    projectionClip: 0.2), input: 3, hidden: 20, layers: 3, projection: 7, steps: 5, batch: 2),
            make(norm, hidden: 1, steps: 2, batch: 1),
        ]
    }

    func testTheCPUPathMatchesTheReference() throws {
        try checkAgainstReference(.cpu, device: nil)
    }

    func testOpenCLMatchesTheReference() throws {
        let backend = try requireOpenCL()
        try checkAgainstReference(.opencl, device: "\(backend.device.index)")
    }

    func checkAgainstReference(_ kind: BackendKind, device: String?) throws {
        var worst: (output: Float, gradient: Float) = (0, 0)
        for (index, c) in Self.cases.enumerated() {
            let config = c.configuration
            var weights = LSTM.initialWeights(config, seed: UInt64(index))
            for (k, key) in weights.keys.sorted().enumerated() {  // wider than the default draw: clips bite
                weights[key] = randomTensor(weights[key]!.shape, seed: UInt64(70 + k))
            }
            let reference = try LSTM(config, weights: weights, backend: .reference)
            let fast = try LSTM(config, weights: weights, backend: kind, device: device)
            let states = config.numLayers * config.numDirections
            let x = randomTensor(
                config.batchFirst
                    ? [c.batch, c.sequenceLength, config.inputSize] : [c.sequenceLength, c.batch, config.inputSize],
                seed: UInt64(1000 + index))
            let h0 = randomTensor([states, c.batch, config.outputSize], seed: UInt64(2000 + index))
            let c0 = randomTensor([states, c.batch, config.hiddenSize], seed: UInt64(3000 + index))
            let a = try reference.forward(x, h0: h0, c0: c0, lengths: c.lengths, training: true)
            let b = try fast.forward(x, h0: h0, c0: c0, lengths: c.lengths, training: true)
            let inference = try fast.forward(x, h0: h0, c0: c0, lengths: c.lengths)
            let dy = randomTensor(a.output.shape, seed: UInt64(4000 + index))
            let dhn = randomTensor(a.hn.shape, seed: UInt64(5000 + index))
            let dcn = randomTensor(a.cn.shape, seed: UInt64(6000 + index))
            let ga = try reference.backward(a, outputGradient: dy, hnGradient: dhn, cnGradient: dcn)
            let gb = try fast.backward(b, outputGradient: dy, hnGradient: dhn, cnGradient: dcn)
            var pairs: [(String, Tensor, Tensor, Tolerance)] = [
                ("output", b.output, a.output, .outputs), ("hn", b.hn, a.hn, .outputs), ("cn", b.cn, a.cn, .outputs),
                ("inference output", inference.output, a.output, .outputs),
                ("grad_input", gb.input, ga.input, .gradients), ("grad_h0", gb.h0, ga.h0, .gradients),
                ("grad_c0", gb.c0, ga.c0, .gradients),
            ]
            XCTAssertEqual(Set(gb.weights.keys), Set(config.parameterSpecs.map(\.name)), "case \(index)")
            for name in ga.weights.keys.sorted() {
                pairs.append(("grad." + name, gb.weights[name]!, ga.weights[name]!, .gradients))
            }
            for (name, ours, theirs, tolerance) in pairs {
                let row = compare(name, ours: ours, reference: theirs, tolerance: tolerance)
                if tolerance.absolute == Tolerance.outputs.absolute {
                    worst.output = max(worst.output, row.maxAbsolute)
                } else {
                    worst.gradient = max(worst.gradient, row.maxAbsolute)
                }
                XCTAssertTrue(ours.scalars.allSatisfy(\.isFinite), "\(kind) case \(index) (\(c)): \(name) not finite")
                XCTAssertTrue(
                    row.passed,
                    "\(kind): case \(index) (\(c)): \(name) differs from the reference: \(row.failures) of \(row.count), "
                        + "max abs \(row.maxAbsolute)")
            }
        }
        print(
            "cell options, \(kind) vs reference over \(Self.cases.count) configurations: max abs diff outputs "
                + "\(worst.output), gradients \(worst.gradient)")
    }
}

/// A model with cell options saved and loaded: its options come back from the metadata (clips,
/// ε) and the tensors (peepholes, CIFG, layer norm, reverse), and a bad record is refused.
final class CellOptionsFileTests: XCTestCase {
    func testSaveAndLoadKeepTheOptions() throws {
        let config = LSTMConfiguration(
            inputSize: 4, hiddenSize: 6, numLayers: 2, projectionSize: 3,
            cell: LSTMCellOptions(
                peepholes: true, coupledInputForget: true, layerNorm: true, layerNormEpsilon: 1e-3, activationClip: 2,
                cellClip: 0.5, projectionClip: 0.25), reverse: true)
        let lstm = try LSTM(config, weights: LSTM.initialWeights(config, seed: 3))
        let path = try temporaryFolder() + "/cell.safetensors"
        try lstm.saveWeights(to: path)
        let loaded = try LSTM(contentsOf: path)
        XCTAssertEqual(loaded.configuration, config)
        let x = randomTensor([5, 2, 4], seed: 1)
        XCTAssertEqual(try loaded.forward(x, lengths: [5, 2]).output, try lstm.forward(x, lengths: [5, 2]).output)

        // Without metadata the tensors still tell peepholes, CIFG, layer norm and reverse apart.
        let file = try SafeTensorsFile(contentsOf: path)
        var shapes: [String: [Int]] = [:]
        for (name, entry) in file.entries { shapes[name] = entry.shape }
        let inferred = try LSTMConfiguration.inferred(from: shapes)
        var expected = config
        expected.cellOptions = LSTMCellOptions(peepholes: true, coupledInputForget: true, layerNorm: true)
        XCTAssertEqual(inferred, expected)
        XCTAssertEqual(shapes["weight_ih_l0_reverse"], [18, 4], "CIFG: 3H rows (f, g, o)")
        XCTAssertNil(shapes["weight_ci_l0_reverse"])
        XCTAssertNil(shapes["layer_norm_weight_i_l0_reverse"])

        for (key, value, message) in [
            ("cell_clip", "-1", "cellClip must be 0 (off) or a positive finite number"),
            ("layer_norm_eps", "zero", "metadata layer_norm_eps = 'zero' is not a number"),
            ("peephole", "false", "metadata peephole = false contradicts the tensors"),
        ] {
            var metadata = file.metadata
            metadata[key] = value
            let bad = try temporaryFolder() + "/bad.safetensors"
            let tensors: [(name: String, value: SafeTensorsValue)] = try file.entries.keys.sorted().map {
                ($0, .float32(try file.floatTensor($0)))
            }
            try SafeTensorsFile.write(tensors, metadata: metadata, to: bad)
            assertThrows([message, "bad.safetensors"]) { _ = try LSTM(contentsOf: bad) }
        }
    }

    func testMeaninglessCombinationsAreRefusedByName() {
        assertThrows(["reverse", "bidirectional"]) {
            try LSTMConfiguration(inputSize: 2, hiddenSize: 3, bidirectional: true, reverse: true).validate()
        }
        assertThrows(["projectionClip", "no projection"]) {
            try LSTMConfiguration(inputSize: 2, hiddenSize: 3, cell: LSTMCellOptions(projectionClip: 1)).validate()
        }
        assertThrows(["layerNormEpsilon"]) {
            try LSTMConfiguration(
                inputSize: 2, hiddenSize: 3, cell: LSTMCellOptions(layerNorm: true, layerNormEpsilon: 0)
            )
            .validate()
        }
        assertThrows(["activationClip"]) {
            try LSTMConfiguration(inputSize: 2, hiddenSize: 3, cell: LSTMCellOptions(activationClip: .infinity))
                .validate()
        }
    }
}

extension CellOptionsFileTests {
    /// JSON of a configuration from before the cell options decodes as the plain cell; one with
    /// them round-trips; an invalid one is refused.
    func testConfigurationJSONFromBeforeTheOptionsDecodes() throws {
        let old =
            #"{"inputSize":3,"hiddenSize":4,"numLayers":1,"bias":true,"batchFirst":false,"bidirectional":false,"projectionSize":0,"dropout":0}"#
        let decoded = try JSONDecoder().decode(LSTMConfiguration.self, from: Data(old.utf8))
        XCTAssertEqual(decoded, LSTMConfiguration(inputSize: 3, hiddenSize: 4))
        let config = LSTMConfiguration(
            inputSize: 3, hiddenSize: 4, cell: LSTMCellOptions(peepholes: true, cellClip: 2), reverse: true)
        XCTAssertEqual(try JSONDecoder().decode(LSTMConfiguration.self, from: JSONEncoder().encode(config)), config)
        let bad = old.replacingOccurrences(of: #""dropout":0"#, with: #""dropout":0,"cellClip":-1"#)
        XCTAssertThrowsError(try JSONDecoder().decode(LSTMConfiguration.self, from: Data(bad.utf8)))
    }
}
