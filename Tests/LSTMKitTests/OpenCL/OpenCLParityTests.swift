import Foundation
import XCTest

@testable import LSTMCPU
@testable import LSTMCore
@testable import LSTMData
@testable import LSTMKit
@testable import LSTMNN
@testable import LSTMOpenCL
@testable import LSTMReference

/// The OpenCL backend against PyTorch's fixtures and, element by element, against the CPU path.
final class OpenCLParityTests: XCTestCase {
    func testEveryFixturePassesOnOpenCL() throws {
        let backend = try requireOpenCL()
        let paths = try fixturePaths()
        XCTAssertGreaterThanOrEqual(paths.count, 15)
        for path in paths {
            let rows = try Fixture(contentsOf: path).check(backend: .opencl, device: "\(backend.device.index)")
            print(
                "\(URL(fileURLWithPath: path).lastPathComponent) [opencl]: max abs diff "
                    + "\(rows.map(\.maxAbsolute).max() ?? .nan)"
            )
            for row in rows where !row.passed {
                XCTFail(
                    "\(path): \(row.name) fails on OpenCL: \(row.failures) of \(row.count) elements, max abs "
                        + "\(row.maxAbsolute)"
                )
            }
        }
    }

    typealias Case = ParityCase

    /// Every combination of layers, directions, projection, batch-first, lengths and bias,
    /// with odd sizes drawn per case; plus T = 1, B = 1, a large H and a batch wider than a tile.
    var cases: [Case] {
        var generator = SeededGenerator(seed: 2024)
        func draw(_ range: ClosedRange<Int>) -> Int { range.lowerBound + Int(generator.next() % UInt64(range.count)) }
        var cases: [Case] = []
        for layers in [1, 2] {
            for bidirectional in [false, true] {
                for projects in [false, true] {
                    for batchFirst in [false, true] {
                        for useLengths in [false, true] {
                            for bias in [true, false] {
                                let hidden = draw(3...21), steps = draw(1...6), batch = draw(1...6)
                                let config = LSTMConfiguration(
                                    inputSize: draw(1...19), hiddenSize: hidden, numLayers: layers, bias: bias,
                                    batchFirst: batchFirst, bidirectional: bidirectional,
                                    projectionSize: projects ? draw(1...(hidden - 1)) : 0)
                                var lengths: [Int]? = nil
                                if useLengths { lengths = (0..<batch).map { _ in draw(0...steps) } }
                                cases.append(
                                    Case(
                                        configuration: config, sequenceLength: steps, batch: batch, lengths: lengths,
                                        givenState: bias))
                            }
                        }
                    }
                }
            }
        }
        cases.append(
            Case(
                configuration: .init(inputSize: 7, hiddenSize: 9), sequenceLength: 1, batch: 1, lengths: nil,
                givenState: true))
        cases.append(
            Case(
                configuration: .init(
                    inputSize: 70, hiddenSize: 300, numLayers: 1, bidirectional: true, projectionSize: 67),
                sequenceLength: 3, batch: 2, lengths: [3, 1], givenState: true))
        cases.append(
            Case(
                configuration: .init(inputSize: 33, hiddenSize: 130, numLayers: 2), sequenceLength: 4, batch: 37,
                lengths: (0..<37).map { $0 % 5 }, givenState: true))
        cases.append(
            Case(
                configuration: .init(inputSize: 200, hiddenSize: 65, batchFirst: true), sequenceLength: 5, batch: 9,
                lengths: nil, givenState: false))
        return cases
    }

    /// Every case on each step-kernel variant the device runs (`OpenCLStepVariant`), forced.
    func testRandomisedConfigurationsMatchTheCPUPath() throws {
        let backend = try requireOpenCL()
        let variants = try OpenCLStepVariant.allCases.filter { try backend.supports($0) }
        XCTAssertEqual(variants, OpenCLStepVariant.allCases, "PoCL runs every variant")
        for variant in variants {
            try checkRandomisedConfigurations(on: OpenCLBackend(info: backend.device, stepVariant: variant))
        }
    }

