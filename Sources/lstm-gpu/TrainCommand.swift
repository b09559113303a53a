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

    @Option(help: "UTF-8 text file to train on (default: the built-in text).")
    var data: String?
    @Option(help: "LSTM layers.") var layers = 1
    @Option(help: "LSTM hidden size H.") var hidden = 512
    @Option(help: "Embedding size E.") var embedding = 64
    @Option(help: "Dropout between LSTM layers.") var dropout: Float = 0
    @Option(name: .customLong("seq-length"), help: "Characters per chunk T (truncated BPTT length).") var seqLength = 100
    @Option(help: "Streams per batch B.") var batch = 32
    @Option(help: "sgd, adam or adamw.") var optimizer = "adam"
    @Option(help: "Learning rate.") var lr: Float = 2e-3
    @Option(help: "SGD momentum.") var momentum: Float = 0.9
    @Flag(help: "Nesterov momentum (SGD).") var nesterov = false
    @Option(name: .customLong("weight-decay"), help: "Weight decay (default: 0; AdamW 0.01).") var weightDecay: Float?
    @Option(help: "Clip gradients to this global norm (0: off).") var clip: Float = 5
    @Option(help: "constant, cosine or step:EVERY:GAMMA.") var schedule = "constant"
    @Option(help: "Linear warm-up steps.") var warmup = 0
    @Option(help: "Stop after this many steps.") var steps: Int?
    @Option(help: "Stop after this many epochs.") var epochs: Int?
    @Option(help: "Stop after this many minutes of wall time.") var minutes: Double?
    @Option(name: .customLong("eval-every"), help: "Evaluate on the held-out split every N steps (0: only at the end).") var evalEvery = 200
    @Option(help: "cpu or opencl.") var backend: BackendKind = .cpu
    @Option(help: "OpenCL device: index or name substring.") var device: String?
    @Option(help: "CPU threads.") var threads: Int?
    @Option(help: "Seed for initialisation and dropout.") var seed: UInt64 = 1
    @Option(help: "Checkpoint file (safetensors).") var checkpoint: String?
    @Option(name: .customLong("checkpoint-every"), help: "Write the checkpoint every N steps.") var checkpointEvery = 200
    @Flag(help: "Continue from --checkpoint.") var resume = false
    @Option(help: "Write one JSON line per step (and per evaluation) to this file.") var log: String?
    @Option(name: .customLong("collective-timeout"), help: "Under MPI: seconds a collective may wait before the job is stopped.")
    var collectiveTimeout: Double = 300

    func validate() throws {
        guard layers > 0, hidden > 0, embedding > 0, seqLength > 0, batch > 0 else {
            throw ValidationError("--layers, --hidden, --embedding, --seq-length and --batch must be positive")
        }
        guard dropout >= 0, dropout < 1 else { throw ValidationError("--dropout must be in [0, 1)") }
        guard lr > 0, lr.isFinite else { throw ValidationError("--lr must be a positive number") }
        guard ["sgd", "adam", "adamw"].contains(optimizer) else { throw ValidationError("--optimizer must be sgd, adam or adamw") }
        guard steps != nil || epochs != nil || minutes != nil else {
            throw ValidationError("say when to stop: --steps, --epochs or --minutes")
        }
        if resume, checkpoint == nil { throw ValidationError("--resume needs --checkpoint") }
        if let steps, steps <= 0 { throw ValidationError("--steps must be positive") }
        if let epochs, epochs <= 0 { throw ValidationError("--epochs must be positive") }
        if let minutes, !(minutes > 0) { throw ValidationError("--minutes must be positive") }
        guard warmup >= 0, clip >= 0, evalEvery >= 0, checkpointEvery >= 0 else {
            throw ValidationError("--warmup, --clip, --eval-every and --checkpoint-every must not be negative")
        }
    }

    func run() throws {
        if let threads { CPUThreads.set(threads) }
        let text: String
        if let data {
            guard let contents = FileManager.default.contents(atPath: data) else {
                throw ValidationError("cannot read --data \(data)")
            }
            text = String(decoding: contents, as: UTF8.self)
        } else {
            text = String(decoding: PackageResources.default_text_txt, as: UTF8.self)
        }
        var options = TrainingOptions()
        options.batch = batch
        options.steps = seqLength
        options.learningRate = lr
        options.optimizer = try optimizerKind()
        options.schedule = try scheduleKind()
        options.warmup = warmup
        options.clipNorm = clip > 0 ? clip : nil
        options.seed = seed
        let reducer = MPIReducer.launchedByMPI ? try MPIReducer(timeout: collectiveTimeout) : nil
        do {
            switch backend {
            case .cpu: try train(text: text, options: options, backend: CPUBackend(), reducer: reducer)
            case .opencl:
                // One device per rank on a machine, unless one is named.
                var chosen = device
                if chosen == nil, let reducer, ProcessInfo.processInfo.environment["LSTM_GPU_DEVICE"] == nil {
                    let count = try OpenCLDevices.all().count
                    if count > 0 { chosen = "\(reducer.localRank % count)" }
                }
                try train(text: text, options: options, backend: OpenCLBackend.shared(device: chosen), reducer: reducer)
            }
        } catch {
            guard let reducer, reducer.size > 1 else { throw error }
            printError("lstm-gpu: rank \(reducer.rank): \(error)")
            reducer.abort(error is TrainingError ? 3 : 1)
        }
        reducer?.finish()
    }

    func optimizerKind() throws -> OptimizerKind {
        switch optimizer {
        case "sgd": return .sgd(momentum: momentum, nesterov: nesterov, weightDecay: weightDecay ?? 0)
        case "adamw": return .adamW(weightDecay: weightDecay ?? 0.01)
        default: return .adam(weightDecay: weightDecay ?? 0)
        }
    }

    func scheduleKind() throws -> LearningRateSchedule {
        if schedule == "constant" { return .constant }
        if schedule == "cosine" {
            guard let steps else { throw ValidationError("--schedule cosine needs --steps (its length)") }
            return .cosine(totalSteps: steps, minimum: lr / 20)
        }
        let parts = schedule.split(separator: ":")
        if parts.count == 3, parts[0] == "step", let every = Int(parts[1]), let gamma = Float(parts[2]), every > 0 {
            return .step(every: every, gamma: gamma)
        }
        throw ValidationError("--schedule must be constant, cosine or step:EVERY:GAMMA, got '\(schedule)'")
    }

    func train<Backend: ModelOps>(text: String, options: TrainingOptions, backend: Backend, reducer: MPIReducer?) throws {
        let vocabulary = Vocabulary(text: text)
        let ids = try vocabulary.encode(text)
        let config = LanguageModelConfiguration(vocabularySize: vocabulary.count, embeddingSize: embedding, hiddenSize: hidden,
                                                layers: layers, dropout: dropout)
        let model = try LanguageModel(config, backend: backend, seed: seed)
        let trainer = try LanguageModelTrainer(model: model, vocabulary: vocabulary, ids: ids, options: options, reducer: reducer)
        let leader = (reducer?.rank ?? 0) == 0
        /// Prints on rank 0 only.
        func say(_ line: String) { if leader { print(line) } }
        if resume, let checkpoint {
            try trainer.resume(from: checkpoint)
            say("resumed \(checkpoint) at step \(trainer.step) (epoch \(trainer.epoch), chunk \(trainer.chunk))")
        }
        let logger = leader ? try log.map { try JSONLineLog(path: $0, append: resume) } : nil
        let progress = ProgressLine()
        let parameterCount = model.parameters.reduce(0) { $0 + $1.count }
        if let reducer {
            say("data parallel: \(reducer.size) ranks × batch \(batch) = global batch \(trainer.data.batch)")
        }
        say("training on \(backend.name): \(text.count) characters (\(vocabulary.count) symbols), "
              + "\(trainer.data.training.count) train / \(trainer.data.heldOut.count) held out; model \(layers)×\(hidden) LSTM, "
              + "embedding \(embedding), \(parameterCount) parameters; batch \(batch) × \(seqLength), \(options.optimizer.name) lr \(lr)")
        let stopStep = [steps, epochs.map { $0 * trainer.data.chunksPerEpoch }].compactMap { $0 }.min()
        let started = Date()
        var lastCheckpointStep = trainer.step
        func writeCheckpoint() throws {
            guard let checkpoint else { return }
            try trainer.saveCheckpoint(to: checkpoint)     // every rank takes part; rank 0 writes
            lastCheckpointStep = trainer.step
        }
        func evaluate() throws {
            guard leader else { return }
            let loss = try trainer.evaluate()
            progress.clear()
            print("step \(trainer.step): held-out loss \(fixed(Double(loss), 4)) nats/char (\(fixed(Double(loss) / Foundation.log(2.0), 3)) bits), "
                  + "\(fixed(Date().timeIntervalSince(started) / 60, 1)) min")
            try logger?.write(["step": .int(trainer.step), "eval_loss": .double(Double(loss)),
                               "minutes": .double(Date().timeIntervalSince(started) / 60)])
        }
        var window: [Float] = []
        while true {
            if let stopStep, trainer.step >= stopStep { break }
            if let minutes {
                // Under MPI rank 0's clock decides for everyone, so no rank stops alone.
                var stop: [Float] = [Date().timeIntervalSince(started) >= minutes * 60 ? 1 : 0]
                try reducer?.broadcast(&stop, root: 0)
                if stop[0] != 0 { break }
            }
            injectFault(rank: reducer?.rank ?? 0, step: trainer.step)
            let report: StepReport
            do { report = try trainer.trainStep() } catch let error as TrainingError {
                progress.clear()
                if reducer != nil { throw error }
                if lastCheckpointStep > 0 || resume, let checkpoint {
                    printError("\(error)\nlast good checkpoint: \(checkpoint) (step \(lastCheckpointStep))")
                } else {
                    printError("\(error)")
                }
                throw ExitCode(3)
            }
            window.append(report.loss)
            if window.count > 50 { window.removeFirst() }
            let tokensPerSecond = Double(trainer.data.batch * seqLength) / report.seconds   // the global batch
            try logger?.write(["step": .int(report.step), "loss": .double(Double(report.loss)), "lr": .double(Double(report.learningRate)),
                               "epoch": .int(report.epoch), "tokens_per_s": .double(tokensPerSecond)])
            let smoothed = window.reduce(0, +) / Float(window.count)
            var eta = ""
            if let stopStep { eta = " ETA " + clock(Double(stopStep - report.step) * report.seconds) }
            if let minutes { eta = " left " + clock(max(0, minutes * 60 - Date().timeIntervalSince(started))) }
            let line = "step \(report.step)\(stopStep.map { "/\($0)" } ?? "") loss \(fixed(Double(report.loss), 4)) "
                + "(avg \(fixed(Double(smoothed), 4))) lr \(String(format: "%.2e", Double(report.learningRate))) "
                + "\(fixed(tokensPerSecond / 1000, 1))k tok/s\(eta)"
            if leader { progress.show(line, every: report.step % 50 == 0 || report.step == 1) }
            if evalEvery > 0, report.step % evalEvery == 0 { try evaluate() }
            if checkpointEvery > 0, report.step % checkpointEvery == 0 { try writeCheckpoint() }
        }
        progress.clear()
        if evalEvery <= 0 || trainer.step % evalEvery != 0 { try evaluate() }
        try writeCheckpoint()
        if let checkpoint { say("checkpoint: \(checkpoint) (step \(trainer.step))") }
        if let reducer {
            let seconds = Date().timeIntervalSince(started)
            say("rank 0: \(fixed(seconds, 1)) s, \(fixed(100 * reducer.secondsInCollectives / max(seconds, 1e-9), 1))% in collectives")
        }
    }

    /// Fault injection for the tests of failure handling: LSTM_GPU_FAULT=exit|hang,
    /// LSTM_GPU_FAULT_RANK=R and LSTM_GPU_FAULT_STEP=S make rank R die (exit 9) or hang before step S + 1.
    func injectFault(rank: Int, step: Int) {
        let environment = ProcessInfo.processInfo.environment
        guard let fault = environment["LSTM_GPU_FAULT"], Int(environment["LSTM_GPU_FAULT_RANK"] ?? "0") == rank,
              Int(environment["LSTM_GPU_FAULT_STEP"] ?? "0") == step else { return }
        if fault == "exit" { Foundation.exit(9) }
        while fault == "hang" { sleep(1000) }
    }

    func clock(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return String(format: "%d:%02d", s / 60, s % 60)
    }
}

