import Foundation
import LSTMCore

/// One layer of a saved model's architecture: its kind and settings (the fields its kind uses).
public struct LayerDescription: Codable, Equatable, Sendable {
    /// "embedding", "lstm", "linear", "dropout" or "pooling".
    public var kind: String
    /// Embedding: V and E.
    public var vocabularySize: Int?
    public var dimension: Int?
    /// LSTM: the whole configuration (cell options included).
    public var lstm: LSTMConfiguration?
    /// Linear: in and out.
    public var inputSize: Int?
    public var outputSize: Int?
    /// Dropout: p.
    public var probability: Float?
    /// Pooling: "last", "mean" or "max".
    public var mode: String?

    public init(kind: String) { self.kind = kind }
}

/// The architecture a model file keeps in its metadata under `ModelArchitecture.metadataKey`.
public struct ModelArchitecture: Codable, Equatable, Sendable, ArchitectureMetadata {
    static let subject = "model"
    static let fileDescription = "an lstm-gpu model file"
    public static let metadataKey = "lstm_gpu_model"
    public static let currentFormat = "lstm-gpu-sequential"
    public static let currentVersion = 1
    public var format: String
    public var version: Int
    public var layers: [LayerDescription]

    public init(layers: [LayerDescription]) {
        format = Self.currentFormat
        version = Self.currentVersion
        self.layers = layers
    }
}

/// What flows between a saved model's layers: token ids, a sequence or rows of some width
/// (nil: not fixed yet).
private enum Flow { case tokens, sequence(Int?), rows(Int) }

extension PoolingMode {
    var name: String {
        switch self {
        case .last: "last"
        case .mean: "mean"
        case .max: "max"
        }
    }
}

extension Sequential {
    /// The architecture of this model: one description per layer.
    /// - Throws: `LSTMError.invalidArgument` naming the position and type of a layer that
    ///   cannot be described (a layer of your own, a nested `Sequential`).
    public func architecture() throws -> ModelArchitecture {
        ModelArchitecture(layers: try described().map(\.description))
    }

    /// Each layer's description and the backend it runs on.
    private func described() throws -> [(description: LayerDescription, backend: Backend)] {
        try layers.enumerated().map { position, layer in
            var d: LayerDescription
            let backend: Backend
            switch layer {
            case let e as Embedding<Backend>:
                d = LayerDescription(kind: "embedding")
                (d.vocabularySize, d.dimension, backend) = (e.vocabularySize, e.dimension, e.backend)
            case let l as LSTMLayer<Backend>:
                d = LayerDescription(kind: "lstm")
                (d.lstm, backend) = (l.configuration, l.stack.backend)
            case let l as Linear<Backend>:
                d = LayerDescription(kind: "linear")
                (d.inputSize, d.outputSize, backend) = (l.inputSize, l.outputSize, l.backend)
            case let l as Dropout<Backend>:
                d = LayerDescription(kind: "dropout")
                (d.probability, backend) = (l.probability, l.backend)
            case let l as SequencePooling<Backend>:
                d = LayerDescription(kind: "pooling")
                (d.mode, backend) = (l.mode.name, l.backend)
            default:
                throw LSTMError.invalidArgument(
                    "cannot save layer \(position) (\(type(of: layer))): only Embedding, LSTMLayer, Linear,"
                        + " Dropout and SequencePooling layers can be described in a model file")
            }
            return (d, backend)
        }
    }

