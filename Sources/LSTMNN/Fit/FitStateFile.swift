import Foundation
import LSTMCore

/// The file that makes a fit resumable (`FitSettings.stateFile`): one safetensors file with the
/// weights under their parameter names, the optimiser's state ("optimizer.<parameter>.<key>")
/// and, in the metadata key "lstm_gpu_fit_state", JSON with everything else a fit needs to go
/// on exactly as if it had not stopped: the epochs done, the shuffle generator, the model's
/// random generators, the learning-rate scale, each callback's state and the history. A
/// fingerprint of the data and settings refuses a resume that could not be exact.
struct FitState: Codable, Equatable {
    static let metadataKey = "lstm_gpu_fit_state"
    static let currentFormat = "lstm-gpu-fit-state"
    /// 2: the fingerprint has the learning-rate settings and the examples' lengths.
    static let currentVersion = 2

    /// What must be the same for a resume to be exact.
    struct Fingerprint: Codable, Equatable {
        var trainingExamples: Int
        var validationExamples: Int
        var batchSize: Int
        var seed: UInt64
        var optimizer: String
        var bucketing: Bool
        var bucketPool: Int
        /// The learning rate, schedule, warm-up and clipping, as text.
        var rate: String
        /// FNV-1a of every training and validation example's length, in order: the same data
        /// in the same order (as far as lengths tell).
        var lengths: UInt64
    }

    var format = currentFormat
    var version = currentVersion
    var fingerprint: Fingerprint
    var epochsDone: Int
    var optimizerStep: Int
    var shuffleState: UInt64
    var randomStates: [UInt64]
    var learningRateScale: Float
    var callbacks: [String]
    var callbackStates: [[Double]]
    var records: [EpochRecord]
    var stoppedBy: String?

