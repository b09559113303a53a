import Foundation
import LSTMCore

/// The settings of a character language-model training run (`lstm-gpu train`), as recorded in
/// its checkpoint's metadata under `metadataKey` (JSON), and the policy for resuming: what a
/// checkpoint fixes (the model, batch, sequence length, optimiser and seed) and what a resumed
/// run may change (learning rate, momentum, weight decay, clip, schedule, warm-up).
public struct LanguageModelRunSettings: Codable, Equatable, Sendable {
    /// The checkpoint metadata key that holds these settings as JSON.
    public static let metadataKey = "train_options"

    public var layers = 1, hidden = 512, embedding = 64, projSize = 0
    public var dropout: Float = 0
    public var seqLength = 100
    /// The global batch (all ranks).
    public var globalBatch = 32
    /// "sgd", "adam" or "adamw" (`OptimizerName`).
    public var optimizer = "adam"
    public var lr: Float = 2e-3
    public var momentum: Float = 0.9
    public var nesterov = false
    /// nil: the optimiser's default (0; AdamW 0.01).
    public var weightDecay: Float?
    /// The gradient clip norm; 0 is off.
    public var clip: Float = 5
    /// "constant", "cosine" or "step:EVERY:GAMMA".
    public var schedule = "constant"
    public var warmup = 0
    public var seed: UInt64 = 1
    /// The LSTM's cell options; nil (checkpoints from before they existed) is the plain cell.
    public var cell: LSTMCellOptions?

    public init() {}

    /// The settings a user gave (nil: not given), to merge over a checkpoint's or the defaults.
    public struct Given: Sendable {
        public var layers: Int?, hidden: Int?, embedding: Int?, projSize: Int?
        public var dropout: Float?
        /// nil when no cell option was given.
        public var cell: LSTMCellOptions?
        public var seqLength: Int?
        /// Streams per rank.
        public var batch: Int?
        public var optimizer: String?
        public var seed: UInt64?
        public var lr: Float?, momentum: Float?
        public var nesterov = false
        public var weightDecay: Float?, clip: Float?
        public var schedule: String?
        public var warmup: Int?
        public init() {}
    }

