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
