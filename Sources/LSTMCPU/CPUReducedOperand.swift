import CLSTMKernels
import Foundation
@_spi(Backend) import LSTMCore

/// One weight matrix W [n, k] of a reduced-precision model packed for the C kernels
/// (`lstm_reduced.h`), its rows in the order the body that reads it wants (`GateLayout`'s for the
/// plain cell, PyTorch's for the options path and the projection), and the conversion of the
/// activations that multiply it. Made once per matrix and row order and kept on the
/// `ReducedMatrix` (`operand(_:rowOrder:key:)`), so repeated forwards pack nothing.
///
/// A product runs in two calls: `convert` puts m rows of float activations in the precision's
/// form (int8: quantized per row with a scale; bf16: rounded; fp16: nothing to do) in a scratch
/// of `scratchBytes(rows:)`, then `multiplyAdd` adds converted(A) · W[columns]ᵀ to C.
final class CPUReducedOperand: @unchecked Sendable {
    let precision: Precision
    /// n: packed rows (outputs); k: their width.
    let rows: Int
    let width: Int
    private let packed: UnsafeMutableRawPointer
    /// int8 only, by packed row (an even number of 16-row panels): 128·Σ_k w and the scales.
    private let compensation: UnsafeMutablePointer<Int32>?
    private let scales: UnsafeMutablePointer<Float>?

    /// Packs `matrix` with packed row r holding the matrix's row `sourceRow[r]` (nil: the same order).
    init(_ matrix: ReducedMatrix, sourceRow: [Int]?) {
        let (n, k) = (matrix.rows, matrix.columns)
        (precision, rows, width) = (matrix.precision, n, k)
        let source = sourceRow ?? Array(0..<n)
        switch matrix.precision {
        case .int8:
            // Rows the packing covers (its panels, rounded up and padded: see lstm_s8_packed_bytes).
            let panelRows = lstm_s8_packed_bytes(Int32(n), 1) / 4
            let packed = UnsafeMutableRawPointer.allocate(
                byteCount: max(lstm_s8_packed_bytes(Int32(n), Int32(k)), 1), alignment: 64)
            let compensation = UnsafeMutablePointer<Int32>.allocate(capacity: panelRows)
            let scales = UnsafeMutablePointer<Float>.allocate(capacity: panelRows)
            scales.initialize(repeating: 0, count: panelRows)
            var ordered = [Int8](repeating: 0, count: n * k)
            for r in 0..<n {
                for c in 0..<k { ordered[r * k + c] = matrix.int8Values[source[r] * k + c] }
                scales[r] = matrix.scales[source[r]]
            }
            ordered.withUnsafeBufferPointer {
                lstm_s8_pack(
                    $0.baseAddress, Int32(n), Int32(k), Int32(max(k, 1)), packed.assumingMemoryBound(to: Int8.self),
                    compensation)
            }
            (self.packed, self.compensation, self.scales) = (packed, compensation, scales)
        case .bf16, .fp16:
            // Which bf16 body runs (and so the activations' form) is decided here, on one thread,
            // before any crew converts rows.
            if matrix.precision == .bf16 { _ = lstm_bf16_activation_bytes() }
            let count =
                matrix.precision == .bf16
                ? lstm_bf16_packed_count(Int32(n), Int32(k)) : lstm_f16_packed_count(Int32(n), Int32(k))
            let packed = UnsafeMutableRawPointer.allocate(byteCount: max(2 * count, 2), alignment: 64)
            var ordered = [UInt16](repeating: 0, count: n * k)
            for r in 0..<n { for c in 0..<k { ordered[r * k + c] = matrix.halfBits[source[r] * k + c] } }
            let destination = packed.assumingMemoryBound(to: UInt16.self)
            ordered.withUnsafeBufferPointer {
                if matrix.precision == .bf16 {
                    lstm_bf16_pack($0.baseAddress, Int32(n), Int32(k), Int32(max(k, 1)), destination)
                } else {
                    lstm_f16_pack($0.baseAddress, Int32(n), Int32(k), Int32(max(k, 1)), destination)
                }
            }
            (self.packed, compensation, scales) = (packed, nil, nil)
        case .fp32:
            fatalError("CPUReducedOperand holds a reduced precision")
        }
    }

    deinit {
        packed.deallocate()
        compensation?.deallocate()
        scales?.deallocate()
    }

    /// The operand of `matrix` in the row order `sourceRow` (nil: as stored), made on first use
    /// and kept on the matrix under `key`.
    static func operand(_ matrix: ReducedMatrix, key: String, sourceRow: () -> [Int]?) -> CPUReducedOperand {
        matrix.derived("cpu." + key) { CPUReducedOperand(matrix, sourceRow: sourceRow()) }
    }

