import Foundation
import LSTMKit

/// How an application trains: the `fit` settings it passes on, the data split, early stopping,
/// where the best model goes, resuming and logging. The defaults suit the bundled data sets.
public struct ApplicationSettings: Sendable {
    public var epochs = 10
    /// B.
    public var batchSize = 32
    public var learningRate: Float = 2e-3
    public var optimizer: OptimizerKind = .adam()
    public var schedule: LearningRateSchedule = .constant
    public var warmup = 0
    /// Global gradient-norm clipping; nil: none.
    public var maxGradientNorm: Float? = 5
    /// Seeds the split, the initial weights, dropout and every shuffle.
    public var seed: UInt64 = 1
    /// Fractions of the examples held out for validation (early stopping, the best model) and
    /// for the final test figures. Forecasting cuts the series in time order instead.
    public var validationFraction = 0.1
    public var testFraction = 0.1
    /// What picks the best model and stops early: by default the validation metric the
    /// application reports (accuracy, MAE, token accuracy), which the validation loss does not
    /// always follow once a classifier grows confident; `.validationLoss` as Keras does.
    /// Without a validation set the training figure of the same kind is used.
    public var monitor: FitMonitor = .validationMetric
    /// Stop when the monitored figure has not improved for this many epochs; nil: never.
    public var patience: Int? = 3
    /// The best model (best `monitor` value) is written here with what the application needs
    /// to use it again in its metadata; its fit state file is `modelPath + ".fitstate"`. nil: a
    /// temporary file, removed at the end.
    public var modelPath: String?
    /// Continue from `modelPath + ".fitstate"` when it exists (exactly; see `FitSettings.resume`).
    public var resume = false
    /// One JSON line per epoch (`EpochLog`).
    public var logPath: String?
    public var progress: ProgressReport.Style = .automatic
    /// Use only the first N examples of the file (a quick run, the test suite's slices); nil: all.
    public var limit: Int?
    /// Also measure the best model's test figures with its LSTMs in these precisions (inference
    /// on the CPU backend, `Precision`): figures named "<figure>@<precision>", e.g.
    /// "test_accuracy@int8", from the same trained model and the same test split.
    public var testPrecisions: [Precision] = []

    public init() {}

    /// The fit settings these give, with the state file beside `modelPath`.
    func fitSettings(stateFile: String?) -> FitSettings {
        FitSettings(
            epochs: epochs, batchSize: batchSize, optimizer: optimizer, learningRate: learningRate, schedule: schedule,
            warmup: warmup, maxGradientNorm: maxGradientNorm, seed: seed, stateFile: stateFile,
            resume: resume && stateFile != nil)
    }

    /// - Throws: `LSTMError.invalidArgument` naming the first setting out of range.
    public func validate() throws {
        try fitSettings(stateFile: modelPath.map { $0 + ".fitstate" }).validate()
        if resume, modelPath == nil { throw LSTMError.invalidArgument("resuming needs a model path (--checkpoint)") }
        if let patience, patience < 0 { throw LSTMError.invalidArgument("patience is \(patience); it must be ≥ 0") }
        if let limit { try SizeLimits.requireSize(limit, "the example limit", limit: SizeLimits.maxCount) }
        guard validationFraction.isFinite, testFraction.isFinite, validationFraction >= 0, testFraction > 0,
            validationFraction + testFraction < 1
        else {
            throw LSTMError.invalidArgument(
                "the validation fraction (\(validationFraction)) must be ≥ 0 and the test fraction (\(testFraction)) > 0 "
                    + "(the applications report test figures), summing to less than 1")
        }
    }
}

/// The network an application builds: embedding and LSTM sizes, layers, direction, dropout,
/// the LSTM's cell options and how a classifier pools the sequence.
public struct NetworkShape: Sendable {
    /// E (token inputs only).
    public var embedding = 64
    /// H.
    public var hidden = 128
    /// L.
    public var layers = 1
    public var bidirectional = false
    /// Between LSTM layers, and before the output layer.
    public var dropout: Float = 0
    public var pooling: PoolingMode = .mean
    public var cell = LSTMCellOptions()

    public init() {}

