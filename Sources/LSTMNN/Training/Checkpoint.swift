import Foundation
import LSTMCore
import LSTMData

/// The `lstm-gpu train` checkpoint format (`lstm-gpu-checkpoint/1`): one safetensors file with
/// the model's parameters under PyTorch-style module names ("embedding.weight",
/// "lstm.weight_ih_l0", "head.weight", "head.bias"), the optimiser state
/// ("optimizer.<parameter>.<m|v|momentum>"), the carried LSTM state ("train.state.hidden"
/// [L, B, Hout], "train.state.cell" [L, B, H]) and, in the metadata, the model configuration (JSON),
/// the vocabulary (JSON array of one-character strings), the counters (`step`, `chunk`,
/// `epoch`, `optimizer_step`), `optimizer`, `batch`, `steps` (the sequence length), `seed`
/// and `data_fingerprint`.
public enum Checkpoint {
    /// The format tag in the metadata.
    public static let format = "lstm-gpu-checkpoint/1"
    /// How errors name this kind of file.
    static let kind = "an lstm-gpu train checkpoint (written by `lstm-gpu train --checkpoint`)"

    /// The model configuration a checkpoint holds (validated).
    public static func configuration(of file: SafeTensorsFile) throws -> LanguageModelConfiguration {
        try CheckpointFile(file).model
    }

    /// The vocabulary a checkpoint holds (validated against its model).
    public static func vocabulary(of file: SafeTensorsFile) throws -> Vocabulary {
        try CheckpointFile(file).vocabulary
    }

    /// The model stored in `path`, on `backend`, with its vocabulary. Every tensor the model
    /// needs is checked (name, shape, dtype) before use.
    public static func loadModel<Backend: ModelOps>(
        _ path: String, backend: Backend
    ) throws -> (LanguageModel<Backend>, Vocabulary) {
        let checkpoint = try CheckpointFile(contentsOf: path)
        let model = try LanguageModel(checkpoint.model, backend: backend, seed: 0)
        let weights = try checkpoint.modelTensors(model.parameters.map { ($0.name, $0.shape) })
        try requireFinite(weights, step: checkpoint.counters.step, source: path)
        try model.load(weights, source: path)
        return (model, checkpoint.vocabulary)
    }
}

/// A checkpoint read from disk and checked field by field: nothing in it is trusted until
/// it has been validated here (sizes within `SizeLimits`, counters non-negative, a
/// vocabulary of the model's size without duplicates, tensors of the expected shapes).
public struct CheckpointFile {
    /// Steps taken, the next chunk of the epoch, the epoch, the optimiser's step count.
    public struct Counters: Sendable {
        public var step: Int, chunk: Int, epoch: Int, optimizerStep: Int
    }
    public let file: SafeTensorsFile
    public let model: LanguageModelConfiguration
    public let vocabulary: Vocabulary
    public let counters: Counters
    /// "sgd", "adam" or "adamw".
    public let optimizer: String
    /// The global batch and the sequence length the run used.
    public let batch: Int
    public let sequenceLength: Int

    /// Reads and validates the checkpoint at `path`.
    public init(contentsOf path: String) throws {
        try self.init(SafeTensorsFile(contentsOf: path))
    }

