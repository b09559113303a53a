import Foundation
import XCTest

@testable import LSTMCPU
@testable import LSTMCore
@testable import LSTMData
@testable import LSTMKit
@testable import LSTMNN
@testable import LSTMOpenCL
@testable import LSTMReference

/// What `LSTM` promises about its settings: dropout in training forwards, and every setting
/// surviving a save and reload.
final class ModelSettingsTests: XCTestCase {
    let config = LSTMConfiguration(inputSize: 5, hiddenSize: 6, numLayers: 2, bidirectional: true, dropout: 0.5)

    /// A training forward applies dropout between layers exactly as layer-by-layer models with
    /// the same mask do; evaluation does not; both backends draw the same masks.
    func testTrainingForwardAppliesDropoutBetweenLayers() throws {
        let model = try LSTM(config, seed: 3)
        let x = randomTensor([4, 3, 5], seed: 9)
        let evaluation = try model.forward(x)
        let training = try model.forward(x, training: true, dropoutSeed: 42)
        let differs = training.output.maxAbsDifference(evaluation.output)
        print("  dropout 0.5: max |train − eval| = \(differs)")
        XCTAssertGreaterThan(differs, 1e-3, "dropout must change a training forward")
        XCTAssertEqual(
            try model.forward(x, training: true, dropoutSeed: 42).output, training.output, "a seed gives the same masks"
        )
        XCTAssertNotEqual(
            try model.forward(x, training: true).output, try model.forward(x, training: true).output,
            "without a seed every training forward draws new masks")

        // The same computation by hand: layer 0, the mask of layer 0 from the stack's seed rule, layer 1.
        let weights = try model.weights()
        func layer(_ index: Int, inputSize: Int) throws -> LSTM {
            var single = config
            single.numLayers = 1
            single.inputSize = inputSize
            single.dropout = 0
            var w: [String: Tensor] = [:]
            for (name, _) in single.parameterSpecs {
                w[name] = weights[name.replacingOccurrences(of: "_l0", with: "_l\(index)")]
            }
            return try LSTM(single, weights: w)
        }
        let y0 = try layer(0, inputSize: 5).forward(x).output
        let backend = CPUBackend()
        let mask = try backend.makeBuffer(count: y0.count)
        try backend.dropoutMask(
            count: y0.count, probability: 0.5, seed: dropoutLayerSeed(42, layer: 0),
            layout: DropoutLayout(localBatch: 3, globalBatch: 3, offset: 0, width: 12), into: mask)
        let maskValues = try backend.read(mask, offset: 0, count: y0.count)
        XCTAssertTrue(
            maskValues.allSatisfy { $0 == 0 || $0 == 2 }, "inverted dropout: kept values are scaled by 1/(1 − p)")
        let dropped = try Tensor(shape: y0.shape, scalars: zip(y0.scalars, maskValues).map { $0 * $1 })
        let y1 = try layer(1, inputSize: 12).forward(dropped).output
        assertClose(
            training.output, y1, "training output vs layer by layer",
            tolerance: Tolerance(absolute: 1e-6, relative: 1e-5))

        // The backward goes through the same masks: compare with the stack's.
        let dy = randomTensor(training.output.shape, seed: 4)
        let grads = try model.backward(training, outputGradient: dy)
        let stack = try LSTMStack(configuration: config, backend: CPUBackend(), weights: weights)
        let f = try stack.forward(
            input: stack.upload(x), sequenceLength: 4, batch: 3, saveActivations: true, dropoutSeed: 42)
        let g = try stack.backward(f, outputGradient: stack.upload(dy))
        assertClose(
            grads.input, try stack.download(g.input, shape: x.shape), "input gradient vs stack",
            tolerance: Tolerance(absolute: 0, relative: 0))

        if let opencl = try? requireOpenCL() {
            let gpu = try LSTM(config, weights: weights, backend: .opencl, device: "\(opencl.runtime.device.index)")
            assertClose(
                try gpu.forward(x, training: true, dropoutSeed: 42).output, training.output,
                "OpenCL vs CPU with dropout",
                tolerance: .outputs)
        }
    }

