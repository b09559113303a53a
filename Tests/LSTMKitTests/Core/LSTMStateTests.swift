import Foundation
import XCTest

@testable import LSTMCPU
@testable import LSTMCore
@testable import LSTMData
@testable import LSTMKit
@testable import LSTMNN
@testable import LSTMOpenCL
@testable import LSTMReference

/// `LSTMLayer` with states in and out (the seq2seq form): finite differences for h0, c0 and
/// hn, cn of one layer, an encoder whose final state initialises a decoder, and shape refusals.
final class LSTMStateTests: XCTestCase {
    func read<Backend: ModelOps>(_ b: Backend, _ buffer: Backend.Buffer, _ shape: [Int]) throws -> [Float] {
        try b.read(buffer, offset: 0, count: shape.reduce(1, *))
    }

    /// Loss Σ w·output + Σ u·hn + Σ v·cn of one layer from (h0, c0): gradients of every weight,
    /// the input, h0 and c0 against finite differences; a length-0 sequence's hn, cn are its h0, c0.
    func checkSingleLayer<Backend: ModelOps>(_ b: Backend, _ name: String) throws -> Double {
        let (steps, batch, lengths) = (4, 3, [4, 0, 2])
        var worst = 0.0
        let configurations = [
            LSTMConfiguration(inputSize: 3, hiddenSize: 4, numLayers: 2, bidirectional: true),
            LSTMConfiguration(inputSize: 3, hiddenSize: 5, bidirectional: true, projectionSize: 3),
        ]
        for (k, configuration) in configurations.enumerated() {
            let label = "\(name) states \(k)"
            let layer = try LSTMLayer(configuration, backend: b, seed: 2)
            let x = try LayerValue.sequence(
                values: randomTensor([steps * batch * 3], seed: 5).scalars, steps: steps, batch: batch, features: 3,
                lengths: lengths, on: b)
            let shapes = LSTMState<Backend>.shapes(configuration, batch: batch)
            let (hCount, cCount) = (shapes.hidden.reduce(1, *), shapes.cell.reduce(1, *))
            let h0 = try LSTMState.upload(
                hidden: randomTensor([hCount], seed: 6).scalars, cell: randomTensor([cCount], seed: 7).scalars,
                configuration: configuration, batch: batch, on: b)
            let (output, final) = try layer.forward(x, initialState: h0, training: true)
            let w = randomTensor([output.elementCount], seed: 8, scale: 0.25).scalars
            let u = randomTensor([hCount], seed: 9, scale: 0.25).scalars,
                v = randomTensor([cCount], seed: 10, scale: 0.25).scalars
            let gradients = try layer.backward(
                upload(w, b),
                finalStateGradient: LSTMState<Backend>(
                    hidden: upload(u, b), cell: upload(v, b), configuration: configuration, batch: batch))
            XCTAssertEqual(gradients.initialStateGradient.hiddenShape, shapes.hidden)
            XCTAssertEqual(gradients.initialStateGradient.cellShape, shapes.cell)
            XCTAssertEqual(final.hiddenShape, shapes.hidden)
            XCTAssertEqual(final.cellShape, shapes.cell)
            // Sequence 1 has length 0: its hn, cn are exactly its h0, c0 in every layer and direction.
            let (hn, cn) = try (read(b, final.hidden, shapes.hidden), read(b, final.cell, shapes.cell))
            let (h0Host, c0Host) = try (read(b, h0.hidden, shapes.hidden), read(b, h0.cell, shapes.cell))
            for (values, start, width) in [(hn, h0Host, shapes.hidden[2]), (cn, c0Host, shapes.cell[2])] {
                for state in 0..<shapes.hidden[0] {
                    let row = (state * batch + 1) * width
                    XCTAssertEqual(Array(values[row..<row + width]), Array(start[row..<row + width]), label)
                    let other = (state * batch + 0) * width  // a sequence that ran has moved away from h0
                    XCTAssertNotEqual(Array(values[other..<other + width]), Array(start[other..<other + width]))
                }
            }
            var probes = try layer.parameters.map {
                GradientProbe(name: $0.name, value: $0.value, count: $0.count, analytic: try XCTUnwrap($0.gradient))
            }
            probes += [
                GradientProbe(
                    name: "input", value: x.buffer!, count: x.elementCount, analytic: try XCTUnwrap(gradients.input)),
                GradientProbe(
                    name: "h0", value: h0.hidden, count: hCount, analytic: gradients.initialStateGradient.hidden),
                GradientProbe(name: "c0", value: h0.cell, count: cCount, analytic: gradients.initialStateGradient.cell),
            ]
            let result = try checkFiniteDifferences(b, label, probes: probes, samples: 11) {
                let (y, s) = try layer.forward(x, initialState: h0, training: false)
                return try weightedSum(y, w, b)
                    + zip(read(b, s.hidden, shapes.hidden), u).reduce(0.0) { $0 + Double($1.0 * $1.1) }
                    + zip(read(b, s.cell, shapes.cell), v).reduce(0.0) { $0 + Double($1.0 * $1.1) }
            }
            // The length-0 sequence's h0, c0 gradient is exactly dL/d(hn), dL/d(cn) (u, v): the
            // identity passes the gradient through untouched.
            let dh0 = try read(b, gradients.initialStateGradient.hidden, shapes.hidden)
            for state in 0..<shapes.hidden[0] {
                let row = (state * batch + 1) * shapes.hidden[2]
                XCTAssertEqual(Array(dh0[row..<row + shapes.hidden[2]]), Array(u[row..<row + shapes.hidden[2]]))
            }
            worst = max(worst, result)
        }
        return worst
    }

