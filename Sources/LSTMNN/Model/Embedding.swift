import LSTMCore

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

/// `Embedding` as a model layer: token ids [T, B] → a sequence [T, B, E] with the same lengths.
extension Embedding: Layer {
    /// An embedding for a model: `weight` [V, E] drawn N(0, 1) from `seed`, named "weight".
    public convenience init(backend: Backend, vocabularySize: Int, dimension: Int, seed: UInt64) throws {
        var generator = SeededGenerator(seed: seed)
        try self.init(
            backend: backend, vocabularySize: vocabularySize, dimension: dimension, name: "weight",
            generator: &generator)
    }

    /// [weight].
    public var parameters: [Parameter<Backend.Buffer>] { [weight] }

    /// Token ids [T, B] (lengths [B]) → a sequence [T, B, E] (the same lengths).
    /// - Throws: `LSTMError` for anything but token ids, or an id outside 0..<V (padded steps too).
    public func forward(_ input: LayerValue<Backend>, training: Bool) throws -> LayerValue<Backend> {
        guard case let .tokens(ids, steps, batch, _) = input else {
            throw LSTMError.invalidArgument("Embedding expects token ids [T, B], got \(input.summary)")
        }
        if let (i, id) = backend.indexValues(ids).prefix(steps * batch).enumerated().first(where: {
            !(0..<vocabularySize).contains($0.element)
        }) {
            throw LSTMError.invalidArgument(
                "Embedding: token id \(id) at t = \(i / batch), b = \(i % batch) is outside 0..<\(vocabularySize)"
                    + " (V = \(vocabularySize))")
        }
        savedInput = training ? input : nil
        return input.replacing(try forward(ids, count: steps * batch), features: dimension)
    }

    /// Sets `weight.gradient` [V, E] from dL/d(output) [T, B, E]; returns nil (ids have no gradient).
    public func backward(_ outputGradient: Backend.Buffer) throws -> Backend.Buffer? {
        guard case let .tokens(ids, steps, batch, _) = savedInput else { throw backwardBeforeForward("Embedding") }
        try backward(ids, count: steps * batch, outputGradient: outputGradient)
        return nil
    }
}
