import XCTest

@testable import LSTMCPU
@testable import LSTMCore
@testable import LSTMData
@testable import LSTMKit
@testable import LSTMNN
@testable import LSTMOpenCL
@testable import LSTMReference

/// Finite differences as an oracle independent of PyTorch: for the loss
/// L = Σ output·dY + Σ hn·dHn + Σ cn·dCn, central differences of L with respect to
/// sampled elements of every input and weight must match the backward's gradients.
final class GradientCheckTests: XCTestCase {
    struct Case {
        var configuration: LSTMConfiguration
        var sequenceLength: Int
        var batch: Int
        var lengths: [Int]?
    }

    let cases: [Case] = [
        Case(configuration: LSTMConfiguration(inputSize: 3, hiddenSize: 4), sequenceLength: 3, batch: 2),
        Case(
            configuration: LSTMConfiguration(
                inputSize: 3, hiddenSize: 5, numLayers: 2, bidirectional: true,
                projectionSize: 2), sequenceLength: 4, batch: 3, lengths: [4, 0, 2]),
        Case(
            configuration: LSTMConfiguration(inputSize: 2, hiddenSize: 3, numLayers: 2, bias: false, batchFirst: true),
            sequenceLength: 3, batch: 2, lengths: [1, 3]),
        Case(
            configuration: LSTMConfiguration(inputSize: 4, hiddenSize: 9, bidirectional: true), sequenceLength: 2,
            batch: 1),
        // The cell options, each alone, then together (with CIFG's three gate rows, reverse,
        // projection and lengths). Clips are set where a good share of values lies beyond them.
        Case(
            configuration: LSTMConfiguration(inputSize: 3, hiddenSize: 4, cell: LSTMCellOptions(peepholes: true)),
            sequenceLength: 3, batch: 2),
        Case(
            configuration: LSTMConfiguration(
                inputSize: 3, hiddenSize: 4, cell: LSTMCellOptions(coupledInputForget: true)),
            sequenceLength: 3, batch: 2),
        Case(
            configuration: LSTMConfiguration(inputSize: 3, hiddenSize: 5, cell: LSTMCellOptions(layerNorm: true)),
            sequenceLength: 3, batch: 2),
        Case(
            configuration: LSTMConfiguration(inputSize: 3, hiddenSize: 4, cell: LSTMCellOptions(activationClip: 0.7)),
            sequenceLength: 3, batch: 2),
        Case(
            configuration: LSTMConfiguration(inputSize: 3, hiddenSize: 4, cell: LSTMCellOptions(cellClip: 0.3)),
            sequenceLength: 3, batch: 2),
        Case(
            configuration: LSTMConfiguration(
                inputSize: 3, hiddenSize: 5, projectionSize: 3, cell: LSTMCellOptions(projectionClip: 0.15)),
            sequenceLength: 3, batch: 2),
        Case(
            configuration: LSTMConfiguration(inputSize: 3, hiddenSize: 4, reverse: true), sequenceLength: 4, batch: 2,
            lengths: [2, 4]),
        Case(
            configuration: LSTMConfiguration(
                inputSize: 3, hiddenSize: 5, numLayers: 2, bidirectional: true, projectionSize: 2,
                cell: LSTMCellOptions(peepholes: true, layerNorm: true, activationClip: 1, cellClip: 0.5)),
            sequenceLength: 3, batch: 3, lengths: [3, 0, 2]),
        Case(
            configuration: LSTMConfiguration(
                inputSize: 2, hiddenSize: 6, batchFirst: true,
                cell: LSTMCellOptions(peepholes: true, coupledInputForget: true, layerNorm: true), reverse: true),
            sequenceLength: 3, batch: 2, lengths: [1, 3]),
    ]

    func testBackwardMatchesFiniteDifferences() throws { try checkFiniteDifferences(.cpu, device: nil) }

    /// The same on OpenCL (every case, the cell options included).
    func testBackwardMatchesFiniteDifferencesOnOpenCL() throws {
        let backend = try requireOpenCL()
        try checkFiniteDifferences(.opencl, device: "\(backend.device.index)")
    }

