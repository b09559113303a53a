import LSTMCore

/// Layers chained in order (PyTorch's `nn.Sequential`): `forward` runs them first to last,
/// `backward` runs every layer's backward last to first, so a training step is
///
/// ```swift
/// let model = try Sequential<CPUBackend>([embedding, lstm, pooling, head])
/// let logits = try model.forward(batch, training: true)
/// let loss = try CrossEntropyLoss(backend: cpu)(logits, targets: labels)
/// try model.backward(loss.gradient)
/// try model.step(optimizer, learningRate: 1e-3, maxGradientNorm: 1)
/// ```
///
/// Parameter names are prefixed with the layer's position ("0.weight", "1.weight_ih_l0", …;
/// "2.0.weight" for a nested container), renaming the layers' parameters: a layer belongs to
/// one container.
public final class Sequential<Backend: ModelOps>: Layer {
    public let layers: [any Layer<Backend>]
    /// Every layer's parameters, in order, named by position.
    public let parameters: [Parameter<Backend.Buffer>]

    /// - Throws: `LSTMError` when the list is empty or holds one layer twice.
    public init(_ layers: [any Layer<Backend>]) throws {
        guard !layers.isEmpty else { throw LSTMError.invalidArgument("Sequential needs at least one layer") }
        guard Set(layers.map { ObjectIdentifier($0) }).count == layers.count else {
            throw LSTMError.invalidArgument("Sequential was given one layer twice (share weights explicitly instead)")
        }
        for (position, layer) in layers.enumerated() {
            for parameter in layer.parameters { parameter.name = "\(position).\(parameter.name)" }
        }
        self.layers = layers
        parameters = layers.flatMap { $0.parameters }
    }

    /// Runs every layer in order; with `training`, each keeps what its backward needs.
    /// - Throws: the first layer's error (naming what it expected and what it got).
    public func forward(_ input: LayerValue<Backend>, training: Bool) throws -> LayerValue<Backend> {
        try layers.reduce(input) { value, layer in try layer.forward(value, training: training) }
    }

    /// Runs every layer's backward in reverse from dL/d(output) (shaped like the last forward's
    /// output), setting every parameter's gradient. Returns dL/d(input) (nil for token ids).
    /// - Throws: `LSTMError` when the last forward was not a training one.
    @discardableResult
    public func backward(_ outputGradient: Backend.Buffer) throws -> Backend.Buffer? {
        var gradient: Backend.Buffer? = outputGradient
        for (position, layer) in layers.enumerated().reversed() {
            guard let current = gradient else {
                throw LSTMError.invalidArgument(
                    "layer \(position + 1) of the Sequential passed no input gradient back (its input was token ids),"
                        + " but layer \(position) comes before it")
            }
            gradient = try layer.backward(current)
        }
        return gradient
    }

    /// One optimiser step over every parameter: clips the gradients to `maxGradientNorm` by
    /// their global norm when given (PyTorch's `clip_grad_norm_`), then updates.
    /// - Returns: the global gradient norm before clipping when clipping, else nil.
    @discardableResult
    public func step(
        _ optimizer: Optimizer<Backend>, learningRate: Float, maxGradientNorm: Float? = nil
    ) throws
        -> Float?
    {
        let norm = try maxGradientNorm.map { try optimizer.clipGradients(parameters, maxNorm: $0) }
        try optimizer.update(parameters, learningRate: learningRate)
        return norm
    }

    /// `step` at the rate `schedule` gives the step about to be taken (`optimizer.step + 1`,
    /// 1-based as `LearningRateSchedule.rate` counts), after `warmup` linear warm-up steps.
    @discardableResult
    public func step(
        _ optimizer: Optimizer<Backend>, baseLearningRate: Float, schedule: LearningRateSchedule, warmup: Int = 0,
        maxGradientNorm: Float? = nil
    ) throws -> Float? {
        try step(
            optimizer, learningRate: schedule.rate(base: baseLearningRate, step: optimizer.step + 1, warmup: warmup),
            maxGradientNorm: maxGradientNorm)
    }
}
