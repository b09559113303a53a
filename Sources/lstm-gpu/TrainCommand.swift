import ArgumentParser
import Foundation
import LSTMDistributed
import LSTMKit

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
            """)

    @Option(
        help: ArgumentHelp(
            "lm (the default: a character language model), classify (labelled text, a TSV/CSV), tag (token-per-line "
                + "tagging), forecast (a numeric series, CSV) or translate (--data and --target-data, line-aligned).",
            valueName: "task"))
    var task: TrainTask = .lm
    @Option(help: "UTF-8 text file to train on (default: the built-in text); with --task, the task's data file.")
    var data: String?
    @OptionGroup(title: "Options of --task classify, tag, forecast and translate") var taskOptions: TaskOptions
    @Option(parsing: .unconditional, help: "LSTM layers (default: 1, or the checkpoint's with --resume).") var layers:
        Int?
    @Option(parsing: .unconditional, help: "LSTM hidden size H (default: 512, or the checkpoint's).") var hidden: Int?
    @Option(parsing: .unconditional, help: "Embedding size E (default: 64, or the checkpoint's).") var embedding: Int?
    @Option(
        name: .customLong("proj-size"), parsing: .unconditional,
        help: "Project h to P features, an LSTMP model (default: 0, none; or the checkpoint's).") var projSize: Int?
    @Option(parsing: .unconditional, help: "Dropout between LSTM layers (default: 0, or the checkpoint's).")
    var dropout: Float?
    @Flag(help: "Peephole connections p ⊙ c into the i, f and o gates.") var peephole = false
    @Flag(help: "Coupled input-forget gate (CIFG): i = 1 − f, no input-gate weights.") var cifg = false
    @Flag(name: .customLong("layer-norm"), help: "Layer-normalise each gate's pre-activation over its units.")
    var layerNorm = false
    @Option(
        name: .customLong("layer-norm-eps"), parsing: .unconditional, help: "ε of --layer-norm (default: 1e-5).")
    var layerNormEps: Float?
    @Option(
        name: .customLong("activation-clip"), parsing: .unconditional,
        help: "Clamp every gate pre-activation to [−C, C] (default: off).") var activationClip: Float?
    @Option(
        name: .customLong("cell-clip"), parsing: .unconditional,
        help: "Clamp the cell state to [−C, C] after each update (default: off).") var cellClip: Float?
    @Option(
        name: .customLong("proj-clip"), parsing: .unconditional,
        help: "Clamp the projected h to [−C, C] (with --proj-size; default: off).") var projClip: Float?
    @Option(
        name: .customLong("seq-length"), parsing: .unconditional,
        help: "Characters per chunk T, the truncated BPTT length (default: 100, or the checkpoint's).") var seqLength:
        Int?
    @Option(
        parsing: .unconditional, help: "Streams per batch B, per rank under MPI (default: 32, or the checkpoint's).")
    var batch: Int?
    @Option(help: "sgd, adam or adamw (default: adam, or the checkpoint's).") var optimizer: String?
    @Option(parsing: .unconditional, help: "Learning rate (default: 0.002, or the checkpoint's).") var lr: Float?
    @Option(parsing: .unconditional, help: "SGD momentum (default: 0.9, or the checkpoint's).") var momentum: Float?
    @Flag(help: "Nesterov momentum (SGD).") var nesterov = false
    @Option(
        name: .customLong("weight-decay"), parsing: .unconditional,
        help: "Weight decay (default: 0; AdamW 0.01; or the checkpoint's).") var weightDecay: Float?
    @Option(
        parsing: .unconditional, help: "Clip gradients to this global norm, 0: off (default: 5, or the checkpoint's).")
    var clip: Float?
    @Option(help: "constant, cosine or step:EVERY:GAMMA (default: constant, or the checkpoint's).") var schedule:
        String?
    @Option(parsing: .unconditional, help: "Linear warm-up steps (default: 0, or the checkpoint's).") var warmup: Int?
    @Option(
        parsing: .unconditional,
        help:
            ArgumentHelp(
                "Stop after this many steps in all (with --resume: counted from the start of the first run, not "
                    + "from the resume).")
    )
    var steps: Int?
    @Option(parsing: .unconditional, help: "Stop after this many epochs in all.") var epochs: Int?
    @Option(
        parsing: .unconditional,
        help: "Stop after this many minutes of wall time (this run, final evaluation included).") var minutes: Double?
    @Option(
        name: .customLong("eval-every"), parsing: .unconditional,
        help: "Evaluate on the held-out split every N steps (0: only at the end).") var evalEvery = 200
    @Option(
        name: .customLong("eval-chars"), parsing: .unconditional,
        help: "Evaluate on at most the first N held-out characters (default: all).") var evalChars: Int?
    @Option(help: "cpu or opencl.") var backend: BackendKind = .cpu
    @Option(help: "OpenCL device: index or name substring.") var device: String?
    @Option(parsing: .unconditional, help: "CPU threads (at most the cores).") var threads: Int?
    @Option(parsing: .unconditional, help: "Seed for initialisation and dropout (default: 1, or the checkpoint's).")
    var seed: UInt64?
    @Option(help: "Checkpoint file (safetensors); its folder is created if missing.") var checkpoint: String?
    @Option(
        name: .customLong("checkpoint-every"), parsing: .unconditional,
        help: "Write the checkpoint every N steps (0: only at the end).")
    var checkpointEvery = 200
    @Flag(
        help:
            ArgumentHelp(
                "Continue from --checkpoint: the model, batch, sequence length and optimiser settings are taken "
                    + "from it unless given.")
    )
    var resume = false
    @Option(help: "Write one JSON line per step (and per evaluation) to this file; with --task, one per epoch.")
    var log: String?
    @Option(
        name: .customLong("collective-timeout"), parsing: .unconditional,
        help: "Under MPI: seconds a collective may wait before the job is stopped.")
    var collectiveTimeout: Double = 300

    func validate() throws {
        if backend == .reference { throw referenceBackendRefused("train") }
        if task != .lm { return try validateTask() }
        if let option = taskOptions.given.first {
            let tasks =
                TrainCommand.taskOptionUse[option].map { $0.map(\.rawValue).sorted() } ?? [
                    "classify", "tag", "forecast", "translate",
                ]
            throw ValidationError("\(option) is an option of --task \(tasks.joined(separator: ", ")), not of lm")
        }
        func atLeast(_ value: Int?, _ minimum: Int, _ name: String) throws {
            if let value, value < minimum { throw ValidationError("\(name) must be at least \(minimum), got \(value)") }
        }
        func finite(
            _ value: Double?, _ name: String, _ range: ClosedRange<Double> = 0...Double.greatestFiniteMagnitude
        ) throws {
            guard let value else { return }
            guard value.isFinite else { throw ValidationError("\(name) must be a finite number, got \(value)") }
            guard range.contains(value) else {
                throw ValidationError("\(name) must be in \(range.lowerBound)...\(range.upperBound), got \(value)")
            }
        }
        try atLeast(layers, 1, "--layers")
        try atLeast(hidden, 1, "--hidden")
        try atLeast(embedding, 1, "--embedding")
        try atLeast(projSize, 0, "--proj-size")
        if let projSize, projSize > 0, hidden != nil || !resume, projSize >= (hidden ?? 512) {
            throw ValidationError("--proj-size must be smaller than --hidden (\(hidden ?? 512)), got \(projSize)")
        }
        try atLeast(seqLength, 1, "--seq-length")
        try atLeast(batch, 1, "--batch")
        try atLeast(steps, 1, "--steps")
        try atLeast(epochs, 1, "--epochs")
        try atLeast(warmup, 0, "--warmup")
        try atLeast(evalEvery, 0, "--eval-every")
        try atLeast(evalChars, 2, "--eval-chars")
        try atLeast(checkpointEvery, 0, "--checkpoint-every")
        try atLeast(threads, 1, "--threads")
        if let layers, layers > SizeLimits.maxLayers {
            throw ValidationError("--layers must be at most \(SizeLimits.maxLayers), got \(layers)")
        }
        for (value, name) in [(hidden, "--hidden"), (embedding, "--embedding")] where (value ?? 0) > SizeLimits.maxWidth
        {
            throw ValidationError("\(name) must be at most \(SizeLimits.maxWidth), got \(value!)")
        }
        for (value, name) in [
            (seqLength, "--seq-length"), (batch, "--batch"), (steps, "--steps"), (epochs, "--epochs"),
        ]
        where (value ?? 0) > SizeLimits.maxCount {
            throw ValidationError("\(name) must be at most \(SizeLimits.maxCount), got \(value!)")
        }
        try finite(dropout.map(Double.init), "--dropout", 0...0.999_999)
        try finite(lr.map(Double.init), "--lr", 1e-30...1e6)
        try finite(momentum.map(Double.init), "--momentum", 0...1)
        try finite(weightDecay.map(Double.init), "--weight-decay")
        try finite(clip.map(Double.init), "--clip")
        try finite(minutes, "--minutes", 1e-6...1e7)
        for (value, name) in [
            (activationClip, "--activation-clip"), (cellClip, "--cell-clip"), (projClip, "--proj-clip"),
        ] {
            try finite(value.map(Double.init), name)
        }
        if let layerNormEps, !(layerNormEps.isFinite && layerNormEps > 0) {
            throw ValidationError("--layer-norm-eps must be a positive finite number, got \(layerNormEps)")
        }
        if layerNormEps != nil, !layerNorm, !resume {
            throw ValidationError("--layer-norm-eps needs --layer-norm")
        }
        if let projClip, projClip > 0, !resume, (projSize ?? 0) == 0 {
            throw ValidationError("--proj-clip clamps the projected h: it needs --proj-size")
        }
        try finite(collectiveTimeout, "--collective-timeout", 1e-3...1e7)
        if let optimizer, !["sgd", "adam", "adamw"].contains(optimizer) {
            throw ValidationError("--optimizer must be sgd, adam or adamw, got '\(optimizer)'")
        }
        if let schedule { _ = try Self.parseSchedule(schedule, steps: steps, lr: lr ?? 2e-3) }
        if !resume, steps == nil, epochs == nil, minutes == nil {
            throw ValidationError("say when to stop: --steps, --epochs or --minutes")
        }
        if resume, checkpoint == nil { throw ValidationError("--resume needs --checkpoint") }
        if resume, steps == nil, epochs == nil, minutes == nil {
            throw ValidationError(
                "say when to stop: --steps (in all, counting the checkpoint's), --epochs or --minutes")
        }
    }

    /// The settings of a run after --resume has filled in what was not given.
    struct Settings: Codable, Equatable {
        var layers = 1, hidden = 512, embedding = 64, projSize = 0
        var dropout: Float = 0
        var seqLength = 100
        /// The global batch (all ranks).
        var globalBatch = 32
        var optimizer = "adam"
        var lr: Float = 2e-3
        var momentum: Float = 0.9
        var nesterov = false
        var weightDecay: Float?
        var clip: Float = 5
        var schedule = "constant"
        var warmup = 0
        var seed: UInt64 = 1
        /// The LSTM's cell options; nil (checkpoints from before they existed) is the plain cell.
        var cell: LSTMCellOptions?
    }

}

extension TrainCommand.Settings {
    /// Checks settings read from a checkpoint (untrusted) with the bounds the options have,
    /// naming the field.
    func validate(source: String) throws {
        func refuse(_ field: String, _ value: Any) -> LSTMError {
            .corruptFile(
                path: source, reason: "checkpoint metadata 'train_options': \(field) = \(value) is out of range")
        }
        let sizes: [(String, Int, ClosedRange<Int>)] = [
            ("layers", layers, 1...SizeLimits.maxLayers), ("hidden", hidden, 1...SizeLimits.maxWidth),
            ("embedding", embedding, 1...SizeLimits.maxWidth), ("projSize", projSize, 0...max(hidden - 1, 0)),
            ("seqLength", seqLength, 1...SizeLimits.maxCount), ("globalBatch", globalBatch, 1...SizeLimits.maxCount),
            ("warmup", warmup, 0...SizeLimits.maxCount),
        ]
        for (field, value, range) in sizes where !range.contains(value) { throw refuse(field, value) }
        let numbers: [(String, Float, ClosedRange<Float>)] = [
            ("dropout", dropout, 0...0.999_999), ("lr", lr, 1e-30...1e6), ("momentum", momentum, 0...1),
            ("weightDecay", weightDecay ?? 0, 0...Float.greatestFiniteMagnitude),
            ("clip", clip, 0...Float.greatestFiniteMagnitude),
        ]
        for (field, value, range) in numbers where !(value.isFinite && range.contains(value)) {
            throw refuse(field, value)
        }
        guard ["sgd", "adam", "adamw"].contains(optimizer) else { throw refuse("optimizer", optimizer) }
        if let cell {
            do { try cell.validate(projects: projSize > 0) } catch { throw refuse("cell", TrainCommand.describe(cell)) }
        }
        do { _ = try TrainCommand.parseSchedule(schedule, steps: 1, lr: lr) } catch {
            throw refuse("schedule", schedule)
        }
    }
}

extension TrainCommand {
    /// The metadata key under which checkpoints keep `Settings` (JSON).
    static let settingsKey = "train_options"

    func run() throws {
        if task != .lm { return try runTask() }
        if let threads {
            let used = CPUThreads.set(threads)
            if used < threads {
                printError(
                    "note: --threads \(threads) is more than the \(CPUThreads.maximum) cores; using \(used) "
                        + "(the step loop meets at a barrier every step, so extra threads only wait)")
            }
        }
        let text: String
        if let data {
            text = try readTextFile(data)
        } else {
            text = String(decoding: PackageResources.default_text_txt, as: UTF8.self)
        }
        // Output paths are checked, and the checkpoint locked, before any work is done.
        let reducer = MPIReducer.launchedByMPI ? try MPIReducer(timeout: collectiveTimeout) : nil
        let leader = (reducer?.rank ?? 0) == 0
        var lock: FileLock?
        do {
            // Inside the `do`: under MPI a rank that fails here must end the whole job.
            if leader {
                if let checkpoint {
                    try prepareOutputPath(checkpoint, option: "--checkpoint")
                    lock = try FileLock(for: checkpoint, what: "checkpoint")
                }
                if let log { try prepareOutputPath(log, option: "--log") }
            }
            let settings = try resolveSettings(ranks: reducer?.size ?? 1)
            switch backend {
            case .cpu: try train(text: text, settings: settings, backend: CPUBackend(), reducer: reducer)
            case .opencl:
                // One device per rank on a machine, unless one is named.
                var chosen = device
                if chosen == nil, let reducer, ProcessInfo.processInfo.environment["LSTM_GPU_DEVICE"] == nil {
                    let count = try OpenCLDevices.all().count
                    if count > 0 { chosen = "\(reducer.localRank % count)" }
                }
                try train(
                    text: text, settings: settings, backend: OpenCLBackend.shared(device: chosen), reducer: reducer)
            case .reference: throw referenceBackendRefused("train")  // refused by validate() already
            }
        } catch {
            guard let reducer, reducer.size > 1 else { throw error }
            printError("lstm-gpu: rank \(reducer.rank): \(error)")
            reducer.abort((error as? TrainingError)?.isDivergence == true ? ExitStatus.diverged : ExitStatus.unusable)
        }
        withExtendedLifetime(lock) {}
        reducer?.finish()
    }

    /// The run's settings: the options given, else (with --resume) the checkpoint's, else the
    /// defaults. A given option that contradicts what the checkpoint was trained with (model,
    /// batch, sequence length, optimiser) is refused by name; the learning-rate settings may change.
    func resolveSettings(ranks: Int) throws -> Settings {
        var s = Settings()
        var recorded: Settings?
        if resume, let checkpoint {
            let file = try CheckpointFile(contentsOf: checkpoint)
            if let json = file.file.metadata[Self.settingsKey] {
                guard let saved = try? JSONDecoder().decode(Settings.self, from: Data(json.utf8)) else {
                    throw LSTMError.corruptFile(
                        path: checkpoint, reason: "checkpoint metadata '\(Self.settingsKey)' is malformed")
                }
                try saved.validate(source: checkpoint)
                s = saved
            }
            if file.file.metadata[Self.settingsKey] == nil {
                // A checkpoint from before the options were recorded: its seed is in the metadata.
                if let text = file.file.metadata["seed"], let seed = UInt64(text) { s.seed = seed }
                printError(
                    "note: \(checkpoint) records no training options; --lr, --schedule, --clip and the "
                        + "optimiser's settings are the defaults unless given")
            }
            // The model, batch, length and optimiser the file holds are authoritative.
            s.layers = file.model.numLayers
            s.hidden = file.model.hiddenSize
            s.embedding = file.model.embeddingSize
            s.projSize = file.model.projectionSize
            s.dropout = file.model.dropout
            s.cell = file.model.cell
            s.globalBatch = file.batch
            s.seqLength = file.sequenceLength
            s.optimizer = file.optimizer
            recorded = s
        }
        func take<T: Equatable>(
            _ given: T?, _ keyPath: WritableKeyPath<Settings, T>, _ name: String, fixed: Bool
        ) throws {
            guard let given else { return }
            if fixed, let recorded, recorded[keyPath: keyPath] != given {
                throw ValidationError(
                    "\(name) \(given) contradicts the checkpoint's \(recorded[keyPath: keyPath]) (leave it out "
                        + "to continue with the checkpoint's)"
                )
            }
            s[keyPath: keyPath] = given
        }
        try take(layers, \.layers, "--layers", fixed: true)
        try take(hidden, \.hidden, "--hidden", fixed: true)
        try take(embedding, \.embedding, "--embedding", fixed: true)
        try take(projSize, \.projSize, "--proj-size", fixed: true)
        try take(dropout, \.dropout, "--dropout", fixed: true)
        if let givenCell {
            let theirs = recorded.map { $0.cell ?? LSTMCellOptions() }
            if let theirs, theirs != givenCell {
                throw ValidationError(
                    "the cell options given (\(Self.describe(givenCell, plain: "none"))) contradict the checkpoint's "
                        + "(\(Self.describe(theirs, plain: "none"))): leave them out to continue with the checkpoint's")
            }
            s.cell = givenCell
        }
        try take(seqLength, \.seqLength, "--seq-length", fixed: true)
        if let batch {
            let global = SizeLimits.saturatingProduct([batch, ranks])
            if let recorded, recorded.globalBatch != global {
                throw ValidationError(
                    "--batch \(batch)\(ranks > 1 ? " on \(ranks) ranks" : "") contradicts the checkpoint's "
                        + "global batch \(recorded.globalBatch)"
                )
            }
            s.globalBatch = global
        } else if recorded == nil {
            s.globalBatch = 32 * ranks
        }
        guard s.globalBatch % ranks == 0 else {
            throw ValidationError(
                "the checkpoint's global batch \(s.globalBatch) does not split over \(ranks) ranks: give --batch")
        }
        try take(optimizer, \.optimizer, "--optimizer", fixed: true)
        try take(seed, \.seed, "--seed", fixed: true)
        try take(lr, \.lr, "--lr", fixed: false)
        try take(momentum, \.momentum, "--momentum", fixed: false)
        if nesterov { s.nesterov = true }
        if let weightDecay { s.weightDecay = weightDecay }
        try take(clip, \.clip, "--clip", fixed: false)
        try take(schedule, \.schedule, "--schedule", fixed: false)
        try take(warmup, \.warmup, "--warmup", fixed: false)
        return s
    }

    /// The cell options given on the command line; nil when none was (then a resumed run keeps
    /// the checkpoint's, a new one the plain cell).
    var givenCell: LSTMCellOptions? {
        guard
            peephole || cifg || layerNorm || layerNormEps != nil || activationClip != nil || cellClip != nil
                || projClip != nil
        else { return nil }
        return LSTMCellOptions(
            peepholes: peephole, coupledInputForget: cifg, layerNorm: layerNorm,
            layerNormEpsilon: layerNormEps ?? 1e-5, activationClip: activationClip ?? 0, cellClip: cellClip ?? 0,
            projectionClip: projClip ?? 0)
    }

    /// "peepholes, layer norm (ε 1e-05), cell clip 0.5, " for the run's banner; `plain` for none.
    static func describe(_ cell: LSTMCellOptions, plain: String = "") -> String {
        if cell.isPlain { return plain }
        return cell.summary + (plain.isEmpty ? ", " : "")
    }

    static func optimizerKind(_ s: Settings) -> OptimizerKind {
        switch s.optimizer {
        case "sgd": return .sgd(momentum: s.momentum, nesterov: s.nesterov, weightDecay: s.weightDecay ?? 0)
        case "adamw": return .adamW(weightDecay: s.weightDecay ?? 0.01)
        default: return .adam(weightDecay: s.weightDecay ?? 0)
        }
    }

    static func parseSchedule(_ schedule: String, steps: Int?, lr: Float) throws -> LearningRateSchedule {
        if schedule == "constant" { return .constant }
        if schedule == "cosine" {
            guard let steps else { throw ValidationError("--schedule cosine needs --steps (its length)") }
            return .cosine(totalSteps: steps, minimum: lr / 20)
        }
        let parts = schedule.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "step" else {
            throw ValidationError("--schedule must be constant, cosine or step:EVERY:GAMMA, got '\(schedule)'")
        }
        guard let every = Int(parts[1]), every > 0 else {
            throw ValidationError(
                "--schedule step:EVERY:GAMMA needs EVERY, a step count of at least 1, got '\(parts[1])'")
        }
        guard let gamma = Float(parts[2]), gamma.isFinite, gamma > 0 else {
            throw ValidationError("--schedule step:EVERY:GAMMA needs GAMMA, a finite number > 0, got '\(parts[2])'")
        }
        return .step(every: every, gamma: gamma)
    }

    func train<Backend: ModelOps>(text: String, settings: Settings, backend: Backend, reducer: MPIReducer?) throws {
        let ranks = reducer?.size ?? 1
        let localBatch = settings.globalBatch / ranks
        if let reducer {
            // Every option that changes the sequence of collectives (or what a rank writes)
            // must be the same on every rank; a difference is named at start.
            try reducer.requireAgreement(on: [
                ("--steps", "\(steps.map(String.init) ?? "-")"), ("--epochs", "\(epochs.map(String.init) ?? "-")"),
                ("--minutes", "\(minutes.map { "\($0)" } ?? "-")"), ("--eval-every", "\(evalEvery)"),
                ("--eval-chars", "\(evalChars.map(String.init) ?? "-")"), ("--checkpoint-every", "\(checkpointEvery)"),
                ("--checkpoint", checkpoint ?? "-"), ("--resume", "\(resume)"), ("--log", log == nil ? "off" : "on"),
                ("--batch", "\(localBatch)"), ("--backend", backend.name.hasPrefix("opencl") ? "opencl" : "cpu"),
            ])
        }
        var options = TrainingOptions()
        options.batch = localBatch
        options.sequenceLength = settings.seqLength
        options.learningRate = settings.lr
        options.optimizer = Self.optimizerKind(settings)
        options.schedule = try Self.parseSchedule(settings.schedule, steps: steps, lr: settings.lr)
        options.warmup = settings.warmup
        options.clipNorm = settings.clip > 0 ? settings.clip : nil
        options.seed = settings.seed
        let vocabulary = Vocabulary(text: text)
        let ids = try vocabulary.encode(text)
        let config = LanguageModelConfiguration(
            vocabularySize: vocabulary.count, embeddingSize: settings.embedding,
            hiddenSize: settings.hidden, numLayers: settings.layers, dropout: settings.dropout,
            projectionSize: settings.projSize, cell: settings.cell ?? LSTMCellOptions())
        let model = try LanguageModel(config, backend: backend, seed: settings.seed)
        let trainer = try LanguageModelTrainer(
            model: model, vocabulary: vocabulary, ids: ids, options: options, reducer: reducer)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        trainer.extraMetadata = [Self.settingsKey: String(decoding: try encoder.encode(settings), as: UTF8.self)]
        let leader = (reducer?.rank ?? 0) == 0
        /// Prints on rank 0 only.
        func say(_ line: String) { if leader { print(line); fflush(nil) } }
        if resume, let checkpoint {
            try trainer.resume(from: checkpoint)
            say("resumed \(checkpoint) at step \(trainer.step) (epoch \(trainer.epoch), chunk \(trainer.chunk))")
        }
        let logger = leader ? try log.map { try JSONLineLog(path: $0, append: resume) } : nil
        let progress = ProgressLine()
        let parameterCount = model.parameters.reduce(0) { $0 + $1.count }
        if let reducer {
            say("data parallel: \(reducer.size) ranks × batch \(localBatch) = global batch \(trainer.data.batch)")
        }
        say(
            "training on \(backend.name): \(text.count) characters (\(vocabulary.count) symbols), "
                + "\(trainer.data.training.count) train / \(trainer.data.heldOut.count) held out; model "
                + "\(settings.layers)×\(settings.hidden) LSTM"
                + (settings.projSize > 0 ? " projected to \(settings.projSize), " : ", ")
                + Self.describe(settings.cell ?? LSTMCellOptions())
                + "embedding \(settings.embedding), \(parameterCount) parameters; batch \(localBatch) × "
                + "\(settings.seqLength), "
                + "\(options.optimizer.name) lr \(settings.lr)")
        var schedule = TrainingSchedule(totalSteps: steps, epochs: epochs, seconds: minutes.map { $0 * 60 })
        schedule.evaluateEvery = evalEvery
        schedule.evaluationCharacters = evalChars
        schedule.checkpoint = checkpoint
        schedule.checkpointEvery = checkpointEvery
        let run = TrainingRun(trainer: trainer, schedule: schedule, resumed: resume)
        let stopStep = run.stopStep
        let deadline = minutes.map { Date().addingTimeInterval($0 * 60) }
        var window: [Float] = []
        let summary: TrainingRun<Backend>.Summary
        do {
            summary = try run.run { event in
                guard leader else { return }
                switch event {
                case let .step(report, tokensPerSecond):
                    window.append(report.loss)
                    if window.count > 50 { window.removeFirst() }
                    try logger?.write([
                        "step": .int(report.step), "loss": .double(Double(report.loss)),
                        "lr": .double(Double(report.learningRate)), "epoch": .int(report.epoch),
                        "tokens_per_s": .double(tokensPerSecond),
                    ])
                    let smoothed = window.reduce(0, +) / Float(window.count)
                    var eta = ""
                    if let stopStep { eta = " ETA " + clock(Double(stopStep - report.step) * report.seconds) }
                    if let deadline { eta = " left " + clock(max(0, deadline.timeIntervalSinceNow)) }
                    progress.show(
                        "step \(report.step)\(stopStep.map { "/\($0)" } ?? "") loss \(fixed(Double(report.loss), 4)) "
                            + "(avg \(fixed(Double(smoothed), 4))) lr "
                            + "\(String(format: "%.2e", Double(report.learningRate))) "
                            + "\(fixed(tokensPerSecond / 1000, 1))k tok/s\(eta)",
                        every: report.step % 50 == 0 || report.step == 1)
                case let .evaluating(step, fraction):
                    progress.show("step \(step): evaluating \(Int(fraction * 100))%…", every: false)
                case let .evaluated(step, result, seconds):
                    progress.clear()
                    guard result.characters > 0 else {
                        print(
                            "step \(step): "
                                + (result.total == 0
                                    ? "the held-out split is too small to evaluate" : "no time left to evaluate"))
                        return
                    }
                    let coverage =
                        result.complete ? "" : " on \(result.characters) of \(result.total) characters (time limit)"
                    print(
                        "step \(step): held-out loss \(fixed(Double(result.loss), 4)) nats/char "
                            + "(\(fixed(Double(result.loss) / Foundation.log(2.0), 3)) bits)\(coverage), "
                            + "\(fixed(seconds / 60, 1)) min"
                    )
                    fflush(nil)
                    try logger?.write([
                        "step": .int(step), "eval_loss": .double(Double(result.loss)),
                        "eval_characters": .int(result.characters), "minutes": .double(seconds / 60),
                    ])
                case .checkpointWritten:
                    break
                }
            }
        } catch let diverged as TrainingRun<Backend>.Diverged {
            progress.clear()
            if reducer != nil { throw diverged.error }
            printError("lstm-gpu train: \(diverged)")
            throw ExitCode(ExitStatus.diverged)
        }
        progress.clear()
        say(
            "done: \(summary.steps) steps (step \(trainer.step) in all) in \(clock(summary.seconds)), "
                + "\(fixed(summary.tokensPerSecond / 1000, 1))k tok/s"
                + (summary.heldOutLoss.map { ", held-out loss \(fixed(Double($0), 4)) nats/char" } ?? "")
                + (checkpoint.map { "; checkpoint \($0)" } ?? ""))
        if let reducer {
            say(
                "rank 0: \(fixed(summary.seconds, 1)) s, "
                    + "\(fixed(100 * reducer.secondsInCollectives / max(summary.seconds, 1e-9), 1))% in collectives"
            )
        }
    }

    func clock(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0, seconds < 1e9 else { return "--:--" }
        let s = Int(seconds.rounded())
        return String(format: "%d:%02d", s / 60, s % 60)
    }
}

/// A status line that redraws in place on a terminal; off a terminal it prints a line when
/// asked (`every`) and otherwise at most every 10 seconds, so a log shows progress by time too.
final class ProgressLine {
    let terminal = isatty(STDOUT_FILENO) != 0
    private var shown = false
    private var lastPrinted = Date()

    func show(_ line: String, every: Bool) {
        if terminal {
            FileHandle.standardOutput.write(Data(("\r\u{1B}[K" + line).utf8))
            shown = true
        } else if every || Date().timeIntervalSince(lastPrinted) >= 10 {
            print(line)
            fflush(nil)  // every output stream: lines show up as they happen in a log file
            lastPrinted = Date()
        }
    }

    func clear() {
        if terminal, shown { FileHandle.standardOutput.write(Data("\r\u{1B}[K".utf8)); shown = false }
    }
}

/// One JSON object per line, written as it happens; a failed write (a full disk, a removed
/// folder) is a thrown error naming the file.
final class JSONLineLog {
    enum Value { case int(Int), double(Double), string(String) }
    let path: String
    private let fd: Int32

    init(path: String, append: Bool) throws {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC), 0o644)
        guard fd >= 0 else {
            throw LSTMError.io(path: path, reason: "--log: cannot open: \(String(cString: strerror(errno)))")
        }
        if append { lseek(fd, 0, SEEK_END) }
    }

    deinit { close(fd) }

    func write(_ fields: [String: Value]) throws {
        let body = fields.keys.sorted().map { key -> String in
            switch fields[key]! {
            case let .int(v): return "\"\(key)\":\(v)"
            case let .double(v): return "\"\(key)\":\(v.isFinite ? "\(v)" : "null")"
            case let .string(v): return "\"\(key)\":\"\(v)\""
            }
        }.joined(separator: ",")
        let line = Array(("{" + body + "}\n").utf8)
        var written = 0
        while written < line.count {
            let n = line[written...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw LSTMError.io(path: path, reason: "--log: write failed: \(String(cString: strerror(errno)))")
            }
            written += n
        }
    }
}
