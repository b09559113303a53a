import LSTMCore

/// A `Sequential` with the loss it is trained with: what `fit` trains for classification,
/// tagging, language modelling and forecasting. `Sequential.fit` builds one; build one
/// yourself to call `fit(_:training:validation:settings:callbacks:)` or `run` directly.
///
/// A batch of `LabelledSequence`s becomes ids [T, B] (or features [T, B, F]) with T the
/// batch's longest sequence and each sequence's length passed on, so padded steps are never
/// computed and never counted.
public final class SupervisedModel<Backend: ModelOps>: Trainable {
    public let model: Sequential<Backend>
    public let loss: FitLoss
    public let backend: Backend

    /// - Throws: `LSTMError` when the model's first layer cannot take sequences (a pooling).
    public init(_ model: Sequential<Backend>, loss: FitLoss) throws {
        self.model = model
        self.loss = loss
        guard let backend = model.backend else {
            throw LSTMError.invalidArgument("the model has no layer that names its backend")
        }
        self.backend = backend
    }

    public var parameters: [Parameter<Backend.Buffer>] { model.parameters }
    public var metric: MetricKind { loss.metric }
    public func length(of example: LabelledSequence) -> Int { example.length }

    public var randomStates: [UInt64] {
        get { model.randomStates }
        set { model.randomStates = newValue }
    }

    /// String entries `save` adds to the model file's metadata (a vocabulary, class names),
    /// so the one file is all an application needs to use the model again.
    public var metadata: [String: String] = [:]

    /// The whole model (`Sequential.save(to:metadata:)`) with `metadata`.
    public func save(to path: String) throws { try model.save(to: path, metadata: metadata) }

    /// Checks the input against the model's first layer (token ids in 0..<V for an `Embedding`,
    /// steps of the LSTM's or Linear's input width), the length (≥ 1), and the target against
    /// the loss (a class per step for per-step labels, every class in 0..<C where C is the last
    /// `Linear`'s output size, 0/1 labels for binary cross-entropy, values for MSE).
    public func check(_ example: LabelledSequence, position: String) throws {
        func bad(_ reason: String) -> LSTMError { .invalidArgument("\(position): \(reason)") }
        guard example.length > 0 else { throw bad("the sequence is empty (every example needs at least one step)") }
        switch (example.input, model.layers.first) {
        case let (.tokens(ids), embedding as Embedding<Backend>):
            if let wrong = ids.first(where: { $0 < 0 || $0 >= embedding.vocabularySize }) {
                throw bad("token id \(wrong) is outside the embedding's 0..<\(embedding.vocabularySize)")
            }
        case (.tokens, _):
            throw bad("the input is token ids but the model does not start with an Embedding")
        case let (.steps(values, width), first):
            guard width > 0, values.count % width == 0 else {
                throw bad("\(values.count) values do not make whole steps of width \(width)")
            }
            let expected: Int? =
                switch first {
                case let lstm as LSTMLayer<Backend>: lstm.configuration.inputSize
                case let linear as Linear<Backend>: linear.inputSize
                case is Embedding<Backend>: 0
                default: nil
                }
            if expected == 0 { throw bad("the model starts with an Embedding but the input is feature steps") }
            if let expected, expected != width {
                throw bad("steps have width \(width) but the model's first layer takes \(expected)")
            }
        }
        let classes = outputClasses
        func checkClass(_ c: Int, ignore: Int) throws {
            guard c != ignore else { return }
            if c < 0 { throw bad("class \(c) is negative") }
            if let classes, c >= classes {
                throw bad("class \(c) is outside the model's \(classes) outputs (0..<\(classes))")
            }
        }
        switch (loss, example.target) {
        case let (.crossEntropy, .labels(labels)) where labels.count != example.length:
            throw bad("\(labels.count) per-step labels for a sequence of \(example.length) steps")
        case let (.crossEntropy(ignore), .labels(labels)):
            for c in labels { try checkClass(c, ignore: ignore) }
        case let (.crossEntropy(ignore), .label(c)):
            try checkClass(c, ignore: ignore)
        case (.crossEntropy, .values):
            throw bad("cross-entropy needs class labels, the target is values")
        case let (.binaryCrossEntropy, .label(c)) where c != 0 && c != 1:
            throw bad("binary cross-entropy needs labels 0 or 1, got \(c)")
        case (.binaryCrossEntropy, .labels), (.meanSquaredError, .labels), (.meanSquaredError, .label):
            throw bad("\(loss.name) needs values (or 0/1 labels for binary cross-entropy) for the whole sequence")
        case let (_, .values(values)) where values.isEmpty:
            throw bad("the target has no values")
        default: break
        }
    }

    /// C: the output width of the model's last `Linear` (nil when it ends otherwise).
    var outputClasses: Int? { (model.layers.last { $0 is Linear<Backend> } as? Linear<Backend>)?.outputSize }

