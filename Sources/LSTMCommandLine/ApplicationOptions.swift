import ArgumentParser
import Foundation
import LSTMApplications
import LSTMKit

extension Tokenization: ExpressibleByArgument {}

/// The training loop's length and batch: `--epochs`, `--batch`, `--seed` (every training
/// command: the language model and the applications).
public struct TrainingLoopOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: "Epochs to train (lm: stop after this many epochs in all).")
    public var epochs: Int?
    @Option(parsing: .unconditional, help: "Sequences per batch (lm: streams per batch, per rank under MPI).")
    public var batch: Int?
    @Option(
        parsing: .unconditional,
        help: "Seed for initialisation, shuffling and dropout (default: 1; lm --resume: the checkpoint's).")
    public var seed: UInt64?

    public init() {}

    public func validate() throws {
        try CommandEntry.validating {
            try SettingBounds.count(epochs, "--epochs", minimum: 1)
            try SettingBounds.count(batch, "--batch", minimum: 1)
        }
    }
}

/// The output files of a training run: `--checkpoint`, `--resume`, `--log`.
public struct OutputOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Checkpoint file (safetensors; its folder is created if missing). With an application: the best model, "
                + "and FILE.fitstate to resume from."))
    public var checkpoint: String?
    @Flag(
        help: ArgumentHelp(
            "Continue from --checkpoint exactly. lm: the model, batch, length and optimiser come from the checkpoint "
                + "unless given; applications: give the options of the run being resumed (FILE.fitstate refuses "
                + "another model, data or settings, naming what differs)."))
    public var resume = false
    @Option(help: "Write JSON lines to this file (lm: one per step and per evaluation; applications: one per epoch).")
    public var log: String?

    public init() {}

    public func validate() throws {
        if resume, checkpoint == nil { throw ValidationError("--resume needs --checkpoint") }
        if let checkpoint, checkpoint.isEmpty { throw ValidationError("--checkpoint needs a file name, got ''") }
        if let log, log.isEmpty { throw ValidationError("--log needs a file name, got ''") }
    }
}

/// What the applications (classify, tag, forecast, translate, and the rows of numbers) share
/// beside the loop: early stopping, the splits, a limit, the direction and the pooling.
public struct ApplicationOptions: ParsableArguments {
    @Option(
        parsing: .unconditional,
        help: "Stop when the validation metric has not improved for N epochs in a row (default: the program's).")
    public var patience: Int?
    @Flag(help: "Never stop early.")
    public var noEarlyStop = false
    @Option(
        parsing: .unconditional, help: "Fraction of the examples for validation (default: the program's).")
    public var validationFraction: Double?
    @Option(
        parsing: .unconditional, help: "Fraction of the examples for the test figures (default: the program's).")
    public var testFraction: Double?
    @Option(parsing: .unconditional, help: "Use only the first N examples (rows, sentences, values, pairs).")
    public var limit: Int?
    @Flag(help: "A bidirectional LSTM (classifiers and taggers).")
    public var bidirectional = false
    @Option(help: "Pool a classifier's steps by last, mean or max (default: the application's).")
    public var pooling: String?
    @Option(
        help: ArgumentHelp(
            "Also test the best model with its LSTM weights in these precisions, comma-separated: bf16, fp16, int8 "
                + "(CPU backend; figures <name>@<precision>).", valueName: "list"))
    public var testPrecision: String?

    /// Refuses `--test-precision` on OpenCL, which computes in fp32 only.
    public func validatePrecision(backend: BackendKind) throws {
        if testPrecision != nil, backend == .opencl {
            throw ValidationError(
                "--test-precision runs the quantized model on the CPU backend; OpenCL computes in fp32 only")
        }
    }

    /// `--test-precision` parsed (reduced precisions, in the order given).
    public var testPrecisions: [Precision] {
        get throws {
            try testPrecision.map {
                try Precision.list($0, option: "--test-precision", allowed: [.bf16, .fp16, .int8])
            }
                ?? []
        }
    }

    public init() {}

    public func validate() throws {
        try CommandEntry.validating {
            try SettingBounds.count(patience, "--patience", minimum: 0)
            try SettingBounds.count(limit, "--limit", minimum: 1)
            try SettingBounds.fraction(validationFraction, "--validation-fraction")
            try SettingBounds.fraction(testFraction, "--test-fraction")
        }
        if let pooling, PoolingMode(name: pooling) == nil {
            throw ValidationError("--pooling must be last, mean or max, got '\(pooling)'")
        }
        _ = try testPrecisions
    }

