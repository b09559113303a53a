import Foundation
import LSTMKit

/// Classifying numeric rows read as sequences: each row of a table (one number per column, plus
/// a label column) is cut into T steps of F = columns / T features, and an LSTM reads the steps
/// (→ pooling → Linear to the classes). The 8×8 digits are 8 steps (image rows) of 8 pixels.
///
/// Features are scaled by the largest |value| in the training split (so pixels 0…16 become
/// 0…1); the classes are the label column's distinct values, sorted as numbers when they all
/// are numbers.
public enum RowSequenceClassification {
    public static let classesKey = TextClassification.classesKey
    /// The metadata key of the scale the features were divided by (a JSON number) and of the steps T.
    public static let scaleKey = "lstm_gpu_feature_scale"
    public static let stepsKey = "lstm_gpu_steps"

    /// Trains and tests on `table`.
    /// - Returns: figures "test_accuracy", "baseline_accuracy", "validation_accuracy".
    /// - Throws: `LSTMError` naming the line and column of a cell that is not a finite number,
    ///   when the feature columns do not divide into `steps`, or for settings out of range.
    public static func run<Backend: ModelOps>(
        _ table: DelimitedTable, labelColumn: String = "label", steps: Int, shape: NetworkShape,
        settings: ApplicationSettings, backend: Backend, say: (String) -> Void = printLine
    ) throws -> ApplicationReport {
        let started = Date()
        try settings.validate()
        let labelIndex = try table.columnIndex(named: labelColumn)
        let featureColumns = table.header.indices.filter { $0 != labelIndex }
        try SizeLimits.requireSize(steps, "steps")
        guard !featureColumns.isEmpty, featureColumns.count % steps == 0 else {
            throw LSTMError.invalidArgument(
                "\(table.path): \(featureColumns.count) feature columns do not make \(steps) steps of equal width")
        }
        let width = featureColumns.count / steps
        var rows: [(features: [Float], label: String)] = []
        for (row, line) in zip(limited(table.rows, settings.limit), table.lineNumbers) {
            let features = try featureColumns.map { column -> Float in
                guard let value = Float(row[column].trimmingCharacters(in: .whitespaces)), value.isFinite else {
                    throw LSTMError.io(
                        path: table.path,
                        reason:
                            "line \(line): \(displayed(row[column])) in column '\(table.header[column])' is not a finite number"
                    )
                }
                return value
            }
            rows.append((features, row[labelIndex].trimmingCharacters(in: .whitespaces)))
        }
        let names = Set(rows.map(\.label))
        let classNames =
            names.allSatisfy { Double($0) != nil }
            ? names.sorted { Double($0)! < Double($1)! } : names.sorted()
        guard classNames.count >= 2 else {
            throw LSTMError.invalidArgument(
                "classification needs at least 2 classes; \(table.path) has \(classNames.count)")
        }
        let classOf = Dictionary(uniqueKeysWithValues: classNames.enumerated().map { ($1, $0) })
        let split = try DataSplit(
            shuffling: rows, validationFraction: settings.validationFraction, testFraction: settings.testFraction,
            seed: settings.seed)
        let largest = split.training.flatMap(\.features).map(abs).max() ?? 1
        let scale = largest > 0 ? largest : 1
        func examples(_ items: [(features: [Float], label: String)]) -> [LabelledSequence] {
            items.map {
                LabelledSequence(
                    .steps($0.features.map { $0 / scale }, width: width), target: .label(classOf[$0.label]!))
            }
        }
        let training = examples(split.training), validation = examples(split.validation), test = examples(split.test)
        say(
            "\(rows.count) rows → \(training.count) training, \(validation.count) validation, \(test.count) test; "
                + "\(steps) steps of \(width) features (scaled by 1/\(scale)); \(classNames.count) classes; \(backend.name)"
        )
        var seeds = SeededGenerator(seed: settings.seed &+ 202)
        let layers: [any Layer<Backend>] =
            (try shape.recurrentLayers(input: width, backend: backend, seed: seeds.next()))
            + [
                SequencePooling(backend: backend, mode: shape.pooling),
                try Linear(
                    backend: backend, inputSize: shape.outputWidth, outputSize: classNames.count, seed: seeds.next()),
            ]
        let model = try SupervisedModel(Sequential<Backend>(layers), loss: .crossEntropy())
        model.metadata = [classesKey: try jsonString(classNames), scaleKey: "\(scale)", stepsKey: "\(steps)"]
        let (history, best) = try fitAndKeepBest(model, training: training, validation: validation, settings: settings)
        let held = try requireTest(test, of: rows.count, settings)
        let measured = try best.evaluate(held)
        let baseline = majorityBaseline(training: training, held: held, classes: classNames.count).accuracy
        say(
            "test accuracy \(percent(measured.metricValue)) on \(held.count) rows (majority class: \(percent(baseline)))"
        )
        let reduced = try evaluatedPrecisionFigures(best, on: held, settings: settings, say: say)
        return ApplicationReport(
            history: history,
            figures: [
                "test_accuracy": measured.metricValue, "test_loss": measured.loss, "baseline_accuracy": baseline,
                "validation_accuracy": bestValidationMetric(history),
            ].merging(reduced) { a, _ in a },
            seconds: Date().timeIntervalSince(started))
    }
}

/// A cell's text for an error message (quoted, escapes shown).
func displayed(_ text: String) -> String { text.debugDescription }
