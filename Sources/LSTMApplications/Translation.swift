import Foundation
import LSTMKit

/// Machine translation with an LSTM encoder-decoder (`Seq2Seq`): the encoder's final state
/// initialises the decoder, trained with teacher forcing by `fit` (loss over the target tokens
/// and `<eos>`), optionally with Luong attention over the encoder's outputs; the test split is
/// translated greedily or by beam search and scored with chrF (`characterF`), the translations
/// and references written out for `scripts/translation-score` (sacrebleu's BLEU and chrF).
///
/// Each side has its own vocabulary from the training split (`minimumCount`, at most
/// `maximumVocabulary` tokens, the rest `<unk>`).
public enum Translation {
    /// The metadata keys of the saved model: the two vocabularies (`TokenVocabulary.json()`).
    public static let sourceVocabularyKey = "lstm_gpu_source_vocabulary"
    public static let targetVocabularyKey = "lstm_gpu_target_vocabulary"

    /// What decodes the test split and where the translations go.
    public struct Decoding: Sendable {
        /// 1: greedy.
        public var beamWidth = 1
        /// Translate at most this many test sentences (decoding is the slow part); nil: all.
        public var sentences: Int? = 500
        /// Writes `<prefix>.hyp` (translations), `.ref` (references) and `.src` (sources), one a line.
        public var outputPrefix: String?
        public init() {}

        /// The files `outputPrefix` names, by suffix ("hyp", "ref", "src"): what a run writes.
        public static func outputFiles(prefix: String) -> [(suffix: String, path: String)] {
            ["hyp", "ref", "src"].map { ($0, prefix + "." + $0) }
        }
    }

