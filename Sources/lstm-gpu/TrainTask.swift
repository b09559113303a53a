import ArgumentParser
import Foundation
import LSTMApplications
import LSTMCommandLine
import LSTMDistributed
import LSTMKit

/// What `lstm-gpu train` trains.
enum TrainTask: String, ExpressibleByArgument, CaseIterable {
    case lm, classify, tag, forecast, translate

    /// The applications' names (every task but lm).
    static let applications = ["classify", "tag", "forecast", "translate"]
}

/// The options that belong to one or two of the applications (`use` says which).
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

    func validate() throws {
        try CommandEntry.validating {
            for (value, name) in [
                (minCount, "--min-count"), (window, "--window"), (horizon, "--horizon"), (season, "--season"),
                (maxLength, "--max-length"),
            ] {
                try SettingBounds.count(value, name, minimum: 1)
            }
            // What sizes a tensor is bounded as a width.
            try SettingBounds.count(maxTokens, "--max-tokens", minimum: 1, maximum: SizeLimits.maxWidth)
            try SettingBounds.count(beam, "--beam", minimum: 1, maximum: SizeLimits.maxWidth)
        }
    }

    /// The options given, as written on the command line ("--window"), for refusals.
    var given: [String] {
        let values: [(Any?, String)] = [
            (labelColumn, "--label-column"), (textColumn, "--text-column"), (maxTokens, "--max-tokens"),
            (tokens, "--tokens"), (minCount, "--min-count"), (column, "--column"), (window, "--window"),
            (horizon, "--horizon"), (season, "--season"), (targetData, "--target-data"), (beam, "--beam"),
            (maxLength, "--max-length"), (translations, "--translations"),
        ]
        return values.compactMap { $0.0 == nil ? nil : $0.1 } + (noAttention ? ["--no-attention"] : [])
            + (difference ? ["--difference"] : [])
    }

    /// Which tasks take each option that not every application takes.
    static let use: [String: Set<TrainTask>] = [
        "--label-column": [.classify], "--text-column": [.classify], "--max-tokens": [.classify],
        "--tokens": [.classify, .translate], "--min-count": [.classify, .tag, .translate], "--column": [.forecast],
        "--window": [.forecast], "--difference": [.forecast], "--horizon": [.forecast], "--season": [.forecast],
        "--target-data": [.translate], "--beam": [.translate], "--max-length": [.translate],
        "--no-attention": [.translate], "--translations": [.translate], "--pooling": [.classify],
        "--bidirectional": [.classify, .tag],
    ]
}

extension TrainCommand {
    func validateTask() throws {
        if task == .translate, cell.given != nil {
            throw ValidationError(
                "the cell options (--peephole, --cifg, --layer-norm, clips) apply to --task lm, classify, tag and "
                    + "forecast; the translation model has plain LSTM cells")
        }
        if task == .forecast, sizes.embedding != nil {
            throw ValidationError("--embedding is for token inputs; --task forecast reads numbers")
        }
        let languageModelOnly =
            languageModel.given + (sizes.projSize == nil ? [] : ["--proj-size"])
            + (cell.projClip == nil ? [] : ["--proj-clip"])
        if let option = languageModelOnly.first {
            throw ValidationError("\(option) is an option of the language model (--task lm), not of --task \(task)")
        }
        for option in taskOptions.given + application.given {
            if let tasks = TaskOptions.use[option], !tasks.contains(task) {
                throw ValidationError(
                    "\(option) is an option of --task \(tasks.map(\.rawValue).sorted().joined(separator: ", ")), "
                        + "not of \(task)")
            }
        }
        try cell.validate(projects: false, resuming: false)
        guard data != nil else { throw ValidationError("--task \(task) needs --data FILE") }
        if task == .translate, taskOptions.targetData == nil {
            throw ValidationError("--task translate needs --target-data FILE (line-aligned with --data)")
        }
        if let season = taskOptions.season, season > (taskOptions.window ?? 24) {
            throw ValidationError(
                "--season \(season) must not exceed --window \(taskOptions.window ?? 24) (the seasonal-naive "
                    + "baseline looks one season back within a window)")
        }
        if optimizer.schedule == "cosine" {
            throw ValidationError("--schedule cosine needs a step count; with --task use constant or step:EVERY:GAMMA")
        }
        // The settings as the application will check them (the fractions together, ...), before any data
        // is read: a bad value is a usage error naming it.
        do { try applicationSettings().validate() } catch let error as LSTMError {
            throw ValidationError(error.description)
        }
    }

    /// The application settings from the options, over the task's defaults.
    func applicationSettings() throws -> ApplicationSettings {
        try ApplicationSettings(
            task == .forecast ? Forecasting.defaultSettings : ApplicationSettings(), loop: loop, optimizer: optimizer,
            application: application, output: output)
    }

    /// The network from the options, over the task's defaults.
    var networkShape: NetworkShape {
        NetworkShape(
            task == .forecast ? Forecasting.defaultShape : NetworkShape(), sizes: sizes, cell: cell,
            application: application)
    }

    func runTask() throws {
        if MPIReducer.launchedByMPI {
            throw ValidationError("--task \(task) runs in one process; data parallelism (mpirun) is for --task lm")
        }
        applyThreads()
        var inputs = [(option: "--data", path: data!)]
        if let target = taskOptions.targetData { inputs.append(("--target-data", target)) }
        let lock = try output.prepareApplicationOutputs(inputs: inputs, translations: taskOptions.translations)
        let settings = try applicationSettings(), shape = networkShape
        try engine.withModelBackend("train") { backend in
            try runTask(settings: settings, shape: shape, backend: backend)
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
                difference: o.difference, shape: shape, settings: settings, backend: backend)
        case .translate:
            let tokenization = o.tokens ?? .words
            var decoding = Translation.Decoding()
            decoding.beamWidth = o.beam ?? 1
            decoding.outputPrefix = o.translations
            report = try Translation.run(
                ParallelText(
                    source: path, target: o.targetData!, maximumLength: o.maxLength ?? 30, lengthUnit: tokenization),
                tokenization: tokenization, minimumCount: o.minCount ?? 2, attention: !o.noAttention,
                decoding: decoding, shape: shape, settings: settings, backend: backend)
        case .lm: return
        }
        try report.requireConverged(program: "lstm-gpu train")
        let stopped = report.history.stoppedBy.map { ", stopped by \(terminalSafe($0))" } ?? ""
        printLine(
            "\(report.history.records.count) epochs\(stopped), \(String(format: "%.0f", report.seconds)) s"
                + (output.checkpoint.map { "; best model: \($0)" } ?? ""))
    }
}
