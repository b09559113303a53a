import ArgumentParser
import Foundation
import LSTMCommandLine
import LSTMDistributed
import LSTMKit

/// The options only the language model (`train --task lm`) has.
struct LanguageModelOptions: ParsableArguments {
    @Option(
        name: .customLong("seq-length"), parsing: .unconditional,
        help: "Characters per chunk T, the truncated BPTT length (default: 100, or the checkpoint's).")
    var seqLength: Int?
    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Stop after this many steps in all (with --resume: counted from the start of the first run, not from "
                + "the resume)."))
    var steps: Int?
    @Option(
        parsing: .unconditional,
        help: "Stop after this many minutes of wall time (this run, final evaluation included).")
    var minutes: Double?
    @Option(
        name: .customLong("eval-every"), parsing: .unconditional,
        help: "Evaluate on the held-out split every N steps (0: only at the end).")
    var evalEvery = 200
    @Option(
        name: .customLong("eval-chars"), parsing: .unconditional,
        help: "Evaluate on at most the first N held-out characters (default: all).")
    var evalChars: Int?
    @Option(
        name: .customLong("checkpoint-every"), parsing: .unconditional,
        help: "Write the checkpoint every N steps (0: only at the end).")
    var checkpointEvery = 200
    @Option(
        name: .customLong("collective-timeout"), parsing: .unconditional,
        help: "Under MPI: seconds a collective may wait before the job is stopped.")
    var collectiveTimeout: Double = 300

    func validate() throws {
        try CommandEntry.validating {
            try SettingBounds.count(seqLength, "--seq-length", minimum: 1)
            try SettingBounds.count(steps, "--steps", minimum: 1)
            try SettingBounds.number(minutes, "--minutes", in: SettingBounds.minutes)
            try SettingBounds.count(evalEvery, "--eval-every", minimum: 0)
            try SettingBounds.count(evalChars, "--eval-chars", minimum: 2)
            try SettingBounds.count(checkpointEvery, "--checkpoint-every", minimum: 0)
            try SettingBounds.number(collectiveTimeout, "--collective-timeout", in: SettingBounds.collectiveTimeout)
        }
    }

    /// The options given, as written (--eval-every and --checkpoint-every when not at their
    /// default of 200), for refusing them with an application.
    var given: [String] {
        let values: [(Any?, String)] = [
            (seqLength, "--seq-length"), (steps, "--steps"), (minutes, "--minutes"),
            (evalEvery == 200 ? nil : evalEvery, "--eval-every"), (evalChars, "--eval-chars"),
            (checkpointEvery == 200 ? nil : checkpointEvery, "--checkpoint-every"),
        ]
        return values.compactMap { $0.0 == nil ? nil : $0.1 }
    }
}

extension TrainCommand {
    func validateLanguageModel() throws {
        if let option = (taskOptions.given + application.given).first {
            let tasks = TaskOptions.use[option].map { $0.map(\.rawValue).sorted() } ?? TrainTask.applications
            throw ValidationError("\(option) is an option of --task \(tasks.joined(separator: ", ")), not of lm")
        }
        let resume = output.resume, lm = languageModel
        if let projSize = sizes.projSize, projSize > 0, sizes.hidden != nil || !resume,
            projSize >= (sizes.hidden ?? 512)
        {
            throw ValidationError("--proj-size must be smaller than --hidden (\(sizes.hidden ?? 512)), got \(projSize)")
        }
        try cell.validate(projects: (sizes.projSize ?? 0) > 0, resuming: resume)
        _ = try optimizer.learningRateSchedule(steps: lm.steps, learningRate: optimizer.lr ?? 2e-3)
        if lm.steps == nil, loop.epochs == nil, lm.minutes == nil {
            throw ValidationError(
                resume
                    ? "say when to stop: --steps (in all, counting the checkpoint's), --epochs or --minutes"
                    : "say when to stop: --steps, --epochs or --minutes")
        }
    }

    /// The settings given on the command line, for `LanguageModelRunSettings.resolve`.
    var givenSettings: LanguageModelRunSettings.Given {
        var g = LanguageModelRunSettings.Given()
        (g.layers, g.hidden, g.embedding, g.projSize, g.dropout) = (
            sizes.layers, sizes.hidden, sizes.embedding, sizes.projSize, sizes.dropout
        )
        g.cell = cell.given
        (g.seqLength, g.batch, g.seed) = (languageModel.seqLength, loop.batch, loop.seed)
        (g.optimizer, g.lr, g.momentum, g.nesterov) = (
            optimizer.optimizer, optimizer.lr, optimizer.momentum, optimizer.nesterov
        )
        (g.weightDecay, g.clip, g.schedule, g.warmup) = (
            optimizer.weightDecay, optimizer.clip, optimizer.schedule, optimizer.warmup
        )
        return g
    }

    func runLanguageModel() throws {
        applyThreads()
        let text: String
        if let data {
            text = try readTextFile(data)
        } else {
            text = String(decoding: PackageResources.default_text_txt, as: UTF8.self)
        }
        // Output paths are checked, and the checkpoint locked, before any work is done.
        let reducer = MPIReducer.launchedByMPI ? try MPIReducer(timeout: languageModel.collectiveTimeout) : nil
        let leader = (reducer?.rank ?? 0) == 0
        var lock: FileLock?
        do {
            // Inside the `do`: under MPI a rank that fails here must end the whole job.
            if leader {
                try requireDistinctPaths(
                    inputs: data.map { [("--data", $0)] } ?? [],
                    outputs: [("--checkpoint", output.checkpoint), ("--log", output.log)].compactMap { option, path in
                        path.map { (option, $0) }
                    })
                if let checkpoint = output.checkpoint {
                    try prepareOutputPath(checkpoint, option: "--checkpoint")
                    lock = try FileLock(for: checkpoint, what: "checkpoint")
                }
                if let log = output.log { try prepareOutputPath(log, option: "--log") }
            }
            let resumed = try output.resume ? output.checkpoint.map { (try CheckpointFile(contentsOf: $0), $0) } : nil
            let (settings, note) = try LanguageModelRunSettings.resolve(
                givenSettings, resumed: resumed, ranks: reducer?.size ?? 1)
            if let note { printError(note) }
            switch engine.backend {
            case .opencl:
                // One device per rank on a machine, unless one is named.
                var chosen = engine.device
                if chosen == nil, let reducer, ProcessInfo.processInfo.environment["LSTM_GPU_DEVICE"] == nil {
                    let count = try OpenCLDevices.all().count
                    if count > 0 { chosen = "\(reducer.localRank % count)" }
                }
                try LanguageModelTraining(command: self, settings: settings, reducer: reducer).run(
                    text: text, backend: OpenCLBackend.shared(device: chosen))
            default:
                try LanguageModelTraining(command: self, settings: settings, reducer: reducer).run(
                    text: text, backend: CPUBackend())
            }
        } catch {
            guard let reducer, reducer.size > 1 else { throw error }
            printError("lstm-gpu: rank \(reducer.rank): \(error)")
            reducer.abort((error as? TrainingError)?.isDivergence == true ? ExitStatus.diverged : ExitStatus.unusable)
        }
        withExtendedLifetime(lock) {}
        reducer?.finish()
    }
}
