import Foundation
import XCTest

@testable import LSTMCPU
@testable import LSTMCore
@testable import LSTMData
@testable import LSTMKit
@testable import LSTMNN
@testable import LSTMOpenCL
@testable import LSTMReference

// Shared checks of models on any backend: finite differences, weighted sums, uploads, a small classifier.

/// Central differences of `loss` at a few elements of every probe against the analytic
/// gradients. Also proves the check can fail: a gradient off by 0.05 + 50% fails at every
/// sampled element, and each probe has a sampled element with a non-zero gradient (a backward
/// that returned zeros would not pass unnoticed). Returns the largest |analytic − numeric|.
@discardableResult
func checkFiniteDifferences<Backend: ModelOps>(
    _ backend: Backend, _ label: String, probes: [GradientProbe<Backend.Buffer>], samples: Int = 7,
    expectNonZero: Bool = true, loss: () throws -> Double, file: StaticString = #filePath, line: UInt = #line
) throws -> Double {
    var worst = 0.0
    for probe in probes {
        let analytic = try backend.read(probe.analytic, offset: 0, count: probe.count)
        var values = try backend.read(probe.value, offset: 0, count: probe.count)
        var nonZero = false
        for i in Set(stride(from: 0, to: probe.count, by: max(1, probe.count / samples)).map { $0 } + [probe.count - 1])
            .sorted()
        {
            let original = values[i], eps: Float = 1e-2
            values[i] = original + eps; try backend.write(values, to: probe.value, offset: 0)
            let up = try loss()
            values[i] = original - eps; try backend.write(values, to: probe.value, offset: 0)
            let down = try loss()
            values[i] = original; try backend.write(values, to: probe.value, offset: 0)
            let numeric = (up - down) / Double(2 * eps), tolerance = 3e-4 + 1e-2 * abs(numeric)
            let wrong = Double(analytic[i]) * 1.5 + 0.05
            worst = max(worst, abs(numeric - Double(analytic[i])))
            nonZero = nonZero || abs(numeric) > 5e-5
            XCTAssertEqual(
                Double(analytic[i]), numeric, accuracy: tolerance, "\(label) \(probe.name)[\(i)]", file: file,
                line: line)
            XCTAssertGreaterThan(abs(wrong - numeric), tolerance, "a wrong gradient would pass", file: file, line: line)
        }
        if expectNonZero {
            XCTAssertTrue(nonZero, "\(label) \(probe.name): every sampled gradient is 0", file: file, line: line)
        }
    }
    print("\(label): max |backward − finite difference| = \(worst)")
    return worst
}

/// Σ w·y over a value's floats (the loss of the single-layer checks) and its gradient w.
func weightedSum<Backend: ModelOps>(
    _ value: LayerValue<Backend>, _ weights: [Float], _ backend: Backend
) throws
    -> Double
{
    let y = try backend.read(value.buffer!, offset: 0, count: value.elementCount)
    return zip(y, weights).reduce(0.0) { $0 + Double($1.0 * $1.1) }
}

func upload<Backend: ModelOps>(_ values: [Float], _ backend: Backend) throws -> Backend.Buffer {
    let buffer = try backend.makeBuffer(count: values.count)
    try backend.write(values, to: buffer, offset: 0)
    return buffer
}

/// Embedding (V = 11, E = 6) → bidirectional 2-layer LSTM (inter-layer dropout 0.2) →
/// Dropout 0.3 → pooling → Linear to 3 classes.
func testClassifier<Backend: ModelOps>(
    _ b: Backend, hiddenSize: Int = 8, pooling: PoolingMode = .max
) throws -> Sequential<Backend> {
    try Sequential([
        Embedding(backend: b, vocabularySize: 11, dimension: 6, seed: 1),
        LSTMLayer(
            LSTMConfiguration(inputSize: 6, hiddenSize: hiddenSize, numLayers: 2, bidirectional: true, dropout: 0.2),
            backend: b, seed: 2),
        Dropout(backend: b, probability: 0.3, seed: 3),
        SequencePooling(backend: b, mode: pooling),
        Linear(backend: b, inputSize: 2 * hiddenSize, outputSize: 3, seed: 4),
    ])
}
