import Foundation
import LSTMCore

/// One decoded sentence with how the model scores it (`Seq2Seq.translations`).
///
/// The scoring, for greedy decoding and beam search alike: `logProbability` = Σ log p(yₜ | y<ₜ,
/// source) over the n decoder steps taken (each output token, plus the `<eos>` when
/// `finished`), and `score` = `logProbability` / nᵅ with α the length penalty (α = 1: the mean
/// log-probability per step; α = 0: the plain sum). With α = 1 and a finished sentence,
/// −`score` is the teacher-forced `Seq2Seq.loss` of (source, tokens).
public struct Seq2SeqTranslation: Equatable, Sendable {
    /// The output ids, without `<bos>` and `<eos>`.
    public var tokens: [Int]
    /// Σ log p over the scored steps (natural log).
    public var logProbability: Float
    /// Whether the decoder chose `<eos>` (false: it stopped at `maxLength`).
    public var finished: Bool
    /// `logProbability` / nᵅ (see the type's documentation).
    public var score: Float

    /// The scored steps n: the tokens, plus one for the `<eos>` of a finished sentence.
    public var scoredSteps: Int { tokens.count + (finished ? 1 : 0) }

    init(tokens: [Int], logProbability: Double, finished: Bool, lengthPenalty: Float) {
        self.tokens = tokens
        self.logProbability = Float(logProbability)
        self.finished = finished
        let steps = Double(tokens.count + (finished ? 1 : 0))
        score = Float(logProbability / Foundation.pow(max(steps, 1), Double(lengthPenalty)))
    }
}

extension Seq2Seq {
    /// Translates each source into target ids (without `<bos>`/`<eos>`): the tokens of
    /// `translations(_:maxLength:beamWidth:lengthPenalty:)`.
    public func translate(
        _ sources: [[Int]], maxLength: Int, beamWidth: Int = 1, lengthPenalty: Float = 1
    ) throws -> [[Int]] {
        try translations(sources, maxLength: maxLength, beamWidth: beamWidth, lengthPenalty: lengthPenalty).map(
            \.tokens)
    }

    /// Decodes each source (inference: no dropout), one decoder step at a time from the
    /// encoder's final state, starting from `<bos>` and stopping at `<eos>` or after
    /// `maxLength` steps (the `<eos>` takes a step, so a sentence has at most `maxLength` tokens).
    ///
    /// - `beamWidth` 1: greedy, all sources in one batch: each step feeds back the most likely
    ///   token (the lowest id on ties).
    /// - `beamWidth` k > 1: beam search per source with the k beams as the batch. Each step
    ///   extends every live beam by its k most likely tokens and keeps the k best extensions by
    ///   cumulative log-probability (ties: the earlier beam, then the lower id); an extension
    ///   by `<eos>` leaves the beam as a finished hypothesis, so the beam narrows. The search
    ///   ends when no beam is live or after `maxLength` steps (the live beams then count as
    ///   unfinished hypotheses), and returns the hypothesis with the best `score` (the first
    ///   found on ties). Beam search is a heuristic: it usually, not always, scores at least
    ///   as well as greedy decoding.
    ///
    /// See `Seq2SeqTranslation` for the scoring and `lengthPenalty` (α).
    /// - Throws: `LSTMError.invalidArgument` for `maxLength` or `beamWidth` below 1, a negative
    ///   or non-finite `lengthPenalty`, or sources `encode` refuses.
    public func translations(
        _ sources: [[Int]], maxLength: Int, beamWidth: Int = 1, lengthPenalty: Float = 1
    ) throws -> [Seq2SeqTranslation] {
        guard maxLength >= 1, beamWidth >= 1 else {
            throw LSTMError.invalidArgument(
                "seq2seq decoding needs maxLength ≥ 1 and beamWidth ≥ 1, got \(maxLength) and \(beamWidth)")
        }
        guard lengthPenalty >= 0, lengthPenalty.isFinite else {
            throw LSTMError.invalidArgument("seq2seq lengthPenalty must be finite and ≥ 0, got \(lengthPenalty)")
        }
        if beamWidth == 1 { return try greedy(sources, maxLength: maxLength, lengthPenalty: lengthPenalty) }
        _ = try encode(sources)  // refuses bad sources up front, before any search
        return try sources.map {
            try beamSearch($0, maxLength: maxLength, beamWidth: beamWidth, lengthPenalty: lengthPenalty)
        }
    }

