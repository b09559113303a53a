import Foundation
import LSTMCore

// The reference's products in a reduced precision (`Precision`), in plain loops: the same
// rounding rules as the fast kernels (`Int8Quantization`, `HalfPrecision`, both in LSTMCore),
// integer sums exact, everything else in Double. Shape letters as in ReferenceDirection.swift.

extension Reference {
    /// An activation vector (x, h or o·tanh c of one sequence at one step) made ready to
    /// multiply weights in `precision`:
    /// - fp32, fp16: the values as they are (fp16 rounds only the weights);
    /// - bf16: each value rounded to bfloat16 (from its float32 value, as the fast path holds it);
    /// - int8: quantized as one row (`Int8Quantization.quantize` of the float32 values).
    struct Activation {
        var values: Vector
        var quantized: [Int8] = []
        var scale: Double = 1

        init(_ vector: Vector, precision: Precision) {
            switch precision {
            case .fp32, .fp16:
                values = vector
            case .bf16:
                values = vector.map { Double(HalfPrecision.float(bfloat16: HalfPrecision.bfloat16(Float($0)))) }
            case .int8:
                values = []
                let (q, scale) = Int8Quantization.quantize(vector.map { Float($0) })
                (quantized, self.scale) = (q, Double(scale))
            }
        }
    }

    /// Row `row` of a weight matrix times an activation: Σ_k w[row][k]·a[k] in Double, where `w`
    /// holds the weights' values in their precision (for int8: q·scale), or, for int8, the exact
    /// integer sum Σ q_w·q_a times both scales.
    static func product(_ w: Matrix, _ reduced: ReducedMatrix?, row: Int, _ a: Activation) -> Double {
        if let reduced, reduced.precision == .int8 {
            let k = reduced.columns
            var sum = 0
            for j in 0..<k { sum += Int(reduced.int8Values[row * k + j]) * Int(a.quantized[j]) }
            return Double(sum) * a.scale * Double(reduced.scales[row])
        }
        var sum = 0.0
        for j in 0..<a.values.count { sum += w[row][j] * a.values[j] }
        return sum
    }
}