    static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return encoder
    }

    static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return decoder
    }

    /// Writes the state with the model's weights and the optimiser's state, atomically.
    static func write<Model: Trainable>(
        _ state: FitState, model: Model, optimizer: Optimizer<Model.Backend>, to path: String
    ) throws {
        let backend = model.backend
        var tensors: [(name: String, value: SafeTensorsValue)] = try model.parameters.map { p in
            (p.name, .float32(try Tensor(shape: p.shape, scalars: backend.read(p.value, offset: 0, count: p.count))))
        }
        let shapes = Dictionary(uniqueKeysWithValues: model.parameters.map { ($0.name, $0.shape) })
        tensors += try optimizer.exportState(shapes: shapes).tensors.map { ($0.0, .float32($0.1)) }
        let json = String(decoding: try encoder().encode(state), as: UTF8.self)
        try SafeTensorsFile.write(tensors, metadata: [metadataKey: json], to: path)
    }

    /// Reads `path`, checks it against this fit (`fingerprint`, the model's parameters and
    /// random generators, the callbacks), and loads the weights and the optimiser's state.
    /// - Throws: `LSTMError` saying what in the file does not fit and how.
    static func restore<Model: Trainable>(
        from path: String, model: Model, optimizer: Optimizer<Model.Backend>, callbacks: [any FitCallback],
        fingerprint: Fingerprint
    ) throws -> FitState {
        let file = try SafeTensorsFile(contentsOf: path)
        func corrupt(_ reason: String) -> LSTMError { .corruptFile(path: path, reason: "fit state \(reason)") }
        guard let json = file.metadata[metadataKey] else {
            throw LSTMError.unknownFormat(
                path: path, expected: "an lstm-gpu fit state file", found: "no metadata '\(metadataKey)'")
        }
        // Format and version first: a file of another version is named as such, not as bad JSON.
        let header: FitStateHeader
        do { header = try decoder().decode(FitStateHeader.self, from: Data(json.utf8)) } catch {
            throw corrupt("metadata '\(metadataKey)' is not valid fit state JSON (\(error))")
        }
        guard header.format == currentFormat, header.version == currentVersion else {
            throw corrupt(
                "is format '\(header.format)' version \(header.version); this build reads '\(currentFormat)' version "
                    + "\(currentVersion) (start the fit afresh)")
        }
        let state: FitState
        do { state = try decoder().decode(FitState.self, from: Data(json.utf8)) } catch {
            throw corrupt("metadata '\(metadataKey)' is not valid fit state JSON (\(error))")
        }
        let fields = [
            ("trainingExamples", state.fingerprint.trainingExamples, fingerprint.trainingExamples),
            ("validationExamples", state.fingerprint.validationExamples, fingerprint.validationExamples),
            ("batchSize", state.fingerprint.batchSize, fingerprint.batchSize),
            ("bucketPool", state.fingerprint.bucketPool, fingerprint.bucketPool),
        ]
        for (name, saved, now) in fields where saved != now {
            throw LSTMError.invalidArgument(
                "\(path): cannot resume exactly: the state file was written with \(name) \(saved), this fit has \(now)")
        }
        let texts = [
            ("seed", "\(state.fingerprint.seed)", "\(fingerprint.seed)"),
            ("optimizer", state.fingerprint.optimizer, fingerprint.optimizer),
            ("bucketing", "\(state.fingerprint.bucketing)", "\(fingerprint.bucketing)"),
            ("learning rate settings", state.fingerprint.rate, fingerprint.rate),
        ]
        for (name, saved, now) in texts where saved != now {
            throw LSTMError.invalidArgument(
                "\(path): cannot resume exactly: the state file was written with \(name) \(saved), this fit has \(now)")
        }
        guard state.fingerprint.lengths == fingerprint.lengths else {
            throw LSTMError.invalidArgument(
                "\(path): cannot resume exactly: the examples are not those the state file was written with "
                    + "(their lengths differ)")
        }
        guard state.epochsDone >= 0, state.epochsDone == state.records.count else {
            throw corrupt("says \(state.epochsDone) epochs done but holds \(state.records.count) records")
        }
        guard state.optimizerStep >= 0 else { throw corrupt("optimizer step \(state.optimizerStep) is negative") }
        guard state.learningRateScale.isFinite, state.learningRateScale > 0 else {
            throw corrupt("learning-rate scale \(state.learningRateScale) is not finite and > 0")
        }
        guard state.randomStates.count == model.randomStates.count else {
            throw LSTMError.invalidArgument(
                "\(path): cannot resume exactly: the state file has \(state.randomStates.count) random generators "
                    + "(dropout), this model \(model.randomStates.count): another model or dropout setting")
        }
        let stateful = statefulCallbacks(callbacks)
        let names = stateful.map { "\(type(of: $0))" }
        guard state.callbacks == names, state.callbackStates.count == names.count else {
            throw LSTMError.invalidArgument(
                "\(path): cannot resume exactly: the state file was written with callbacks that keep state "
                    + "\(state.callbacks), this fit has \(names)")
        }
        let parameterNames = Set(model.parameters.map(\.name))
        if let extra = file.names.first(where: { !parameterNames.contains($0) && !$0.hasPrefix("optimizer.") }) {
            throw LSTMError.unexpectedTensor(name: extra, file: path)
        }
        // Everything is read and checked before anything is changed: a refused file leaves the
        // model, the optimiser and the callbacks as they were.
        let weights = try model.parameters.map { p -> Tensor in
            guard file.contains(p.name) else { throw LSTMError.missingTensor(name: p.name, file: path) }
            let tensor = try file.floatTensor(p.name)
            guard tensor.shape == p.shape else {
                throw LSTMError.shapeMismatch(what: "\(path): \(p.name)", expected: p.shape, got: tensor.shape)
            }
            return tensor
        }
        var optimizerTensors: [String: Tensor] = [:]
        for name in file.names where name.hasPrefix("optimizer.") {
            optimizerTensors[name] = try file.floatTensor(name)
        }
        try optimizer.importState(optimizerTensors, step: state.optimizerStep, parameters: model.parameters)
        // Callbacks: all restored or none (a bad state puts back the ones already restored).
        let before = stateful.map(\.resumeState)
        do {
            for (callback, saved) in zip(stateful, state.callbackStates) { try callback.restore(resumeState: saved) }
        } catch {
            for (callback, saved) in zip(stateful, before) { try? callback.restore(resumeState: saved) }
            throw error
        }
        for (p, tensor) in zip(model.parameters, weights) {
            try model.backend.write(tensor.scalars, to: p.value, offset: 0)
        }
        model.randomStates = state.randomStates
        return state
    }
}

/// The callbacks whose state goes into a fit state file (those that keep some): adding or
/// removing a progress report or a log on resume changes nothing.
func statefulCallbacks(_ callbacks: [any FitCallback]) -> [any FitCallback] {
    callbacks.filter { !$0.resumeState.isEmpty }
}

/// The format and version of a fit state's JSON, read before the rest.
struct FitStateHeader: Decodable {
    var format: String
    var version: Int
}
