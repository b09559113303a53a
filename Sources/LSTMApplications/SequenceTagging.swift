import Foundation
import LSTMKit

/// Sequence tagging (part-of-speech, named entities): Embedding → LSTM (bidirectional suits
/// it) → a Linear per step to the tags, cross-entropy over every word of every sentence.
///
/// Words are lowercased when `lowercase`; the vocabulary is the training split's words seen
/// `minimumCount` times (others are `<unk>`). The baseline tags each word with its most
/// frequent tag in the training split (unseen words: the most frequent tag overall).
public enum SequenceTagging {
    public static let vocabularyKey = TextClassification.vocabularyKey
    /// The metadata key of the tag names (a JSON array; class i is tag i).
    public static let tagsKey = "lstm_gpu_tags"

    /// Trains and tests on `data`.
    /// - Returns: figures "test_accuracy" (per word), "baseline_accuracy", "validation_accuracy".
    public static func run<Backend: ModelOps>(
        _ data: TaggedSentences, lowercase: Bool = true, minimumCount: Int = 1, shape: NetworkShape,
        settings: ApplicationSettings, backend: Backend, say: (String) -> Void = printLine
    ) throws -> ApplicationReport {
        let started = Date()
        try settings.validate()
        try SizeLimits.requireSize(minimumCount, "the minimum count", limit: .max)
        let sentences = limited(data.sentences, settings.limit).filter { !$0.isEmpty }.map { sentence in
            sentence.map { (word: lowercase ? $0.token.lowercased() : $0.token, tag: data.tagIndex($0.tag)!) }
        }
        let split = try DataSplit(
            shuffling: sentences, validationFraction: settings.validationFraction,
            testFraction: settings.testFraction, seed: settings.seed)
        var counts: [String: Int] = [:]
        for sentence in split.training { for (word, _) in sentence { counts[word, default: 0] += 1 } }
        let specials = Set(TokenVocabulary.specialTokens)
        let kept = counts.filter { $0.value >= minimumCount && !specials.contains($0.key) }
            .sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map(\.key)
        let vocabulary = try TokenVocabulary(tokens: TokenVocabulary.specialTokens + kept, tokenization: .words)
        func examples(_ items: [[(word: String, tag: Int)]]) -> [LabelledSequence] {
            items.map {
                LabelledSequence(.tokens($0.map { vocabulary.id(of: $0.word) }), target: .labels($0.map(\.tag)))
            }
        }
        let training = examples(split.training), validation = examples(split.validation), test = examples(split.test)
        let tags = data.tags
        guard tags.count >= 2 else {
            throw LSTMError.invalidArgument("tagging needs at least 2 tags; the data has \(tags.count) (\(tags))")
        }
        say(
            "\(sentences.count) sentences → \(training.count) training, \(validation.count) validation, "
                + "\(test.count) test; \(vocabulary.count) words, \(tags.count) tags; \(backend.name)")
        var seeds = SeededGenerator(seed: settings.seed &+ 303)
        let layers: [any Layer<Backend>] =
            [
                try Embedding(
                    backend: backend, vocabularySize: vocabulary.count, dimension: shape.embedding, seed: seeds.next())
            ]
            + (try shape.recurrentLayers(input: shape.embedding, backend: backend, seed: seeds.next()))
            + [try Linear(backend: backend, inputSize: shape.outputWidth, outputSize: tags.count, seed: seeds.next())]
        let model = try SupervisedModel(Sequential<Backend>(layers), loss: .crossEntropy())
        model.metadata = [vocabularyKey: vocabulary.json(), tagsKey: try jsonString(tags)]
        let (history, best) = try fitAndKeepBest(model, training: training, validation: validation, settings: settings)
        let heldSentences = try requireTest(split.test, of: sentences.count, settings)
        let measured = try best.evaluate(examples(heldSentences))

        // Baseline: each word's most frequent training tag.
        var tagCounts: [String: [Int: Int]] = [:], overall: [Int: Int] = [:]
        for sentence in split.training {
            for (word, tag) in sentence {
                tagCounts[word, default: [:]][tag, default: 0] += 1
                overall[tag, default: 0] += 1
            }
        }
        func mostFrequent(_ counts: [Int: Int]) -> Int? { counts.max { ($0.value, $1.key) < ($1.value, $0.key) }?.key }
        let fallback = mostFrequent(overall) ?? 0
        let words = heldSentences.flatMap { $0 }
        let right = words.filter { (tagCounts[$0.word].flatMap(mostFrequent) ?? fallback) == $0.tag }.count
        let baseline = Double(right) / Double(max(1, words.count))
        say(
            "test accuracy \(percent(measured.metricValue)) per word on \(words.count) words "
                + "(most frequent tag per word: \(percent(baseline)))")
        let reduced = try evaluatedPrecisionFigures(best, on: examples(heldSentences), settings: settings, say: say)
        return ApplicationReport(
            history: history,
            figures: [
                "test_accuracy": measured.metricValue, "test_loss": measured.loss, "baseline_accuracy": baseline,
                "validation_accuracy": bestValidationMetric(history),
            ].merging(reduced) { a, _ in a },
            seconds: Date().timeIntervalSince(started))
    }
}
