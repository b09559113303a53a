@_spi(Backend) import LSTMCore

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

/// `Linear` as a model layer: rows [N, in] → rows [N, out], or per step on a sequence
/// [T, B, in] → [T, B, out] with the same lengths (a per-step head for tagging; padded steps
/// hold the bias, and the losses skip them).
extension Linear: Layer {
    /// A linear layer for a model: weight [out, in] and bias [out] drawn U(−1/√in, 1/√in) from
    /// `seed`, named "weight" and "bias".
    public convenience init(backend: Backend, inputSize: Int, outputSize: Int, seed: UInt64) throws {
        var generator = SeededGenerator(seed: seed)
        try self.init(
            backend: backend, inputSize: inputSize, outputSize: outputSize, name: "", generator: &generator)
    }

    /// [weight, bias].
    public var parameters: [Parameter<Backend.Buffer>] { [weight, bias] }

    /// y = x·Wᵀ + b on rows [N, in] or on every step of a sequence [T, B, in].
    /// - Throws: `LSTMError` for token ids or a width other than `inputSize`.
    public func forward(_ input: LayerValue<Backend>, training: Bool) throws -> LayerValue<Backend> {
        let (x, rows) = try input.featureRows(for: "Linear", features: inputSize)
        savedInput = training ? input : nil
        return input.replacing(try forward(MatrixView(x, rowStride: inputSize), rows: rows), features: outputSize)
    }

    /// Sets the weight and bias gradients from dL/dy (like the output); returns dL/dx (like the input).
    public func backward(_ outputGradient: Backend.Buffer) throws -> Backend.Buffer? {
        guard let input = savedInput else { throw backwardBeforeForward("Linear") }
        let (x, rows) = try input.featureRows(for: "Linear", features: inputSize)
        return try backward(MatrixView(x, rowStride: inputSize), rows: rows, outputGradient: outputGradient)
    }
}
