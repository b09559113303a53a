import Foundation
import XCTest

@testable import LSTMCPU
@testable import LSTMCore
@testable import LSTMKit
@testable import LSTMNN
@testable import LSTMReference

/// Reduced-precision inference (`Precision`, `LSTM.quantized`): the CPU path in each precision
/// and each kernel variant against the reduced-precision reference (the same rounding rules in
/// plain loops), element by element, across lengths, layers, directions, projection, batch-first
/// and the cell options; and against float32, so a precision silently ignored would fail.
///
/// Why the tolerances: the fast path holds activations in float32, the reference in float64, so
/// a value within float rounding of a rounding boundary (int8: k + ½ in units of amax/127; bf16:
/// a tie between two bf16 values) can round to neighbouring codes in the two. One such flip
/// moves a product by one code times a weight (≤ amax/127 · max|w|), about 1e-3 here; fp16
/// rounds only weights (identically in both), so it is held to float rounding.
final class ReducedPrecisionParityTests: XCTestCase {
    static let tolerances: [Precision: Tolerance] = [
        .fp16: Tolerance(absolute: 1e-5, relative: 1e-4),
        .bf16: Tolerance(absolute: 2e-3, relative: 1e-3),
        .int8: Tolerance(absolute: 2e-3, relative: 1e-3),
    ]

    /// Configurations across the features (T, B, lengths and h0/c0 per case).
    static var cases: [ParityCase] {
        var options = LSTMCellOptions(peepholes: true, layerNorm: true, activationClip: 3, cellClip: 2)
        var cifg = LSTMCellOptions(coupledInputForget: true)
        cifg.cellClip = 0
        options.projectionClip = 0.5
        return [
            ParityCase(
                configuration: LSTMConfiguration(inputSize: 24, hiddenSize: 40), sequenceLength: 6, batch: 3,
                lengths: nil, givenState: false),
            ParityCase(
                configuration: LSTMConfiguration(inputSize: 7, hiddenSize: 13, numLayers: 2, bidirectional: true),
                sequenceLength: 5, batch: 4, lengths: [5, 2, 0, 3], givenState: true),
            ParityCase(
                configuration: LSTMConfiguration(
                    inputSize: 16, hiddenSize: 33, numLayers: 2, batchFirst: true, projectionSize: 9),
                sequenceLength: 4, batch: 13, lengths: nil, givenState: true),
            ParityCase(
                configuration: LSTMConfiguration(
                    inputSize: 10, hiddenSize: 20, projectionSize: 6, cell: options),
                sequenceLength: 5, batch: 3, lengths: [5, 1, 4], givenState: false),
            ParityCase(
                configuration: LSTMConfiguration(inputSize: 12, hiddenSize: 17, bias: false, cell: cifg),
                sequenceLength: 4, batch: 2, lengths: nil, givenState: true),
            // T·B = 320 rows: bf16 and fp16 input projections through sgemm on widened weights.
            ParityCase(
                configuration: LSTMConfiguration(inputSize: 20, hiddenSize: 24, numLayers: 2, bidirectional: true),
                sequenceLength: 20, batch: 16, lengths: nil, givenState: false),
        ]
    }

    func testEveryPrecisionAndVariantMatchesTheReducedReference() throws {
        for (index, testCase) in Self.cases.enumerated() {
            let c = testCase.configuration
            let weights = c.initialWeights(seed: UInt64(100 + index))
            let (steps, batch) = (testCase.sequenceLength, testCase.batch)
            let input = randomTensor(
                c.batchFirst ? [batch, steps, c.inputSize] : [steps, batch, c.inputSize], seed: UInt64(index))
            let states = c.numLayers * c.numDirections
            let h0 = testCase.givenState ? randomTensor([states, batch, c.outputSize], seed: 50, scale: 0.5) : nil
            let c0 = testCase.givenState ? randomTensor([states, batch, c.hiddenSize], seed: 51, scale: 0.5) : nil
            let float = try LSTM(c, weights: weights, backend: .reference).forward(
                input, h0: h0, c0: c0, lengths: testCase.lengths)
            print("case \(index): \(testCase)")
            for precision in [Precision.fp16, .bf16, .int8] {
                let reference = try LSTM(c, weights: weights, backend: .reference, precision: precision).forward(
                    input, h0: h0, c0: c0, lengths: testCase.lengths)
                // The precision is not ignored: it moves the outputs away from float32.
                let fromFloat = reference.output.maxAbsDifference(float.output)
                XCTAssertGreaterThan(fromFloat, 1e-6, "\(precision) gives float32's numbers: case \(index)")
                for variant in CPUKernelVariant.supported {
                    let ours = try CPUKernelVariant.withVariant(variant) {
                        try LSTM(c, weights: weights, precision: precision).forward(
                            input, h0: h0, c0: c0, lengths: testCase.lengths)
                    }
                    let tolerance = Self.tolerances[precision]!
                    let label = "case \(index) \(precision) [\(variant.name)]"
                    assertClose(ours.output, reference.output, "\(label) output", tolerance: tolerance)
                    assertClose(ours.hn, reference.hn, "\(label) hn", tolerance: tolerance)
                    assertClose(ours.cn, reference.cn, "\(label) cn", tolerance: tolerance)
                }
                print("  \(precision): max abs diff from float32 \(fromFloat)")
            }
        }
    }

