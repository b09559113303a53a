import LSTMCore

/// One sentence pair for training a `Seq2Seq` with `fit`: the source's ids (in 0..<Vs, not
/// empty) and the target's (in 0..<Vt, without `<bos>` and `<eos>`: the model adds them).
public struct TranslationPair: Equatable, Sendable {
    public var source: [Int]
    public var target: [Int]
    public init(source: [Int], target: [Int]) {
        self.source = source
        self.target = target
    }
}

extension Seq2Seq: Trainable {
    /// The fraction of target tokens (and `<eos>`) whose most likely id under teacher forcing
    /// is the right one.
    public var metric: MetricKind { MetricKind(name: "token_accuracy", higherIsBetter: true) }

    /// The longer side: pairs batched together have sources and targets of similar length.
    public func length(of example: TranslationPair) -> Int { max(example.source.count, example.target.count) }

    /// A non-empty source; every id inside its vocabulary.
    public func check(_ example: TranslationPair, position: String) throws {
        guard !example.source.isEmpty else {
            throw LSTMError.invalidArgument("\(position): the source is empty (every pair needs a source token)")
        }
        let c = configuration
        if let bad = example.source.first(where: { $0 < 0 || $0 >= c.sourceVocabularySize }) {
            throw LSTMError.invalidArgument(
                "\(position): source id \(bad) is outside the source vocabulary's 0..<\(c.sourceVocabularySize)")
        }
        if let bad = example.target.first(where: { $0 < 0 || $0 >= c.targetVocabularySize }) {
            throw LSTMError.invalidArgument(
                "\(position): target id \(bad) is outside the target vocabulary's 0..<\(c.targetVocabularySize)")
        }
    }

    /// The teacher-forced loss over the target tokens and `<eos>`, and in training the backward.
    public func run(_ batch: [TranslationPair], training: Bool) throws -> BatchOutcome {
        guard !batch.isEmpty else { return .zero }
        let value = try loss(sources: batch.map(\.source), targets: batch.map(\.target), training: training)
        if training { try backward() }
        return BatchOutcome(
            lossSum: Double(value.loss) * Double(value.tokens), count: value.tokens,
            metricSum: Double(value.correct ?? 0), metricCount: value.tokens)
    }

    /// The dropout generators of the embeddings and of both LSTMs, in that order.
    public var randomStates: [UInt64] {
        get { [sourceDropout, targetDropout].flatMap(\.randomStates) + encoder.randomStates + decoder.randomStates }
        set {
            precondition(newValue.count == 4, "Seq2Seq.randomStates takes 4 states, got \(newValue.count)")
            sourceDropout.randomStates = [newValue[0]]
            targetDropout.randomStates = [newValue[1]]
            encoder.randomStates = [newValue[2]]
            decoder.randomStates = [newValue[3]]
        }
    }

    /// The model file with `metadata` (`save(to:extraMetadata:)`).
    public func save(to path: String) throws { try save(to: path, extraMetadata: nil) }
}
