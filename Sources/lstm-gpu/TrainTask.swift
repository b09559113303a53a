import ArgumentParser
import Foundation
import LSTMApplications
import LSTMDistributed
import LSTMKit

/// What `lstm-gpu train` trains.
enum TrainTask: String, ExpressibleByArgument, CaseIterable {
    case lm, classify, tag, forecast, translate
}

/// The options of `train --task classify|tag|forecast|translate` beside the shared ones
/// (--data, sizes, optimiser, --epochs, --batch, --lr, --clip, --seed, --backend, --checkpoint,
/// --resume, --log, the cell options).
struct TaskOptions: ParsableArguments {
    @Option(help: "classify: the label column (default: label, or the first of two columns).") var labelColumn: String?
    @Option(help: "classify: the text column (default: text, or the second of two columns).") var textColumn: String?
    @Option(help: "classify: tokens kept from the start of each text (default: 64).") var maxTokens: Int?
    @Option(help: "classify, translate: words or characters (default: words).") var tokens: Tokenization?
    @Option(help: "classify, tag, translate: keep tokens seen at least N times in training (default: 2; tag 1).")
    var minCount: Int?
    @Option(help: "forecast: the series' column (default: the last numeric column).") var column: String?
    @Option(help: "forecast: past values in each input window (default: 24).") var window: Int?
    @Option(help: "forecast: values forecast at once (default: 1).") var horizon: Int?
    @Option(help: "forecast: the season in steps, for the seasonal-naive baseline (default: none).") var season: Int?
    @Flag(help: "forecast: model the changes y[t] − y[t−1] (for a series with a trend).") var difference = false
    @Option(help: "translate: the target-language file, line-aligned with --data.") var targetData: String?
    @Option(help: "translate: beam width of the test translations (default: 1, greedy).") var beam: Int?
    @Option(help: "translate: longest sentence kept, in tokens (default: 30).") var maxLength: Int?
    @Flag(help: "translate: no attention (by default the decoder has Luong dot attention over the encoder's outputs).")
    var noAttention = false
    @Option(help: "translate: write the test translations to PREFIX.hyp (references PREFIX.ref, sources PREFIX.src).")
    var translations: String?
    @Flag(help: "classify, tag: a bidirectional LSTM.") var bidirectional = false
    @Option(help: "classify: pool the steps by last, mean or max (default: mean).") var pooling: String?
    @Option(
        help: "Stop when the validation metric has not improved for N epochs in a row (default: 3; forecast 20).")
    var patience: Int?
    @Flag(help: "Never stop early.") var noEarlyStop = false
    @Option(help: "Fraction of the examples for validation (default: 0.1; forecast 0.15).") var validationFraction:
        Double?
    @Option(help: "Fraction of the examples for the test figures (default: 0.1; forecast 0.15).") var testFraction:
        Double?
    @Option(help: "Use only the first N examples (rows, sentences, values, pairs).") var limit: Int?

    /// The options given, as written on the command line ("--window"), for refusals.
    var given: [String] {
        let values: [(Any?, String)] = [
            (labelColumn, "--label-column"), (textColumn, "--text-column"), (maxTokens, "--max-tokens"),
            (tokens, "--tokens"), (minCount, "--min-count"), (column, "--column"), (window, "--window"),
            (horizon, "--horizon"), (season, "--season"), (targetData, "--target-data"), (beam, "--beam"),
            (maxLength, "--max-length"), (translations, "--translations"), (pooling, "--pooling"),
            (patience, "--patience"),
            (validationFraction, "--validation-fraction"), (testFraction, "--test-fraction"), (limit, "--limit"),
        ]
        return values.compactMap { $0.0 == nil ? nil : $0.1 } + (bidirectional ? ["--bidirectional"] : [])
            + (noEarlyStop ? ["--no-early-stop"] : []) + (noAttention ? ["--no-attention"] : [])
            + (difference ? ["--difference"] : [])
    }
}

extension Tokenization: ExpressibleByArgument {}

extension TrainCommand {
    /// The options that only the language model has, as written, when given (--eval-every and
    /// --checkpoint-every when not at their default of 200).
    var languageModelOptionsGiven: [String] {
        let values: [(Any?, String)] = [
            (seqLength, "--seq-length"), (steps, "--steps"), (minutes, "--minutes"),
            (evalEvery == 200 ? nil : evalEvery, "--eval-every"), (evalChars, "--eval-chars"),
            (checkpointEvery == 200 ? nil : checkpointEvery, "--checkpoint-every"), (projSize, "--proj-size"),
            (projClip, "--proj-clip"),
        ]
        return values.compactMap { $0.0 == nil ? nil : $0.1 }
    }

