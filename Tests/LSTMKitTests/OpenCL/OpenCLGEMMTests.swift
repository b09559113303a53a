import Foundation
import XCTest

@_spi(Backend) @testable import LSTMCPU
@_spi(Backend) @testable import LSTMCore
@testable import LSTMData
@_spi(Backend) @testable import LSTMKit
@_spi(Backend) @testable import LSTMNN
@_spi(Backend) @testable import LSTMOpenCL
@testable import LSTMReference

/// The OpenCL GEMM (tiled, blocked, and split-K with its two-pass sum) against a float64 product on
/// the host, every transpose combination, offsets, leading dimensions wider than the rows,
/// ragged sizes and both beta cases.
final class OpenCLGEMMTests: XCTestCase {
    func testSplitKMatchesTheProductForEverySliceCount() throws {
        let shared = try requireOpenCL()
        let backend = try OpenCLBackend(info: shared.device)
        var generator = SeededGenerator(seed: 77)
        for (m, n, k) in [(5, 7, 300), (70, 65, 513), (1, 129, 64), (33, 3, 1000)] {
            for (transposeA, transposeB) in [(false, false), (true, false), (false, true), (true, true)] {
                for beta: Float in [0, 0.5] {
                    // op(A) [m, k], op(B) [k, n], each stored with an offset and a wider row.
                    let (aRows, aCols) = transposeA ? (k, m) : (m, k)
                    let (bRows, bCols) = transposeB ? (n, k) : (k, n)
                    let (lda, ldb, ldc) = (aCols + 3, bCols + 1, n + 2)
                    let (offA, offB, offC) = (5, 2, 7)
                    let a = (0..<(offA + aRows * lda)).map { _ in Float.random(in: -1...1, using: &generator) }
                    let b = (0..<(offB + bRows * ldb)).map { _ in Float.random(in: -1...1, using: &generator) }
                    let c0 = (0..<(offC + m * ldc)).map { _ in Float.random(in: -1...1, using: &generator) }
                    var expected = c0
                    for i in 0..<m {
                        for j in 0..<n {
                            var sum = 0.0
                            for p in 0..<k {
                                let x = transposeA ? a[offA + p * lda + i] : a[offA + i * lda + p]
                                let y = transposeB ? b[offB + j * ldb + p] : b[offB + p * ldb + j]
                                sum += Double(x) * Double(y)
                            }
                            let old = Double(c0[offC + i * ldc + j])
                            expected[offC + i * ldc + j] = Float(1.5 * sum + (beta == 0 ? 0 : Double(beta) * old))
                        }
                    }
                    let bufferA = try backend.makeBuffer(count: a.count),
                        bufferB = try backend.makeBuffer(count: b.count)
                    try backend.write(a, to: bufferA, offset: 0)
                    try backend.write(b, to: bufferB, offset: 0)
                    let runs: [(Int, OpenCLGEMMVariant)] = [
                        (1, .tiled), (1, .blocked), (2, .tiled), (3, .tiled), (7, .tiled),
                    ]
                    for (slices, variant) in runs {
                        (backend.gemmSlicesOverride, backend.gemmVariantOverride) = (slices, variant)
                        defer { (backend.gemmSlicesOverride, backend.gemmVariantOverride) = (nil, nil) }
                        let bufferC = try backend.makeBuffer(count: c0.count)
                        try backend.write(c0, to: bufferC, offset: 0)
                        try backend.gemm(
                            transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: 1.5,
                            a: MatrixView(bufferA, offset: offA, rowStride: lda),
                            b: MatrixView(bufferB, offset: offB, rowStride: ldb), beta: beta,
                            c: MatrixView(bufferC, offset: offC, rowStride: ldc))
                        let got = try backend.read(bufferC, offset: 0, count: c0.count)
                        var worst: Float = 0
                        for i in 0..<got.count { worst = max(worst, abs(got[i] - expected[i])) }
                        XCTAssertLessThan(
                            worst, 1e-4 * Float(k).squareRoot(),
                            "m \(m) n \(n) k \(k) transposes \(transposeA) \(transposeB) beta \(beta) slices \(slices) "
                                + "\(variant)")
                        // Elements outside C's rows (the offset, the row padding) are untouched.
                        XCTAssertEqual(Array(got[0..<offC]), Array(c0[0..<offC]))
                    }
                }
            }
        }
    }

    func testTheGEMMTunerTimesBothKernelsAndKeepsTheFaster() throws {
        let shared = try requireOpenCL()
        let backend = try OpenCLBackend(info: shared.device)
        let tuning = try backend.tuneGEMM()
        XCTAssertEqual(Set(tuning.milliseconds.keys), Set(OpenCLGEMMVariant.allCases.map(\.rawValue)))
        XCTAssertTrue(tuning.milliseconds.values.allSatisfy { $0 > 0 && $0.isFinite })
        XCTAssertEqual(tuning.milliseconds[tuning.chosen.rawValue], tuning.milliseconds.values.min())
        XCTAssertEqual(try backend.gemmVariant(), tuning.chosen)
        XCTAssertNil(backend.gemmVariantOverride)
        XCTAssertNil(backend.gemmSlicesOverride)
    }