    /// Trains on `data`, then translates the test split.
    /// - Returns: figures "chrf" (test, ×100), "validation_token_accuracy", "test_loss",
    ///   "test_sentences" and "copy_chrf", the chrF of the source itself as the translation (a floor).
    public static func run<Backend: ModelOps>(
        _ data: ParallelText, tokenization: Tokenization = .words, minimumCount: Int = 2,
        maximumVocabulary: Int? = 16_000, attention: Bool = false, decoding: Decoding = Decoding(),
        shape: NetworkShape, settings: ApplicationSettings, backend: Backend, say: (String) -> Void = printLine
    ) throws -> ApplicationReport {
        let started = Date()
        try settings.validate()
        try SizeLimits.requireSize(decoding.beamWidth, "the beam width")
        if let sentences = decoding.sentences {
            try SizeLimits.requireSize(sentences, "the test sentences to translate")
        }
        let pairs = limited(data.pairs.map { [$0.source, $0.target] }, settings.limit)
        let split = try DataSplit(
            shuffling: pairs, validationFraction: settings.validationFraction, testFraction: settings.testFraction,
            seed: settings.seed)
        let source = try TokenVocabulary(
            training: split.training.map { $0[0] }, tokenization: tokenization, minimumCount: minimumCount,
            maximumSize: maximumVocabulary)
        let target = try TokenVocabulary(
            training: split.training.map { $0[1] }, tokenization: tokenization, minimumCount: minimumCount,
            maximumSize: maximumVocabulary)
        func examples(_ items: [[String]]) -> [TranslationPair] {
            items.map { TranslationPair(source: source.encode($0[0]), target: target.encode($0[1])) }
                .filter { !$0.source.isEmpty }
        }
        let training = examples(split.training), validation = examples(split.validation)
        say(
            "\(pairs.count) sentence pairs → \(training.count) training, \(validation.count) validation, "
                + "\(split.test.count) test; \(tokenization == .words ? "word" : "character") vocabularies of \(source.count) "
                + "(source) and \(target.count) (target); \(attention ? "with" : "no") attention; \(backend.name)")
        let configuration = Seq2SeqConfiguration(
            sourceVocabularySize: source.count, targetVocabularySize: target.count, embeddingSize: shape.embedding,
            hiddenSize: shape.hidden, numLayers: shape.layers, dropout: shape.layers > 1 ? shape.dropout : 0,
            embeddingDropout: shape.dropout, attention: attention)
        let model = try Seq2Seq(configuration, backend: backend, seed: settings.seed &+ 505)
        model.metadata = [sourceVocabularyKey: source.json(), targetVocabularyKey: target.json()]
        let (history, best) = try fitAndKeepBest(
            model, training: training, validation: validation, settings: settings
        ) { try Seq2Seq(contentsOf: $0, backend: backend) }

        // Translate the test split (its first `sentences` pairs).
        let test = try requireTest(
            limited(split.test, decoding.sentences).filter { !source.encode($0[0]).isEmpty }, of: pairs.count, settings)
        let testLoss = try best.evaluate(examples(test))
        func translations(_ model: Seq2Seq<Backend>) throws -> [String] {
            var hypotheses: [String] = []
            for start in stride(from: 0, to: test.count, by: 64) {
                let chunk = test[start..<min(start + 64, test.count)]
                let ids = try model.translate(
                    chunk.map { source.encode($0[0]) },
                    // Twice the longest source plus 10 tokens: from the sources, never the references.
                    maxLength: 2 * (chunk.map { source.encode($0[0]).count }.max() ?? 0) + 10,
                    beamWidth: decoding.beamWidth)
                hypotheses += try ids.map { try detokenized(target.decode($0), tokenization) }
            }
            return hypotheses
        }
        let hypotheses = try translations(best)
        let references = test.map { $0[1] }, sources = test.map { $0[0] }
        let chrf = characterF(hypotheses: hypotheses, references: references)
        let copy = characterF(hypotheses: sources, references: references)
        say(
            "test chrF \(String(format: "%.1f", chrf)) on \(test.count) sentences "
                + "(\(decoding.beamWidth == 1 ? "greedy" : "beam \(decoding.beamWidth)"); the source copied: "
                + "\(String(format: "%.1f", copy))), test loss \(String(format: "%.3f", testLoss.loss)) "
                + "(perplexity \(String(format: "%.1f", Foundation.exp(testLoss.loss))))")
        for index in test.indices.prefix(4) {
            say("  \(sources[index])\n    → \(hypotheses[index])\n    reference: \(references[index])")
        }
        if let prefix = decoding.outputPrefix {
            for ((_, path), lines) in zip(Decoding.outputFiles(prefix: prefix), [hypotheses, references, sources]) {
                try writeAtomically(Data(lines.map { $0 + "\n" }.joined().utf8), to: path)
            }
            say("translations in \(prefix).hyp (references \(prefix).ref): scripts/translation-score \(prefix)")
        }
        let reduced = try precisionFigures(
            best, settings: settings, names: ["chrf", "test_loss"], say: say, quantize: { try $0.quantized($1) }
        ) { model in
            [
                "chrf": characterF(hypotheses: try translations(model), references: references),
                "test_loss": try model.evaluate(examples(test)).loss,
            ]
        }
        return ApplicationReport(
            history: history,
            figures: [
                "chrf": chrf, "copy_chrf": copy, "test_loss": testLoss.loss, "test_sentences": Double(test.count),
                "validation_token_accuracy": bestValidationMetric(history),
            ].merging(reduced) { a, _ in a },
            seconds: Date().timeIntervalSince(started))
    }
}

/// Words joined as text: the spaces `TokenVocabulary.decode` puts before closing punctuation
/// (. , ; : ! ? ) ] » ” ’) and after opening punctuation (¿ ¡ ( [ « “) removed, so the
/// translations read (and BLEU tokenises them) as text; chrF ignores spaces either way.
/// Characters are joined as they are.
func detokenized(_ text: String, _ tokenization: Tokenization) -> String {
    guard tokenization == .words else { return text }
    let closing: Set<Character> = [".", ",", ";", ":", "!", "?", ")", "]", "»", "”", "’"]
    let opening: Set<Character> = ["¿", "¡", "(", "[", "«", "“"]
    var out = ""
    for word in text.split(separator: " ") {
        if let first = word.first, closing.contains(first) || out.last.map(opening.contains) == true || out.isEmpty {
            out += word
        } else {
            out += " " + word
        }
    }
    return out
}