    /// Which task-specific options each task takes.
    static let taskOptionUse: [String: Set<TrainTask>] = [
        "--label-column": [.classify], "--text-column": [.classify], "--max-tokens": [.classify],
        "--tokens": [.classify, .translate], "--min-count": [.classify, .tag, .translate], "--column": [.forecast],
        "--window": [.forecast], "--difference": [.forecast], "--horizon": [.forecast], "--season": [.forecast],
        "--target-data": [.translate],
        "--beam": [.translate], "--max-length": [.translate], "--no-attention": [.translate],
        "--translations": [.translate], "--pooling": [.classify],
        "--bidirectional": [.classify, .tag],
    ]

    func validateTask() throws {
        if task == .translate, givenCell != nil {
            throw ValidationError(
                "the cell options (--peephole, --cifg, --layer-norm, clips) apply to --task lm, classify, tag and "
                    + "forecast; the translation model has plain LSTM cells")
        }
        if task == .forecast, embedding != nil {
            throw ValidationError("--embedding is for token inputs; --task forecast reads numbers")
        }
        if let option = languageModelOptionsGiven.first {
            throw ValidationError("\(option) is an option of the language model (--task lm), not of --task \(task)")
        }
        for option in taskOptions.given {
            if let tasks = Self.taskOptionUse[option], !tasks.contains(task) {
                throw ValidationError(
                    "\(option) is an option of --task \(tasks.map(\.rawValue).sorted().joined(separator: ", ")), not of \(task)"
                )
            }
        }
        guard data != nil else { throw ValidationError("--task \(task) needs --data FILE") }
        if task == .translate, taskOptions.targetData == nil {
            throw ValidationError("--task translate needs --target-data FILE (line-aligned with --data)")
        }
        if resume, checkpoint == nil { throw ValidationError("--resume needs --checkpoint") }
        if let schedule, schedule == "cosine" {
            throw ValidationError("--schedule cosine needs a step count; with --task use constant or step:EVERY:GAMMA")
        }
        if let optimizer, !["sgd", "adam", "adamw"].contains(optimizer) {
            throw ValidationError("--optimizer must be sgd, adam or adamw, got '\(optimizer)'")
        }
        if let pooling = taskOptions.pooling, PoolingMode(name: pooling) == nil {
            throw ValidationError("--pooling must be last, mean or max, got '\(pooling)'")
        }
        let counts: [(Int?, String, Int)] = [
            (epochs, "--epochs", 1), (batch, "--batch", 1), (hidden, "--hidden", 1), (embedding, "--embedding", 1),
            (layers, "--layers", 1), (taskOptions.maxTokens, "--max-tokens", 1),
            (taskOptions.minCount, "--min-count", 1),
            (taskOptions.window, "--window", 1), (taskOptions.horizon, "--horizon", 1),
            (taskOptions.season, "--season", 1),
            (taskOptions.beam, "--beam", 1), (taskOptions.maxLength, "--max-length", 1),
            (taskOptions.patience, "--patience", 0), (taskOptions.limit, "--limit", 1), (threads, "--threads", 1),
            (warmup, "--warmup", 0),
        ]
        for (value, name, minimum) in counts {
            if let value, value < minimum || value > SizeLimits.maxCount {
                throw ValidationError("\(name) must be in \(minimum)...\(SizeLimits.maxCount), got \(value)")
            }
        }
        for (value, name) in [
            (taskOptions.validationFraction, "--validation-fraction"), (taskOptions.testFraction, "--test-fraction"),
        ] {
            if let value, !(value.isFinite && value >= 0 && value < 1) {
                throw ValidationError("\(name) must be in [0, 1), got \(value)")
            }
        }
        if let dropout, !(dropout.isFinite && dropout >= 0 && dropout < 1) {
            throw ValidationError("--dropout must be in [0, 1), got \(dropout)")
        }
        if let lr, !(lr.isFinite && lr > 0) { throw ValidationError("--lr must be a finite number > 0, got \(lr)") }
        if let clip, !(clip.isFinite && clip >= 0) {
            throw ValidationError("--clip must be a finite number ≥ 0, got \(clip)")
        }
    }