    func testSingleLayerStatesOnTheCPU() throws {
        print("cpu single layer states max error:", try checkSingleLayer(CPUBackend(), "cpu"))
    }
    func testSingleLayerStatesOnOpenCL() throws {
        print("opencl single layer states max error:", try checkSingleLayer(requireOpenCL(), "opencl"))
    }

    /// An encoder LSTM reads a float source; its final state initialises a decoder LSTM that
    /// reads the target tokens (teacher forcing) through an Embedding, with a per-step Linear and
    /// masked cross-entropy on top. The encoder's outputs are unused, so its gradients come only
    /// through the states: they are checked against finite differences, and are all zero when
    /// the state gradient is withheld.
    func checkEncoderDecoder<Backend: ModelOps>(_ b: Backend, _ name: String) throws -> Double {
        let encoderConfiguration = LSTMConfiguration(inputSize: 3, hiddenSize: 4, numLayers: 2)
        let decoderConfiguration = LSTMConfiguration(inputSize: 2, hiddenSize: 4, numLayers: 2)
        let encoder = try LSTMLayer(encoderConfiguration, backend: b, seed: 1)
        let embedding = try Embedding(backend: b, vocabularySize: 6, dimension: 2, seed: 2)
        let decoder = try LSTMLayer(decoderConfiguration, backend: b, seed: 3)
        let head = try Linear(backend: b, inputSize: 4, outputSize: 6, seed: 4)
        let source = try LayerValue.sequence(
            values: randomTensor([5 * 2 * 3], seed: 5).scalars, steps: 5, batch: 2, features: 3, lengths: [5, 3],
            on: b)
        let decoderInput = try LayerValue.tokens(
            ids: [0, 0, 3, 4, 5, 1, 2, 2], steps: 4, batch: 2, lengths: [4, 2], on: b)
        // Targets on the padded steps (t ≥ 2 for sequence 1) are valid classes: the lengths mask them.
        let targets = [3, 4, 5, 1, 2, 2, 1, 5]
        let loss = CrossEntropyLoss(backend: b)
        func run(training: Bool) throws -> LossValue<Backend.Buffer> {
            let (_, state) = try encoder.forward(source, initialState: nil, training: training)
            let embedded = try embedding.forward(decoderInput, training: training)
            let (output, _) = try decoder.forward(embedded, initialState: state, training: training)
            return try loss(head.forward(output, training: training), targets: targets)
        }
        func backward(_ value: LossValue<Backend.Buffer>, passState: Bool) throws -> Backend.Buffer? {
            let dOutput = try XCTUnwrap(head.backward(value.gradient))
            let decoderGradients = try decoder.backward(dOutput, finalStateGradient: nil)
            _ = try embedding.backward(XCTUnwrap(decoderGradients.input))
            return try encoder.backward(
                nil, finalStateGradient: passState ? decoderGradients.initialStateGradient : nil
            ).input
        }
        // Withholding the state gradient leaves the encoder with nothing: every gradient it
        // gets below comes through the states.
        let sourceGradientWithoutState = try XCTUnwrap(backward(run(training: true), passState: false))
        XCTAssertEqual(Set(try b.read(sourceGradientWithoutState, offset: 0, count: source.elementCount)), [0])
        for parameter in encoder.parameters {
            XCTAssertEqual(Set(try b.read(XCTUnwrap(parameter.gradient), offset: 0, count: parameter.count)), [0])
        }
        let sourceGradient = try XCTUnwrap(backward(run(training: true), passState: true))
        var probes = [
            GradientProbe(name: "source", value: source.buffer!, count: source.elementCount, analytic: sourceGradient)
        ]
        for (prefix, layer) in [("encoder", encoder), ("decoder", decoder)] as [(String, any Layer<Backend>)]
            + [("embedding", embedding), ("head", head)]
        {
            probes += try layer.parameters.map {
                GradientProbe(
                    name: "\(prefix).\($0.name)", value: $0.value, count: $0.count, analytic: try XCTUnwrap($0.gradient)
                )
            }
        }
        return try checkFiniteDifferences(b, "\(name) encoder-decoder", probes: probes) {
            Double(try run(training: false).loss)
        }
    }

