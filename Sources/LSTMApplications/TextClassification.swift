import Foundation
import LSTMKit

/// Text classification (sentiment and the like): Embedding → LSTM (any shape) → pooling over
/// each text's own length → Linear to the classes, trained with cross-entropy by `fit`.
///
/// The texts are cut into tokens (`Tokenization`), the vocabulary is built from the training
/// split alone (tokens seen `minimumCount` times; the rest are `<unk>`), each text keeps its
/// first `maxTokens` tokens. The test figures are those of the best model (by
/// `ApplicationSettings.monitor`, the validation accuracy by default), beside the majority
/// class of the training split.
public enum TextClassification {
    /// The metadata keys of the saved model: the vocabulary (`TokenVocabulary.json()`) and the
    /// class names (a JSON array).
    public static let vocabularyKey = "lstm_gpu_vocabulary"
    public static let classesKey = "lstm_gpu_classes"

    /// Trains and tests on `data`.
    /// - Returns: figures "test_accuracy", "baseline_accuracy" (majority class), "validation_accuracy",
    ///   "vocabulary", "training_examples", "test_examples".
    /// - Throws: `LSTMError` for settings out of range, too few examples, or any failure of the model.
    public static func run<Backend: ModelOps>(
        _ data: LabelledText, tokenization: Tokenization = .words, maxTokens: Int = 64, minimumCount: Int = 2,
        shape: NetworkShape, settings: ApplicationSettings, backend: Backend, say: (String) -> Void = printLine
    ) throws -> ApplicationReport {
        let started = Date()
        try settings.validate()
        try SizeLimits.requireSize(maxTokens, "maxTokens")
        guard data.classNames.count >= 2 else {
            throw LSTMError.invalidArgument(
                "classification needs at least 2 classes; the data has \(data.classNames.count)")
        }
        let split = try DataSplit(
            shuffling: limited(data.examples, settings.limit), validationFraction: settings.validationFraction,
            testFraction: settings.testFraction, seed: settings.seed)
        let vocabulary = try TokenVocabulary(
            training: split.training.map(\.text), tokenization: tokenization, minimumCount: minimumCount)
        func examples(_ items: [LabelledText.Example]) -> [LabelledSequence] {
            items.compactMap { item in
                let ids = Array(vocabulary.encode(item.text).prefix(maxTokens))
                return ids.isEmpty ? nil : LabelledSequence(tokens: ids, label: item.label)
            }
        }
        let training = examples(split.training), validation = examples(split.validation), test = examples(split.test)
        guard !training.isEmpty else { throw LSTMError.invalidArgument("no training example has a token") }
        let classes = data.classNames.count
        say(
            "\(data.examples.count) examples → \(training.count) training, \(validation.count) validation, "
                + "\(test.count) test; \(vocabulary.count) \(tokenization == .words ? "word" : "character") tokens; classes "
                + data.classNames.joined(separator: ", ") + "; \(backend.name)")

        var seeds = SeededGenerator(seed: settings.seed &+ 101)
        let layers: [any Layer<Backend>] =
            [
                try Embedding(
                    backend: backend, vocabularySize: vocabulary.count, dimension: shape.embedding, seed: seeds.next())
            ]
            + (try shape.recurrentLayers(input: shape.embedding, backend: backend, seed: seeds.next()))
            + [
                SequencePooling(backend: backend, mode: shape.pooling),
                try Linear(backend: backend, inputSize: shape.outputWidth, outputSize: classes, seed: seeds.next()),
            ]
        let model = try SupervisedModel(Sequential<Backend>(layers), loss: .crossEntropy())
        model.metadata = [vocabularyKey: vocabulary.json(), classesKey: try jsonString(data.classNames)]
        let (history, best) = try fitAndKeepBest(
            model, training: training, validation: validation, settings: settings)

        let held = try requireTest(test, of: data.examples.count, settings)
        let measured = try best.evaluate(held)
        let (majority, baseline) = majorityBaseline(training: training, held: held, classes: classes)
        say(
            "test accuracy \(percent(measured.metricValue)) (majority class '\(data.classNames[majority])': "
                + "\(percent(baseline))), test loss "
                + String(format: "%.4f", measured.loss))
        for item in split.test.prefix(3) {
            let ids = Array(vocabulary.encode(item.text).prefix(maxTokens))
            guard !ids.isEmpty else { continue }
            let logits = try best.predict([LabelledSequence(tokens: ids, label: item.label)])
            let row = try backend.read(logits.buffer!, offset: 0, count: classes)
            let predicted = row.indices.max { row[$0] < row[$1] }!
            say(
                "  \"\(item.text.prefix(70))\" → \(data.classNames[predicted]) (labelled \(data.classNames[item.label]))"
            )
        }
        let reduced = try evaluatedPrecisionFigures(best, on: held, settings: settings, say: say)
        return ApplicationReport(
            history: history,
            figures: [
                "test_accuracy": measured.metricValue, "test_loss": measured.loss, "baseline_accuracy": baseline,
                "validation_accuracy": bestValidationMetric(history),
                "vocabulary": Double(vocabulary.count), "training_examples": Double(training.count),
                "test_examples": Double(test.count),
            ].merging(reduced) { a, _ in a },
            seconds: Date().timeIntervalSince(started))
    }
}