    /// The application settings from the options, over the task's defaults.
    func applicationSettings() throws -> ApplicationSettings {
        var s = task == .forecast ? Forecasting.defaultSettings : ApplicationSettings()
        s.epochs = epochs ?? s.epochs
        s.batchSize = batch ?? s.batchSize
        s.learningRate = lr ?? s.learningRate
        switch optimizer ?? "adam" {
        case "sgd": s.optimizer = .sgd(momentum: momentum ?? 0.9, nesterov: nesterov, weightDecay: weightDecay ?? 0)
        case "adamw": s.optimizer = .adamW(weightDecay: weightDecay ?? 0.01)
        default: s.optimizer = .adam(weightDecay: weightDecay ?? 0)
        }
        if let schedule { s.schedule = try Self.parseSchedule(schedule, steps: nil, lr: s.learningRate) }
        s.warmup = warmup ?? 0
        if let clip { s.maxGradientNorm = clip > 0 ? clip : nil }
        s.seed = seed ?? 1
        s.patience = taskOptions.noEarlyStop ? nil : (taskOptions.patience ?? s.patience)
        s.modelPath = checkpoint
        s.resume = resume
        s.logPath = log
        s.limit = taskOptions.limit
        s.validationFraction = taskOptions.validationFraction ?? s.validationFraction
        s.testFraction = taskOptions.testFraction ?? s.testFraction
        return s
    }

    /// The network from the options, over the task's defaults.
    var networkShape: NetworkShape {
        var n = task == .forecast ? Forecasting.defaultShape : NetworkShape()
        n.embedding = embedding ?? n.embedding
        n.hidden = hidden ?? n.hidden
        n.layers = layers ?? n.layers
        n.dropout = dropout ?? 0
        n.bidirectional = taskOptions.bidirectional
        n.pooling = taskOptions.pooling.flatMap(PoolingMode.init(name:)) ?? (task == .forecast ? .last : .mean)
        n.cell = givenCell ?? LSTMCellOptions()
        return n
    }

    func runTask() throws {
        if MPIReducer.launchedByMPI {
            throw ValidationError("--task \(task) runs in one process; data parallelism (mpirun) is for --task lm")
        }
        if let threads { _ = CPUThreads.set(threads) }
        var lock: FileLock?
        if let checkpoint {
            try prepareOutputPath(checkpoint, option: "--checkpoint")
            lock = try FileLock(for: checkpoint, what: "checkpoint")
        }
        if let log { try prepareOutputPath(log, option: "--log") }
        let settings = try applicationSettings(), shape = networkShape
        try settings.validate()  // before the data is read: a bad setting is named first
        switch backend {
        case .cpu: try runTask(settings: settings, shape: shape, backend: CPUBackend())
        case .opencl: try runTask(settings: settings, shape: shape, backend: OpenCLBackend.shared(device: device))
        case .reference: throw referenceBackendRefused("train")
        }
        withExtendedLifetime(lock) {}
    }

    func runTask<Backend: ModelOps>(settings: ApplicationSettings, shape: NetworkShape, backend: Backend) throws {
        let path = data!, o = taskOptions
        let report: ApplicationReport
        switch task {
        case .classify:
            report = try TextClassification.run(
                LabelledText(
                    contentsOf: path, labelColumn: o.labelColumn, textColumn: o.textColumn, labels: .automatic),
                tokenization: o.tokens ?? .words, maxTokens: o.maxTokens ?? 64, minimumCount: o.minCount ?? 2,
                shape: shape, settings: settings, backend: backend)
        case .tag:
            report = try SequenceTagging.run(
                TaggedSentences(contentsOf: path), minimumCount: o.minCount ?? 1, shape: shape, settings: settings,
                backend: backend)
        case .forecast:
            let series = try NumericSeries(contentsOf: path, column: o.column)
            report = try Forecasting.run(
                series.values, name: series.name, window: o.window ?? 24, horizon: o.horizon ?? 1, season: o.season,
                difference: o.difference,
                shape: shape, settings: settings, backend: backend)
        case .translate:
            report = try runTranslation(settings: settings, shape: shape, backend: backend)
        case .lm: return
        }
        let stopped = report.history.stoppedBy.map { ", stopped by \($0)" } ?? ""
        printLine(
            "\(report.history.records.count) epochs\(stopped), \(String(format: "%.0f", report.seconds)) s"
                + (checkpoint.map { "; best model: \($0)" } ?? ""))
    }
}

extension TrainCommand {
    func runTranslation<Backend: ModelOps>(
        settings: ApplicationSettings, shape: NetworkShape, backend: Backend
    ) throws
        -> ApplicationReport
    {
        let o = taskOptions
        let tokenization = o.tokens ?? .words
        var decoding = Translation.Decoding()
        decoding.beamWidth = o.beam ?? 1
        decoding.outputPrefix = o.translations
        return try Translation.run(
            ParallelText(
                source: data!, target: o.targetData!, maximumLength: o.maxLength ?? 30, lengthUnit: tokenization),
            tokenization: tokenization, minimumCount: o.minCount ?? 2, attention: !o.noAttention, decoding: decoding,
            shape: shape, settings: settings, backend: backend)
    }
}
