/// Token ids to vectors: `weight` [V, E]; forward gathers rows, backward scatters their
/// gradients back (PyTorch's `nn.Embedding`, initialised N(0, 1)).
public final class Embedding<Backend: ModelOps> {
    public let backend: Backend
    public let vocabularySize: Int  // V
    public let dimension: Int  // E
    public let weight: Parameter<Backend.Buffer>
    /// The last training forward's input, for the `Layer` backward (nil after an inference forward).
    var savedInput: LayerValue<Backend>?

    public init(
        backend: Backend, vocabularySize: Int, dimension: Int, name: String = "embedding.weight",
        generator: inout SeededGenerator
    ) throws {
        self.backend = backend
        self.vocabularySize = vocabularySize
        self.dimension = dimension
        let buffer = try backend.makeBuffer(count: vocabularySize * dimension)
        try backend.write(normalValues(vocabularySize * dimension, generator: &generator), to: buffer, offset: 0)
        weight = Parameter(name: name, shape: [vocabularySize, dimension], value: buffer)
    }

    /// Looks the ids up.
    /// - Parameters: ids [N] (each in 0..<V), `count` N.
    /// - Returns: [N, E] vectors, a new buffer.
    public func forward(_ ids: Backend.Indices, count: Int) throws -> Backend.Buffer {
        let out = try backend.makeScratchBuffer(count: count * dimension)
        try backend.gatherRows(weight.value, width: dimension, indices: ids, count: count, into: out)
        return out
    }

    /// Sets `weight.gradient` [V, E] from dL/d(output) [N, E] (rows of repeated ids add up).
    public func backward(_ ids: Backend.Indices, count: Int, outputGradient: Backend.Buffer) throws {
        let gradient = try backend.makeBuffer(count: vocabularySize * dimension)
        try backend.scatterAddRows(
            outputGradient, width: dimension, indices: ids, count: count, rows: vocabularySize, into: gradient)
        weight.gradient = gradient
    }
}

/// y = x·Wᵀ + b with `weight` [out, in] and `bias` [out] (PyTorch's `nn.Linear`, initialised
/// U(−1/√in, 1/√in)).
public final class Linear<Backend: ModelOps> {
    public let backend: Backend
    public let inputSize: Int
    public let outputSize: Int
    public let weight: Parameter<Backend.Buffer>
    public let bias: Parameter<Backend.Buffer>
    /// The last training forward's input, for the `Layer` backward (nil after an inference forward).
    var savedInput: LayerValue<Backend>?

    /// `name` prefixes the parameter names ("head" gives "head.weight", "head.bias"; "" gives
    /// "weight", "bias", the names inside a model).
    public init(
        backend: Backend, inputSize: Int, outputSize: Int, name: String, generator: inout SeededGenerator
    ) throws {
        self.backend = backend
        self.inputSize = inputSize
        self.outputSize = outputSize
        let bound = 1 / Float(inputSize).squareRoot()
        let w = try backend.makeBuffer(count: outputSize * inputSize), b = try backend.makeBuffer(count: outputSize)
        try backend.write(
            Tensor(uniform: [outputSize * inputSize], low: -bound, high: bound, generator: &generator).scalars, to: w,
            offset: 0)
        try backend.write(
            Tensor(uniform: [outputSize], low: -bound, high: bound, generator: &generator).scalars, to: b, offset: 0)
        let prefix = name.isEmpty ? "" : name + "."
        weight = Parameter(name: prefix + "weight", shape: [outputSize, inputSize], value: w)
        bias = Parameter(name: prefix + "bias", shape: [outputSize], value: b)
    }

    /// y = x·Wᵀ + b.
    /// - Parameters: x [N, in] (a view: any row stride), `rows` N.
    /// - Returns: y [N, out], a new buffer.
    public func forward(_ x: MatrixView<Backend.Buffer>, rows: Int) throws -> Backend.Buffer {
        let y = try backend.makeScratchBuffer(count: rows * outputSize)
        try backend.gemm(
            transposeA: false, transposeB: true, m: rows, n: outputSize, k: inputSize, alpha: 1, a: x,
            b: MatrixView(weight.value, rowStride: inputSize), beta: 0, c: MatrixView(y, rowStride: outputSize))
        try backend.addRowVector(bias.value, to: y, rows: rows, width: outputSize)
        return y
    }

    /// Sets the weight [out, in] and bias [out] gradients from dL/dy [N, out].
    /// - Returns: dL/dx [N, in] when `needInputGradient`, else nil.
    @discardableResult
    public func backward(
        _ x: MatrixView<Backend.Buffer>, rows: Int, outputGradient: Backend.Buffer,
        needInputGradient: Bool = true
    ) throws -> Backend.Buffer? {
        let dy = MatrixView(outputGradient, rowStride: outputSize)
        let dw = try backend.makeScratchBuffer(count: outputSize * inputSize),
            db = try backend.makeScratchBuffer(count: outputSize)
        try backend.gemm(
            transposeA: true, transposeB: false, m: outputSize, n: inputSize, k: rows, alpha: 1, a: dy, b: x,
            beta: 0, c: MatrixView(dw, rowStride: inputSize))
        try backend.columnSums(outputGradient, rows: rows, width: outputSize, into: db)
        weight.gradient = dw
        bias.gradient = db
        guard needInputGradient else { return nil }
        let dx = try backend.makeScratchBuffer(count: rows * inputSize)
        try backend.gemm(
            transposeA: false, transposeB: false, m: rows, n: inputSize, k: outputSize, alpha: 1, a: dy,
            b: MatrixView(weight.value, rowStride: inputSize), beta: 0, c: MatrixView(dx, rowStride: inputSize))
        return dx
    }
}