    func checkRandomisedConfigurations(on backend: OpenCLBackend) throws {
        var worstOutput: Float = 0, worstGradient: Float = 0
        let variant = try XCTUnwrap(backend.forcedStepVariant)
        for (index, c) in cases.enumerated() {
            let config = c.configuration
            let weights = LSTM.initialWeights(config, seed: UInt64(index))
            let cpu = try LSTM(config, weights: weights, backend: .cpu)
            let gpu = try LSTM(config, weights: weights, on: backend)
            let states = config.numLayers * config.numDirections
            let x = randomTensor(
                config.batchFirst
                    ? [c.batch, c.sequenceLength, config.inputSize] : [c.sequenceLength, c.batch, config.inputSize],
                seed: UInt64(1000 + index))
            let h0 =
                c.givenState ? randomTensor([states, c.batch, config.outputSize], seed: UInt64(2000 + index)) : nil
            let c0 =
                c.givenState ? randomTensor([states, c.batch, config.hiddenSize], seed: UInt64(3000 + index)) : nil
            let a = try cpu.forward(x, h0: h0, c0: c0, lengths: c.lengths, training: true)
            let b = try gpu.forward(x, h0: h0, c0: c0, lengths: c.lengths, training: true)
            let dy = randomTensor(a.output.shape, seed: UInt64(4000 + index))
            let dhn = randomTensor(a.hn.shape, seed: UInt64(5000 + index))
            let dcn = index % 3 == 0 ? nil : randomTensor(a.cn.shape, seed: UInt64(6000 + index))
            let ga = try cpu.backward(a, outputGradient: dy, hnGradient: dhn, cnGradient: dcn)
            let gb = try gpu.backward(b, outputGradient: dy, hnGradient: dhn, cnGradient: dcn)
            var pairs: [(String, Tensor, Tensor, Tolerance)] = [
                ("output", b.output, a.output, .outputs), ("hn", b.hn, a.hn, .outputs), ("cn", b.cn, a.cn, .outputs),
                ("grad_input", gb.input, ga.input, .gradients), ("grad_h0", gb.h0, ga.h0, .gradients),
                ("grad_c0", gb.c0, ga.c0, .gradients),
            ]
            for name in ga.weights.keys.sorted() {
                pairs.append(("grad." + name, gb.weights[name]!, ga.weights[name]!, .gradients))
            }
            for (name, ours, reference, tolerance) in pairs {
                let row = compare(name, ours: ours, reference: reference, tolerance: tolerance)
                if tolerance.absolute == Tolerance.outputs.absolute {
                    worstOutput = max(worstOutput, row.maxAbsolute)
                } else {
                    worstGradient = max(worstGradient, row.maxAbsolute)
                }
                XCTAssertTrue(
                    row.passed,
                    "\(variant): case \(index) (\(c)): \(name) differs from the CPU path: \(row.failures) of \(row.count), "
                        + "max abs \(row.maxAbsolute)"
                )
            }
        }
        print(
            "OpenCL (\(variant)) vs CPU over \(cases.count) configurations: max abs diff outputs \(worstOutput), gradients "
                + "\(worstGradient)"
        )
    }

    /// Device-resident use: tensors stay in OpenCL buffers between calls; only what is
    /// asked for comes back.
    func testDeviceResidentStackMatchesHostAPI() throws {
        let backend = try requireOpenCL()
        let config = LSTMConfiguration(inputSize: 6, hiddenSize: 10, numLayers: 2)
        let weights = LSTM.initialWeights(config, seed: 8)
        let stack = try LSTMStack(configuration: config, backend: backend, weights: weights)
        let x = randomTensor([4, 3, 6], seed: 9)
        let input = try stack.upload(x)
        let first = try stack.forward(input: input, sequenceLength: 4, batch: 3)
        // Feed the first run's final state back in without leaving the device.
        let second = try stack.forward(
            input: input, sequenceLength: 4, batch: 3, initialHidden: first.finalHidden,
            initialCell: first.finalCell)
        let host = try LSTM(config, weights: weights)
        let a = try host.forward(x)
        let b = try host.forward(x, h0: a.hn, c0: a.cn)
        assertClose(
            try stack.download(second.output, shape: [4, 3, 10]), b.output, "chained output", tolerance: .outputs)
    }
}
