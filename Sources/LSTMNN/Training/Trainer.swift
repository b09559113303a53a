import Foundation
import LSTMCore
import LSTMData

/// Everything that defines a training run besides the model's shape.
public struct TrainingOptions: Equatable, Sendable {
    public var batch = 32  // B streams
    /// T: characters per chunk, the truncated BPTT length.
    public var sequenceLength = 100
    public var learningRate: Float = 2e-3
    public var optimizer: OptimizerKind = .adam()
    public var schedule: LearningRateSchedule = .constant
    public var warmup = 0
    /// Clip gradients to this global L2 norm (nil: no clipping).
    public var clipNorm: Float? = 5
    public var seed: UInt64 = 1
    /// Held-out share of the text (its end).
    public var heldOutFraction = 0.05
    /// Streams for evaluation.
    public var evaluationStreams = 16
    public init() {}
}

/// What one step reports.
public struct StepReport: Sendable {
    public var step: Int
    public var loss: Float
    public var learningRate: Float
    public var epoch: Int
    public var seconds: Double
}

/// Why training stopped early.
public enum TrainingError: Error, CustomStringConvertible {
    /// The loss of step `step` is NaN or ±Inf; the update was not applied.
    case diverged(step: Int, loss: Float)
    /// Something else of step `step` (the gradient norm, a weight) is NaN or ±Inf.
    case nonFinite(step: Int, what: String)
    /// A checkpoint holds NaN or ±Inf in `tensor`: training cannot continue from it.
    case nonFiniteCheckpoint(path: String, tensor: String, step: Int)
    /// The checkpoint belongs to another run (model, data, batch, optimiser).
    case mismatchedResume(String)

    /// Whether this is divergence (exit code 3 in the command) rather than unusable input.
    public var isDivergence: Bool {
        if case .mismatchedResume = self { return false }
        return true
    }

    public var description: String {
        switch self {
        case let .diverged(step, loss):
            return
                "training diverged: the loss at step \(step) is \(loss); the update was not applied and the "
                + "last checkpoint on disk is intact (lower the learning rate or clip gradients)"
        case let .nonFinite(step, what):
            return
                "training diverged at step \(step): \(what) is not finite; the update was not applied and the "
                + "last checkpoint on disk is intact (lower the learning rate or clip gradients)"
        case let .nonFiniteCheckpoint(path, tensor, step):
            return
                "\(path): the checkpoint of step \(step) holds NaN or infinite values in '\(tensor)': training "
                + "cannot continue from it (resume from an earlier checkpoint)"
        case let .mismatchedResume(message): return "cannot resume: \(message)"
        }
    }
}

/// What a (possibly time-bounded) held-out evaluation covered.
public struct HeldOutEvaluation: Sendable {
    /// Mean cross-entropy in nats per predicted character (NaN when nothing was evaluated).
    public var loss: Float
    /// Predictions evaluated, and how many the (capped) held-out split has.
    public var characters: Int
    public var total: Int
    /// False when the deadline cut it short.
    public var complete: Bool { characters == total }
}

/// Trains a `LanguageModel` on character streams: truncated BPTT with the state carried
/// across chunks, an optimiser on the device, held-out evaluation, checkpoints that resume
/// exactly. Per step only the loss comes back to the host.
public final class LanguageModelTrainer<Backend: ModelOps> {
    public let model: LanguageModel<Backend>
    public let optimizer: Optimizer<Backend>
    public let vocabulary: Vocabulary
    public let data: TokenStreams
    public let options: TrainingOptions
    /// Steps completed.
    public private(set) var step = 0
    /// The next chunk of the current epoch, and the epoch.
    public private(set) var chunk = 0
    public private(set) var epoch = 0
    private var state: LanguageModel<Backend>.State?
    /// More metadata for the checkpoints (e.g. the command's options), string to string.
    public var extraMetadata: [String: String] = [:]
    /// Data parallelism: the replicas' gradient reducer (nil: this process alone).
    public let reducer: GradientReducer?
    /// This replica's streams of the global batch.
    public var streams: Range<Int> { (rank * options.batch)..<((rank + 1) * options.batch) }
    var rank: Int { reducer?.rank ?? 0 }