    init(_ file: SafeTensorsFile) throws {
        let path = file.path
        guard file.metadata["format"] == Checkpoint.format else {
            let kind = ProjectFileKind(file)
            throw LSTMError.unknownFormat(
                path: path, expected: Checkpoint.kind,
                found: kind == .stateDict ? describeFormat(file) : "it is \(kind.name), used by \(kind.usedBy)")
        }
        func corrupt(_ reason: String) -> LSTMError { .corruptFile(path: path, reason: "checkpoint \(reason)") }
        func count(_ key: String, minimum: Int = 0) throws -> Int {
            guard let text = file.metadata[key] else { throw corrupt("metadata '\(key)' is missing") }
            guard let value = Int(text), value >= minimum, value <= SizeLimits.maxCount else {
                throw corrupt("metadata '\(key)' is '\(text)', not an integer in \(minimum)...\(SizeLimits.maxCount)")
            }
            return value
        }
        guard let json = file.metadata["model"],
            let model = try? JSONDecoder().decode(LanguageModelConfiguration.self, from: Data(json.utf8))
        else {
            throw corrupt("metadata 'model' is missing or malformed")
        }
        do { try model.validate() } catch let error as LSTMError {
            throw corrupt("metadata 'model' is invalid: \(error.description)")
        }
        guard let symbolsJSON = file.metadata["vocabulary"],
            let symbols = try? JSONDecoder().decode([String].self, from: Data(symbolsJSON.utf8))
        else {
            throw corrupt("metadata 'vocabulary' is missing or malformed")
        }
        if let bad = symbols.firstIndex(where: { $0.count != 1 }) {
            throw corrupt("metadata 'vocabulary' entry \(bad) is \(symbols[bad].debugDescription), not one character")
        }
        let characters = symbols.map { $0.first! }
        guard Set(characters).count == characters.count else {
            throw corrupt("metadata 'vocabulary' repeats a character")
        }
        guard characters.count == model.vocabularySize else {
            throw corrupt(
                "metadata 'vocabulary' has \(characters.count) symbols but the model's output has "
                    + "\(model.vocabularySize)"
            )
        }
        guard let optimizer = file.metadata["optimizer"], ["sgd", "adam", "adamw"].contains(optimizer) else {
            throw corrupt(
                "metadata 'optimizer' is '\(file.metadata["optimizer"] ?? "(missing)")', not sgd, adam or adamw")
        }
        self.file = file
        self.model = model
        self.vocabulary = Vocabulary(characters: characters)
        self.optimizer = optimizer
        counters = Counters(
            step: try count("step"), chunk: try count("chunk"), epoch: try count("epoch"),
            optimizerStep: try count("optimizer_step"))
        batch = try count("batch", minimum: 1)
        sequenceLength = try count("steps", minimum: 1)
    }

    /// The named float tensors, each required to exist with the given shape.
    func modelTensors(_ specs: [(name: String, shape: [Int])]) throws -> [String: Tensor] {
        var tensors: [String: Tensor] = [:]
        for (name, shape) in specs { tensors[name] = try tensor(name, shape: shape) }
        return tensors
    }

    /// The optimiser's state tensors "optimizer.<parameter>.<key>": each must name a
    /// parameter of `shapes` and one of `keys`, with the parameter's shape.
    func optimizerTensors(shapes: [String: [Int]], keys: Set<String>) throws -> [String: Tensor] {
        var tensors: [String: Tensor] = [:]
        for name in file.names where name.hasPrefix("optimizer.") {
            let rest = name.dropFirst("optimizer.".count)
            guard let dot = rest.lastIndex(of: "."), let shape = shapes[String(rest[..<dot])],
                keys.contains(String(rest[rest.index(after: dot)...]))
            else {
                throw LSTMError.corruptFile(
                    path: file.path,
                    reason:
                        "checkpoint tensor '\(name)' is not optimizer state of this model (expected "
                        + "optimizer.<parameter>.<\(keys.sorted().joined(separator: "|"))>)"
                )
            }
            tensors[name] = try tensor(name, shape: shape)
        }
        return tensors
    }

    /// The carried LSTM state (hidden [L, B, Hout], cell [L, B, H]); nil when the file has neither.
    func carriedState(hiddenShape: [Int], cellShape: [Int]) throws -> (Tensor, Tensor)? {
        let names = ["train.state.hidden", "train.state.cell"]
        switch names.filter(file.contains).count {
        case 0: return nil
        case 2: return (try tensor(names[0], shape: hiddenShape), try tensor(names[1], shape: cellShape))
        default:
            throw LSTMError.corruptFile(
                path: file.path, reason: "checkpoint has only one of \(names.joined(separator: " and "))")
        }
    }

    private func tensor(_ name: String, shape: [Int]) throws -> Tensor {
        guard let entry = file.entries[name] else { throw LSTMError.missingTensor(name: name, file: file.path) }
        guard entry.shape == shape else {
            throw LSTMError.shapeMismatch(
                what: "\(file.path): checkpoint tensor '\(name)'", expected: shape, got: entry.shape)
        }
        return try file.floatTensor(name)
    }
}

/// Throws `TrainingError.nonFiniteCheckpoint` naming the first tensor (in name order) that
/// holds NaN or ±Inf.
func requireFinite(_ tensors: [String: Tensor], step: Int, source: String) throws {
    for name in tensors.keys.sorted() where !tensors[name]!.scalars.allSatisfy(\.isFinite) {
        throw TrainingError.nonFiniteCheckpoint(path: source, tensor: name, step: step)
    }
}