/// A status line that redraws in place on a terminal and prints every so often otherwise.
final class ProgressLine {
    let terminal = isatty(STDOUT_FILENO) != 0
    private var shown = false

    func show(_ line: String, every: Bool) {
        if terminal {
            FileHandle.standardOutput.write(Data(("\r\u{1B}[K" + line).utf8))
            shown = true
        } else if every {
            print(line)
            fflush(nil)   // every output stream: lines show up as they happen in a log file
        }
    }

    func clear() {
        if terminal, shown { FileHandle.standardOutput.write(Data("\r\u{1B}[K".utf8)); shown = false }
    }
}

/// One JSON object per line, flushed as written.
final class JSONLineLog {
    enum Value { case int(Int), double(Double), string(String) }
    let handle: FileHandle

    init(path: String, append: Bool) throws {
        if !append || !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else { throw ValidationError("cannot create --log \(path)") }
        }
        guard let handle = FileHandle(forWritingAtPath: path) else { throw ValidationError("cannot open --log \(path)") }
        handle.seekToEndOfFile()
        self.handle = handle
    }

    func write(_ fields: [String: Value]) throws {
        let body = fields.keys.sorted().map { key -> String in
            switch fields[key]! {
            case let .int(v): return "\"\(key)\":\(v)"
            case let .double(v): return "\"\(key)\":\(v.isFinite ? "\(v)" : "null")"
            case let .string(v): return "\"\(key)\":\"\(v)\""
            }
        }.joined(separator: ",")
        handle.write(Data(("{" + body + "}\n").utf8))
    }
}
