import Foundation
import LSTMCore

// Shape letters in this file: B sentence pairs in a batch, S source steps (the longest source),
// T decoder steps (the longest target + 1), Vs / Vt the source / target vocabulary sizes,
// E the embedding size, H the hidden size, L the number of LSTM layers.

/// The architecture of a `Seq2Seq` encoder-decoder, as saved in its model file (JSON).
///
/// Token ids are vocabulary indices; the three special ids default to a vocabulary where
/// 0 is `<pad>`, 1 `<unk>`, 2 `<bos>` and 3 `<eos>`. `padId` fills the padded steps of a
/// batch (in both vocabularies; those steps are never computed), `bosId` starts every
/// decoder input and `eosId` ends every decoder target and stops decoding (target vocabulary).
public struct Seq2SeqConfiguration: Codable, Equatable, Sendable {
    /// Vs: source token ids are in 0..<Vs.
    public var sourceVocabularySize: Int
    /// Vt: target token ids (and the logits' width) are in 0..<Vt.
    public var targetVocabularySize: Int
    /// E: the width of both embeddings (the LSTMs' input size).
    public var embeddingSize: Int
    /// H: the hidden size of the encoder and of the decoder.
    public var hiddenSize: Int
    /// L: stacked layers of the encoder and of the decoder (the encoder's final (hn, cn),
    /// [L, B, H] each, is the decoder's (h0, c0)).
    public var numLayers: Int
    /// Dropout between stacked LSTM layers (`torch.nn.LSTM`'s `dropout`), in [0, 1).
    public var dropout: Float
    /// Dropout on both embeddings' outputs (`nn.Dropout` after each `nn.Embedding`), in [0, 1).
    public var embeddingDropout: Float
    public var padId: Int
    public var bosId: Int
    public var eosId: Int
    /// Luong dot attention over the encoder's outputs between the decoder and the output layer
    /// (`LuongAttention`, parameters "attention.weight" [H, 2H] and "attention.bias" [H]);
    /// false: the plain encoder-decoder. Absent in JSON: false.
    public var attention: Bool

    public init(
        sourceVocabularySize: Int, targetVocabularySize: Int, embeddingSize: Int, hiddenSize: Int,
        numLayers: Int = 1, dropout: Float = 0, embeddingDropout: Float = 0, padId: Int = 0, bosId: Int = 2,
        eosId: Int = 3, attention: Bool = false
    ) {
        self.sourceVocabularySize = sourceVocabularySize
        self.targetVocabularySize = targetVocabularySize
        self.embeddingSize = embeddingSize
        self.hiddenSize = hiddenSize
        self.numLayers = numLayers
        self.dropout = dropout
        self.embeddingDropout = embeddingDropout
        self.padId = padId
        self.bosId = bosId
        self.eosId = eosId
        self.attention = attention
    }

    private enum CodingKeys: String, CodingKey {
        case sourceVocabularySize, targetVocabularySize, embeddingSize, hiddenSize, numLayers, dropout
        case embeddingDropout, padId, bosId, eosId, attention
    }

