import LSTMCore

/// Dropout between layers (PyTorch's `nn.Dropout`): in training each element is zeroed with
/// probability p and the rest scaled by 1/(1 − p); in inference the value passes unchanged.
/// Masks come from `ModelOps.dropoutMask` with a fresh seed per training forward drawn from
/// the layer's seed, so both backends drop the same elements. Sequences [T, B, F] or rows [N, F].
public final class Dropout<Backend: ModelOps>: Layer {
    public let backend: Backend
    public let probability: Float
    var seeds: SeededGenerator
    /// The last training forward's mask (nil when nothing was dropped) and its size.
    private var saved: (mask: Backend.Buffer?, count: Int)?

    /// - Throws: `LSTMError` unless 0 ≤ `probability` < 1.
    public init(backend: Backend, probability: Float, seed: UInt64) throws {
        guard probability >= 0, probability < 1 else {
            throw LSTMError.invalidArgument("dropout probability \(probability) is outside [0, 1)")
        }
        self.backend = backend
        self.probability = probability
        seeds = SeededGenerator(seed: seed)
    }

    /// None.
    public var parameters: [Parameter<Backend.Buffer>] { [] }

    /// The input with dropout applied (training) or as is (inference), same shape and lengths.
    /// - Throws: `LSTMError` for token ids.
    public func forward(_ input: LayerValue<Backend>, training: Bool) throws -> LayerValue<Backend> {
        guard let x = input.buffer else {
            throw LSTMError.invalidArgument("Dropout expects a sequence [T, B, F] or rows [N, F], got \(input.summary)")
        }
        let count = input.elementCount
        guard training, probability > 0 else {
            saved = training ? (nil, count) : nil
            return input
        }
        let mask = try backend.makeScratchBuffer(count: count), y = try backend.makeScratchBuffer(count: count)
        try backend.dropoutMask(
            count: count, probability: probability, seed: seeds.next(), layout: .whole(batch: 1, width: count),
            into: mask)
        try backend.multiply(x, mask, into: y, count: count)
        saved = (mask, count)
        return input.replacing(y, features: input.shape.last!)
    }

    /// dL/d(input) = mask · dL/d(output).
    public func backward(_ outputGradient: Backend.Buffer) throws -> Backend.Buffer? {
        guard let saved else { throw backwardBeforeForward("Dropout") }
        guard let mask = saved.mask else { return outputGradient }
        let dx = try backend.makeScratchBuffer(count: saved.count)
        try backend.multiply(outputGradient, mask, into: dx, count: saved.count)
        return dx
    }
}