    /// Elements per converted row: int8 bytes (k padded to 64), bf16 elements (k padded to 2).
    private var convertedStride: Int {
        switch precision {
        case .int8: return Int(lstm_s8_padded_k(Int32(width)))
        case .bf16: return Int(lstm_bf16_padded_k(Int32(width)))
        default: return 0
        }
    }

    /// Bytes of scratch `convert` needs for `rows` rows (0 for fp16, which multiplies float rows).
    func scratchBytes(rows m: Int) -> Int {
        switch precision {
        case .int8: return m * (convertedStride + 4)
        case .bf16: return m * 4 * convertedStride  // float32 bf16 values, or bf16 bits (2 bytes) for vdpbf16ps
        default: return 0
        }
    }

    /// Whether `convert` does anything (fp16 multiplies the float rows as they are).
    var converts: Bool { precision != .fp16 }

    /// Converts rows `range` of A [·, k] (leading dimension lda) into `scratch`, which holds
    /// `total` rows (int8: the quantized rows first, then the `total` scales).
    func convert(
        rows range: Range<Int>, of total: Int, a: UnsafePointer<Float>, lda: Int, into scratch: UnsafeMutableRawPointer
    ) {
        guard !range.isEmpty else { return }
        let stride = convertedStride
        switch precision {
        case .int8:
            let q = scratch.assumingMemoryBound(to: UInt8.self)
            let scales = (scratch + total * stride).assumingMemoryBound(to: Float.self)
            lstm_s8_quantize_rows(
                a + range.lowerBound * lda, Int32(range.count), Int32(width), Int32(lda), q + range.lowerBound * stride,
                Int32(stride), scales + range.lowerBound)
        case .bf16:
            let bytes = Int(lstm_bf16_activation_bytes())
            lstm_bf16_round_rows(
                a + range.lowerBound * lda, Int32(range.count), Int32(width), Int32(lda),
                scratch + range.lowerBound * stride * bytes, Int32(stride))
        default: break
        }
    }

    /// Rows from which a bf16 or fp16 product widens its weights to float32 and runs OpenBLAS's
    /// sgemm (the same products, bf16 × bf16 and half × float32 being exact in float32, summed
    /// in OpenBLAS's order: the result agrees with the kernels' to float rounding): below it the
    /// kernels, which read half the bytes, are faster; above it sgemm's blocking wins and the
    /// widening (n·k values per call) is small beside the m·n·k products. Measured on the Xeon here
    /// (the crossover lies between 100 and 400 rows of 512 to 1536 wide).
    static let widenedRows = 256

    /// Whether a product of `m` rows goes through sgemm on widened weights (bf16 needs its
    /// activations as float32, which every body but vdpbf16ps keeps).
    func widens(rows m: Int) -> Bool {
        switch precision {
        case .fp16: return m >= Self.widenedRows
        case .bf16: return m >= Self.widenedRows && lstm_bf16_activation_bytes() == 4
        default: return false
        }
    }

    /// C[i, columns] += converted(A)[first + i, :] · W[columns]ᵀ for i < m: `scratch` holds the
    /// `total` rows `convert` made (unused for fp16, which reads A's float rows from `a`, lda).
    /// `columns` must start at a 16-row panel boundary; `c` points at column 0 of C's first row.
    /// `mayWiden`: a product made once per forward (the input projection) may widen the weights
    /// for sgemm (`widens(rows:)`); a per-step one never does (it would widen them every step).
    func multiplyAdd(
        m: Int, first: Int = 0, of total: Int, scratch: UnsafeRawPointer?, a: UnsafePointer<Float>, lda: Int,
        columns: Range<Int>, c: UnsafeMutablePointer<Float>, ldc: Int, mayWiden: Bool = false
    ) {
        guard m > 0, !columns.isEmpty else { return }
        precondition(columns.lowerBound % Int(LSTM_PANEL_ROWS) == 0, "a product's columns start at a panel")
        let j = columns.lowerBound, stride = convertedStride
        if mayWiden, widens(rows: m) {
            // W[columns] widened (exactly) into a temporary [columns, k], then one sgemm.
            let widened = UnsafeMutablePointer<Float>.allocate(capacity: columns.count * max(width, 1))
            defer { widened.deallocate() }
            let bits = packed.assumingMemoryBound(to: UInt16.self)
            if precision == .bf16 {
                lstm_bf16_widen_rows(bits, Int32(width), Int32(j), Int32(columns.count), widened, Int32(width))
            } else {
                lstm_f16_widen_rows(bits, Int32(width), Int32(j), Int32(columns.count), widened, Int32(width))
            }
            let rows =
                precision == .bf16
                ? UnsafePointer(scratch!.assumingMemoryBound(to: Float.self)) + first * stride : a + first * lda
            sgemm(
                transposeB: true, m: m, n: columns.count, k: width, a: rows, lda: precision == .bf16 ? stride : lda,
                b: widened, ldb: width, beta: 1, c: c + j, ldc: ldc)
            return
        }
        switch precision {
        case .int8:
            let q = scratch!.assumingMemoryBound(to: UInt8.self)
            let rowScales = (scratch! + total * stride).assumingMemoryBound(to: Float.self)
            lstm_s8_gemm(
                Int32(m), Int32(columns.count), Int32(width), q + first * stride, Int32(stride), rowScales + first,
                packed.assumingMemoryBound(to: Int8.self) + j * stride, compensation! + j, scales! + j, c + j,
                Int32(ldc))
        case .bf16:
            let bytes = Int(lstm_bf16_activation_bytes())
            lstm_bf16_gemm(
                Int32(m), Int32(columns.count), Int32(width), scratch! + first * stride * bytes, Int32(stride),
                packed.assumingMemoryBound(to: UInt16.self) + j * stride, c + j, Int32(ldc))
        case .fp16:
            lstm_f16_gemm(
                Int32(m), Int32(columns.count), Int32(width), a + first * lda, Int32(lda),
                packed.assumingMemoryBound(to: UInt16.self) + j * width, c + j, Int32(ldc))
        case .fp32:
            fatalError("unreachable")
        }
    }

