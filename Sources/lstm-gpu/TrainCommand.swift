import ArgumentParser
import Foundation
import LSTMApplications
import LSTMCommandLine
import LSTMKit

/// `lstm-gpu train`: the character language model (`--task lm`, the default) or an application
/// (`--task classify|tag|forecast|translate`). The options shared with other commands and the
/// example programs are the option groups of LSTMCommandLine; this file declares the command
/// and sends it to the task's run (TrainLanguageModel.swift, TrainTask.swift).
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a character-level LSTM language model (truncated BPTT, held-out evaluation, checkpoints).",
        discussion: """
            Without --data it trains on a small public-domain text built into the binary; \
            scripts/fetch-shakespeare writes the 38 plays (5 MB) to data/shakespeare.txt. The last \
            5% of the text is the held-out split. Stop by steps, epochs or minutes (the first \
            reached). --checkpoint is written atomically every --checkpoint-every steps and at the \
            end; --resume continues from it exactly.

            Data parallelism: `mpirun -np N lstm-gpu train …` runs N ranks, each with --batch \
            streams of the global batch of N·batch, on its own backend (OpenCL devices by local \
            rank unless --device is given). Gradients are averaged with MPI_Allreduce; rank 0 \
            writes checkpoints and logs. N ranks take the same steps as one process with \
            --batch N·batch.

            With --task, an application is trained on the user's file with fit (docs/training.md). \
            Defaults of forecast: \(defaultsHelp(Forecasting.defaultSettings, Forecasting.defaultShape, tokens: false, pooling: false)); \
            of classify, tag and translate: \(defaultsHelp(ApplicationSettings(), NetworkShape())) (tag and \
            translate pool nothing).
            """)

    @Option(
        help: ArgumentHelp(
            "lm (the default: a character language model), classify (labelled text, a TSV/CSV), tag (token-per-line "
                + "tagging), forecast (a numeric series, CSV) or translate (--data and --target-data, line-aligned).",
            valueName: "task"))
    var task: TrainTask = .lm
    @Option(help: "UTF-8 text file to train on (default: the built-in text); with --task, the task's data file.")
    var data: String?
    @OptionGroup(title: "Model") var sizes: ModelSizeOptions
    @OptionGroup(title: "Cell options") var cell: CellOptionFlags
    @OptionGroup(title: "Optimiser") var optimizer: OptimizerOptions
    @OptionGroup(title: "Training loop") var loop: TrainingLoopOptions
    @OptionGroup(title: "Output files") var output: OutputOptions
    @OptionGroup(title: "Backend") var engine: BackendOptions
    @Option(parsing: .unconditional, help: "CPU threads (at most the cores).") var threads: Int?
    @OptionGroup(title: "The language model (--task lm)") var languageModel: LanguageModelOptions
    @OptionGroup(title: "Applications (--task classify, tag, forecast, translate)") var application: ApplicationOptions
    @OptionGroup(title: "Options of one task") var taskOptions: TaskOptions

    func validate() throws {
        try engine.requireModelBackend("train")
        try application.validatePrecision(backend: engine.backend)
        try CommandEntry.validating { try SettingBounds.count(threads, "--threads", minimum: 1) }
        if task == .lm { try validateLanguageModel() } else { try validateTask() }
    }

    func run() throws {
        if task == .lm { try runLanguageModel() } else { try runTask() }
    }

    /// Sets the CPU threads from --threads, saying when fewer are used than asked for.
    func applyThreads() {
        guard let threads else { return }
        let used = CPUThreads.set(threads)
        if used < threads {
            printError(
                "note: --threads \(threads) is more than the \(CPUThreads.maximum) cores; using \(used) "
                    + "(the step loop meets at a barrier every step, so extra threads only wait)")
        }
    }
}
