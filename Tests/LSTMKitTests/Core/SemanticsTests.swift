import Foundation
import XCTest

@_spi(Backend) @testable import LSTMCPU
@_spi(Backend) @testable import LSTMCore
@testable import LSTMData
@_spi(Backend) @testable import LSTMKit
@_spi(Backend) @testable import LSTMNN
@_spi(Backend) @testable import LSTMOpenCL
@testable import LSTMReference

/// Properties of torch.nn.LSTM's semantics that hold whatever the weights.
final class SemanticsTests: XCTestCase {
    let config = LSTMConfiguration(inputSize: 5, hiddenSize: 7, numLayers: 2, bidirectional: true, projectionSize: 3)

    func testBatchFirstIsATransposeOfSequenceMajor() throws {
        var batchFirst = config
        batchFirst.batchFirst = true
        let a = try LSTM(config, seed: 3), b = try LSTM(batchFirst, seed: 3)
        let x = randomTensor([4, 3, 5], seed: 1)
        let lengths = [4, 0, 2]
        let ra = try a.forward(x, lengths: lengths, training: true)
        let rb = try b.forward(x.swappingOuterDimensions(), lengths: lengths, training: true)
        XCTAssertEqual(ra.output, rb.output.swappingOuterDimensions())
        XCTAssertEqual(ra.hn, rb.hn)
        let dy = randomTensor(ra.output.shape, seed: 2)
        let ga = try a.backward(ra, outputGradient: dy)
        let gb = try b.backward(rb, outputGradient: dy.swappingOuterDimensions())
        XCTAssertEqual(ga.input, gb.input.swappingOuterDimensions())
        XCTAssertEqual(ga.weights, gb.weights)
    }

    func testLengthsOfTAreTheSameAsNoLengths() throws {
        let lstm = try LSTM(config, seed: 4)
        let x = randomTensor([6, 2, 5], seed: 5)
        let a = try lstm.forward(x), b = try lstm.forward(x, lengths: [6, 6])
        XCTAssertEqual(a.output, b.output)
        XCTAssertEqual(a.cn, b.cn)
    }

    func testPaddedStepsAreIgnored() throws {
        let lstm = try LSTM(config, seed: 6)
        var x = randomTensor([5, 3, 5], seed: 7)
        let lengths = [2, 5, 0]
        let a = try lstm.forward(x, lengths: lengths, training: true)
        for t in 0..<5 {
            for b in 0..<3 where t >= lengths[b] { for i in 0..<5 { x.scalars[(t * 3 + b) * 5 + i] = 100 } }
        }
        var dy = randomTensor(a.output.shape, seed: 8)
        let ga = try lstm.backward(a, outputGradient: dy)
        let b = try lstm.forward(x, lengths: lengths, training: true)
        for t in 0..<5 {
            for s in 0..<3 where t >= lengths[s] { for j in 0..<6 { dy.scalars[(t * 3 + s) * 6 + j] = -50 } }
        }
        let gb = try lstm.backward(b, outputGradient: dy)
        XCTAssertEqual(a.output, b.output)
        XCTAssertEqual(a.hn, b.hn)
        XCTAssertEqual(ga.weights, gb.weights)
        XCTAssertEqual(ga.h0, gb.h0)
        // Padded outputs and input gradients are exactly zero; a length-0 sequence keeps h0.
        for t in 0..<5 {
            for s in 0..<3 where t >= lengths[s] {
                XCTAssertTrue(a.output.scalars[((t * 3 + s) * 6)..<((t * 3 + s) * 6 + 6)].allSatisfy { $0 == 0 })
                XCTAssertTrue(ga.input.scalars[((t * 3 + s) * 5)..<((t * 3 + s) * 5 + 5)].allSatisfy { $0 == 0 })
            }
        }
        XCTAssertTrue((0..<4).allSatisfy { l in (0..<3).allSatisfy { a.hn.scalars[(l * 3 + 2) * 3 + $0] == 0 } })
    }