    /// Convert then multiply, for rows a caller holds alone (`scratch` of `scratchBytes(rows: m)`).
    func product(
        m: Int, a: UnsafePointer<Float>, lda: Int, columns: Range<Int>, c: UnsafeMutablePointer<Float>, ldc: Int,
        scratch: UnsafeMutableRawPointer
    ) {
        convert(rows: 0..<m, of: m, a: a, lda: lda, into: scratch)
        multiplyAdd(m: m, of: m, scratch: scratch, a: a, lda: lda, columns: columns, c: c, ldc: ldc)
    }
}

/// A direction's three reduced operands, packed in the orders its body reads them, and per-thread
/// scratch for the per-step conversions.
struct CPUReducedDirection {
    let input: CPUReducedOperand
    let recurrent: CPUReducedOperand
    let projection: CPUReducedOperand?

    /// The operands of `matrices`: the gate matrices in `layout`'s row order (the plain cell) or
    /// as stored (nil: the options path, PyTorch's order).
    init(_ matrices: ReducedDirectionMatrices, layout: GateLayout?) {
        let key = layout.map { "gate-layout-\($0.hiddenSize)" } ?? "rows"
        let order: () -> [Int]? = {
            guard let layout else { return nil }
            var source = [Int](repeating: 0, count: 4 * layout.hiddenSize)
            for gate in 0..<4 {
                for j in 0..<layout.hiddenSize {
                    source[layout.column(gate: gate, unit: j)] = gate * layout.hiddenSize + j
                }
            }
            return source
        }
        input = CPUReducedOperand.operand(matrices.input, key: key, sourceRow: order)
        recurrent = CPUReducedOperand.operand(matrices.recurrent, key: key, sourceRow: order)
        projection = matrices.projection.map { CPUReducedOperand.operand($0, key: "rows", sourceRow: { nil }) }
    }

    /// One scratch per thread of a team of `threads`, each room for `rows` rows of the recurrent
    /// and the projection product's conversions.
    func stepScratch(threads: Int, rows: Int) -> [UnsafeMutableRawPointer] {
        let bytes = max(recurrent.scratchBytes(rows: rows), projection?.scratchBytes(rows: rows) ?? 0, 64)
        return (0..<threads).map { _ in UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64) }
    }
}

/// Scratch memory freed when the last closure holding it is gone.
final class ScratchMemory: @unchecked Sendable {
    let pointers: [UnsafeMutableRawPointer]
    init(_ pointers: [UnsafeMutableRawPointer]) { self.pointers = pointers }
    init(bytes: Int) { pointers = [UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 64), alignment: 64)] }
    subscript(index: Int) -> UnsafeMutableRawPointer { pointers[index] }
    deinit { for pointer in pointers { pointer.deallocate() } }
}

/// Which body each reduced precision runs under the CPU kernel variant in force (for
/// `lstm-gpu devices` and `bench`): e.g. int8 "avx512-vnni (vpdpbusd)".
public enum ReducedPrecisionBodies {
    /// The body of `precision`'s products ("float32: OpenBLAS sgemm and the packed kernels" for fp32).
    public static func body(_ precision: Precision) -> String {
        _ = CPUKernelVariant.current  // applies LSTM_GPU_CPU_ISA first
        switch precision {
        case .int8: return String(cString: lstm_reduced_body(0))
        case .bf16: return String(cString: lstm_reduced_body(1))
        case .fp16: return String(cString: lstm_reduced_body(2))
        case .fp32: return CPUKernelVariant.current.name
        }
    }
}
