import Foundation
import Synchronization

/// The rounding rules of the reduced precisions, in Swift (the CPU kernels implement the same
/// rules in C, `lstm_reduced.h`; tests hold the two to bit-for-bit agreement).
public enum Int8Quantization {
    /// Symmetric quantization of one row (one weight row, or one sequence's activation vector at
    /// one step): amax = max |x|, scale = amax / 127, q = round-half-even(x · (127 / amax)),
    /// clamped to [−127, 127] (all in float32, in this order). A row of zeros, or one whose amax
    /// is below 127 / `Float.greatestFiniteMagnitude` (≈ 3.7e-37: no finite inverse), gives q = 0
    /// and scale 0; a row holding NaN or ±Inf gives scale NaN (every product of the row is NaN).
    public static func quantize(_ row: UnsafeBufferPointer<Float>) -> (values: [Int8], scale: Float) {
        var amax: Float = 0
        var finite = true
        for x in row {
            let a = abs(x)
            if !(a <= .greatestFiniteMagnitude) { finite = false } else if a > amax { amax = a }
        }
        guard finite else { return ([Int8](repeating: 0, count: row.count), .nan) }
        let inverse = amax > 0 ? 127 / amax : 0
        guard amax > 0, inverse <= .greatestFiniteMagnitude else {
            return ([Int8](repeating: 0, count: row.count), 0)
        }
        let values = row.map { x -> Int8 in Int8(min(max((x * inverse).rounded(.toNearestOrEven), -127), 127)) }
        return (values, amax / 127)
    }

    /// `quantize` of an array.
    public static func quantize(_ row: [Float]) -> (values: [Int8], scale: Float) {
        row.withUnsafeBufferPointer { quantize($0) }
    }
}

/// bfloat16 and IEEE half conversions (round to nearest even), the rules of `Precision.bf16`
/// and `.fp16`.
public enum HalfPrecision {
    /// bfloat16 bits of x: round to nearest even; NaN stays a quiet NaN, ±Inf stays; subnormal
    /// inputs become ±0 (as `vdpbf16ps` reads them).
    public static func bfloat16(_ x: Float) -> UInt16 {
        var u = x.bitPattern
        if u & 0x7fff_ffff > 0x7f80_0000 { return UInt16(truncatingIfNeeded: (u >> 16) | 0x0040) }
        if u & 0x7f80_0000 == 0 { return UInt16(truncatingIfNeeded: (u >> 16) & 0x8000) }
        u &+= 0x7fff &+ ((u >> 16) & 1)
        return UInt16(truncatingIfNeeded: u >> 16)
    }

    /// The float32 value of bfloat16 bits (exact).
    public static func float(bfloat16 bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }

    /// IEEE half bits of x, rounded to nearest even (overflow to ±Inf, subnormals kept).
    public static func half(_ x: Float) -> UInt16 { Float16(x).bitPattern }

    /// The float32 value of half bits (exact).
    public static func float(half bits: UInt16) -> Float { Float(Float16(bitPattern: bits)) }

    /// The largest finite half, 65504: weights beyond it cannot be stored in fp16.
    public static let largestHalf: Float = 65504

    /// bfloat16 bits with a subnormal value made ±0 (as `bfloat16(_:)` rounds, and as
    /// `vdpbf16ps` reads its operands), so stored values mean the same to every body.
    public static func flushingSubnormal(bfloat16 bits: UInt16) -> UInt16 {
        bits & 0x7f80 == 0 ? bits & 0x8000 : bits
    }
}

/// One weight matrix [rows, columns] in a reduced precision (`Precision.bf16`, `.fp16` or
/// `.int8`), in `state_dict` row order. What a reduced-precision model holds instead of the
/// float32 tensor; backends derive their packed forms from it (and cache them in `derived`).
///
/// Storage: int8 — `int8Values` [rows·columns] row-major and `scales` [rows] (value = q · scale);
/// bf16 and fp16 — `halfBits` [rows·columns], the 16-bit patterns.
public final class ReducedMatrix: @unchecked Sendable {
    public let precision: Precision
    public let rows: Int
    public let columns: Int
    /// int8 only: the quantized values, row-major.
    public let int8Values: [Int8]
    /// int8 only: one positive finite scale per row.
    public let scales: [Float]
    /// bf16 and fp16 only: the 16-bit patterns, row-major.
    public let halfBits: [UInt16]