    func testEncoderDecoderOnTheCPU() throws {
        print("cpu encoder-decoder max error:", try checkEncoderDecoder(CPUBackend(), "cpu"))
    }
    func testEncoderDecoderOnOpenCL() throws {
        print("opencl encoder-decoder max error:", try checkEncoderDecoder(requireOpenCL(), "opencl"))
    }

    func expectShapeMismatch(_ what: String, _ body: () throws -> Void, line: UInt = #line) {
        XCTAssertThrowsError(try body(), line: line) {
            guard case let .shapeMismatch(message, _, _) = $0 as? LSTMError else {
                return XCTFail("expected a shape mismatch, got \($0)", line: line)
            }
            XCTAssertTrue(message.contains(what), "\(message) should name \(what)", line: line)
        }
    }

    func testStatesOfTheWrongShapeAreRefused() throws {
        let b = CPUBackend()
        let configuration = LSTMConfiguration(inputSize: 3, hiddenSize: 5, numLayers: 2, projectionSize: 3)
        let layer = try LSTMLayer(configuration, backend: b, seed: 1)
        let x = try LayerValue.sequence(
            values: randomTensor([4 * 2 * 3], seed: 2).scalars, steps: 4, batch: 2, features: 3, on: b)
        func state(_ hidden: [Int], _ cell: [Int]) throws -> LSTMState<CPUBackend> {
            LSTMState(
                hidden: try upload(Array(repeating: 0, count: hidden.reduce(1, *)), b), hiddenShape: hidden,
                cell: try upload(Array(repeating: 0, count: cell.reduce(1, *)), b), cellShape: cell)
        }
        // The right shapes run: [L·D, B, Hout] = [2, 2, 3] and [L·D, B, H] = [2, 2, 5].
        _ = try layer.forward(x, initialState: state([2, 2, 3], [2, 2, 5]), training: true)
        expectShapeMismatch("initial state h") {
            _ = try layer.forward(x, initialState: state([2, 3, 3], [2, 3, 5]), training: true)  // batch 3
        }
        expectShapeMismatch("initial state h") {
            _ = try layer.forward(x, initialState: state([2, 2, 5], [2, 2, 5]), training: true)  // H for Hout
        }
        expectShapeMismatch("initial state c") {
            _ = try layer.forward(x, initialState: state([2, 2, 3], [2, 2, 3]), training: true)  // Hout for H
        }
        expectShapeMismatch("initial state h") {
            _ = try layer.forward(x, initialState: state([1, 2, 3], [1, 2, 5]), training: true)  // one layer
        }
        _ = try layer.forward(x, initialState: nil, training: true)
        expectShapeMismatch("final state gradient c") {
            _ = try layer.backward(nil, finalStateGradient: state([2, 2, 3], [2, 2, 4]))
        }
        _ = try layer.backward(nil, finalStateGradient: state([2, 2, 3], [2, 2, 5]))
        expectShapeMismatch("h0") {
            _ = try LSTMState.upload(
                hidden: [0, 0], cell: Array(repeating: 0, count: 20), configuration: configuration, batch: 2, on: b)
        }
        expectShapeMismatch("c0") {
            _ = try LSTMState.upload(
                hidden: Array(repeating: 0, count: 12), cell: [0], configuration: configuration, batch: 2, on: b)
        }
    }
}