    /// Decodes every field; `attention` may be absent (false).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            sourceVocabularySize: try c.decode(Int.self, forKey: .sourceVocabularySize),
            targetVocabularySize: try c.decode(Int.self, forKey: .targetVocabularySize),
            embeddingSize: try c.decode(Int.self, forKey: .embeddingSize),
            hiddenSize: try c.decode(Int.self, forKey: .hiddenSize),
            numLayers: try c.decode(Int.self, forKey: .numLayers),
            dropout: try c.decode(Float.self, forKey: .dropout),
            embeddingDropout: try c.decode(Float.self, forKey: .embeddingDropout),
            padId: try c.decode(Int.self, forKey: .padId), bosId: try c.decode(Int.self, forKey: .bosId),
            eosId: try c.decode(Int.self, forKey: .eosId),
            attention: try c.decodeIfPresent(Bool.self, forKey: .attention) ?? false)
    }

    /// Checks every setting.
    /// - Throws: `LSTMError.invalidConfiguration` naming the setting: a size outside
    ///   1...2²⁴ (L: 1...1024), weights whose element count overflows, a dropout outside
    ///   [0, 1), a special id outside its vocabulary (pad: both; bos, eos: the target one),
    ///   or special ids that are not all different.
    public func validate() throws {
        try SizeLimits.requireSize(sourceVocabularySize, "seq2seq sourceVocabularySize")
        try SizeLimits.requireSize(targetVocabularySize, "seq2seq targetVocabularySize")
        try SizeLimits.requireSize(embeddingSize, "seq2seq embeddingSize")
        try SizeLimits.requireSize(hiddenSize, "seq2seq hiddenSize")
        try SizeLimits.requireSize(numLayers, "seq2seq numLayers", limit: SizeLimits.maxLayers)
        for (value, name) in [(dropout, "dropout"), (embeddingDropout, "embeddingDropout")]
        where !(value >= 0 && value < 1) {
            throw LSTMError.invalidConfiguration("seq2seq \(name) must be in [0, 1), got \(value)")
        }
        for (id, name, vocabulary, size) in [
            (padId, "padId", "source", sourceVocabularySize), (padId, "padId", "target", targetVocabularySize),
            (bosId, "bosId", "target", targetVocabularySize), (eosId, "eosId", "target", targetVocabularySize),
        ] where !(0..<size).contains(id) {
            throw LSTMError.invalidConfiguration(
                "seq2seq \(name) \(id) is outside the \(vocabulary) vocabulary 0..<\(size)")
        }
        guard Set([padId, bosId, eosId]).count == 3 else {
            throw LSTMError.invalidConfiguration(
                "seq2seq padId (\(padId)), bosId (\(bosId)) and eosId (\(eosId)) must all be different")
        }
        do {
            for (factors, what) in [
                ([sourceVocabularySize, embeddingSize], "source embedding"),
                ([targetVocabularySize, embeddingSize], "target embedding"),
                ([targetVocabularySize, hiddenSize], "output weight"), ([4 * hiddenSize, hiddenSize], "LSTM weight"),
            ] {
                _ = try SizeLimits.product(factors, "seq2seq \(what)")
            }
        } catch let LSTMError.invalidArgument(message) {
            throw LSTMError.invalidConfiguration(message)
        }
    }

    /// The encoder's LSTM: E → H, L layers, `dropout` between them.
    public var encoderConfiguration: LSTMConfiguration {
        LSTMConfiguration(inputSize: embeddingSize, hiddenSize: hiddenSize, numLayers: numLayers, dropout: dropout)
    }

    /// The decoder's LSTM: the same shape as the encoder's.
    public var decoderConfiguration: LSTMConfiguration { encoderConfiguration }

    /// Every parameter's name and shape, in `Seq2Seq.parameters` order: "source_embedding.weight"
    /// [Vs, E], "encoder.weight_ih_l0" … (`torch.nn.LSTM` names), "target_embedding.weight"
    /// [Vt, E], "decoder.…", with attention "attention.weight" [H, 2H] and "attention.bias" [H],
    /// "output.weight" [Vt, H], "output.bias" [Vt].
    public var parameterSpecs: [(name: String, shape: [Int])] {
        var specs: [(name: String, shape: [Int])] = [
            ("source_embedding.weight", [sourceVocabularySize, embeddingSize])
        ]
        specs += encoderConfiguration.parameterSpecs.map { ("encoder." + $0.name, $0.shape) }
        specs.append(("target_embedding.weight", [targetVocabularySize, embeddingSize]))
        specs += decoderConfiguration.parameterSpecs.map { ("decoder." + $0.name, $0.shape) }
        if attention {
            specs += [("attention.weight", [hiddenSize, 2 * hiddenSize]), ("attention.bias", [hiddenSize])]
        }
        specs += [("output.weight", [targetVocabularySize, hiddenSize]), ("output.bias", [targetVocabularySize])]
        return specs
    }
}

