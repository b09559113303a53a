import Foundation
import LSTMCore

/// What a seq2seq model file keeps in its metadata under `Seq2SeqArchitecture.metadataKey`
/// (JSON): the format, its version and the `Seq2SeqConfiguration`.
public struct Seq2SeqArchitecture: Codable, Equatable, Sendable, ArchitectureMetadata {
    static let subject = "seq2seq model"
    static let fileDescription = "an lstm-gpu seq2seq model file"
    public static let metadataKey = "lstm_gpu_seq2seq"
    public static let currentFormat = "lstm-gpu-seq2seq"
    public static let currentVersion = 1
    public var format: String
    public var version: Int
    public var configuration: Seq2SeqConfiguration

    public init(configuration: Seq2SeqConfiguration) {
        format = Self.currentFormat
        version = Self.currentVersion
        self.configuration = configuration
    }
}

extension Seq2Seq {
    /// Metadata keys the file format uses itself ("format" and "lstm_gpu_seq2seq").
    public static var reservedMetadataKeys: Set<String> {
        ["format", Seq2SeqArchitecture.metadataKey, ReducedStateDict.metadataKey]
    }

    /// Writes the model to one safetensors file, atomically (on failure an existing file is
    /// untouched): every parameter as F32 under its name ("source_embedding.weight",
    /// "encoder.weight_ih_l0", …, "output.bias"; see `Seq2SeqConfiguration.parameterSpecs`),
    /// and in the metadata "format": "pt", the architecture as JSON under "lstm_gpu_seq2seq",
    /// and `extraMetadata` (nil: the model's `metadata`), e.g. the vocabularies.
    /// - Throws: `LSTMError.invalidArgument` for an extra key that is a reserved one, or an I/O failure.
    public func save(to path: String, extraMetadata: [String: String]? = nil) throws {
        let extra = extraMetadata ?? metadata
        if let key = extra.keys.sorted().first(where: Self.reservedMetadataKeys.contains) {
            throw LSTMError.invalidArgument("seq2seq: the metadata key '\(key)' is reserved for the file format")
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = String(
            decoding: try encoder.encode(Seq2SeqArchitecture(configuration: configuration)), as: UTF8.self)
        var tensors: [(name: String, value: SafeTensorsValue)] = []
        for p in parameters where !(precision.isReduced && p.name.contains("coder.")) {
            tensors.append(
                (
                    p.name,
                    .float32(try Tensor(shape: p.shape, scalars: backend.read(p.value, offset: 0, count: p.count)))
                ))
        }
        var own = ["format": "pt", Seq2SeqArchitecture.metadataKey: json]
        if precision.isReduced {
            // The encoder's and decoder's matrices in their precision (`ReducedStateDict`).
            for (prefix, layer) in [("encoder.", self.encoder), ("decoder.", self.decoder)] {
                tensors += ReducedStateDict.entries(
                    configuration: layer.configuration, reduced: layer.stack.reducedMatrices,
                    floats: try layer.stack.parameterTensors(), prefix: prefix)
            }
            own[ReducedStateDict.metadataKey] = precision.rawValue
        }
        try SafeTensorsFile.write(tensors, metadata: extra.merging(own) { $1 }, to: path)
    }

    /// The precision of the encoder's and decoder's weight matrices (`Precision`); embeddings,
    /// attention and the output layer are float32.
    public var precision: Precision { encoder.stack.precision }

    /// This model for inference in `precision`: the encoder's and decoder's matrices quantized
    /// (int8) or rounded (bf16, fp16), the other layers copied; a new model, metadata kept.
    /// Returns this model for its own precision.
    /// - Throws: `LSTMError` for a model already in another reduced precision, or weights the
    ///   precision cannot hold.
    public func quantized(_ precision: Precision) throws -> Seq2Seq {
        if precision == self.precision { return self }
        guard !self.precision.isReduced else {
            throw LSTMError.invalidArgument(
                "this model is already \(self.precision); quantize its float32 original to \(precision) instead")
        }
        var weights: [String: Tensor] = [:]
        for p in parameters {
            weights[p.name] = try Tensor(shape: p.shape, scalars: backend.read(p.value, offset: 0, count: p.count))
        }
        let model = try Seq2Seq(configuration, backend: backend, seed: 0, weights: weights, precision: precision)
        model.metadata = metadata
        return model
    }

    /// Reads a file written by `save(to:extraMetadata:)` onto `backend` (any backend, whichever
    /// wrote it); its extra metadata goes to `metadata`. The file is untrusted: each malformed
    /// part is a thrown `LSTMError` saying what and where.
    /// - Throws: `LSTMError.io` / `.corruptFile` for an unreadable or malformed file (bad JSON,
    ///   another format or version, an invalid configuration, a tensor the model does not have),
    ///   `.unknownFormat` for a file without the "lstm_gpu_seq2seq" key, `.missingTensor`,
    ///   `.shapeMismatch` or `.wrongDType`.
    public convenience init(contentsOf path: String, backend: Backend) throws {
        let file = try SafeTensorsFile(contentsOf: path)
        let configuration = try Self.readConfiguration(file)
        let precision = try ReducedStateDict.precision(in: file.metadata, source: path)
        // In a quantized file the encoder's and decoder's matrices are checked by ReducedStateDict.
        let isReduced = { (name: String) in
            precision.isReduced && (name.hasPrefix("encoder.") || name.hasPrefix("decoder."))
                && isReducedMatrixName(String(name.drop { $0 != "." }.dropFirst()))
        }
        let specs = configuration.parameterSpecs.filter { !isReduced($0.name) }
        var allowed = Set(configuration.parameterSpecs.map(\.name).filter(isReduced))
        if precision == .int8 { allowed.formUnion(allowed.map { $0 + ReducedStateDict.scaleSuffix }) }
        try checkTensors(
            file, specs, extra: "seq2seq model has a tensor '%@' that is not one of its parameters",
            alsoAllowed: allowed)
        var weights: [String: Tensor] = [:]
        for (name, _) in specs { weights[name] = try file.floatTensor(name) }
        var reduced: [String: ReducedMatrix] = [:]
        if precision.isReduced {
            for (prefix, lstm) in [
                ("encoder.", configuration.encoderConfiguration), ("decoder.", configuration.decoderConfiguration),
            ] {
                let (matrices, floats) = try ReducedStateDict.read(
                    file, prefix: prefix, configuration: lstm, precision: precision)
                for (name, matrix) in matrices { reduced[prefix + name] = matrix }
                for (name, tensor) in floats { weights[prefix + name] = tensor }
            }
        }
        try self.init(
            configuration, backend: backend, seed: 0, weights: weights, precision: precision, reduced: reduced,
            source: path)
        metadata = file.metadata.filter {
            !Self.reservedMetadataKeys.contains($0.key) && $0.key != ReducedStateDict.metadataKey
        }
    }

    /// The configuration in `file`'s metadata, checked: the format, the version and
    /// `Seq2SeqConfiguration.validate()`.
    static func readConfiguration(_ file: SafeTensorsFile) throws -> Seq2SeqConfiguration {
        let architecture = try Seq2SeqArchitecture.read(from: file)
        do { try architecture.configuration.validate() } catch let error as LSTMError {
            throw LSTMError.corruptFile(path: file.path, reason: "seq2seq model configuration: \(error.description)")
        }
        return architecture.configuration
    }
}