    /// The options given, as written, for refusals of options a task does not use.
    public var given: [String] {
        let values: [(Any?, String)] = [
            (patience, "--patience"), (validationFraction, "--validation-fraction"),
            (testFraction, "--test-fraction"), (limit, "--limit"), (pooling, "--pooling"),
            (testPrecision, "--test-precision"),
        ]
        return values.compactMap { $0.0 == nil ? nil : $0.1 } + (noEarlyStop ? ["--no-early-stop"] : [])
            + (bidirectional ? ["--bidirectional"] : [])
    }
}

extension ApplicationSettings {
    /// The options over `defaults` (an application's): the one mapping from the command line to
    /// an application's settings, for `lstm-gpu train --task` and the example programs.
    public init(
        _ defaults: ApplicationSettings, loop: TrainingLoopOptions, optimizer: OptimizerOptions,
        application: ApplicationOptions, output: OutputOptions
    ) throws {
        self = defaults
        epochs = loop.epochs ?? epochs
        batchSize = loop.batch ?? batchSize
        seed = loop.seed ?? seed
        learningRate = optimizer.lr ?? learningRate
        if optimizer.optimizer != nil || optimizer.weightDecay != nil || optimizer.momentum != nil
            || optimizer.nesterov
        {
            self.optimizer = optimizer.kind
        }
        if let schedule = try optimizer.learningRateSchedule(steps: nil, learningRate: learningRate) {
            self.schedule = schedule
        }
        warmup = optimizer.warmup ?? warmup
        if let clip = optimizer.clip { maxGradientNorm = clip > 0 ? clip : nil }
        patience = application.noEarlyStop ? nil : (application.patience ?? patience)
        validationFraction = application.validationFraction ?? validationFraction
        testFraction = application.testFraction ?? testFraction
        limit = application.limit
        testPrecisions = try application.testPrecisions
        modelPath = output.checkpoint
        resume = output.resume
        logPath = output.log
    }
}

extension NetworkShape {
    /// The options over `defaults` (an application's network).
    public init(
        _ defaults: NetworkShape, sizes: ModelSizeOptions, cell: CellOptionFlags, application: ApplicationOptions
    ) {
        self = defaults
        embedding = sizes.embedding ?? embedding
        hidden = sizes.hidden ?? hidden
        layers = sizes.layers ?? layers
        dropout = sizes.dropout ?? dropout
        if application.bidirectional { bidirectional = true }
        if let pooling = application.pooling.flatMap(PoolingMode.init(name:)) { self.pooling = pooling }
        if let given = cell.given { self.cell = given }
    }
}

/// Every option an application program (the examples) shares with `lstm-gpu train --task`, in
/// one group: the model, cell, optimiser, loop, application, output and backend options.
public struct ApplicationProgramOptions: ParsableArguments {
    @OptionGroup(title: "Model") public var sizes: ModelSizeOptions
    @OptionGroup(title: "Cell options") public var cell: CellOptionFlags
    @OptionGroup(title: "Optimiser") public var optimizer: OptimizerOptions
    @OptionGroup(title: "Training loop") public var loop: TrainingLoopOptions
    @OptionGroup(title: "Applications") public var application: ApplicationOptions
    @OptionGroup(title: "Output files") public var output: OutputOptions
    @OptionGroup(title: "Backend") public var engine: BackendOptions

    public init() {}

    /// Checks what the options say together, over the program's defaults, before any data is
    /// read; `unused` names options the program has no use for (refused with `reason`).
    public func validate(
        program: String, settings defaults: ApplicationSettings, unused: [String] = [], reason: String = ""
    ) throws {
        try engine.requireModelBackend(program)
        try application.validatePrecision(backend: engine.backend)
        let given = sizes.given + application.given + (cell.given == nil ? [] : ["the cell options"])
        for option in ["--proj-size"] + unused where given.contains(option) {
            throw ValidationError(
                "\(option) is not an option of \(program)" + (option == "--proj-size" ? " (no projection)" : reason))
        }
        if cell.projClip != nil { throw ValidationError("--proj-clip is not an option of \(program) (no projection)") }
        try cell.validate(projects: false, resuming: false)
        if optimizer.schedule == "cosine" {
            throw ValidationError("--schedule cosine needs a step count; use constant or step:EVERY:GAMMA")
        }
        do { try settings(defaults).validate() } catch let error as LSTMError {
            throw ValidationError(error.description)
        }
    }