/// One batch's teacher-forced loss (`Seq2Seq.loss(sources:targets:training:countCorrect:)`).
public struct Seq2SeqLoss: Equatable, Sendable {
    /// Mean cross-entropy in nats per counted token (`CrossEntropyLoss`, reduction "mean").
    public var loss: Float
    /// Counted tokens: Σ (target length + 1) over the batch (each target token and its `<eos>`).
    public var tokens: Int
    /// Counted tokens whose largest logit (the first on ties) is the right one; nil when not
    /// asked for (counting reads the logits [T, B, Vt] back to the host).
    public var correct: Int?
    /// `correct / tokens` (nil when `correct` is).
    public var accuracy: Float? { correct.map { Float($0) / Float(max(tokens, 1)) } }
}

/// An LSTM encoder-decoder for sequence-to-sequence tasks such as translation (Sutskever et
/// al. 2014), optionally with Luong dot attention (`Seq2SeqConfiguration.attention`),
/// PyTorch-compatible module by module:
///
///     source ids [S, B] → source_embedding [S, B, E] → (dropout) → encoder LSTM → (hn, cn)
///     <bos> + target [T, B] → target_embedding [T, B, E] → (dropout)
///         → decoder LSTM from (h0, c0) = encoder (hn, cn) → [T, B, H]
///         → (attention over the encoder's outputs [S, B, H] → [T, B, H]) → output Linear → [T, B, Vt]
///
/// Both LSTMs are unidirectional with L layers of H units. Lengths go to the engine, so padded
/// steps are never computed: a source's final state is the one after its own last token.
///
/// Training (teacher forcing): `loss(sources:targets:training: true)` then `backward()` sets
/// the gradient of every one of `parameters`; then `Optimizer.clipGradients` and
/// `Optimizer.update` as for any model. Decoding: `translate(_:maxLength:beamWidth:)`.
/// Files: `save(to:extraMetadata:)` and `init(contentsOf:backend:)`.
///
/// Sources must be non-empty (an empty source is refused, naming its index); targets may be
/// empty (the decoder then learns to answer `<eos>` at once). The model keeps what `backward`
/// needs between a training `loss` and `backward`; any other forward (an inference loss,
/// a translation) drops it.
public final class Seq2Seq<Backend: ModelOps> {
    public let configuration: Seq2SeqConfiguration
    public let backend: Backend
    /// weight [Vs, E], "source_embedding.weight".
    public let sourceEmbedding: Embedding<Backend>
    /// E → H, L layers; parameters "encoder.weight_ih_l0", ….
    public let encoder: LSTMLayer<Backend>
    /// weight [Vt, E], "target_embedding.weight".
    public let targetEmbedding: Embedding<Backend>
    /// E → H, L layers, starting from the encoder's final state; parameters "decoder.…".
    public let decoder: LSTMLayer<Backend>
    /// Between the decoder and `output` when `configuration.attention`; "attention.weight", "attention.bias".
    public let attention: LuongAttention<Backend>?
    /// H → Vt per step; "output.weight" [Vt, H], "output.bias" [Vt].
    public let output: Linear<Backend>
    let sourceDropout: Dropout<Backend>
    let targetDropout: Dropout<Backend>
    /// Every parameter, named as in `Seq2SeqConfiguration.parameterSpecs` (the file's names).
    public let parameters: [Parameter<Backend.Buffer>]
    /// Extra metadata strings: those of the file the model was loaded from (the keys other than
    /// "format" and "lstm_gpu_seq2seq"), empty for a new model. `save(to:)` writes them again
    /// unless given others.
    public var metadata: [String: String] = [:]
    /// dL/d(logits) of the last training loss, until `backward` uses it (`encode` drops it).
    var pendingGradient: Backend.Buffer?