    /// A trainer for `model` on `ids`. With a `reducer`, `options.batch` is the per-replica
    /// batch b: the global batch of N·b streams is cut like a single process's, replica r
    /// takes streams [r·b, (r+1)·b), gradients are averaged across replicas before clipping
    /// and the update, and rank 0's initial weights are broadcast, so N replicas take the same
    /// steps as one process with batch N·b (up to the order of floating-point sums).
    /// Every replica must call `trainStep` and `saveCheckpoint` alike.
    public init(
        model: LanguageModel<Backend>, vocabulary: Vocabulary, ids: [Int], options: TrainingOptions,
        reducer: GradientReducer? = nil
    ) throws {
        guard vocabulary.count == model.configuration.vocabularySize else {
            throw LSTMError.invalidConfiguration(
                "the vocabulary has \(vocabulary.count) symbols but the model \(model.configuration.vocabularySize)")
        }
        self.model = model
        self.vocabulary = vocabulary
        self.options = options
        self.reducer = reducer
        data = try TokenStreams(
            ids: ids, heldOutFraction: options.heldOutFraction, batch: options.batch * (reducer?.size ?? 1),
            sequenceLength: options.sequenceLength)
        // A step's logits and their gradient (T·b·V each), the embedded input and the LSTM's
        // working set must fit where the backend computes, before any of it is allocated.
        let c = model.configuration
        let rows = SizeLimits.saturatingProduct([options.sequenceLength, options.batch])
        let floats = SizeLimits.saturatingSum([
            SizeLimits.saturatingProduct([rows, c.vocabularySize, 2]),
            SizeLimits.saturatingProduct([rows, c.embeddingSize]),
            c.lstm.workingSetFloats(sequenceLength: options.sequenceLength, batch: options.batch, training: true),
        ])
        try model.backend.requireCapacity(
            SizeLimits.saturatingProduct([floats, 4]),
            for:
                "a training step of \(options.batch) × \(options.sequenceLength) characters over \(c.vocabularySize) symbols"
        )
        optimizer = Optimizer(backend: model.backend, kind: options.optimizer)
        if let reducer {
            let description =
                "model \(model.configuration), batch \(options.batch) × \(options.sequenceLength), optimizer "
                + "\(options.optimizer), "
                + "lr \(options.learningRate), schedule \(options.schedule), clip "
                + "\(options.clipNorm.map { "\($0)" } ?? "off"), "
                + "seed \(options.seed), text \(Self.fingerprint(data.training))"
            try reducer.requireAgreement(fingerprint: configurationFingerprint(description), description: description)
            var weights = try flatten(model.parameters.map(\.value), counts: model.parameters.map(\.count))
            try reducer.broadcast(&weights, root: 0)
            try unflatten(weights, into: model.parameters.map(\.value), counts: model.parameters.map(\.count))
        }
    }

    private func flatten(_ buffers: [Backend.Buffer], counts: [Int]) throws -> [Float] {
        var flat: [Float] = []
        flat.reserveCapacity(counts.reduce(0, +) + 1)
        for (buffer, count) in zip(buffers, counts) { flat += try model.backend.read(buffer, offset: 0, count: count) }
        return flat
    }

    private func unflatten(_ flat: [Float], into buffers: [Backend.Buffer], counts: [Int]) throws {
        var offset = 0
        for (buffer, count) in zip(buffers, counts) {
            try model.backend.write(Array(flat[offset..<(offset + count)]), to: buffer, offset: 0)
            offset += count
        }
    }