    /// The run's settings: `given` over the checkpoint's (`resumed`, with its path) or the
    /// defaults. A given setting that contradicts what the checkpoint fixes is refused naming
    /// the option; the learning-rate settings may change.
    /// - Returns: the settings, and a note for the user when the checkpoint records no settings.
    /// - Throws: `SettingError` for a contradiction, `LSTMError` for a malformed record.
    public static func resolve(
        _ given: Given, resumed: (file: CheckpointFile, path: String)?, ranks: Int
    ) throws -> (settings: LanguageModelRunSettings, note: String?) {
        var s = LanguageModelRunSettings()
        var recorded: LanguageModelRunSettings?
        var note: String?
        if let (file, path) = resumed {
            if let json = file.file.metadata[metadataKey] {
                guard let saved = try? JSONDecoder().decode(Self.self, from: Data(json.utf8)) else {
                    throw LSTMError.corruptFile(path: path, reason: "checkpoint metadata '\(metadataKey)' is malformed")
                }
                try saved.validate(source: path)
                s = saved
            } else {
                // A checkpoint from before the options were recorded: its seed is in the metadata.
                if let text = file.file.metadata["seed"], let seed = UInt64(text) { s.seed = seed }
                note =
                    "note: \(path) records no training options; --lr, --schedule, --clip and the optimiser's "
                    + "settings are the defaults unless given"
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
        func take<T: Equatable>(_ value: T?, _ keyPath: WritableKeyPath<Self, T>, _ name: String, fixed: Bool) throws {
            guard let value else { return }
            if fixed, let recorded, recorded[keyPath: keyPath] != value {
                throw SettingError(
                    name,
                    "\(name) \(value) contradicts the checkpoint's \(recorded[keyPath: keyPath]) (leave it out to "
                        + "continue with the checkpoint's)")
            }
            s[keyPath: keyPath] = value
        }
        try take(given.layers, \.layers, "--layers", fixed: true)
        try take(given.hidden, \.hidden, "--hidden", fixed: true)
        try take(given.embedding, \.embedding, "--embedding", fixed: true)
        try take(given.projSize, \.projSize, "--proj-size", fixed: true)
        try take(given.dropout, \.dropout, "--dropout", fixed: true)
        if let cell = given.cell {
            if let theirs = recorded.map({ $0.cell ?? LSTMCellOptions() }), theirs != cell {
                throw SettingError(
                    "cell options",
                    "the cell options given (\(cell.summary)) contradict the checkpoint's (\(theirs.summary)): "
                        + "leave them out to continue with the checkpoint's")
            }
            s.cell = cell
        }
        try take(given.seqLength, \.seqLength, "--seq-length", fixed: true)
        if let batch = given.batch {
            let global = SizeLimits.saturatingProduct([batch, ranks])
            if let recorded, recorded.globalBatch != global {
                throw SettingError(
                    "--batch",
                    "--batch \(batch)\(ranks > 1 ? " on \(ranks) ranks" : "") contradicts the checkpoint's global "
                        + "batch \(recorded.globalBatch)")
            }
            s.globalBatch = global
        } else if recorded == nil {
            s.globalBatch = SizeLimits.saturatingProduct([32, ranks])
        }
        guard s.globalBatch % ranks == 0 else {
            throw SettingError(
                "--batch",
                "the checkpoint's global batch \(s.globalBatch) does not split over \(ranks) ranks: give --batch")
        }
        try take(given.optimizer, \.optimizer, "--optimizer", fixed: true)
        try take(given.seed, \.seed, "--seed", fixed: true)
        try take(given.lr, \.lr, "--lr", fixed: false)
        try take(given.momentum, \.momentum, "--momentum", fixed: false)
        if given.nesterov { s.nesterov = true }
        if let weightDecay = given.weightDecay { s.weightDecay = weightDecay }
        try take(given.clip, \.clip, "--clip", fixed: false)
        try take(given.schedule, \.schedule, "--schedule", fixed: false)
        try take(given.warmup, \.warmup, "--warmup", fixed: false)
        return (s, note)
    }

    /// Checks settings read from a checkpoint (untrusted) with the bounds the options have
    /// (`SettingBounds`), naming the field.
    /// - Throws: `LSTMError.corruptFile` naming `source` and the field.
    public func validate(source: String) throws {
        do {
            try SettingBounds.modelSizes(
                layers: layers, hidden: hidden, embedding: embedding, projection: projSize, dropout: dropout,
                names: ("layers", "hidden", "embedding", "projSize", "dropout"))
            try SettingBounds.count(projSize, "projSize", minimum: 0, maximum: max(hidden - 1, 0))
            try SettingBounds.count(seqLength, "seqLength", minimum: 1)
            try SettingBounds.count(globalBatch, "globalBatch", minimum: 1)
            try SettingBounds.count(warmup, "warmup", minimum: 0)
            try SettingBounds.number(lr, "lr", in: SettingBounds.learningRate)
            try SettingBounds.number(momentum, "momentum", in: SettingBounds.momentum)
            try SettingBounds.number(weightDecay, "weightDecay", in: SettingBounds.nonNegative)
            try SettingBounds.number(clip, "clip", in: SettingBounds.nonNegative)
            _ = try OptimizerName(parsing: optimizer, option: "optimizer")
            if let cell {
                do { try cell.validate(projects: projSize > 0) } catch {
                    throw SettingError("cell", "cell = \(cell.summary) is not a valid set of cell options")
                }
            }
            _ = try LearningRateSchedule(parsing: schedule, steps: 1, learningRate: lr, option: "schedule")
        } catch let error as SettingError {
            throw LSTMError.corruptFile(
                path: source, reason: "checkpoint metadata '\(Self.metadataKey)': \(error.description)")
        }
    }

    /// The optimiser these settings name.
    public var optimizerKind: OptimizerKind {
        (OptimizerName(rawValue: optimizer) ?? .adam).kind(
            momentum: momentum, nesterov: nesterov, weightDecay: weightDecay)
    }
}