    /// Greedy decoding of the whole batch.
    func greedy(_ sources: [[Int]], maxLength: Int, lengthPenalty: Float) throws -> [Seq2SeqTranslation] {
        let batch = sources.count, eos = configuration.eosId
        let encoded = try encodeAll(sources, training: false)
        var state = encoded.state
        var current = Array(repeating: configuration.bosId, count: batch)
        var tokens = Array(repeating: [Int](), count: batch), logProbability = Array(repeating: 0.0, count: batch)
        var finished = Array(repeating: false, count: batch)
        for _ in 0..<maxLength {
            if !finished.contains(false) { break }
            let (rows, next) = try step(current, state: state, encoded: encoded)
            state = next
            for b in 0..<batch where !finished[b] {
                let best = rows[b].indices.max { rows[b][$0] < rows[b][$1] || (rows[b][$0] == rows[b][$1] && $0 > $1) }!
                logProbability[b] += rows[b][best]
                if best == eos { finished[b] = true } else { (current[b], tokens[b]) = (best, tokens[b] + [best]) }
            }
        }
        return (0..<batch).map {
            Seq2SeqTranslation(
                tokens: tokens[$0], logProbability: logProbability[$0], finished: finished[$0],
                lengthPenalty: lengthPenalty)
        }
    }

    /// Beam search for one source (see `translations`): `searchBeams` over this model's
    /// decoder steps, each live beam's state taken from the row it came from.
    func beamSearch(
        _ source: [Int], maxLength: Int, beamWidth: Int, lengthPenalty: Float
    ) throws
        -> Seq2SeqTranslation
    {
        let encoded = try encodeAll([source], training: false)
        var state = encoded.state
        var next: LSTMState<Backend>?
        return try searchBeams(
            maxLength: maxLength, beamWidth: beamWidth, lengthPenalty: lengthPenalty, bos: configuration.bosId,
            eos: configuration.eosId
        ) { ids, parents in
            if let next { state = try selectRows(next, parents) }
            let (rows, after) = try step(
                ids, state: state, encoded: attention == nil ? encoded : replicated(encoded, ids.count))
            next = after
            return rows
        }
    }
    /// One decoder step for n sentences: their last ids [n] and state (h, c [L, n, H]), and
    /// their encoder outputs for the attention → log-softmax of the logits [n][Vt] (in Double,
    /// on the host) and the next state.
    func step(
        _ ids: [Int], state: LSTMState<Backend>, encoded: Encoded
    ) throws -> (
        logProbabilities: [[Double]], state: LSTMState<Backend>
    ) {
        let n = ids.count, classes = configuration.targetVocabularySize
        let input = try LayerValue.tokens(ids: ids, steps: 1, batch: n, on: backend)
        let (decoded, next) = try decoder.forward(
            targetEmbedding.forward(input, training: false), initialState: state, training: false)
        let logits = try backend.read(
            output.forward(attend(decoded, encoded, training: false), training: false).buffer!, offset: 0,
            count: n * classes)
        let rows = (0..<n).map { r in
            let row = logits[(r * classes)..<((r + 1) * classes)].map(Double.init)
            let top = row.max()!
            let logSum = top + Foundation.log(row.reduce(0.0) { $0 + Foundation.exp($1 - top) })
            return row.map { $0 - logSum }
        }
        return (rows, next)
    }