    /// Every configuration field survives saveWeights → LSTM(contentsOf:).
    func testEverySettingSurvivesSaveAndLoad() throws {
        let folder = try temporaryFolder()
        let configurations = [
            LSTMConfiguration(inputSize: 3, hiddenSize: 4),
            LSTMConfiguration(inputSize: 3, hiddenSize: 4, batchFirst: true),
            LSTMConfiguration(inputSize: 3, hiddenSize: 4, numLayers: 3, dropout: 0.2),
            LSTMConfiguration(inputSize: 3, hiddenSize: 4, bias: false),
            LSTMConfiguration(inputSize: 3, hiddenSize: 4, numLayers: 2, bidirectional: true, projectionSize: 2),
            LSTMConfiguration(
                inputSize: 7, hiddenSize: 5, numLayers: 2, bias: false, batchFirst: true, bidirectional: true,
                projectionSize: 3, dropout: 0.75),
        ]
        for (index, configuration) in configurations.enumerated() {
            let path = folder + "/model-\(index).safetensors"
            let model = try LSTM(configuration, seed: UInt64(index))
            try model.saveWeights(to: path)
            let loaded = try LSTM(contentsOf: path)
            XCTAssertEqual(loaded.configuration, configuration)
            XCTAssertEqual(try loaded.weights(), try model.weights())
            try model.saveWeights(to: path + ".prefixed", prefix: "encoder.lstm.")
            XCTAssertEqual(
                try LSTM(contentsOf: path + ".prefixed", prefix: "encoder.lstm.").configuration, configuration)
        }
        // A batch-first model read back reads [B, T, I] again (the silent misreading before).
        let batchFirst = try LSTM(configurations[1], seed: 1)
        try batchFirst.saveWeights(to: folder + "/bf.safetensors")
        let x = randomTensor([2, 5, 3], seed: 2)
        XCTAssertEqual(
            try LSTM(contentsOf: folder + "/bf.safetensors").forward(x).output, try batchFirst.forward(x).output)
        assertThrows(["batchFirst false was asked for", "batch_first = true"]) {
            _ = try LSTM(contentsOf: folder + "/bf.safetensors", batchFirst: false)
        }
        // Metadata that contradicts the tensors is refused, naming the key.
        for (key, value) in [
            ("hidden_size", "8"), ("num_layers", "1"), ("bidirectional", "true"), ("dropout", "2"),
            ("batch_first", "sideways"),
        ] {
            try rewriteHeader(folder + "/model-2.safetensors", to: folder + "/bad.safetensors") { header in
                var metadata = header["__metadata__"] as! [String: Any]
                metadata[key] = value
                header["__metadata__"] = metadata
            }
            assertThrows(["bad.safetensors", key]) { _ = try LSTM(contentsOf: folder + "/bad.safetensors") }
        }
    }

    /// Derived weights (the CPU path's packed copies, OpenCL's transposed W_hh and W_hr) are
    /// cached, and a change of the weights invalidates them on both backends.
    func testDerivedWeightCachesFollowWeightChanges() throws {
        let configuration = LSTMConfiguration(inputSize: 3, hiddenSize: 10, numLayers: 2, projectionSize: 4)
        let x = randomTensor([5, 2, 3], seed: 1)
        let first = LSTM.initialWeights(configuration, seed: 1), second = LSTM.initialWeights(configuration, seed: 2)
        var backends: [(BackendKind, String?)] = [(.cpu, nil)]
        if let opencl = try? requireOpenCL() { backends.append((.opencl, "\(opencl.device.index)")) }
        let expected = try LSTM(configuration, weights: second).forward(x).output
        for (kind, device) in backends {
            let model = try LSTM(configuration, weights: first, backend: kind, device: device)
            let before = try model.forward(x).output
            try model.setWeights(second)
            let after = try model.forward(x).output
            XCTAssertGreaterThan(after.maxAbsDifference(before), 1e-3, "\(kind): the new weights must be used")
            assertClose(after, expected, "\(kind) after setWeights", tolerance: .outputs)
        }
    }
}