    /// The LSTM for inputs of width `input`.
    func lstm(input: Int) -> LSTMConfiguration {
        LSTMConfiguration(
            inputSize: input, hiddenSize: hidden, numLayers: layers, bidirectional: bidirectional,
            dropout: layers > 1 ? dropout : 0, cell: cell)
    }

    /// D·H: the width of the LSTM's output.
    var outputWidth: Int { (bidirectional ? 2 : 1) * hidden }

    /// `[LSTM, Dropout (when > 0)]` for inputs of width `input`.
    func recurrentLayers<Backend: ModelOps>(input: Int, backend: Backend, seed: UInt64) throws -> [any Layer<Backend>] {
        var layers: [any Layer<Backend>] = [try LSTMLayer(lstm(input: input), backend: backend, seed: seed)]
        if dropout > 0 { layers.append(try Dropout(backend: backend, probability: dropout, seed: seed &+ 7)) }
        return layers
    }
}

/// What an application prints as it goes (`say`) and the figures it ends with, by name.
public struct ApplicationReport: Sendable {
    public var history: FitHistory
    /// Named results ("test_accuracy", "baseline_accuracy", "test_mae", …).
    public var figures: [String: Double]
    /// Wall time of the whole run, reading the data included.
    public var seconds: Double
}

/// Runs `fit` with an application's standard callbacks (progress, early stopping, the best model
/// saved, the log), then loads the best model back for the test figures.
func fitAndKeepBest<Backend: ModelOps>(
    _ model: SupervisedModel<Backend>, training: [LabelledSequence], validation: [LabelledSequence],
    settings: ApplicationSettings
) throws -> (history: FitHistory, best: SupervisedModel<Backend>) {
    try fitAndKeepBest(model, training: training, validation: validation, settings: settings) { path in
        let best = try SupervisedModel(Sequential<Backend>(contentsOf: path, backend: model.backend), loss: model.loss)
        best.metadata = model.metadata
        return best
    }
}

/// `fit` with the standard callbacks; `reload` reads the best model's file back.
func fitAndKeepBest<Model: Trainable>(
    _ model: Model, training: [Model.Example], validation: [Model.Example], settings: ApplicationSettings,
    reload: (String) throws -> Model
) throws -> (history: FitHistory, best: Model) {
    let temporary = settings.modelPath == nil
    let path =
        settings.modelPath
        ?? FileManager.default.temporaryDirectory.appendingPathComponent(
            "lstm-gpu-best-\(UUID().uuidString).safetensors"
        )
        .path
    defer { if temporary { try? FileManager.default.removeItem(atPath: path) } }
    let callbacks = try standardCallbacks(settings, bestModel: path, validation: !validation.isEmpty)
    let history = try model.fit(
        training: training, validation: validation.isEmpty ? nil : validation,
        settings: settings.fitSettings(stateFile: temporary ? nil : path + ".fitstate"), callbacks: callbacks)
    // Only a model this fit saved (or the resumed fit's): never a file an earlier run left at the path.
    let saver = callbacks.compactMap { $0 as? SaveBestModel }.first
    guard saver?.best != nil, FileManager.default.fileExists(atPath: path) else { return (history, model) }
    // Only this run's file: a resume whose fit was already done reloads what sits at the path,
    // which must carry this run's id (a model saved by another run is refused, naming both files).
    try history.requireModelFile(path)
    return (history, try reload(path))
}

/// Progress, early stopping and the best model on `settings.monitor` (its training counterpart
/// without a validation set), the epoch log, and a stop on a non-finite loss.
func standardCallbacks(_ settings: ApplicationSettings, bestModel: String, validation: Bool) throws -> [any FitCallback]
{
    let monitor: FitMonitor =
        validation
        ? settings.monitor
        : (settings.monitor == .validationMetric || settings.monitor == .metric ? .metric : .loss)
    var callbacks: [any FitCallback] = [
        ProgressReport(style: settings.progress), SaveBestModel(path: bestModel, monitor: monitor),
        StopOnNonFiniteLoss(),
    ]
    if let patience = settings.patience { callbacks.append(try EarlyStopping(monitor: monitor, patience: patience)) }
    if let log = settings.logPath { callbacks.append(EpochLog(path: log)) }
    return callbacks
}

