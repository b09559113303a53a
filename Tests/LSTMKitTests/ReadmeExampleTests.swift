import Foundation
import XCTest
import LSTMKit   // the public API only, as a user sees it

/// The README's library example, run as written (with files it would read made first).
final class ReadmeExampleTests: XCTestCase {
    func testTheReadmeExampleRuns() throws {
        let folder = try temporaryFolder()
        let config = LSTMConfiguration(inputSize: 32, hiddenSize: 64, numLayers: 2, bidirectional: true)
        let lstm = try LSTM(config, seed: 1)
        try lstm.saveWeights(to: folder + "/lstm.safetensors")
        try lstm.saveWeights(to: folder + "/model.safetensors", prefix: "lstm.")

        let loaded = try LSTM(contentsOf: folder + "/lstm.safetensors")
        XCTAssertEqual(loaded.configuration, config)
        try lstm.loadWeights(from: folder + "/model.safetensors", prefix: "lstm.")

        let values = [Float](repeating: 0.1, count: 10 * 4 * 32)
        let x = try Tensor(shape: [10, 4, 32], scalars: values)
        let result = try lstm.forward(x, lengths: [10, 7, 3, 0], training: true)
        XCTAssertEqual(result.output.shape, [10, 4, 128])
        XCTAssertEqual(result.hn.shape, [4, 4, 64])
        XCTAssertEqual(result.cn.shape, [4, 4, 64])

        let dy = Tensor(zeros: result.output.shape)
        let grads = try lstm.backward(result, outputGradient: dy, hnGradient: nil, cnGradient: nil)
        XCTAssertEqual(grads.input.shape, [10, 4, 32])
        XCTAssertEqual(grads.weights["weight_ih_l0"]?.shape, [256, 32])
        try lstm.saveWeights(to: folder + "/out.safetensors")
        XCTAssertEqual(try LSTM(contentsOf: folder + "/out.safetensors").weights(), try lstm.weights())
    }
}
