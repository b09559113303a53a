/// An LSTM as a model layer: a sequence [T, B, I] with lengths → [T, B, D·Hout] with the same
/// lengths, over `LSTMStack` with any `LSTMConfiguration` (layers, directions, projection,
/// dropout between layers, cell options) except batch-first: inside a model sequences are
/// [T, B, ·]. Lengths go to the engine, so padded steps are never computed (their outputs are 0).
/// Parameters carry `torch.nn.LSTM`'s names ("weight_ih_l0", "bias_hh_l0_reverse", …).
public final class LSTMLayer<Backend: ModelOps>: Layer {
    public let stack: LSTMStack<Backend>
    public let parameters: [Parameter<Backend.Buffer>]
    /// The `state_dict` name of each parameter (a container renames `parameters`).
    private let weightNames: [String]
    /// Draws each training forward's dropout seed (the same on every backend for one seed).
    private var dropoutSeeds: SeededGenerator
    private var saved: LSTMStackForward<Backend>?

    public var configuration: LSTMConfiguration { stack.configuration }

    /// A layer with PyTorch's initialisation U(−1/√H, 1/√H) drawn from `seed`.
    /// - Throws: `LSTMError` for an invalid or batch-first configuration.
    public convenience init(_ configuration: LSTMConfiguration, backend: Backend, seed: UInt64) throws {
        guard !configuration.batchFirst else {
            throw LSTMError.invalidConfiguration("inside a model sequences are [T, B, ·]: use batchFirst: false")
        }
        try configuration.validate()
        try self.init(
            stack: LSTMStack(
                configuration: configuration, backend: backend,
                weights: LSTM.initialWeights(configuration, seed: seed)),
            seed: seed)
    }

    /// A layer over an existing stack (sharing its weights); `seed` seeds its dropout.
    public init(stack: LSTMStack<Backend>, seed: UInt64 = 0) throws {
        guard !stack.configuration.batchFirst else {
            throw LSTMError.invalidConfiguration("inside a model sequences are [T, B, ·]: use batchFirst: false")
        }
        self.stack = stack
        parameters = stack.namedParameters(prefix: "")
        weightNames = parameters.map(\.name)
        dropoutSeeds = SeededGenerator(seed: seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    /// A sequence [T, B, I] → [T, B, D·Hout]; with `training` and dropout > 0 the layers but the
    /// last are dropped out with a fresh seed from the layer's generator.
    /// - Throws: `LSTMError` for anything but a sequence of width I.
    public func forward(_ input: LayerValue<Backend>, training: Bool) throws -> LayerValue<Backend> {
        let x = try input.sequenceParts(for: "LSTM", features: configuration.inputSize)
        let allValid = x.lengths.allSatisfy { $0 == x.steps }
        let result = try stack.forward(
            input: x.buffer, sequenceLength: x.steps, batch: x.batch, lengths: allValid ? nil : x.lengths,
            saveActivations: training,
            dropoutSeed: training && configuration.dropout > 0 ? dropoutSeeds.next() : nil)
        saved = training ? result : nil
        return input.replacing(result.output, features: stack.outputWidth)
    }

    /// Sets every weight's gradient from dL/d(output) [T, B, D·Hout]; returns dL/d(input) [T, B, I].
    public func backward(_ outputGradient: Backend.Buffer) throws -> Backend.Buffer? {
        guard let saved else { throw backwardBeforeForward("LSTM") }
        let gradients = try stack.backward(saved, outputGradient: outputGradient)
        for (parameter, name) in zip(parameters, weightNames) { parameter.gradient = gradients.weights[name] }
        return gradients.input
    }
}