/// The test figures `measure` gives for `best` quantized to each of `settings.testPrecisions`,
/// named "<figure>@<precision>" (only the figures in `names`), each precision's said in one line.
func precisionFigures<Model>(
    _ best: Model, settings: ApplicationSettings, names: [String], say: (String) -> Void,
    quantize: (Model, Precision) throws -> Model, measure: (Model) throws -> [String: Double]
) throws -> [String: Double] {
    var figures: [String: Double] = [:]
    for precision in settings.testPrecisions where precision.isReduced {
        let measured = try measure(quantize(best, precision))
        var parts: [String] = []
        for name in names {
            guard let value = measured[name] else { continue }
            figures["\(name)@\(precision)"] = value
            parts.append("\(name) \(String(format: "%.4f", value))")
        }
        say("  with the LSTM weights in \(precision): " + parts.joined(separator: ", "))
    }
    return figures
}

/// `precisionFigures` of a classifier or tagger: its accuracy and loss on `held`.
func evaluatedPrecisionFigures<Backend: ModelOps>(
    _ best: SupervisedModel<Backend>, on held: [LabelledSequence], settings: ApplicationSettings,
    say: (String) -> Void
) throws -> [String: Double] {
    try precisionFigures(
        best, settings: settings, names: ["test_accuracy", "test_loss"], say: say, quantize: { try $0.quantized($1) }
    ) { model in
        let outcome = try model.evaluate(held)
        return ["test_accuracy": outcome.metricValue, "test_loss": outcome.loss]
    }
}

extension SupervisedModel {
    /// This model with its LSTMs in `precision` (`Sequential.quantized`), same loss and metadata.
    func quantized(_ precision: Precision) throws -> SupervisedModel {
        let model = try SupervisedModel(self.model.quantized(precision), loss: loss)
        model.metadata = metadata
        return model
    }
}

/// `items` cut to `limit` (the first N) when given.
func limited<T>(_ items: [T], _ limit: Int?) -> [T] { limit.map { Array(items.prefix($0)) } ?? items }

/// "12.3%".
func percent(_ fraction: Double) -> String { String(format: "%.1f%%", 100 * fraction) }

/// A JSON string of `value` for model metadata.
func jsonString(_ value: some Encodable) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}

/// The best validation metric of the run (NaN without a validation set).
func bestValidationMetric(_ history: FitHistory) -> Double {
    let values = history.records.compactMap(\.validationMetric).filter { !$0.isNaN }
    return (history.metric.higherIsBetter ? values.max() : values.min()) ?? .nan
}

/// The class most frequent in `training` and the fraction of `held` it is: the accuracy of
/// always answering it.
func majorityBaseline(
    training: [LabelledSequence], held: [LabelledSequence], classes: Int
) -> (
    majority: Int, accuracy: Double
) {
    let counts = (0..<classes).map { c in training.filter { $0.target == .label(c) }.count }
    let majority = counts.indices.max { counts[$0] < counts[$1] }!
    return (majority, Double(held.filter { $0.target == .label(majority) }.count) / Double(max(1, held.count)))
}

/// `print` and a flush: an application's lines keep their place among the progress report's
/// (written unbuffered) when standard output is a pipe or a file. A line may quote what the
/// data holds (class names, tokens, sentences), so control characters are escaped (`\u{1B}`,
/// never a terminal escape); a line break of the application's own separates lines.
public func printLine(_ line: String) {
    print(
        line.split(separator: "\n", omittingEmptySubsequences: false).map { terminalSafe(String($0)) }
            .joined(separator: "\n"))
    fflush(nil)
}

/// The held-out examples the test figures come from.
/// - Throws: `LSTMError` when the split left none (too few examples for the test fraction).
func requireTest<T>(_ test: [T], of total: Int, _ settings: ApplicationSettings) throws -> [T] {
    guard !test.isEmpty else {
        throw LSTMError.invalidArgument(
            "no test examples: \(total) examples with a test fraction of \(settings.testFraction) leave none; "
                + "give more data or a larger test fraction")
    }
    return test
}