    /// A new model, initialised as PyTorch does (embeddings N(0, 1), LSTMs and the output
    /// U(−1/√fan, 1/√fan)) from `seed`: the same seed gives the same weights on every backend.
    /// Dropout masks are drawn from `seed` as well.
    /// - Throws: `LSTMError.invalidConfiguration` from `configuration.validate()`.
    public convenience init(_ configuration: Seq2SeqConfiguration, backend: Backend, seed: UInt64) throws {
        try configuration.validate()
        try self.init(configuration, backend: backend, seed: seed, weights: nil)
    }

    /// A model with `weights` (full names, shapes checked by the caller) or seeded ones when nil.
    /// In a reduced `precision` the encoder's and decoder's matrices are quantized from `weights`,
    /// or taken as they are from `reduced` (full names, a quantized file's) where it has them.
    init(
        _ c: Seq2SeqConfiguration, backend: Backend, seed: UInt64, weights: [String: Tensor]?,
        precision: Precision = .fp32, reduced: [String: ReducedMatrix] = [:], source: String = "weights"
    ) throws {
        configuration = c
        self.backend = backend
        sourceEmbedding = try Embedding(
            backend: backend, vocabularySize: c.sourceVocabularySize, dimension: c.embeddingSize, seed: seed)
        func lstm(_ prefix: String, _ configuration: LSTMConfiguration, _ seed: UInt64) throws -> LSTMLayer<Backend> {
            try SizeLimits.requireHostMemory(
                floats: configuration.parameterCount, for: "an LSTM of \(configuration.parameterCount) parameters")
            if !reduced.isEmpty {
                var matrices: [String: ReducedMatrix] = [:]
                var floats: [String: Tensor] = [:]
                for (name, _) in configuration.parameterSpecs {
                    if let matrix = reduced[prefix + name] {
                        matrices[name] = matrix
                    } else {
                        floats[name] = try weights?[prefix + name].unwrapped(or: prefix + name)
                    }
                }
                return try LSTMLayer(
                    stack: LSTMStack(
                        configuration: configuration, backend: backend, reducedMatrices: matrices, otherWeights: floats,
                        precision: precision, source: source), seed: seed)
            }
            let initial =
                try weights.map { all in
                    Dictionary(
                        uniqueKeysWithValues: try configuration.parameterSpecs.map {
                            ($0.name, try all[prefix + $0.name].unwrapped(or: prefix + $0.name))
                        })
                } ?? configuration.initialWeights(seed: seed)
            return try LSTMLayer(
                stack: LSTMStack(
                    configuration: configuration, backend: backend, weights: initial, precision: precision),
                seed: seed)
        }
        encoder = try lstm("encoder.", c.encoderConfiguration, seed &+ 1)
        targetEmbedding = try Embedding(
            backend: backend, vocabularySize: c.targetVocabularySize, dimension: c.embeddingSize, seed: seed &+ 2)
        decoder = try lstm("decoder.", c.decoderConfiguration, seed &+ 3)
        attention = c.attention ? try LuongAttention(backend: backend, hiddenSize: c.hiddenSize, seed: seed &+ 7) : nil
        output = try Linear(
            backend: backend, inputSize: c.hiddenSize, outputSize: c.targetVocabularySize, seed: seed &+ 4)
        sourceDropout = try Dropout(backend: backend, probability: c.embeddingDropout, seed: seed &+ 5)
        targetDropout = try Dropout(backend: backend, probability: c.embeddingDropout, seed: seed &+ 6)
        for (prefix, layer) in [
            ("source_embedding.", sourceEmbedding), ("encoder.", encoder), ("target_embedding.", targetEmbedding),
            ("decoder.", decoder), ("output.", output),
        ] as [(String, any Layer<Backend>)] {
            for parameter in layer.parameters { parameter.name = prefix + parameter.name }
        }
        for parameter in attention?.parameters ?? [] { parameter.name = "attention." + parameter.name }
        let layers: [any Layer<Backend>] = [sourceEmbedding, encoder, targetEmbedding, decoder]
        parameters = layers.flatMap { $0.parameters } + (attention?.parameters ?? []) + output.parameters
        if let weights {
            for parameter in parameters where !parameter.name.contains("coder.") {
                try backend.write(
                    weights[parameter.name].unwrapped(or: parameter.name).scalars, to: parameter.value, offset: 0)
            }
        }
    }