    /// Writes the whole model to one safetensors file, atomically (on failure an existing file
    /// is untouched): the weights under their `nn.Sequential` names ("0.weight",
    /// "1.weight_ih_l0", …) and the architecture as JSON in the metadata key "lstm_gpu_model".
    /// `Sequential(contentsOf:backend:)` and `scripts/model-in-torch` read it back.
    /// `metadata` adds string entries of your own (a vocabulary, class names); the keys
    /// "format", "lstm_gpu_model" and "lstm_gpu_precision" are the file's own and refused. A model
    /// whose LSTMs are in a reduced precision stores them in it (`ReducedStateDict`); LSTM layers
    /// of different precisions are refused.
    /// - Throws: `LSTMError` for a layer that cannot be described, a reserved metadata key, or an
    ///   I/O failure.
    public func save(to path: String, metadata: [String: String] = [:]) throws {
        if let reserved = metadata.keys.first(where: { $0 == "format" || $0 == ModelArchitecture.metadataKey }) {
            throw LSTMError.invalidArgument("model metadata key '\(reserved)' is the file's own; choose another")
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let described = try described()
        let json = String(
            decoding: try encoder.encode(ModelArchitecture(layers: described.map(\.description))), as: UTF8.self)
        let backend = described[0].backend
        let precisions = Set(layers.compactMap { ($0 as? LSTMLayer<Backend>)?.stack.precision })
        guard precisions.count <= 1 else {
            throw LSTMError.invalidArgument(
                "the model's LSTM layers are in \(precisions.map(\.rawValue).sorted().joined(separator: " and ")): a model "
                    + "file holds one precision; quantize the float32 model as a whole (Sequential.quantized)")
        }
        var tensors: [(name: String, value: SafeTensorsValue)] = []
        for (position, layer) in layers.enumerated() {
            if let lstm = layer as? LSTMLayer<Backend>, lstm.stack.precision.isReduced {
                // The LSTM's matrices in their precision (`ReducedStateDict` has the layout).
                tensors += ReducedStateDict.entries(
                    configuration: lstm.configuration, reduced: lstm.stack.reducedMatrices,
                    floats: try lstm.stack.parameterTensors(), prefix: "\(position).")
                continue
            }
            for p in layer.parameters {
                let values = try backend.read(p.value, offset: 0, count: p.count)
                tensors.append((p.name, .float32(try Tensor(shape: p.shape, scalars: values))))
            }
        }
        var own = ["format": "pt", ModelArchitecture.metadataKey: json]
        if precision.isReduced { own[ReducedStateDict.metadataKey] = precision.rawValue }
        if let reserved = metadata.keys.first(where: { $0 == ReducedStateDict.metadataKey }) {
            throw LSTMError.invalidArgument("model metadata key '\(reserved)' is the file's own; choose another")
        }
        try SafeTensorsFile.write(tensors, metadata: metadata.merging(own) { $1 }, to: path)
    }

    /// The precision of the model's LSTM layers (`Precision`): fp32 unless made by `quantized`
    /// or loaded from a quantized file. Embeddings and linear layers are always float32.
    public var precision: Precision {
        layers.lazy.compactMap { ($0 as? LSTMLayer<Backend>)?.stack.precision }.first { $0.isReduced } ?? .fp32
    }

    /// This model for inference in `precision`: every LSTM layer's weight matrices quantized
    /// (int8) or rounded (bf16, fp16) as `LSTM.quantized` does, the other layers copied as
    /// they are (float32, as PyTorch's `quantize_dynamic({nn.LSTM})` leaves them). The result is
    /// a new model (inference only when reduced); this one is unchanged. Returns this model for
    /// its own precision.
    /// - Throws: `LSTMError` for a model already in another reduced precision, a layer that
    ///   cannot be described, weights the precision cannot hold, or a backend without it.
    public func quantized(_ precision: Precision) throws -> Sequential {
        if precision == self.precision { return self }
        guard !self.precision.isReduced else {
            throw LSTMError.invalidArgument(
                "this model is already \(self.precision); quantize its float32 original to \(precision) instead")
        }
        let described = try described()
        let backend = described[0].backend
        var values: [String: Tensor] = [:]
        for p in parameters {
            values[p.name] = try Tensor(shape: p.shape, scalars: backend.read(p.value, offset: 0, count: p.count))
        }
        let built = try Self.buildLayers(
            ModelArchitecture(layers: described.map(\.description)), backend: backend,
            tensor: { position, name in values["\(position).\(name)"]! },
            lstm: { position, configuration in
                let original = self.layers[position] as! LSTMLayer<Backend>
                return try LSTMStack(
                    configuration: configuration, backend: backend, weights: original.stack.parameterTensors(),
                    precision: precision)
            })
        return try Sequential(built)
    }

    /// Reads a model file written by `save(to:)` onto `backend` (any backend, whichever wrote it).
    /// The file is untrusted: every malformed part is a thrown `LSTMError` saying what and where.
    /// - Throws: `LSTMError.io` / `.corruptFile` for an unreadable or malformed file (bad JSON,
    ///   an unknown format, version or layer kind, settings out of range, sizes that do not
    ///   chain, a tensor no layer has), `.missingTensor`, `.shapeMismatch` or `.wrongDType`.
    /// A quantized file (metadata `precision`: bf16, fp16, int8) loads its LSTM layers in that
    /// precision exactly as stored (`ReducedStateDict`), for inference.
    public convenience init(contentsOf path: String, backend: Backend) throws {
        let file = try SafeTensorsFile(contentsOf: path)
        let architecture = try Self.readArchitecture(file)
        let precision = try ReducedStateDict.precision(in: file.metadata, source: path)
        var specs: [(name: String, shape: [Int])] = []
        var reducedNames: Set<String> = []  // checked by ReducedStateDict.read instead
        for (position, layer) in architecture.layers.enumerated() {
            for (name, shape) in Self.parameterSpecs(layer) {
                if precision.isReduced, layer.kind == "lstm", isReducedMatrixName(name) {
                    reducedNames.insert("\(position).\(name)")
                    if precision == .int8 { reducedNames.insert("\(position).\(name)\(ReducedStateDict.scaleSuffix)") }
                } else {
                    specs.append(("\(position).\(name)", shape))
                }
            }
        }
        try checkTensors(
            file, specs, extra: "model has a tensor '%@' that none of its layers has", alsoAllowed: reducedNames)
        let layers = try Self.buildLayers(
            architecture, backend: backend, tensor: { position, name in try file.floatTensor("\(position).\(name)") },
            lstm: { position, configuration in
                guard precision.isReduced else {
                    var weights: [String: Tensor] = [:]
                    for spec in configuration.parameterSpecs {
                        weights[spec.name] = try file.floatTensor("\(position).\(spec.name)")
                    }
                    return try LSTMStack(configuration: configuration, backend: backend, weights: weights)
                }
                let (reduced, floats) = try ReducedStateDict.read(
                    file, prefix: "\(position).", configuration: configuration, precision: precision)
                return try LSTMStack(
                    configuration: configuration, backend: backend, reducedMatrices: reduced, otherWeights: floats,
                    precision: precision, source: path)
            })
        try self.init(layers)
    }

    /// The layers `architecture` (validated) describes on `backend`: each layer's float32
    /// tensors by (position, module-local name) from `tensor`, each LSTM's stack from `lstm`.
    static func buildLayers(
        _ architecture: ModelArchitecture, backend: Backend, tensor: (Int, String) throws -> Tensor,
        lstm: (Int, LSTMConfiguration) throws -> LSTMStack<Backend>
    ) throws -> [any Layer<Backend>] {
        let read = tensor
        return try architecture.layers.enumerated().map { position, d in
            func tensor(_ name: String) throws -> Tensor { try read(position, name) }
            switch d.kind {
            case "embedding":
                let e = try Embedding(
                    backend: backend, vocabularySize: d.vocabularySize!, dimension: d.dimension!, seed: 0)
                try backend.write(tensor("weight").scalars, to: e.weight.value, offset: 0)
                return e
            case "lstm":
                return try LSTMLayer(stack: lstm(position, d.lstm!), seed: UInt64(position))
            case "linear":
                let l = try Linear(backend: backend, inputSize: d.inputSize!, outputSize: d.outputSize!, seed: 0)
                try backend.write(tensor("weight").scalars, to: l.weight.value, offset: 0)
                try backend.write(tensor("bias").scalars, to: l.bias.value, offset: 0)
                return l
            case "dropout":
                return try Dropout(backend: backend, probability: d.probability!, seed: UInt64(position))
            default:
                return SequencePooling(backend: backend, mode: PoolingMode.allCases.first { $0.name == d.mode }!)
            }
        }
    }

    /// Each layer's parameters with their module-local names and shapes (for a validated description).
    static func parameterSpecs(_ d: LayerDescription) -> [(name: String, shape: [Int])] {
        switch d.kind {
        case "embedding": [("weight", [d.vocabularySize!, d.dimension!])]
        case "lstm": d.lstm!.parameterSpecs
        case "linear": [("weight", [d.outputSize!, d.inputSize!]), ("bias", [d.outputSize!])]
        default: []
        }
    }

    /// The architecture in `file`'s metadata, checked: known format and version, known kinds
    /// with their settings present and in range, and widths that chain from layer to layer.
    static func readArchitecture(_ file: SafeTensorsFile) throws -> ModelArchitecture {
        let path = file.path
        func corrupt(_ reason: String) -> LSTMError { .corruptFile(path: path, reason: "model \(reason)") }
        let architecture = try ModelArchitecture.read(from: file)
        guard !architecture.layers.isEmpty else { throw corrupt("has no layers") }
        guard architecture.layers.count <= SizeLimits.maxLayers else {
            throw corrupt("has \(architecture.layers.count) layers (at most \(SizeLimits.maxLayers))")
        }
        var flow = Flow.tokens
        for (position, d) in architecture.layers.enumerated() {
            func bad(_ reason: String) -> LSTMError { corrupt("layer \(position) (\(d.kind)): \(reason)") }
            func size(_ value: Int?, _ name: String) throws -> Int {
                guard let value else { throw bad("'\(name)' is missing") }
                do { try SizeLimits.requireSize(value, name) } catch let error as LSTMError {
                    throw bad(error.description)
                }
                return value
            }
            func takeSequence(_ width: Int, _ what: String) throws {
                switch flow {
                case .tokens: break
                case .sequence(nil): break
                case let .sequence(w?) where w == width: break
                case let .sequence(w?): throw bad("\(what) is \(width) but the layer before gives width \(w)")
                case .rows: throw bad("expects a sequence [T, B, F] but gets rows (after pooling)")
                }
            }
            switch d.kind {
            case "embedding":
                let v = try size(d.vocabularySize, "vocabularySize"), e = try size(d.dimension, "dimension")
                guard case .tokens = flow else { throw bad("an embedding must be the first layer") }
                do { _ = try SizeLimits.product([v, e], "embedding weight") } catch let error as LSTMError {
                    throw bad(error.description)
                }
                flow = .sequence(e)
            case "lstm":
                guard let config = d.lstm else { throw bad("'lstm' configuration is missing") }
                guard !config.batchFirst else { throw bad("batchFirst must be false inside a model") }
                do { try config.validate() } catch let error as LSTMError { throw bad(error.description) }
                try takeSequence(config.inputSize, "its inputSize")
                flow = .sequence(config.numDirections * config.outputSize)
            case "linear":
                let i = try size(d.inputSize, "inputSize"), o = try size(d.outputSize, "outputSize")
                do { _ = try SizeLimits.product([i, o], "linear weight") } catch let error as LSTMError {
                    throw bad(error.description)
                }
                switch flow {
                case let .rows(w) where w != i, let .sequence(w?) where w != i:
                    throw bad("inputSize is \(i) but the layer before gives width \(w)")
                case .rows: flow = .rows(o)
                default: flow = .sequence(o)
                }
            case "dropout":
                guard let p = d.probability else { throw bad("'probability' is missing") }
                guard p >= 0, p < 1 else { throw bad("probability \(p) is outside [0, 1)") }
                if case .tokens = flow { flow = .sequence(nil) }
            case "pooling":
                guard let mode = d.mode else { throw bad("'mode' is missing") }
                guard PoolingMode.allCases.contains(where: { $0.name == mode }) else {
                    throw bad("mode '\(mode)' is not last, mean or max")
                }
                switch flow {
                case let .sequence(w?): flow = .rows(w)
                case .sequence(nil), .tokens: throw bad("pooling must follow a layer that fixes the width")
                case .rows: throw bad("expects a sequence [T, B, F] but gets rows (after pooling)")
                }
            default:
                throw bad("unknown layer kind '\(d.kind)' (known: embedding, lstm, linear, dropout, pooling)")
            }
        }
        return architecture
    }
}

/// Checks that `file` holds exactly the tensors `specs` names, each with its shape and a float
/// dtype. `extra` is the reason for an unexpected tensor, with "%@" standing for its name.
/// - Throws: `LSTMError.corruptFile` (an extra tensor), `.missingTensor`, `.shapeMismatch` or `.wrongDType`.
/// Names in `alsoAllowed` may be present (a caller checks them: a quantized LSTM's matrices).
func checkTensors(
    _ file: SafeTensorsFile, _ specs: [(name: String, shape: [Int])], extra: String, alsoAllowed: Set<String> = []
) throws {
    let expected = Set(specs.map(\.name)).union(alsoAllowed)
    if let name = file.names.first(where: { !expected.contains($0) }) {
        throw LSTMError.corruptFile(path: file.path, reason: extra.replacingOccurrences(of: "%@", with: name))
    }
    for (name, shape) in specs {
        guard let entry = file.entries[name] else { throw LSTMError.missingTensor(name: name, file: file.path) }
        guard entry.shape == shape else {
            throw LSTMError.shapeMismatch(what: "\(file.path): \(name)", expected: shape, got: entry.shape)
        }
        guard [.f32, .f64, .f16, .bf16].contains(entry.dtype) else {
            throw LSTMError.wrongDType(name: name, expected: "F32", got: entry.dtype.rawValue)
        }
    }
}

/// The architecture JSON a model file keeps under one metadata key, with a format name and a
/// version that reading checks.
protocol ArchitectureMetadata: Decodable {
    static var metadataKey: String { get }
    static var currentFormat: String { get }
    static var currentVersion: Int { get }
    /// What error messages call the file's content: "model", "seq2seq model".
    static var subject: String { get }
    /// What such a file is, for `LSTMError.unknownFormat`: "an lstm-gpu model file".
    static var fileDescription: String { get }
    var format: String { get }
    var version: Int { get }
}

extension ArchitectureMetadata {
    /// The architecture in `file`'s metadata, decoded, with a known format and version.
    /// - Throws: `LSTMError.unknownFormat` without the key; `.corruptFile` for JSON that does
    ///   not decode, another format or another version.
    static func read(from file: SafeTensorsFile) throws -> Self {
        func corrupt(_ reason: String) -> LSTMError { .corruptFile(path: file.path, reason: "\(subject) \(reason)") }
        guard let json = file.metadata[metadataKey] else {
            throw LSTMError.unknownFormat(
                path: file.path, expected: fileDescription, found: "no metadata '\(metadataKey)'")
        }
        let architecture: Self
        do {
            architecture = try JSONDecoder().decode(Self.self, from: Data(json.utf8))
        } catch let error as LSTMError {
            throw corrupt("metadata '\(metadataKey)': \(error.description)")
        } catch {
            throw corrupt("metadata '\(metadataKey)' is not valid \(subject) JSON (\(error))")
        }
        guard architecture.format == currentFormat else {
            throw corrupt("format is '\(architecture.format)', not '\(currentFormat)'")
        }
        guard architecture.version == currentVersion else {
            throw corrupt(
                "version \(architecture.version) is not supported (this build reads version \(currentVersion))")
        }
        return architecture
    }
}