    func testAZeroLengthSequencePassesItsStateThrough() throws {
        let lstm = try LSTM(config, seed: 9)
        let h0 = randomTensor([4, 2, 3], seed: 10), c0 = randomTensor([4, 2, 7], seed: 11)
        let r = try lstm.forward(randomTensor([3, 2, 5], seed: 12), h0: h0, c0: c0, lengths: [0, 3], training: true)
        let dhn = randomTensor(r.hn.shape, seed: 13), dcn = randomTensor(r.cn.shape, seed: 14)
        let g = try lstm.backward(r, outputGradient: nil, hnGradient: dhn, cnGradient: dcn)
        for state in 0..<4 {
            for j in 0..<3 {
                let k = (state * 2) * 3 + j; XCTAssertEqual(r.hn.scalars[k], h0.scalars[k]);
                XCTAssertEqual(g.h0.scalars[k], dhn.scalars[k])
            }
            for j in 0..<7 {
                let k = (state * 2) * 7 + j; XCTAssertEqual(r.cn.scalars[k], c0.scalars[k]);
                XCTAssertEqual(g.c0.scalars[k], dcn.scalars[k])
            }
        }
    }

    func testBackwardCanBeRepeatedOnOneForward() throws {
        let lstm = try LSTM(config, seed: 15)
        let r = try lstm.forward(randomTensor([3, 2, 5], seed: 16), training: true)
        let dy = randomTensor(r.output.shape, seed: 17)
        let a = try lstm.backward(r, outputGradient: dy), b = try lstm.backward(r, outputGradient: dy)
        XCTAssertEqual(a.weights, b.weights)
        XCTAssertEqual(a.input, b.input)
    }