    /// The teacher-forced loss of a batch of sentence pairs, keeping what `backward` needs when
    /// `training` (and applying dropout then).
    ///
    /// The sources become ids [S, B] with lengths (padded with `padId`); the decoder reads
    /// `<bos>` + target [T, B] and is scored against target + `<eos>` [T, B], T = longest
    /// target + 1, with masked (per-length) softmax cross-entropy averaged over the counted tokens.
    /// - Parameters:
    ///   - sources: B source sentences, each a non-empty array of ids in 0..<Vs.
    ///   - targets: B target sentences (may be empty), ids in 0..<Vt.
    ///   - countCorrect: also count the tokens predicted right (reads the logits back).
    /// - Throws: `LSTMError.invalidArgument` for an empty batch, a count mismatch, an empty
    ///   source or an id outside its vocabulary (naming the sentence index and position).
    public func loss(
        sources: [[Int]], targets: [[Int]], training: Bool, countCorrect: Bool = true
    ) throws -> Seq2SeqLoss {
        guard sources.count == targets.count else {
            throw LSTMError.invalidArgument(
                "seq2seq: \(sources.count) sources but \(targets.count) targets (one target per source)")
        }
        let encoded = try encodeAll(sources, training: training)
        let batch = sources.count, c = configuration
        for (index, target) in targets.enumerated() {
            try checkIds(target, vocabulary: c.targetVocabularySize, what: "target \(index)")
        }
        let lengths = targets.map { $0.count + 1 }, steps = lengths.max()!
        var inputs = Array(repeating: c.padId, count: steps * batch), expected = inputs
        for (b, target) in targets.enumerated() {
            for (t, id) in ([c.bosId] + target).enumerated() { inputs[t * batch + b] = id }
            for (t, id) in (target + [c.eosId]).enumerated() { expected[t * batch + b] = id }
        }
        let decoderInput = try LayerValue.tokens(ids: inputs, steps: steps, batch: batch, lengths: lengths, on: backend)
        let embedded = try targetDropout.forward(
            targetEmbedding.forward(decoderInput, training: training), training: training)
        let (decoded, _) = try decoder.forward(embedded, initialState: encoded.state, training: training)
        let logits = try output.forward(attend(decoded, encoded, training: training), training: training)
        let value = try CrossEntropyLoss(backend: backend)(logits, targets: expected)
        if training { pendingGradient = value.gradient }
        let tokens = lengths.reduce(0, +)
        guard countCorrect else { return Seq2SeqLoss(loss: value.loss, tokens: tokens, correct: nil) }
        let classes = c.targetVocabularySize
        let values = try backend.read(logits.buffer!, offset: 0, count: steps * batch * classes)
        var correct = 0
        for r in 0..<(steps * batch) where r / batch < lengths[r % batch] {
            let row = values[(r * classes)..<((r + 1) * classes)]
            if argmax(row) == expected[r] { correct += 1 }
        }
        return Seq2SeqLoss(loss: value.loss, tokens: tokens, correct: correct)
    }

    /// Backpropagates the last training `loss`: output → decoder (its initial-state gradient
    /// out) → encoder (no output gradient; the decoder's state gradient as its final-state
    /// gradient) → both embeddings, setting the gradient of every one of `parameters`.
    /// - Throws: `LSTMError.invalidArgument` without a training `loss` since the last backward
    ///   or inference forward.
    public func backward() throws {
        guard let gradient = pendingGradient else {
            throw LSTMError.invalidArgument(
                "Seq2Seq.backward needs a loss(sources:targets:training: true) first (none was kept)")
        }
        pendingGradient = nil
        var decoded = try output.backward(gradient).unwrapped(or: "output gradient")
        var memory: Backend.Buffer?
        if let attention { (decoded, memory) = try attention.backward(decoded) }
        let (embedded, stateGradient) = try decoder.backward(decoded, finalStateGradient: nil)
        _ = try targetEmbedding.backward(
            targetDropout.backward(embedded.unwrapped(or: "decoder input gradient")).unwrapped(or: "dropout gradient"))
        let (source, _) = try encoder.backward(memory, finalStateGradient: stateGradient)
        _ = try sourceEmbedding.backward(
            sourceDropout.backward(source.unwrapped(or: "encoder input gradient")).unwrapped(or: "dropout gradient"))
    }