    /// Without a 512³ tuning, the first product with beta = 0 runs with both kernels and keeps
    /// the faster; a product with beta ≠ 0 (which reads C) is never repeated for that.
    func testTheFirstProductTunesTheGEMM() throws {
        let shared = try requireOpenCL()
        let backend = try OpenCLBackend(info: shared.device)
        backend.tuningStore = OpenCLTuningStore(file: nil)  // nothing from earlier processes
        let a = try backend.makeBuffer(count: 6), b = try backend.makeBuffer(count: 6)
        try backend.write([1, 2, 3, 4, 5, 6], to: a, offset: 0)
        try backend.write([1, 0, 2, 1, 0, 3], to: b, offset: 0)
        let c = try backend.makeBuffer(count: 4)
        try backend.write([1, 1, 1, 1], to: c, offset: 0)
        backend.gemmSlicesOverride = 1
        // [2, 3] · [3, 2] + C: not a tuning run.
        try backend.gemm(
            m: 2, n: 2, k: 3, a: MatrixView(a, rowStride: 3), b: MatrixView(b, rowStride: 2), beta: 1,
            c: MatrixView(c, rowStride: 2))
        XCTAssertNil(backend.gemmTuning)
        XCTAssertEqual(try backend.read(c, offset: 0, count: 4), [6, 12, 15, 24])  // A·B = [[5, 11], [14, 23]], + 1
        try backend.gemm(
            m: 2, n: 2, k: 3, a: MatrixView(a, rowStride: 3), b: MatrixView(b, rowStride: 2), beta: 0,
            c: MatrixView(c, rowStride: 2))
        let tuning = try XCTUnwrap(backend.gemmTuning)
        XCTAssertEqual(Set(tuning.milliseconds.keys), ["tiled", "blocked"])
        XCTAssertEqual(try backend.read(c, offset: 0, count: 4), [5, 11, 14, 23], "the product once, not added twice")
    }

    func testSlicesAreChosenOnlyForLongKAndFewTiles() throws {
        let backend = try requireOpenCL()
        let units = max(1, backend.device.computeUnits)
        XCTAssertEqual(backend.gemmSlices(m: 4096, n: 4096, k: 100_000), 1, "many tiles: no split")
        XCTAssertEqual(backend.gemmSlices(m: 64, n: 64, k: 300), 1, "short K: no split")
        let slices = backend.gemmSlices(m: 64, n: 64, k: 1 << 20)
        XCTAssertEqual(slices, min(OpenCLTiles.splitKMaximumSlices, 2 * units))
    }
}

/// The OpenCL reductions (bias-gradient column sums, the loss and gradient-norm sums) in one
/// pass and in two (sliced, partial sums added by a second launch) against float64 sums.
final class OpenCLReductionTests: XCTestCase {
    func testColumnSumsInOneAndTwoPasses() throws {
        let backend = try requireOpenCL()
        var generator = SeededGenerator(seed: 5)
        for (rows, width) in [(1000, 7), (3, 5), (4096, 3), (200, 5000)] {
            let values = (0..<(rows * width)).map { _ in Float.random(in: -1...1, using: &generator) }
            let matrix = try backend.makeBuffer(count: values.count)
            try backend.write(values, to: matrix, offset: 0)
            let out = try backend.makeBuffer(count: width)
            try backend.columnSums(matrix, rows: rows, width: width, into: out)
            let got = try backend.read(out, offset: 0, count: width)
            for c in 0..<width {
                let expected = (0..<rows).reduce(0.0) { $0 + Double(values[$1 * width + c]) }
                XCTAssertEqual(Double(got[c]), expected, accuracy: 1e-4 * Double(rows), "\(rows)×\(width) column \(c)")
            }
            if rows == 1000 { XCTAssertGreaterThan(backend.reductionSlices(items: width, length: rows), 1) }
            if rows == 3 { XCTAssertEqual(backend.reductionSlices(items: width, length: rows), 1) }
        }
    }

    func testSumOfSquaresInOneAndTwoPasses() throws {
        let backend = try requireOpenCL()
        var generator = SeededGenerator(seed: 6)
        for count in [1, 300, 100_000, 1_000_003] {
            let values = (0..<count).map { _ in Float.random(in: -1...1, using: &generator) }
            let x = try backend.makeBuffer(count: count)
            try backend.write(values, to: x, offset: 0)
            let sums = try backend.makeBuffer(count: 3)
            try backend.sumOfSquares(x, count: count, into: sums, slot: 2)
            let got = try backend.read(sums, offset: 0, count: 3)
            let expected = values.reduce(0.0) { $0 + Double($1) * Double($1) }
            XCTAssertEqual(Double(got[2]), expected, accuracy: 1e-5 * expected + 1e-6, "count \(count)")
            XCTAssertEqual(Array(got[0..<2]), [0, 0], "other slots untouched")
        }
        XCTAssertGreaterThan(backend.reductionSlices(items: OpenCLTiles.reduceGroup, length: 1_000_003 / 256), 1)
    }
}