    /// Backends' derived forms (packed panels), by a key of the backend's choosing.
    private let derivedForms = Mutex<[String: AnyObject]>([:])

    /// Quantizes or rounds a float32 matrix [rows, columns] (`name` is for errors).
    ///
    /// int8: per row, `Int8Quantization.quantize` (a row of zeros stores scale 1, so every
    /// stored scale is positive). Throws for a NaN or infinite weight under int8 (it has no
    /// int8 form), and for a finite weight beyond ±65504 under fp16 (it would become infinite).
    public init(quantizing tensor: Tensor, to precision: Precision, name: String) throws {
        guard precision.isReduced else {
            throw LSTMError.invalidArgument("ReducedMatrix holds bf16, fp16 or int8 weights, not \(precision)")
        }
        guard tensor.shape.count == 2 else {
            throw LSTMError.invalidArgument("'\(name)' must be a matrix to quantize, got shape \(tensor.shape)")
        }
        let (rows, columns) = (tensor.shape[0], tensor.shape[1])
        if precision == .int8 { try Self.requireInt8Width(columns, name: name) }
        (self.precision, self.rows, self.columns) = (precision, rows, columns)
        switch precision {
        case .int8:
            var values: [Int8] = []
            var scales: [Float] = []
            values.reserveCapacity(tensor.count)
            scales.reserveCapacity(rows)
            try tensor.scalars.withUnsafeBufferPointer { all in
                for r in 0..<rows {
                    let row = UnsafeBufferPointer(rebasing: all[(r * columns)..<((r + 1) * columns)])
                    let (q, scale) = Int8Quantization.quantize(row)
                    guard !scale.isNaN else {
                        let c = row.firstIndex { !$0.isFinite } ?? 0
                        throw LSTMError.invalidArgument(
                            "'\(name)'[\(r), \(c)] is \(row[c]): int8 has no form for NaN or infinite weights; "
                                + "keep this model in fp32, bf16 or fp16")
                    }
                    values += q
                    scales.append(scale > 0 ? scale : 1)
                }
            }
            (int8Values, self.scales, halfBits) = (values, scales, [])
        case .bf16:
            (int8Values, scales, halfBits) = ([], [], tensor.scalars.map(HalfPrecision.bfloat16))
        case .fp16:
            if let index = tensor.scalars.firstIndex(where: { $0.isFinite && abs($0) > HalfPrecision.largestHalf }) {
                throw LSTMError.invalidArgument(
                    "'\(name)'[\(index / max(columns, 1)), \(index % max(columns, 1))] = \(tensor.scalars[index]) "
                        + "is beyond fp16's range (±65504) and would become infinite; keep this model in fp32 or bf16")
            }
            (int8Values, scales, halfBits) = ([], [], tensor.scalars.map(HalfPrecision.half))
        case .fp32:
            fatalError("unreachable")
        }
    }

    /// An int8 matrix from stored values and scales, checked: `values` [rows·columns], `scales`
    /// [rows], every scale positive and finite (`name` and `source` are for errors).
    public init(int8 values: [Int8], scales: [Float], rows: Int, columns: Int, name: String, source: String) throws {
        guard rows >= 0, columns >= 0, values.count == rows * columns else {
            throw LSTMError.corruptFile(
                path: source, reason: "'\(name)' holds \(values.count) int8 values, expected \(rows)·\(columns)")
        }
        guard scales.count == rows else {
            throw LSTMError.corruptFile(
                path: source, reason: "'\(name)' has \(scales.count) scales, expected one per row (\(rows))")
        }
        try Self.requireInt8Width(columns, name: "\(source): '\(name)'")
        if let r = scales.firstIndex(where: { !($0.isFinite && $0 > 0) }) {
            throw LSTMError.corruptFile(
                path: source,
                reason: "'\(name)' row \(r) has scale \(scales[r]): every scale must be a positive finite number")
        }
        (precision, self.rows, self.columns, int8Values, self.scales, halfBits) = (
            .int8, rows, columns, values, scales, []
        )
    }