    func testDefaultInitialisationIsSeededAndBounded() throws {
        let c = LSTMConfiguration(inputSize: 10, hiddenSize: 16)
        let a = LSTM.initialWeights(c, seed: 42), b = LSTM.initialWeights(c, seed: 42),
            other = LSTM.initialWeights(c, seed: 43)
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(a, other)
        let bound: Float = 0.25
        let all = a.values.flatMap(\.scalars)
        XCTAssertTrue(all.allSatisfy { abs($0) <= bound })
        XCTAssertGreaterThan(all.max()!, 0.24)
        XCTAssertLessThan(all.min()!, -0.24)
        XCTAssertEqual(Set(a.keys), ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"])
    }

    func testParameterNamesAndShapesAreTorchs() {
        let c = LSTMConfiguration(inputSize: 3, hiddenSize: 8, numLayers: 2, bidirectional: true, projectionSize: 2)
        let specs = c.parameterSpecs
        XCTAssertEqual(
            specs.map(\.name),
            [
                "weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "weight_hr_l0",
                "weight_ih_l0_reverse", "weight_hh_l0_reverse", "bias_ih_l0_reverse", "bias_hh_l0_reverse",
                "weight_hr_l0_reverse",
                "weight_ih_l1", "weight_hh_l1", "bias_ih_l1", "bias_hh_l1", "weight_hr_l1",
                "weight_ih_l1_reverse", "weight_hh_l1_reverse", "bias_ih_l1_reverse", "bias_hh_l1_reverse",
                "weight_hr_l1_reverse",
            ])
        XCTAssertEqual(specs[0].shape, [32, 3])
        XCTAssertEqual(specs[1].shape, [32, 2])
        XCTAssertEqual(specs[4].shape, [2, 8])
        XCTAssertEqual(specs[10].shape, [32, 4])
    }
}

/// The CPU path splits work over threads by hidden units or by batch rows (`CPUStepSplit`),
/// and over directions; any thread count and either split must give the same numbers.
final class CPUThreadingTests: XCTestCase {
    func testThreadCountsAgree() throws {
        let configs = [
            LSTMConfiguration(inputSize: 9, hiddenSize: 37, numLayers: 2, bidirectional: true),
            LSTMConfiguration(inputSize: 5, hiddenSize: 70, projectionSize: 19),
            LSTMConfiguration(inputSize: 3, hiddenSize: 4, bidirectional: true, projectionSize: 3),
        ]
        for (index, config) in configs.enumerated() {
            let weights = LSTM.initialWeights(config, seed: UInt64(index))
            let x = randomTensor([6, 5, config.inputSize], seed: 1)
            let dy = randomTensor([6, 5, config.numDirections * config.outputSize], seed: 2)
            var results: [(Tensor, [String: Tensor], Tensor)] = []
            let runs = [(1, CPUStepSplit.units)] + [2, 3, 5].flatMap { t in CPUStepSplit.allCases.map { (t, $0) } }
            for (threads, split) in runs {
                let backend = CPUBackend(threads: threads, stepSplit: split)
                if split == .batch {  // B = 5 rows: every member gets at least one
                    XCTAssertEqual(
                        split.resolved(for: shape(config, batch: 5), threads: threads), .batch, "\(threads) threads")
                }
                let stack = try LSTMStack(configuration: config, backend: backend, weights: weights)
                let f = try stack.forward(
                    input: stack.upload(x), sequenceLength: 6, batch: 5, lengths: [6, 0, 3, 1, 5], saveActivations: true
                )
                let g = try stack.backward(f, outputGradient: stack.upload(dy))
                var grads: [String: Tensor] = [:]
                for (name, shape) in config.parameterSpecs {
                    grads[name] = try stack.download(g.weights[name]!, shape: shape)
                }
                results.append(
                    (
                        try stack.download(f.output, shape: [6, 5, dy.shape[2]]), grads,
                        try stack.download(g.input, shape: x.shape)
                    ))
            }
            let (output, grads, input) = results[0]  // finite: NaN would agree with NaN below
            for tensor in [output, input] + Array(grads.values) {
                XCTAssertTrue(tensor.scalars.allSatisfy(\.isFinite), "config \(index): a non-finite result")
            }
            for (output, grads, input) in results.dropFirst() {
                assertClose(
                    output, results[0].0, "config \(index) output", tolerance: Tolerance(absolute: 1e-6, relative: 1e-5)
                )
                assertClose(
                    input, results[0].2, "config \(index) input gradient",
                    tolerance: Tolerance(absolute: 1e-5, relative: 1e-4))
                for (name, tensor) in grads {
                    assertClose(
                        tensor, results[0].1[name]!, "config \(index) \(name)",
                        tolerance: Tolerance(absolute: 1e-5, relative: 1e-4))
                }
            }
        }
    }

    /// `.automatic` splits by rows only with rows enough per thread and weights that stay in L2.
    func testTheAutomaticSplit() {
        let small = LSTMConfiguration(inputSize: 256, hiddenSize: 256)
        let l2 = CPUStepSplit.levelTwoCacheBytes
        XCTAssertEqual(CPUStepSplit.automatic.resolved(for: shape(small, batch: 32), threads: 1), .units)
        XCTAssertEqual(CPUStepSplit.automatic.resolved(for: shape(small, batch: 8), threads: 2), .units)
        // 4H·H·4 bytes = 1 MiB at H = 256: rows when that is at most half of L2.
        XCTAssertEqual(
            CPUStepSplit.automatic.resolved(for: shape(small, batch: 32), threads: 2),
            l2 >= 2 << 20 ? .batch : .units)
        let large = LSTMConfiguration(inputSize: 256, hiddenSize: 4096)
        XCTAssertEqual(CPUStepSplit.automatic.resolved(for: shape(large, batch: 256), threads: 2), .units)
        XCTAssertEqual(CPUStepSplit.batch.resolved(for: shape(large, batch: 1), threads: 2), .units)
        XCTAssertEqual(CPUStepSplit.batch.resolved(for: shape(large, batch: 2), threads: 2), .batch)
    }

    private func shape(_ c: LSTMConfiguration, batch: Int) -> DirectionShape {
        DirectionShape(
            sequenceLength: 6, batch: batch, layerInputSize: c.inputSize, hiddenSize: c.hiddenSize,
            outputSize: c.outputSize)
    }
}