    /// fp16 is the float32 LSTM on weights rounded to half: the reduced model equals the float32
    /// reference given those rounded weights (which is itself held against PyTorch by the fixtures).
    func testFP16IsFloat32OnRoundedWeights() throws {
        for (index, testCase) in Self.cases.enumerated() {
            let c = testCase.configuration
            let weights = c.initialWeights(seed: UInt64(7 + index))
            var rounded = weights
            for (name, tensor) in weights where isReducedMatrixName(name) {
                rounded[name] = try Tensor(
                    shape: tensor.shape,
                    scalars: tensor.scalars.map { HalfPrecision.float(half: HalfPrecision.half($0)) })
            }
            let shape =
                c.batchFirst
                ? [testCase.batch, testCase.sequenceLength, c.inputSize]
                : [testCase.sequenceLength, testCase.batch, c.inputSize]
            let input = randomTensor(shape, seed: 3)
            let expected = try LSTM(c, weights: rounded, backend: .reference).forward(input, lengths: testCase.lengths)
            let model = try LSTM(c, weights: weights).quantized(.fp16)
            XCTAssertEqual(model.precision, .fp16)
            let ours = try model.forward(input, lengths: testCase.lengths)
            assertClose(
                ours.output, expected.output, "case \(index) fp16 = fp32 on rounded weights", tolerance: .outputs)
            XCTAssertEqual(try model.weights(), rounded, "weights() gives the stored values widened")
        }
    }

    func testTrainingAReducedModelIsRefusedWithTheWay() throws {
        let c = LSTMConfiguration(inputSize: 4, hiddenSize: 8)
        let input = randomTensor([3, 2, 4], seed: 1)
        for backend in [BackendKind.cpu, .reference] {
            let model = try LSTM(c, seed: 1, backend: backend).quantized(.int8)
            assertThrows(["int8", "inference only", "train in fp32", "quantize"]) {
                _ = try model.forward(input, training: true)
            }
            assertThrows(["already int8", "float32 original"]) { _ = try model.quantized(.bf16) }
            assertThrows(["held in int8", "not kept"]) { _ = try model.quantized(.fp32) }
            XCTAssertTrue(try model.quantized(.int8) === model)
        }
        // A model on a backend of the caller's keeps it (its thread count) when quantized.
        let single = try LSTM(c, weights: c.initialWeights(seed: 1), on: CPUBackend(threads: 1)).quantized(.int8)
        XCTAssertEqual((single.engine as? LSTMStack<CPUBackend>)?.backend.threads, 1)
        // The char-LM quantized for sampling: its tensors still read back, loading is refused.
        let lm = try LanguageModel(
            LanguageModelConfiguration(vocabularySize: 6, embeddingSize: 4, hiddenSize: 8), backend: CPUBackend(),
            seed: 1)
        let before = try lm.parameterTensors()
        try lm.quantize(to: .int8)
        let after = try lm.parameterTensors()
        XCTAssertEqual(Set(after.keys), Set(before.keys))
        XCTAssertLessThan(after["lstm.weight_hh_l0"]!.maxAbsDifference(before["lstm.weight_hh_l0"]!), 0.01)
        XCTAssertEqual(after["head.weight"], before["head.weight"])
        assertThrows(["inference only"]) { try lm.load(before, source: "test") }
    }

    func testWeightsAReducedPrecisionCannotHoldAreRefused() throws {
        let c = LSTMConfiguration(inputSize: 3, hiddenSize: 4)
        var weights = c.initialWeights(seed: 2)
        weights["weight_hh_l0"]!.scalars[5] = .nan
        assertThrows(["'weight_hh_l0'[1, 1]", "NaN", "int8"]) { _ = try LSTM(c, weights: weights, precision: .int8) }
        weights = c.initialWeights(seed: 2)
        weights["weight_ih_l0"]!.scalars[4] = 70000
        assertThrows(["'weight_ih_l0'[1, 1]", "70000", "fp16", "±65504"]) {
            _ = try LSTM(c, weights: weights, precision: .fp16)
        }
        // bf16 keeps NaN as PyTorch's bfloat16 does: the outputs it reaches are NaN.
        weights = c.initialWeights(seed: 2)
        weights["weight_ih_l0"]!.scalars[0] = .nan
        let out = try LSTM(c, weights: weights, precision: .bf16).forward(randomTensor([2, 1, 3], seed: 1))
        XCTAssertTrue(out.output.scalars[0].isNaN)
    }

    /// NaN and Inf in the input: a row holding one gives NaN through every product of that row in
    /// int8 (its scale is NaN), as float32's products would give NaN or Inf there.
    func testNonFiniteInputsPropagate() throws {
        let c = LSTMConfiguration(inputSize: 5, hiddenSize: 8)
        var input = randomTensor([3, 2, 5], seed: 4)
        input.scalars[2] = .infinity  // step 0, sequence 0
        for precision in [Precision.int8, .bf16, .fp16] {
            let out = try LSTM(c, seed: 3).quantized(precision).forward(input)
            XCTAssertTrue(out.output.scalars[0..<8].contains { $0.isNaN || $0.isInfinite } || precision != .int8)
            XCTAssertTrue(out.output.scalars[8..<16].allSatisfy(\.isFinite), "\(precision): sequence 1 is untouched")
        }
    }
}
