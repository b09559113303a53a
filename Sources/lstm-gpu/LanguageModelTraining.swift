import ArgumentParser
import Foundation
import LSTMBenchmark
import LSTMCommandLine
import LSTMDistributed
import LSTMKit

/// One run of `lstm-gpu train --task lm` with its resolved settings: builds the trainer, runs
/// it and prints its progress, evaluations and summary (rank 0 only under MPI).
struct LanguageModelTraining {
    let command: TrainCommand
    let settings: LanguageModelRunSettings
    let reducer: MPIReducer?

    var leader: Bool { (reducer?.rank ?? 0) == 0 }

    /// Prints on rank 0 only.
    func say(_ line: String) { if leader { print(line); fflush(nil) } }

    func run<Backend: ModelOps>(text: String, backend: Backend) throws {
        let lm = command.languageModel, output = command.output
        let ranks = reducer?.size ?? 1
        let localBatch = settings.globalBatch / ranks
        if let reducer {
            // Every option that changes the sequence of collectives (or what a rank writes)
            // must be the same on every rank; a difference is named at start.
            try reducer.requireAgreement(on: [
                ("--steps", "\(lm.steps.map(String.init) ?? "-")"),
                ("--epochs", "\(command.loop.epochs.map(String.init) ?? "-")"),
                ("--minutes", "\(lm.minutes.map { "\($0)" } ?? "-")"), ("--eval-every", "\(lm.evalEvery)"),
                ("--eval-chars", "\(lm.evalChars.map(String.init) ?? "-")"),
                ("--checkpoint-every", "\(lm.checkpointEvery)"), ("--checkpoint", output.checkpoint ?? "-"),
                ("--resume", "\(output.resume)"), ("--log", output.log == nil ? "off" : "on"),
                ("--batch", "\(localBatch)"), ("--backend", backend.name.hasPrefix("opencl") ? "opencl" : "cpu"),
            ])
        }
        var options = TrainingOptions()
        options.batch = localBatch
        options.sequenceLength = settings.seqLength
        options.learningRate = settings.lr
        options.optimizer = settings.optimizerKind
        options.schedule = try LearningRateSchedule(
            parsing: settings.schedule, steps: lm.steps, learningRate: settings.lr)
        options.warmup = settings.warmup
        options.clipNorm = settings.clip > 0 ? settings.clip : nil
        options.seed = settings.seed
        let vocabulary = Vocabulary(text: text)
        let ids = try vocabulary.encode(text)
        let cell = settings.cell ?? LSTMCellOptions()
        let config = LanguageModelConfiguration(
            vocabularySize: vocabulary.count, embeddingSize: settings.embedding, hiddenSize: settings.hidden,
            numLayers: settings.layers, dropout: settings.dropout, projectionSize: settings.projSize, cell: cell)
        let model = try LanguageModel(config, backend: backend, seed: settings.seed)
        let trainer = try LanguageModelTrainer(
            model: model, vocabulary: vocabulary, ids: ids, options: options, reducer: reducer)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        trainer.extraMetadata = [
            LanguageModelRunSettings.metadataKey: String(decoding: try encoder.encode(settings), as: UTF8.self)
        ]
        if output.resume, let checkpoint = output.checkpoint {
            try trainer.resume(from: checkpoint)
            say("resumed \(checkpoint) at step \(trainer.step) (epoch \(trainer.epoch), chunk \(trainer.chunk))")
        }
        let logger = leader ? try output.log.map { try JSONLineLog(path: $0, append: output.resume) } : nil
        let parameterCount = model.parameters.reduce(0) { $0 + $1.count }
        if let reducer {
            say("data parallel: \(reducer.size) ranks × batch \(localBatch) = global batch \(trainer.data.batch)")
        }
        say(
            "training on \(backend.name): \(text.count) characters (\(vocabulary.count) symbols), "
                + "\(trainer.data.training.count) train / \(trainer.data.heldOut.count) held out; model "
                + "\(settings.layers)×\(settings.hidden) LSTM"
                + (settings.projSize > 0 ? " projected to \(settings.projSize), " : ", ")
                + (cell.isPlain ? "" : cell.summary + ", ")
                + "embedding \(settings.embedding), \(parameterCount) parameters; batch \(localBatch) × "
                + "\(settings.seqLength), \(options.optimizer.name) lr \(settings.lr)")
        var schedule = TrainingSchedule(
            totalSteps: lm.steps, epochs: command.loop.epochs, seconds: lm.minutes.map { $0 * 60 })
        schedule.evaluateEvery = lm.evalEvery
        schedule.evaluationCharacters = lm.evalChars
        schedule.checkpoint = output.checkpoint
        schedule.checkpointEvery = lm.checkpointEvery
        let run = TrainingRun(trainer: trainer, schedule: schedule, resumed: output.resume)
        let display = LanguageModelProgress(
            stopStep: run.stopStep, deadline: lm.minutes.map { Date().addingTimeInterval($0 * 60) }, logger: logger)
        let summary: TrainingRun<Backend>.Summary
        do {
            summary = try run.run { event in if leader { try display.show(event) } }
        } catch let diverged as TrainingRun<Backend>.Diverged {
            display.progress.clear()
            if reducer != nil { throw diverged.error }
            printError("lstm-gpu train: \(diverged)")
            throw ExitCode(ExitStatus.diverged)
        }
        display.progress.clear()
        say(
            "done: \(summary.steps) steps (step \(trainer.step) in all) in \(clock(summary.seconds)), "
                + "\(fixed(summary.tokensPerSecond / 1000, 1))k tok/s"
                + (summary.heldOutLoss.map { ", held-out loss \(fixed(Double($0), 4)) nats/char" } ?? "")
                + (output.checkpoint.map { "; checkpoint \($0)" } ?? ""))
        if let reducer {
            say(
                "rank 0: \(fixed(summary.seconds, 1)) s, "
                    + "\(fixed(100 * reducer.secondsInCollectives / max(summary.seconds, 1e-9), 1))% in collectives")
        }
    }
}

/// What a language-model run shows and logs of its events: a progress line with the smoothed
/// loss and the time left, the held-out evaluations, and a JSON line per step and evaluation.
final class LanguageModelProgress {
    let stopStep: Int?
    let deadline: Date?
    let logger: JSONLineLog?
    let progress = ProgressLine()
    private var window: [Float] = []

    init(stopStep: Int?, deadline: Date?, logger: JSONLineLog?) {
        (self.stopStep, self.deadline, self.logger) = (stopStep, deadline, logger)
    }

    func show(_ event: TrainingEvent) throws {
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
                    + "(avg \(fixed(Double(smoothed), 4))) lr \(String(format: "%.2e", Double(report.learningRate))) "
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
            let coverage = result.complete ? "" : " on \(result.characters) of \(result.total) characters (time limit)"
            print(
                "step \(step): held-out loss \(fixed(Double(result.loss), 4)) nats/char "
                    + "(\(fixed(Double(result.loss) / Foundation.log(2.0), 3)) bits)\(coverage), "
                    + "\(fixed(seconds / 60, 1)) min")
            fflush(nil)
            try logger?.write([
                "step": .int(step), "eval_loss": .double(Double(result.loss)),
                "eval_characters": .int(result.characters), "minutes": .double(seconds / 60),
            ])
        case .checkpointWritten:
            break
        }
    }
}

/// m:ss for a duration in seconds ("--:--" when unknown).
func clock(_ seconds: Double) -> String {
    guard seconds.isFinite, seconds >= 0, seconds < 1e9 else { return "--:--" }
    let s = Int(seconds.rounded())
    return String(format: "%d:%02d", s / 60, s % 60)
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