    /// The settings over the program's defaults.
    public func settings(_ defaults: ApplicationSettings) throws -> ApplicationSettings {
        try ApplicationSettings(defaults, loop: loop, optimizer: optimizer, application: application, output: output)
    }

    /// The network over the program's defaults.
    public func shape(_ defaults: NetworkShape) -> NetworkShape {
        NetworkShape(defaults, sizes: sizes, cell: cell, application: application)
    }
}

extension ApplicationReport {
    /// Ends the program with exit status 3 (diverged) when the fit stopped on a non-finite loss,
    /// saying at which epoch and what to try; returns otherwise.
    public func requireConverged(program: String) throws {
        guard let last = history.records.last, !last.loss.isFinite else { return }
        printError(
            "\(program): training diverged: the loss is \(last.loss.isNaN ? "NaN" : "\(last.loss)") at epoch "
                + "\(last.epoch); try a lower --lr or a gradient clip (--clip)")
        throw ExitCode(ExitStatus.diverged)
    }
}

extension OutputOptions {
    /// Checks every output of an application run before any data is read and locks the
    /// checkpoint: each path can be written (its folder created), none is an input or another
    /// output (the checkpoint's fit state `FILE.fitstate` included), and `--resume` has a fit
    /// state to resume from.
    /// - Parameters: `inputs` the data files, each as (option, path); `translations` the
    ///   prefix of the translation files the run writes (`Translation.Decoding.outputFiles`).
    /// - Returns: the lock held on the checkpoint (keep it for the run), if there is one.
    public func prepareApplicationOutputs(
        inputs: [(option: String, path: String)], translations: String? = nil
    ) throws -> FileLock? {
        var outputs =
            translations.map { prefix in
                Translation.Decoding.outputFiles(prefix: prefix).map {
                    (option: "--translations (.\($0.suffix))", $0.path)
                }
            } ?? []
        if let checkpoint {
            outputs += [("--checkpoint", checkpoint), ("--checkpoint's fit state", checkpoint + ".fitstate")]
        }
        if let log { outputs.append(("--log", log)) }
        try requireDistinctPaths(inputs: inputs, outputs: outputs)
        if let checkpoint, resume, !FileManager.default.fileExists(atPath: checkpoint + ".fitstate") {
            throw LSTMError.io(
                path: checkpoint + ".fitstate",
                reason: "--resume: there is no fit state to resume from; leave out --resume to start afresh")
        }
        if checkpoint == nil {
            // Without --checkpoint the best model is kept in the temporary folder: it must be usable.
            let folder = NSTemporaryDirectory()
            var info = stat()
            let problem: String? =
                stat(folder, &info) != 0
                ? String(cString: strerror(errno))
                : info.st_mode & S_IFMT != S_IFDIR
                    ? "not a folder" : access(folder, W_OK | X_OK) != 0 ? String(cString: strerror(errno)) : nil
            if let problem {
                throw LSTMError.io(
                    path: folder,
                    reason: "TMPDIR (where the best model is kept without --checkpoint) is not a writable folder: "
                        + problem)
            }
        }
        for (option, path) in outputs { try prepareOutputPath(path, option: option) }
        guard let checkpoint else { return nil }
        return try FileLock(for: checkpoint, what: "checkpoint")
    }
}

/// A program's defaults as its options write them, for its `--help` ("--epochs 10 --batch 32 …"):
/// the shared groups' help cannot know each program's numbers.
public func defaultsHelp(
    _ s: ApplicationSettings, _ n: NetworkShape, tokens: Bool = true, pooling: Bool = true
)
    -> String
{
    var parts = [
        "--epochs \(s.epochs)", "--batch \(s.batchSize)", "--lr \(s.learningRate)",
        s.patience.map { "--patience \($0)" } ?? "--no-early-stop", "--validation-fraction \(s.validationFraction)",
        "--test-fraction \(s.testFraction)", "--clip \(s.maxGradientNorm ?? 0)", "--seed \(s.seed)",
        "--hidden \(n.hidden)", "--layers \(n.layers)",
    ]
    if tokens { parts.append("--embedding \(n.embedding)") }
    if n.bidirectional { parts.append("--bidirectional") }
    if pooling {
        parts.append("--pooling \(n.pooling == .last ? "last" : n.pooling == .mean ? "mean" : "max")")
    }
    return parts.joined(separator: " ")
}
