import CLSTMKernels
import Foundation
import XCTest

@testable import LSTMCPU
@testable import LSTMCore
@testable import LSTMKit

/// The reduced-precision kernels (`lstm_reduced.h`): the Swift rounding rules (LSTMCore) and the
/// C ones agree bit for bit, and every body this CPU runs gives the portable body's numbers
/// exactly, int8's integer sums equal to sums computed here in Int.
///
/// Shapes: M rows of activations, N outputs (weight rows), K their width.
final class ReducedPrecisionKernelTests: XCTestCase {
    /// C [M, N] + A [M, K] · Wᵀ through `operand` (its conversion and product, the variant in force).
    func product(_ operand: CPUReducedOperand, _ a: [Float], m: Int, n: Int, k: Int, c: [Float]) -> [Float] {
        var c = c
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: max(operand.scratchBytes(rows: m), 64), alignment: 64)
        defer { scratch.deallocate() }
        a.withUnsafeBufferPointer { ap in
            c.withUnsafeMutableBufferPointer { cp in
                operand.product(
                    m: m, a: ap.baseAddress!, lda: k, columns: 0..<n, c: cp.baseAddress!, ldc: n, scratch: scratch)
            }
        }
        return c
    }

    func testSwiftAndCConversionsAgree() {
        var generator = SeededGenerator(seed: 7)
        var values: [Float] = [
            0, -0, 1, -1, .infinity, -.infinity, .nan, .greatestFiniteMagnitude, .leastNormalMagnitude,
            .leastNonzeroMagnitude, -.leastNonzeroMagnitude, 65504, 65519.99, 65520, -65520, 1e-8, 6e-8, 3e-8,
            2.9802322e-08, 1.0009765625, 1.00048828125, 1.000732421875,
        ]
        for _ in 0..<20000 {
            let exponent = Float(generator.nextFloat(in: -30..<30))
            values.append(generator.nextFloat(in: -1..<1) * Float(pow(2.0, Double(exponent))))
        }
        for x in values {
            let (swiftB, cB) = (HalfPrecision.bfloat16(x), lstm_float_to_bf16(x))
            XCTAssertEqual(swiftB, cB, "bf16 of \(x)")
            if !x.isNaN { XCTAssertEqual(HalfPrecision.half(x), lstm_float_to_f16(x), "fp16 of \(x)") }
        }
        for bits in 0...UInt16.max {
            let (a, b) = (HalfPrecision.float(half: bits), lstm_f16_to_float(bits))
            XCTAssertTrue(a.bitPattern == b.bitPattern || (a.isNaN && b.isNaN), "half \(bits)")
            XCTAssertEqual(HalfPrecision.float(bfloat16: bits).bitPattern, lstm_bf16_to_float(bits).bitPattern)
        }
        // bf16: rounding to nearest even, subnormals flushed, NaN kept.
        XCTAssertEqual(HalfPrecision.bfloat16(1 + 1.0 / 256), 0x3F80)  // a tie rounds to even
        XCTAssertEqual(HalfPrecision.bfloat16(1 + 3.0 / 256), 0x3F82)
        XCTAssertEqual(HalfPrecision.bfloat16(.leastNonzeroMagnitude), 0)
        XCTAssertTrue(HalfPrecision.float(bfloat16: HalfPrecision.bfloat16(.nan)).isNaN)
    }

    /// Rows rounded to bf16 for the products (`lstm_bf16_round_rows`, SIMD where the variant has
    /// it) hold exactly `HalfPrecision.bfloat16`'s values: ties, NaN, ±Inf, subnormals, overflow.
    func testBF16RowRoundingAgreesWithTheRule() throws {
        var generator = SeededGenerator(seed: 9)
        var row: [Float] = [
            0, -0, 1 + 1.0 / 256, 1 + 3.0 / 256, -(1 + 1.0 / 256), .nan, -.nan, .infinity, -.infinity,
            .leastNonzeroMagnitude, -.leastNormalMagnitude / 2, .leastNormalMagnitude, .greatestFiniteMagnitude,
            -.greatestFiniteMagnitude, 3.3895314e38,
        ]
        row += (0..<40).map { _ in generator.nextFloat(in: -4..<4) }
        let k = row.count, k2 = Int(lstm_bf16_padded_k(Int32(k)))
        for variant in CPUKernelVariant.supported {
            lstm_bf16_set_hardware(0)  // the float form of the rounded rows
            defer { lstm_bf16_set_hardware(-1) }
            let out: [Float] = try CPUKernelVariant.withVariant(variant) {
                var out = [Float](repeating: 7, count: k2)
                lstm_bf16_round_rows(row, 1, Int32(k), Int32(k), &out, Int32(k2))
                return out
            }
            for (j, x) in row.enumerated() {
                let expected = HalfPrecision.float(bfloat16: HalfPrecision.bfloat16(x))
                XCTAssertTrue(
                    out[j].bitPattern == expected.bitPattern || (out[j].isNaN && expected.isNaN),
                    "[\(variant.name)] \(x) → \(out[j]), expected \(expected)")
            }
            XCTAssertTrue(out[k..<k2].allSatisfy { $0 == 0 }, "padding is zero")
        }
    }

    func testInt8QuantizationRuleAgreesWithTheKernels() {
        var generator = SeededGenerator(seed: 11)
        for variant in CPUKernelVariant.supported {
            try? CPUKernelVariant.withVariant(variant) {
                for k in [1, 3, 4, 17, 64, 100] {
                    var rows: [[Float]] = (0..<4).map { _ in (0..<k).map { _ in generator.nextFloat(in: -3..<3) } }
                    rows.append([Float](repeating: 0, count: k))
                    rows.append((0..<k).map { $0 == k / 2 ? .nan : 1 })
                    rows.append((0..<k).map { $0 == 0 ? -.infinity : 0.5 })
                    rows.append((0..<k).map { Float($0 % 3) * 1e-38 })  // amax below 127/FLT_MAX
                    let k4 = Int(lstm_s8_padded_k(Int32(k)))
                    var q = [UInt8](repeating: 0, count: rows.count * k4)
                    var scales = [Float](repeating: 0, count: rows.count)
                    let flat = rows.flatMap { $0 }
                    lstm_s8_quantize_rows(flat, Int32(rows.count), Int32(k), Int32(k), &q, Int32(k4), &scales)
                    for (i, row) in rows.enumerated() {
                        let (values, scale) = Int8Quantization.quantize(row)
                        XCTAssertEqual(
                            scale.bitPattern == scales[i].bitPattern || (scale.isNaN && scales[i].isNaN), true,
                            "[\(variant.name)] K=\(k) row \(i): scale \(scale) vs \(scales[i])")
                        XCTAssertEqual(values.map { Int($0) + 128 }, q[(i * k4)..<(i * k4 + k)].map { Int($0) })
                        XCTAssertTrue(q[(i * k4 + k)..<((i + 1) * k4)].allSatisfy { $0 == 128 }, "padding is zero")
                    }
                    XCTAssertEqual(scales[4], 0, "a row of zeros has scale 0")
                    XCTAssertTrue(scales[5].isNaN && scales[6].isNaN, "a non-finite row has scale NaN")
                    XCTAssertEqual(scales[7], 0, "a row too small for a finite inverse quantizes to zeros")
                }
            }
        }
    }

    /// C += A · Wᵀ in each precision, for shapes across every tile size, column tails and K
    /// paddings, through each body this CPU runs: the same bits as the portable body, and for
    /// int8 with unit scales the exact integer sums.
    func testEveryBodyGivesThePortableNumbers() throws {
        var generator = SeededGenerator(seed: 5)
        for (m, n, k) in [(1, 16, 1), (7, 75, 37), (13, 64, 129), (6, 33, 8), (25, 40, 3)] {
            let a = (0..<(m * k)).map { _ in generator.nextFloat(in: -2..<2) }
            let w = try Tensor(shape: [n, k], scalars: (0..<(n * k)).map { _ in generator.nextFloat(in: -1..<1) })
            for precision in [Precision.int8, .bf16, .fp16] {
                let matrix = try ReducedMatrix(quantizing: w, to: precision, name: "w")
                let operand = CPUReducedOperand(matrix, sourceRow: nil)
                func run() -> [Float] {  // the product adds to C
                    product(operand, a, m: m, n: n, k: k, c: (0..<(m * n)).map { Float($0 % 7) * 0.25 })
                }
                let portable = try CPUKernelVariant.withVariant(.portable, run)
                // bf16 on a CPU with AVX512-BF16: both the vdpbf16ps body and the FMA emulation.
                let hardware: [Int32] = lstm_bf16_set_hardware(1) == 0 ? [0, 1] : [0]
                defer { lstm_bf16_set_hardware(-1) }
                for variant in CPUKernelVariant.supported {
                    for use in precision == .bf16 ? hardware : [0] {
                        lstm_bf16_set_hardware(use)
                        let ours = try CPUKernelVariant.withVariant(variant, run)
                        let body = try CPUKernelVariant.withVariant(variant) { ReducedPrecisionBodies.body(precision) }
                        let differing = zip(ours, portable).filter { $0.bitPattern != $1.bitPattern }.count
                        XCTAssertEqual(differing, 0, "\(precision) M=\(m) N=\(n) K=\(k) [\(variant.name), \(body)]")
                    }
                }
                // Against plain Swift: the products in the precision's own terms.
                var worst: Float = 0
                for i in 0..<m {
                    let row = Array(a[(i * k)..<((i + 1) * k)])
                    let (qa, sa) = Int8Quantization.quantize(row)
                    for j in 0..<n {
                        var expected: Float
                        switch precision {
                        case .int8:
                            var sum = 0
                            for t in 0..<k { sum += Int(qa[t]) * Int(matrix.int8Values[j * k + t]) }
                            expected = Float(sum) * sa * matrix.scales[j]
                        case .bf16:
                            expected = 0
                            for t in 0..<k {
                                let x = HalfPrecision.float(bfloat16: HalfPrecision.bfloat16(row[t]))
                                expected += x * matrix.value(row: j, column: t)
                            }
                        default:
                            expected = 0
                            for t in 0..<k { expected += row[t] * matrix.value(row: j, column: t) }
                        }
                        expected += Float((i * n + j) % 7) * 0.25
                        worst = max(worst, abs(expected - portable[i * n + j]))
                    }
                }
                print("reduced GEMM \(precision) M=\(m) N=\(n) K=\(k): max abs diff vs plain Swift \(worst)")
                XCTAssertLessThan(worst, 1e-4 * Float(k).squareRoot() + 1e-5, "\(precision) M=\(m) N=\(n) K=\(k)")
            }
        }
    }

    /// Weights int8 cannot hold exactly are refused, tiny rows quantize to zeros, and stored bf16
    /// subnormals read as ±0 (as every bf16 body reads them).
    func testEdgesOfTheRules() throws {
        let tiny = try Tensor(shape: [2, 3], scalars: [1e-38, -2e-38, 0, 1, -1, 0.5])
        let matrix = try ReducedMatrix(quantizing: tiny, to: .int8, name: "w")
        XCTAssertEqual(Array(matrix.int8Values.prefix(3)), [0, 0, 0])
        XCTAssertEqual(matrix.scales[0], 1, "a zero row stores scale 1 (every stored scale is positive)")
        assertThrows(["65537 wide", "65536"]) {
            _ = try ReducedMatrix(quantizing: Tensor(zeros: [1, 65537]), to: .int8, name: "w")
        }
        let stored = try ReducedMatrix(
            halfBits: [0x0001, 0x8005, 0x3f80], precision: .bf16, rows: 1, columns: 3, name: "w", source: "test")
        XCTAssertEqual(stored.halfBits, [0x0000, 0x8000, 0x3f80])
        XCTAssertEqual(HalfPrecision.flushingSubnormal(bfloat16: 0x0080), 0x0080, "the smallest normal stays")
    }

    /// int8's integer sums are exact: with unit scales (a weight matrix whose rows each hold a
    /// 127, activations whose rows each hold a 127) C is Σ q_a·q_w itself, compared as integers.
    func testInt8SumsAreExactIntegers() throws {
        var generator = SeededGenerator(seed: 3)
        let (m, n, k) = (9, 40, 300)
        var wq = (0..<(n * k)).map { _ in Int8(Int(generator.next() % 255) - 127) }
        var aq = (0..<(m * k)).map { _ in Float(Int(generator.next() % 255) - 127) }
        for j in 0..<n { wq[j * k] = 127 }
        for i in 0..<m { aq[i * k] = 127 }
        let matrix = try ReducedMatrix(
            int8: wq, scales: [Float](repeating: 1, count: n), rows: n, columns: k, name: "w", source: "test")
        let operand = CPUReducedOperand(matrix, sourceRow: nil)
        for variant in CPUKernelVariant.supported {
            let c = try CPUKernelVariant.withVariant(variant) {
                product(operand, aq, m: m, n: n, k: k, c: [Float](repeating: 0, count: m * n))
            }
            for i in 0..<m {
                for j in 0..<n {
                    var sum = 0
                    for t in 0..<k { sum += Int(aq[i * k + t]) * Int(wq[j * k + t]) }
                    XCTAssertEqual(Int(c[i * n + j]), sum, "[\(variant.name)] (\(i), \(j))")
                }
            }
        }
    }
}
