import Foundation

/// A dense row-major float32 array on the host: the exchange format of the API.
///
/// Shapes follow the project's letters: T steps, B batch, I input, H hidden,
/// P projection, L layers, D directions (see README).
public struct Tensor: Equatable, Sendable, CustomStringConvertible {
    /// Extent of each dimension, outermost first.
    public var shape: [Int]
    /// `shape.product` values, row-major.
    public var scalars: [Float]

    /// A tensor of the given shape holding `scalars`; throws when the counts disagree.
    public init(shape: [Int], scalars: [Float]) throws {
        guard shape.allSatisfy({ $0 >= 0 }) else {
            throw LSTMError.invalidArgument("negative dimension in shape \(shape)")
        }
        guard shape.reduce(1, *) == scalars.count else {
            throw LSTMError.invalidArgument("shape \(shape) needs \(shape.reduce(1, *)) values, got \(scalars.count)")
        }
        self.shape = shape
        self.scalars = scalars
    }

    /// A tensor of zeros.
    public init(zeros shape: [Int]) {
        self.shape = shape
        self.scalars = [Float](repeating: 0, count: shape.reduce(1, *))
    }

    /// Values drawn uniformly from [low, high) with a seeded generator.
    public init(uniform shape: [Int], low: Float = -1, high: Float = 1, generator: inout SeededGenerator) {
        self.shape = shape
        self.scalars = (0..<shape.reduce(1, *)).map { _ in generator.nextFloat(in: low..<high) }
    }

    /// Number of values.
    public var count: Int { scalars.count }

    public var description: String { "Tensor\(shape)" }

    /// Swaps the two outer dimensions: [A, C, rest...] → [C, A, rest...]
    /// (sequence-major ↔ batch-first).
    public func swappingOuterDimensions() -> Tensor {
        precondition(shape.count >= 2)
        let a = shape[0], c = shape[1]
        let inner = shape.dropFirst(2).reduce(1, *)
        var out = [Float](repeating: 0, count: scalars.count)
        scalars.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for i in 0..<a {
                    for j in 0..<c {
                        let from = (i * c + j) * inner, to = (j * a + i) * inner
                        for k in 0..<inner { dst[to + k] = src[from + k] }
                    }
                }
            }
        }
        var newShape = shape
        newShape.swapAt(0, 1)
        return try! Tensor(shape: newShape, scalars: out)
    }

    /// Largest |self - other| over all elements (shapes must match).
    public func maxAbsDifference(_ other: Tensor) -> Float {
        precondition(shape == other.shape, "shapes differ: \(shape) vs \(other.shape)")
        var worst: Float = 0
        for (a, b) in zip(scalars, other.scalars) {
            let d = abs(a - b)
            if d > worst || d.isNaN { worst = d }
        }
        return worst
    }
}

/// Requires `tensor.shape == expected`, naming `what` in the error.
package func checkShape(_ tensor: Tensor, _ expected: [Int], _ what: String) throws {
    guard tensor.shape == expected else {
        throw LSTMError.shapeMismatch(what: what, expected: expected, got: tensor.shape)
    }
}
