import Foundation
import XCTest

@testable import LSTMCore
@testable import LSTMKit

/// `LSTMStream`: a sequence fed in chunks (one step, a few, uneven) gives the whole sequence's
/// outputs and final state, in every precision on the CPU path, on the reference and on OpenCL
/// (float32); bidirectional models and wrong chunks are refused.
final class LSTMStreamTests: XCTestCase {
    /// Feeds `input` [T, B, I] through a stream in chunks of the given lengths (cycled) and
    /// compares with one forward over the whole sequence.
    func checkChunked(_ model: LSTM, chunks: [Int], tolerance: Float, label: String) throws {
        let c = model.configuration
        let (steps, batch) = (11, 3)
        let input = randomTensor([steps, batch, c.inputSize], seed: 9)
        let h0 = randomTensor([c.numLayers, batch, c.outputSize], seed: 10, scale: 0.3)
        let c0 = randomTensor([c.numLayers, batch, c.hiddenSize], seed: 11, scale: 0.3)
        let whole = try model.forward(input, h0: h0, c0: c0)
        let stream = try model.makeStream(batch: batch, h0: h0, c0: c0)
        var outputs: [Float] = []
        var t = 0, index = 0
        while t < steps {
            let n = min(chunks[index % chunks.count], steps - t)
            let chunk = try Tensor(
                shape: [n, batch, c.inputSize],
                scalars: Array(input.scalars[(t * batch * c.inputSize)..<((t + n) * batch * c.inputSize)]))
            outputs += try stream.feed(chunk).scalars
            (t, index) = (t + n, index + 1)
        }
        let chunked = try Tensor(shape: whole.output.shape, scalars: outputs)
        let (dy, dh, dc) = (
            chunked.maxAbsDifference(whole.output), stream.hidden.maxAbsDifference(whole.hn),
            stream.cell.maxAbsDifference(whole.cn)
        )
        print("stream \(label) chunks \(chunks): max abs diff output \(dy), h \(dh), c \(dc)")
        XCTAssertLessThanOrEqual(max(dy, dh, dc), tolerance, "\(label) chunks \(chunks)")
        XCTAssertEqual(stream.steps, [Int](repeating: steps, count: batch))
        stream.reset()
        XCTAssertEqual(stream.hidden, h0)
        XCTAssertEqual(try stream.feed(input).scalars, whole.output.scalars, "\(label): after reset, one chunk")
    }

    func testChunksGiveTheWholeSequenceInEveryPrecision() throws {
        let c = LSTMConfiguration(inputSize: 6, hiddenSize: 20, numLayers: 2, projectionSize: 7)
        let weights = c.initialWeights(seed: 4)
        for precision in Precision.allCases {
            let model = try LSTM(c, weights: weights, precision: precision)
            let tolerance: Float = precision == .int8 ? 1e-5 : 1e-6
            for chunks in [[1], [3], [2, 5, 1, 4]] {
                try checkChunked(model, chunks: chunks, tolerance: tolerance, label: "cpu \(precision)")
            }
        }
        try checkChunked(
            try LSTM(c, weights: weights, backend: .reference, precision: .int8), chunks: [1, 4], tolerance: 1e-6,
            label: "reference int8")
    }

    func testChunksOnOpenCL() throws {
        _ = try requireOpenCL()
        let c = LSTMConfiguration(inputSize: 5, hiddenSize: 12)
        let model = try LSTM(c, weights: c.initialWeights(seed: 2), backend: .opencl)
        try checkChunked(model, chunks: [1, 3], tolerance: 1e-6, label: "opencl fp32")
        assertThrows(["CPU backend", "fp32"]) { _ = try model.quantized(.int8) }
    }

    func testLengthsInsideAChunkKeepTheState() throws {
        let c = LSTMConfiguration(inputSize: 4, hiddenSize: 8)
        let model = try LSTM(c, seed: 3).quantized(.int8)
        let stream = try model.makeStream(batch: 2)
        let chunk = randomTensor([3, 2, 4], seed: 1)
        let y = try stream.feed(chunk, lengths: [3, 1])
        XCTAssertEqual(stream.steps, [3, 1])
        XCTAssertTrue(y.scalars[(1 * 2 + 1) * 8..<(1 * 2 + 2) * 8].allSatisfy { $0 == 0 }, "padded steps give 0")
        let whole = try model.forward(chunk, lengths: [3, 1])
        XCTAssertEqual(stream.hidden, whole.hn)
    }

    func testRefusals() throws {
        assertThrows(["unidirectional", "bidirectional"]) {
            _ = try LSTM(LSTMConfiguration(inputSize: 3, hiddenSize: 4, bidirectional: true)).makeStream()
        }
        let model = try LSTM(LSTMConfiguration(inputSize: 3, hiddenSize: 4))
        let stream = try model.makeStream(batch: 2)
        assertThrows(["stream's batch is B = 2"]) { _ = try stream.feed(randomTensor([2, 3, 3], seed: 1)) }
        assertThrows(["3-D"]) { _ = try stream.feed(randomTensor([2, 3], seed: 1)) }
        assertThrows(["h0 ([L, B, Hout])"]) { _ = try model.makeStream(batch: 2, h0: Tensor(zeros: [1, 1, 4])) }
        XCTAssertEqual(stream.steps, [0, 0], "a refused chunk changes nothing")
    }
}