    /// Runs the encoder over `sources` (B non-empty sentences) and returns its final state,
    /// h and c [L, B, H], the decoder's initial state. Drops what a training `loss` kept for
    /// `backward`.
    /// - Throws: `LSTMError.invalidArgument` for an empty batch, an empty source or an id
    ///   outside 0..<Vs (naming the source index and position).
    public func encode(_ sources: [[Int]], training: Bool = false) throws -> LSTMState<Backend> {
        try encodeAll(sources, training: training).state
    }

    /// The decoder's outputs [T, B, H] through the attention over `encoded` (when the model has
    /// one), as the output layer's input.
    func attend(_ decoded: LayerValue<Backend>, _ encoded: Encoded, training: Bool) throws -> LayerValue<Backend> {
        guard let attention else { return decoded }
        let x = try decoded.sequenceParts(for: "attention", features: configuration.hiddenSize)
        return decoded.replacing(
            try attention.forward(
                decoded: x.buffer, steps: x.steps, memory: encoded.memory, sourceSteps: encoded.steps,
                lengths: encoded.lengths, training: training), features: configuration.hiddenSize)
    }

    /// The encoder's outputs (`memory` [S, B, H] with the sources' lengths) and final state.
    struct Encoded {
        var memory: Backend.Buffer
        var steps: Int
        var lengths: [Int]
        var state: LSTMState<Backend>
    }

    func encodeAll(_ sources: [[Int]], training: Bool) throws -> Encoded {
        pendingGradient = nil
        guard !sources.isEmpty else { throw LSTMError.invalidArgument("seq2seq: the batch has no sentences") }
        let c = configuration, batch = sources.count
        for (index, source) in sources.enumerated() {
            guard !source.isEmpty else {
                throw LSTMError.invalidArgument("seq2seq: source \(index) is empty (every source needs a token)")
            }
            try checkIds(source, vocabulary: c.sourceVocabularySize, what: "source \(index)")
        }
        let lengths = sources.map(\.count), steps = lengths.max()!
        var ids = Array(repeating: c.padId, count: steps * batch)
        for (b, source) in sources.enumerated() {
            for (t, id) in source.enumerated() { ids[t * batch + b] = id }
        }
        let input = try LayerValue.tokens(ids: ids, steps: steps, batch: batch, lengths: lengths, on: backend)
        let embedded = try sourceDropout.forward(
            sourceEmbedding.forward(input, training: training), training: training)
        let (outputs, state) = try encoder.forward(embedded, initialState: nil, training: training)
        return Encoded(memory: outputs.buffer!, steps: steps, lengths: lengths, state: state)
    }

    private func checkIds(_ ids: [Int], vocabulary: Int, what: String) throws {
        if let (position, id) = ids.enumerated().first(where: { !(0..<vocabulary).contains($0.element) }) {
            throw LSTMError.invalidArgument(
                "seq2seq: \(what) has id \(id) at position \(position), outside the vocabulary 0..<\(vocabulary)")
        }
    }
}

/// The position (0-based, whatever the slice's indices) of the first largest value.
func argmax(_ values: ArraySlice<Float>) -> Int {
    var best = values.startIndex
    for i in values.indices where values[i] > values[best] { best = i }
    return best - values.startIndex
}

extension Optional {
    /// The value, or an `LSTMError` saying that `what` was missing (a broken invariant or file).
    func unwrapped(or what: String) throws -> Wrapped {
        guard let self else { throw LSTMError.invalidArgument("seq2seq: \(what) is missing") }
        return self
    }
}