    func checkFiniteDifferences(_ kind: BackendKind, device: String?) throws {
        for (index, c) in cases.enumerated() {
            let config = c.configuration
            let states = config.numLayers * config.numDirections
            let inputShape =
                config.batchFirst
                ? [c.batch, c.sequenceLength, config.inputSize] : [c.sequenceLength, c.batch, config.inputSize]
            let outputShape =
                config.batchFirst
                ? [c.batch, c.sequenceLength, config.numDirections * config.outputSize]
                : [c.sequenceLength, c.batch, config.numDirections * config.outputSize]
            var weights = LSTM.initialWeights(config, seed: UInt64(index))
            for (k, key) in weights.keys.sorted().enumerated() {
                weights[key] = randomTensor(weights[key]!.shape, seed: UInt64(100 + k))
            }
            let lstm = try LSTM(config, weights: weights, backend: kind, device: device)
            var x = randomTensor(inputShape, seed: 11)
            var h0 = randomTensor([states, c.batch, config.outputSize], seed: 12, scale: 0.5)
            var c0 = randomTensor([states, c.batch, config.hiddenSize], seed: 13, scale: 0.5)
            let dy = randomTensor(outputShape, seed: 14)
            let dhn = randomTensor([states, c.batch, config.outputSize], seed: 15)
            let dcn = randomTensor([states, c.batch, config.hiddenSize], seed: 16)

            func loss(_ x: Tensor, _ h0: Tensor, _ c0: Tensor) throws -> Double {
                let r = try lstm.forward(x, h0: h0, c0: c0, lengths: c.lengths)
                var total = 0.0
                for (a, b) in zip(r.output.scalars, dy.scalars) { total += Double(a) * Double(b) }
                for (a, b) in zip(r.hn.scalars, dhn.scalars) { total += Double(a) * Double(b) }
                for (a, b) in zip(r.cn.scalars, dcn.scalars) { total += Double(a) * Double(b) }
                return total
            }
            let result = try lstm.forward(x, h0: h0, c0: c0, lengths: c.lengths, training: true)
            let grads = try lstm.backward(result, outputGradient: dy, hnGradient: dhn, cnGradient: dcn)
            // Small enough that a perturbation rarely carries a clipped value across its bound (a
            // kink), large enough for float32's rounding of the loss.
            let eps: Float = 2e-3
            var worst: Double = 0
            func check(_ name: String, _ analytic: Float, _ numeric: Double) {
                let error = abs(Double(analytic) - numeric)
                worst = max(worst, error)
                XCTAssertLessThanOrEqual(
                    error, 2e-3 + 1e-2 * abs(numeric),
                    "case \(index) \(name): backward \(analytic), finite difference \(numeric)")
            }
            func central(_ perturb: (Float) throws -> Double, at value: Float) rethrows -> Double {
                (try perturb(value + eps) - perturb(value - eps)) / Double(2 * eps)
            }
            for i in stride(from: 0, to: x.count, by: max(1, x.count / 7)) {
                let v = x.scalars[i]
                let numeric = try central(
                    {
                        x.scalars[i] = $0; return try loss(x, h0, c0)
                    }, at: v)
                x.scalars[i] = v
                check("input[\(i)]", grads.input.scalars[i], numeric)
            }
            for i in stride(from: 0, to: h0.count, by: max(1, h0.count / 5)) {
                let v = h0.scalars[i]
                let numeric = try central(
                    {
                        h0.scalars[i] = $0; return try loss(x, h0, c0)
                    }, at: v)
                h0.scalars[i] = v
                check("h0[\(i)]", grads.h0.scalars[i], numeric)
            }
            for i in stride(from: 0, to: c0.count, by: max(1, c0.count / 5)) {
                let v = c0.scalars[i]
                let numeric = try central(
                    {
                        c0.scalars[i] = $0; return try loss(x, h0, c0)
                    }, at: v)
                c0.scalars[i] = v
                check("c0[\(i)]", grads.c0.scalars[i], numeric)
            }
            for (name, _) in config.parameterSpecs {
                var w = weights
                let count = w[name]!.count
                for i in stride(from: 0, to: count, by: max(1, count / 6)) {
                    let v = w[name]!.scalars[i]
                    let numeric = try central(
                        {
                            w[name]!.scalars[i] = $0
                            try lstm.setWeights(w)
                            return try loss(x, h0, c0)
                        }, at: v)
                    w[name]!.scalars[i] = v
                    check("\(name)[\(i)]", grads.weights[name]!.scalars[i], numeric)
                }
                try lstm.setWeights(weights)
            }
            print("gradient check (\(kind)) case \(index): max |backward - finite difference| = \(worst)")
        }
    }
}