    /// Averages the gradients (each distinct buffer once, in one flat allreduce) and the loss
    /// across replicas.
    private func averageAcrossReplicas(_ loss: Float) throws -> Float {
        guard let reducer else { return loss }
        var seen = Set<ObjectIdentifier>()
        var buffers: [Backend.Buffer] = [], counts: [Int] = []
        for p in model.parameters {
            guard let g = p.gradient, seen.insert(ObjectIdentifier(g)).inserted else { continue }
            buffers.append(g)
            counts.append(p.count)
        }
        var flat = try flatten(buffers, counts: counts)
        flat.append(loss)
        try reducer.allreduceSum(&flat)
        let scale = 1 / Float(reducer.size)
        for i in flat.indices { flat[i] *= scale }
        try unflatten(flat, into: buffers, counts: counts)
        return flat[flat.count - 1]
    }

    /// One step: forward and backward over the next chunk, clipping, the update. Throws
    /// `TrainingError.diverged` or `.nonFinite` (without updating) when the loss or the
    /// gradient norm is not finite.
    @discardableResult
    public func trainStep() throws -> StepReport {
        let start = DispatchTime.now().uptimeNanoseconds
        if chunk >= data.chunksPerEpoch { chunk = 0; epoch += 1; state = nil }
        let (inputs, targets) = data.chunk(chunk, streams: streams)
        let backend = model.backend
        let (lossBuffer, next) = try model.forwardBackward(
            inputs: backend.makeIndices(inputs), targets: backend.makeIndices(targets),
            sequenceLength: data.sequenceLength,
            batch: streams.count,
            state: state, dropoutSeed: options.seed &+ UInt64(step) &* 0x9E37_79B9_7F4A_7C15,
            dropoutBatch: (offset: streams.lowerBound, global: data.batch))
        let loss = try averageAcrossReplicas(backend.read(lossBuffer, offset: 0, count: 1)[0])
        guard loss.isFinite else { throw TrainingError.diverged(step: step + 1, loss: loss) }
        let norm = try optimizer.clipGradients(model.parameters, maxNorm: options.clipNorm)
        guard norm.isFinite else { throw TrainingError.nonFinite(step: step + 1, what: "the gradient norm (\(norm))") }
        let rate = options.schedule.rate(base: options.learningRate, step: step + 1, warmup: options.warmup)
        try optimizer.update(model.parameters, learningRate: rate)
        state = next
        chunk += 1
        step += 1
        return StepReport(
            step: step, loss: loss, learningRate: rate, epoch: epoch,
            seconds: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    }

    /// Mean cross-entropy (nats per character) over the held-out split.
    public func evaluate() throws -> Float { try evaluate(limit: nil, deadline: nil).loss }

    /// Mean cross-entropy over the first `limit` held-out characters (all when nil), stopping
    /// early at `deadline`; `progress` is called after every chunk with the fraction done.
    public func evaluate(
        limit: Int?, deadline: Date?, progress: (Double) -> Void = { _ in }
    ) throws -> HeldOutEvaluation {
        let cap = min(data.heldOut.count, limit ?? data.heldOut.count)
        let streams = max(1, min(options.evaluationStreams, cap / 2))
        let chunks = data.heldOutChunks(streams: streams, limit: cap)
        let total = chunks.reduce(0) { $0 + $1.inputs.count }
        var state: LanguageModel<Backend>.State? = nil
        var sum = 0.0, count = 0
        for chunk in chunks {
            if let deadline, Date() >= deadline { break }
            let backend = model.backend
            let (loss, next) = try model.loss(
                inputs: backend.makeIndices(chunk.inputs), targets: backend.makeIndices(chunk.targets),
                sequenceLength: chunk.length, batch: streams, state: state)
            sum += Double(try backend.read(loss, offset: 0, count: 1)[0]) * Double(chunk.inputs.count)
            count += chunk.inputs.count
            state = next
            progress(Double(count) / Double(max(total, 1)))
        }
        return HeldOutEvaluation(loss: count > 0 ? Float(sum / Double(count)) : .nan, characters: count, total: total)
    }

    // MARK: checkpoints

    /// Writes model, optimiser state, carried LSTM state, counters and the data's identity to
    /// `path`, atomically (temporary file, fsync, rename). The LSTM is stored under
    /// "lstm." + PyTorch's names.
    public func saveCheckpoint(to path: String) throws {
        var tensors: [(name: String, value: SafeTensorsValue)] = []
        let weights = try model.parameterTensors()
        if let name = weights.keys.sorted().first(where: { !weights[$0]!.scalars.allSatisfy(\.isFinite) }) {
            throw TrainingError.nonFinite(step: step, what: "weight '\(name)' (the checkpoint was not written)")
        }
        for p in model.parameters { tensors.append((p.name, .float32(weights[p.name]!))) }
        let shapes = Dictionary(uniqueKeysWithValues: model.parameters.map { ($0.name, $0.shape) })
        let exported = try optimizer.exportState(shapes: shapes)
        tensors += exported.tensors.map { ($0.0, .float32($0.1)) }
        if let state {
            // The carried state of every replica's streams: h [L, N·b, Hout], c [L, N·b, H].
            let c = model.configuration
            for (name, buffer, width) in [
                ("train.state.hidden", state.hidden, c.outputSize), ("train.state.cell", state.cell, c.hiddenSize),
            ] {
                let values = try globalState(buffer, width: width)
                tensors.append((name, .float32(try Tensor(shape: [c.numLayers, data.batch, width], scalars: values))))
            }
        }
        if rank != 0 { return }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let metadata: [String: String] = [
            "format": Checkpoint.format,
            "model": String(decoding: try encoder.encode(model.configuration), as: UTF8.self),
            "vocabulary": String(decoding: try encoder.encode(vocabulary.characters.map(String.init)), as: UTF8.self),
            "step": "\(step)", "chunk": "\(chunk)", "epoch": "\(epoch)", "optimizer_step": "\(exported.step)",
            "optimizer": optimizer.kind.name, "batch": "\(data.batch)", "steps": "\(data.sequenceLength)",
            "seed": "\(options.seed)", "data_fingerprint": Self.fingerprint(data.training),
        ]
        try SafeTensorsFile.write(tensors, metadata: metadata.merging(extraMetadata) { own, _ in own }, to: path)
    }

    /// The carried state of every replica's streams, [L, N·b, width] (gathered by a sum of
    /// zero-padded slices); width is Hout for h, H for c.
    private func globalState(_ local: Backend.Buffer, width h: Int) throws -> [Float] {
        let c = model.configuration, b = options.batch
        let values = try model.backend.read(local, offset: 0, count: c.numLayers * b * h)
        guard let reducer else { return values }
        var global = [Float](repeating: 0, count: c.numLayers * data.batch * h)
        for layer in 0..<c.numLayers {
            for row in 0..<b {
                let from = (layer * b + row) * h, to = (layer * data.batch + streams.lowerBound + row) * h
                global.replaceSubrange(to..<(to + h), with: values[from..<(from + h)])
            }
        }
        try reducer.allreduceSum(&global)
        return global
    }

    /// This replica's slice [L, b, width] of a global state [L, N·b, width].
    private func localState(_ global: Tensor) -> [Float] {
        let c = model.configuration, b = options.batch, h = global.shape[2]
        var values: [Float] = []
        for layer in 0..<c.numLayers {
            let from = (layer * data.batch + streams.lowerBound) * h
            values += global.scalars[from..<(from + b * h)]
        }
        return values
    }

    /// Restores a checkpoint written by `saveCheckpoint` for the same data, batch and sequence
    /// length. The file is untrusted: every tensor's shape and every counter is checked against
    /// this model, optimiser and data before anything is changed.
    /// - Throws: `TrainingError.mismatchedResume` when the checkpoint is of another run,
    ///   `TrainingError.nonFinite` when it holds NaN or ±Inf weights, `LSTMError` when it is
    ///   unreadable or inconsistent (naming the tensor or field).
    public func resume(from path: String) throws {
        let checkpoint = try CheckpointFile(contentsOf: path)
        let file = checkpoint.file
        guard checkpoint.model == model.configuration else {
            throw TrainingError.mismatchedResume(
                "\(path) holds a model \(checkpoint.model.summary), this run builds \(model.configuration.summary)")
        }
        guard checkpoint.vocabulary == vocabulary else {
            throw TrainingError.mismatchedResume(
                "\(path) has another vocabulary (\(checkpoint.vocabulary.count) symbols) than this text "
                    + "(\(vocabulary.count))"
            )
        }
        guard checkpoint.batch == data.batch, checkpoint.sequenceLength == data.sequenceLength else {
            throw TrainingError.mismatchedResume(
                "\(path) was trained with batch \(checkpoint.batch) × length \(checkpoint.sequenceLength), this "
                    + "run uses \(data.batch) × \(data.sequenceLength)"
            )
        }
        guard file.metadata["data_fingerprint"] == Self.fingerprint(data.training) else {
            throw TrainingError.mismatchedResume("\(path) was trained on different text")
        }
        if let seed = file.metadata["seed"], seed != "\(options.seed)" {
            throw TrainingError.mismatchedResume(
                "\(path) was trained with seed \(seed) (its dropout masks), this run uses \(options.seed)")
        }
        guard checkpoint.optimizer == optimizer.kind.name else {
            throw TrainingError.mismatchedResume(
                "\(path) used optimizer \(checkpoint.optimizer), this run \(optimizer.kind.name)")
        }
        guard checkpoint.counters.chunk <= data.chunksPerEpoch else {
            throw LSTMError.corruptFile(
                path: path,
                reason:
                    "checkpoint field 'chunk' is \(checkpoint.counters.chunk), past the \(data.chunksPerEpoch) "
                    + "chunks of an epoch"
            )
        }
        let weights = try checkpoint.modelTensors(model.parameters.map { ($0.name, $0.shape) })
        try requireFinite(weights, step: checkpoint.counters.step, source: path)
        let shapes = Dictionary(uniqueKeysWithValues: model.parameters.map { ($0.name, $0.shape) })
        let optimizerState = try checkpoint.optimizerTensors(shapes: shapes, keys: optimizer.stateKeys)
        try requireFinite(optimizerState, step: checkpoint.counters.step, source: path)
        let c = model.configuration
        let carried = try checkpoint.carriedState(
            hiddenShape: [c.numLayers, data.batch, c.outputSize],
            cellShape: [c.numLayers, data.batch, c.hiddenSize])
        if let (h, c) = carried {
            try requireFinite(
                ["train.state.hidden": h, "train.state.cell": c], step: checkpoint.counters.step, source: path)
        }
        // Everything is checked: now change the trainer.
        try model.load(weights, source: path)
        try optimizer.importState(optimizerState, step: checkpoint.counters.optimizerStep, parameters: model.parameters)
        step = checkpoint.counters.step
        chunk = checkpoint.counters.chunk
        epoch = checkpoint.counters.epoch
        if let (h, cell) = carried {
            let (hiddenValues, cellValues) = (localState(h), localState(cell))
            let hidden = try model.backend.makeBuffer(count: hiddenValues.count)
            let cellBuffer = try model.backend.makeBuffer(count: cellValues.count)
            try model.backend.write(hiddenValues, to: hidden, offset: 0)
            try model.backend.write(cellValues, to: cellBuffer, offset: 0)
            state = LanguageModel<Backend>.State(hidden: hidden, cell: cellBuffer)
        } else {
            state = nil
        }
    }

    /// FNV-1a of the ids and their count: tells whether a resume sees the same text.
    static func fingerprint(_ ids: [Int]) -> String {
        var hasher = FNV1a()
        for id in ids { hasher.combine(UInt64(truncatingIfNeeded: id)) }
        return String(hasher.value, radix: 16) + "-\(ids.count)"
    }
}