    /// Forward, loss, and with `training` the backward, over one batch.
    /// - Throws: `LSTMError` when the batch mixes kinds of input or target, widths differ, or
    ///   the model's output does not fit the targets (the loss says how).
    public func run(_ batch: [LabelledSequence], training: Bool) throws -> BatchOutcome {
        guard !batch.isEmpty else { return .zero }
        let x = try input(batch)
        let output = try model.forward(x, training: training)
        let outcome: BatchOutcome, gradient: Backend.Buffer
        switch loss {
        case let .crossEntropy(ignoreIndex):
            let targets = try classTargets(batch, ignoreIndex: ignoreIndex)
            let value = try CrossEntropyLoss(backend: backend, ignoreIndex: ignoreIndex)(output, targets: targets)
            let lengths = batch.map(\.length)
            let counted = targets.indices.filter { r in
                targets[r] != ignoreIndex
                    && (targets.count == batch.count || r / batch.count < lengths[r % batch.count])
            }.count
            // Metrics.accuracy is correct / counted in Float: × counted and rounded, the exact count.
            let correct =
                counted > 0
                ? (Double(try Metrics.accuracy(output, targets: targets, ignoreIndex: ignoreIndex, backend: backend))
                    * Double(counted)).rounded() : 0
            outcome = BatchOutcome(
                lossSum: Double(value.loss) * Double(counted), count: counted, metricSum: correct, metricCount: counted)
            gradient = value.gradient
        case .binaryCrossEntropy:
            let targets = try valueTargets(batch, allowLabels: true)
            let value = try BinaryCrossEntropyWithLogitsLoss(backend: backend)(output, targets: targets)
            let logits = try backend.read(output.buffer!, offset: 0, count: targets.count)
            let correct = zip(logits, targets).filter { ($0.0 > 0) == ($0.1 >= 0.5) }.count
            outcome = BatchOutcome(
                lossSum: Double(value.loss) * Double(targets.count), count: targets.count,
                metricSum: Double(correct), metricCount: targets.count)
            gradient = value.gradient
        case .meanSquaredError:
            let targets = try valueTargets(batch, allowLabels: false)
            let value = try MeanSquaredErrorLoss(backend: backend)(output, targets: targets)
            let mae = try Metrics.meanAbsoluteError(output, targets: targets, backend: backend)
            outcome = BatchOutcome(
                lossSum: Double(value.loss) * Double(targets.count), count: targets.count,
                metricSum: Double(mae) * Double(targets.count), metricCount: targets.count)
            gradient = value.gradient
        }
        if training { try model.backward(gradient) }
        return outcome
    }

    /// The model's output for `batch` (inference), e.g. logits rows [B, C] or forecasts [B, K].
    /// - Throws: `LSTMError` for an empty batch or examples of mixed kinds.
    public func predict(_ batch: [LabelledSequence]) throws -> LayerValue<Backend> {
        guard !batch.isEmpty else { throw LSTMError.invalidArgument("predict: the batch is empty") }
        return try model.forward(try input(batch), training: false)
    }

    /// Ids [T, B] (padding 0) or features [T, B, F] (padding 0) with each sequence's length.
    func input(_ batch: [LabelledSequence]) throws -> LayerValue<Backend> {
        let steps = batch.map(\.length).max()!, lengths = batch.map(\.length), b = batch.count
        switch batch[0].input {
        case .tokens:
            var ids = [Int](repeating: 0, count: steps * b)
            for (column, example) in batch.enumerated() {
                guard case let .tokens(sequence) = example.input else { throw mixed("inputs (token ids and steps)") }
                for (t, id) in sequence.enumerated() { ids[t * b + column] = id }
            }
            return try .tokens(ids: ids, steps: steps, batch: b, lengths: lengths, on: backend)
        case let .steps(_, width):
            var values = [Float](repeating: 0, count: steps * b * width)
            for (column, example) in batch.enumerated() {
                guard case let .steps(sequence, w) = example.input, w == width else {
                    throw mixed("inputs (token ids and steps, or steps of different widths)")
                }
                for t in 0..<(sequence.count / width) {
                    let to = (t * b + column) * width
                    values[to..<(to + width)] = sequence[(t * width)..<((t + 1) * width)]
                }
            }
            return try .sequence(values: values, steps: steps, batch: b, features: width, lengths: lengths, on: backend)
        }
    }

    /// Class targets: [B] for whole-sequence labels, [T·B] (element t·B + b, padding
    /// `ignoreIndex`) for per-step labels.
    func classTargets(_ batch: [LabelledSequence], ignoreIndex: Int) throws -> [Int] {
        if case .label = batch[0].target {
            return try batch.map { example in
                guard case let .label(c) = example.target else { throw mixed("targets (labels and per-step labels)") }
                return c
            }
        }
        let steps = batch.map(\.length).max()!, b = batch.count
        var targets = [Int](repeating: ignoreIndex, count: steps * b)
        for (column, example) in batch.enumerated() {
            guard case let .labels(labels) = example.target else { throw mixed("targets (labels and per-step labels)") }
            for (t, c) in labels.enumerated() { targets[t * b + column] = c }
        }
        return targets
    }

    /// Value targets [B·K] (each example's K values in turn); 0/1 labels as one value each when allowed.
    func valueTargets(_ batch: [LabelledSequence], allowLabels: Bool) throws -> [Float] {
        var targets: [Float] = [], width: Int?
        for example in batch {
            let values: [Float]
            switch example.target {
            case let .values(v): values = v
            case let .label(c) where allowLabels: values = [Float(c)]
            default: throw mixed("targets (\(loss.name) takes values)")
            }
            if let width, width != values.count { throw mixed("targets (\(width) and \(values.count) values)") }
            width = values.count
            targets += values
        }
        return targets
    }

    private func mixed(_ what: String) -> LSTMError {
        .invalidArgument("a batch mixes kinds of \(what): every example of a dataset must have the same kind")
    }
}