    /// A bf16 or fp16 matrix from stored 16-bit patterns [rows·columns].
    public init(
        halfBits bits: [UInt16], precision: Precision, rows: Int, columns: Int, name: String, source: String
    )
        throws
    {
        guard precision == .bf16 || precision == .fp16 else {
            throw LSTMError.invalidArgument("16-bit patterns make a bf16 or fp16 matrix, not \(precision)")
        }
        guard rows >= 0, columns >= 0, bits.count == rows * columns else {
            throw LSTMError.corruptFile(
                path: source, reason: "'\(name)' holds \(bits.count) values, expected \(rows)·\(columns)")
        }
        // Subnormal bf16 values (PyTorch keeps them) become ±0, as this precision's rule makes them.
        let stored = precision == .bf16 ? bits.map { HalfPrecision.flushingSubnormal(bfloat16: $0) } : bits
        (self.precision, self.rows, self.columns, int8Values, scales, halfBits) = (
            precision, rows, columns, [], [], stored
        )
    }

    /// The widest int8 matrix (its columns, the product's k): `LSTM_S8_MAX_K` of the kernels,
    /// up to which every int32 sum fits.
    public static let maximumInt8Width = 65536

    static func requireInt8Width(_ columns: Int, name: String) throws {
        guard columns <= maximumInt8Width else {
            throw LSTMError.invalidArgument(
                "\(name) is \(columns) wide; int8 products are exact up to \(maximumInt8Width) inputs (their int32 sums "
                    + "could overflow beyond): keep this model in bf16, fp16 or fp32")
        }
    }

    /// [rows, columns].
    public var shape: [Int] { [rows, columns] }

    /// The weight at (row, column) as float32 (exact: q·scale rounded once for int8).
    public func value(row r: Int, column c: Int) -> Float {
        let i = r * columns + c
        switch precision {
        case .int8: return Float(int8Values[i]) * scales[r]
        case .bf16: return HalfPrecision.float(bfloat16: halfBits[i])
        case .fp16: return HalfPrecision.float(half: halfBits[i])
        case .fp32: fatalError("unreachable")
        }
    }

    /// The matrix widened to float32 [rows, columns]: what `weights()` of a reduced model returns.
    public func dequantized() -> Tensor {
        var scalars = [Float](repeating: 0, count: rows * columns)
        for r in 0..<rows { for c in 0..<columns { scalars[r * columns + c] = value(row: r, column: c) } }
        return try! Tensor(shape: [rows, columns], scalars: scalars)
    }

    /// A backend's derived form under `key`, made by `make` on first use and kept.
    public func derived<T: AnyObject>(_ key: String, _ make: () -> T) -> T {
        derivedForms.withLock { forms in
            if let form = forms[key] as? T { return form }
            let form = make()
            forms[key] = form
            return form
        }
    }
}

/// The reduced matrices of one layer and direction (what `DirectionWeights.reduced` holds).
public struct ReducedDirectionMatrices {
    /// `weight_ih` [G·H, In], `weight_hh` [G·H, Hout], `weight_hr` [P, H] (nil without projection).
    public var input: ReducedMatrix
    public var recurrent: ReducedMatrix
    public var projection: ReducedMatrix?
    public var precision: Precision { input.precision }

    public init(input: ReducedMatrix, recurrent: ReducedMatrix, projection: ReducedMatrix?) {
        (self.input, self.recurrent, self.projection) = (input, recurrent, projection)
    }
}