    /// One source's encoder outputs [S, 1, H] repeated for n beams: [S, n, H].
    func replicated(_ encoded: Encoded, _ n: Int) throws -> Encoded {
        let (steps, width) = (encoded.steps, configuration.hiddenSize)
        let memory = try backend.makeBuffer(count: steps * n * width)
        try backend.gatherRows(
            encoded.memory, width: width, indices: backend.makeIndices((0..<(steps * n)).map { $0 / n }),
            count: steps * n, into: memory)
        return Encoded(
            memory: memory, steps: steps, lengths: Array(repeating: encoded.lengths[0], count: n), state: encoded.state)
    }

    /// The state rows of the chosen sentences: h, c [L, n, H] → [L, m, H] with row (l, j) =
    /// row (l, parents[j]).
    func selectRows(_ state: LSTMState<Backend>, _ parents: [Int]) throws -> LSTMState<Backend> {
        let layers = state.hiddenShape[0], n = state.hiddenShape[1], m = parents.count
        let width = configuration.hiddenSize
        let indices = try backend.makeIndices((0..<layers).flatMap { l in parents.map { l * n + $0 } })
        let h = try backend.makeBuffer(count: layers * m * width), c = try backend.makeBuffer(count: layers * m * width)
        try backend.gatherRows(state.hidden, width: width, indices: indices, count: layers * m, into: h)
        try backend.gatherRows(state.cell, width: width, indices: indices, count: layers * m, into: c)
        return LSTMState(hidden: h, cell: c, configuration: configuration.decoderConfiguration, batch: m)
    }
}

/// Beam search over a decoder given as `step` (see `Seq2Seq.translations`): `step(ids,
/// parents)` gets each live beam's last id (`bos` at first) and the row of the previous step
/// it extends (`[0]` at first), and gives each beam's log-probabilities over the vocabulary.
/// Each step extends every live beam by its `beamWidth` most likely ids and keeps the
/// `beamWidth` best extensions by cumulative log-probability (ties: the earlier beam, then the
/// lower id); an extension by `eos` becomes a finished hypothesis (its `<eos>` step counted).
/// After `maxLength` steps the live beams are unfinished hypotheses. The result is the
/// hypothesis with the best length-normalised `score` (the first found on ties).
func searchBeams(
    maxLength: Int, beamWidth: Int, lengthPenalty: Float, bos: Int, eos: Int,
    step: (_ ids: [Int], _ parents: [Int]) throws -> [[Double]]
) throws -> Seq2SeqTranslation {
    var live: [(tokens: [Int], logProbability: Double)] = [([], 0)]
    var parents = [0]
    var hypotheses: [Seq2SeqTranslation] = []
    for _ in 0..<maxLength {
        let rows = try step(live.map { $0.tokens.last ?? bos }, parents)
        var candidates: [(logProbability: Double, beam: Int, token: Int)] = []
        for (beam, row) in rows.enumerated() {
            let top = row.indices.sorted { row[$0] > row[$1] || (row[$0] == row[$1] && $0 < $1) }.prefix(beamWidth)
            candidates += top.map { (live[beam].logProbability + row[$0], beam, $0) }
        }
        candidates.sort {
            ($0.logProbability, -$0.beam, -$0.token) > ($1.logProbability, -$1.beam, -$1.token)
        }
        var kept: [(tokens: [Int], logProbability: Double)] = []
        parents = []
        for candidate in candidates.prefix(beamWidth) {
            if candidate.token == eos {
                hypotheses.append(
                    Seq2SeqTranslation(
                        tokens: live[candidate.beam].tokens, logProbability: candidate.logProbability,
                        finished: true, lengthPenalty: lengthPenalty))
            } else {
                kept.append((live[candidate.beam].tokens + [candidate.token], candidate.logProbability))
                parents.append(candidate.beam)
            }
        }
        live = kept
        if live.isEmpty { break }
    }
    hypotheses += live.map {
        Seq2SeqTranslation(
            tokens: $0.tokens, logProbability: $0.logProbability, finished: false, lengthPenalty: lengthPenalty)
    }
    var best = hypotheses[0]
    for hypothesis in hypotheses.dropFirst() where hypothesis.score > best.score { best = hypothesis }
    return best
}
