import Foundation
import LSTMCore

/// The file that makes a fit resumable (`FitSettings.stateFile`): one safetensors file with the
/// weights under their parameter names, the optimiser's state ("optimizer.<parameter>.<key>")
/// and, in the metadata key "lstm_gpu_fit_state", JSON with everything else a fit needs to go
/// on exactly as if it had not stopped: the run id, the epochs done, the shuffle generator, the
/// model's random generators, the learning-rate scale, each callback's state and the history.
/// A fingerprint of the model, the data and the settings refuses a resume that could not be
/// exact; every value is checked against what a fit writes before anything changes.
struct FitState: Codable, Equatable {
    static let metadataKey = "lstm_gpu_fit_state"
    static let currentFormat = "lstm-gpu-fit-state"
    /// 2: the fingerprint has the learning-rate settings and the examples' lengths.
    /// 3: the fingerprint has the model (architecture, vocabularies, class names), a hash of
    /// the examples' content and the optimiser's kind and settings; the state has a run id.
    static let currentVersion = 3

    /// What must be the same for a resume to be exact.
    struct Fingerprint: Codable, Equatable {
        /// The model's named parts (`fitIdentity`): its architecture layer by layer, its
        /// loss, its metadata (vocabularies, class names, a standardiser) and its parameters' shapes.
        var model: [String: String]
        var trainingExamples: Int
        var validationExamples: Int
        /// FNV-1a of every training (validation) example's content in order: inputs and targets.
        var trainingData: UInt64
        var validationData: UInt64
        var batchSize: Int
        var seed: UInt64
        /// The optimiser's kind and hyper-parameters, as `describe(_:)` gives them.
        var optimizer: String
        var bucketing: Bool
        var bucketPool: Int
        /// The learning rate, schedule, warm-up and clipping, as text.
        var rate: String

        /// The first way `self` (this fit) differs from `saved` (the run being resumed), in the
        /// user's terms; nil when they agree.
        func difference(from saved: Fingerprint) -> String? {
            let resumed = "the run being resumed"
            let keys = Set(model.keys).union(saved.model.keys).sorted { a, b in
                if (a == "architecture") != (b == "architecture") { return a == "architecture" }
                return a.compare(b, options: .numeric) == .orderedAscending
            }
            // The settings first (an application's seed also draws its split), then the data (a
            // vocabulary, a standardiser, an embedding's size follow from it: the data says
            // more), then the architecture, the loss and the parameters, then the metadata.
            func modelDifference(metadata: Bool) -> String? {
                for key in keys where key.hasPrefix("metadata ") == metadata && model[key] != saved.model[key] {
                    switch (model[key], saved.model[key]) {
                    case let (now?, was?) where now.hasPrefix(hashedPrefix) || was.hasPrefix(hashedPrefix):
                        return "the model's \(key) differs from that of \(resumed) (\(now); \(resumed): \(was))"
                    case let (now?, was?): return "the model's \(key) is \(now), \(resumed) used \(was)"
                    case let (now?, nil): return "the model has \(key) \(now), \(resumed) had none"
                    case let (nil, was?): return "\(resumed) had \(key) \(was), this model has none"
                    case (nil, nil): continue
                    }
                }
                return nil
            }
            if bucketing != saved.bucketing {
                return "bucketing is \(bucketing ? "on" : "off"), \(resumed) had it \(saved.bucketing ? "on" : "off")"
            }
            let settings: [(String, String, String)] = [
                ("the batch size is", "\(batchSize)", "\(saved.batchSize)"),
                ("the seed is", "\(seed)", "\(saved.seed)"),
                ("the optimizer is", optimizer, saved.optimizer),
                ("the bucket pool is", "\(bucketPool) batches", "\(saved.bucketPool) batches"),
                ("the learning-rate settings are", rate, saved.rate),
            ]
            for (name, now, was) in settings where now != was { return "\(name) \(now), \(resumed) used \(was)" }
            if trainingExamples != saved.trainingExamples {
                return "the training data has \(trainingExamples) examples, \(resumed) had \(saved.trainingExamples) "
                    + "(another file, edited, or split otherwise)"
            }
            if trainingData != saved.trainingData {
                return "the training data differs from \(resumed) (another file, or edited)"
            }
            if validationExamples != saved.validationExamples {
                return "the validation data has \(validationExamples) examples, \(resumed) had "
                    + "\(saved.validationExamples) (another file, edited, or split otherwise)"
            }
            if validationData != saved.validationData {
                return "the validation data differs from \(resumed) (another file, or edited)"
            }
            if let difference = modelDifference(metadata: false) { return difference }
            if let difference = modelDifference(metadata: true) { return difference }
            return nil
        }
    }

    var format = currentFormat
    var version = currentVersion
    /// Random at the start of a fresh fit, kept by every resume; also in the metadata of every
    /// model file the fit saves (`FitHistory.runIDMetadataKey`), so that a model file can be
    /// told to belong to this run.
    var runID: String
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

    /// Writes the state with the model's weights and the optimiser's state, atomically, unless
    /// a weight or a moment is NaN or infinite (a diverged fit): a state file never holds what
    /// a resume would refuse, so the last finite epoch's file stays.
    /// - Returns: whether the file was written.
    @discardableResult
    static func write<Model: Trainable>(
        _ state: FitState, model: Model, optimizer: Optimizer<Model.Backend>, to path: String
    ) throws -> Bool {
        let backend = model.backend
        var tensors: [(name: String, value: Tensor)] = try model.parameters.map { p in
            (p.name, try Tensor(shape: p.shape, scalars: backend.read(p.value, offset: 0, count: p.count)))
        }
        let shapes = Dictionary(uniqueKeysWithValues: model.parameters.map { ($0.name, $0.shape) })
        tensors += try optimizer.exportState(shapes: shapes).tensors.map { ($0.0, $0.1) }
        guard tensors.allSatisfy({ $0.value.scalars.allSatisfy(\.isFinite) }) else { return false }
        let json = String(decoding: try encoder().encode(state), as: UTF8.self)
        try SafeTensorsFile.write(
            tensors.map { ($0.name, .float32($0.value)) }, metadata: [metadataKey: json], to: path)
        return true
    }

    /// Reads `path`, checks it against this fit (`fingerprint`, the model's parameters and
    /// random generators, the callbacks, `batchesPerEpoch`) and against what a fit writes
    /// (counters within bounds and consistent, finite weights and moments, Adam's v ≥ 0, a
    /// learning-rate scale in (0, 1], every optimiser tensor and no other), then loads the
    /// weights and the optimiser's state. A refused file changes nothing.
    /// - Throws: `LSTMError` naming the file and saying what in it does not fit and how.
    static func restore<Model: Trainable>(
        from path: String, model: Model, optimizer: Optimizer<Model.Backend>, callbacks: [any FitCallback],
        fingerprint: Fingerprint, batchesPerEpoch: Int
    ) throws -> FitState {
        let file = try SafeTensorsFile(contentsOf: path)
        func corrupt(_ reason: String) -> LSTMError { .corruptFile(path: path, reason: "fit state \(reason)") }
        /// A value a fit never writes: the file was damaged or edited.
        func unwritten(_ reason: String) -> LSTMError {
            .io(path: path, reason: "fit state \(reason); a fit never writes that (the file is damaged or was edited)")
        }
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
                "is format '\(displayedValue(header.format))' version \(header.version); this build reads "
                    + "'\(currentFormat)' version \(currentVersion) (an older or newer lstm-gpu wrote it: start the fit "
                    + "afresh)")
        }
        let state: FitState
        do { state = try decoder().decode(FitState.self, from: Data(json.utf8)) } catch {
            throw corrupt("metadata '\(metadataKey)' is not valid fit state JSON (\(error))")
        }
        if let difference = fingerprint.difference(from: state.fingerprint) {
            throw LSTMError.invalidArgument("\(path): cannot resume exactly: \(difference)")
        }
        try state.checkCounters(batchesPerEpoch: batchesPerEpoch, unwritten: unwritten)
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
                    + "\(state.callbacks.map(displayedValue)), this fit has \(names)")
        }
        // Everything is read and checked before anything is changed: a refused file leaves the
        // model, the optimiser and the callbacks as they were.
        let weights = try model.parameters.map { p -> Tensor in
            guard file.contains(p.name) else { throw LSTMError.missingTensor(name: p.name, file: path) }
            let tensor = try file.floatTensor(p.name)
            guard tensor.shape == p.shape else {
                throw LSTMError.shapeMismatch(what: "\(path): \(p.name)", expected: p.shape, got: tensor.shape)
            }
            if let bad = tensor.scalars.firstIndex(where: { !$0.isFinite }) {
                throw unwritten("weight '\(p.name)' has \(tensor.scalars[bad]) at element \(bad)")
            }
            return tensor
        }
        // The optimiser's tensors: after a step, every parameter has each key its kind keeps
        // (none before the first step, none for SGD without momentum), of its shape.
        let keys = optimizerKeys(optimizer.kind)
        var expected: [String: [Int]] = [:]
        if state.optimizerStep > 0 {
            for p in model.parameters { for key in keys { expected["optimizer.\(p.name).\(key)"] = p.shape } }
        }
        let parameterNames = Set(model.parameters.map(\.name))
        if let extra = file.names.sorted().first(where: { !parameterNames.contains($0) && expected[$0] == nil }) {
            throw unwritten(
                "has the tensor '\(displayedValue(extra))', neither a parameter of the model nor state the "
                    + "\(optimizer.kind.name) optimizer keeps at step \(state.optimizerStep) "
                    + "(\(state.optimizerStep == 0 || keys.isEmpty ? "none" : keys.joined(separator: " and ") + " per parameter"))"
            )
        }
        var optimizerTensors: [String: Tensor] = [:]
        for (name, shape) in expected.sorted(by: { $0.key < $1.key }) {
            guard file.contains(name) else { throw LSTMError.missingTensor(name: name, file: path) }
            let tensor = try file.floatTensor(name)
            guard tensor.shape == shape else {
                throw LSTMError.shapeMismatch(what: "\(path): \(name)", expected: shape, got: tensor.shape)
            }
            if let bad = tensor.scalars.firstIndex(where: { !$0.isFinite }) {
                throw unwritten("optimizer tensor '\(name)' has \(tensor.scalars[bad]) at element \(bad)")
            }
            if name.hasSuffix(".v"), let bad = tensor.scalars.firstIndex(where: { $0 < 0 }) {
                throw unwritten(
                    "optimizer tensor '\(name)' (a mean of squared gradients) has \(tensor.scalars[bad]) at element \(bad)"
                )
            }
            optimizerTensors[name] = tensor
        }
        let before = stateful.map(\.resumeState)
        // Callbacks: all restored or none (a bad state puts back the ones already restored).
        do {
            for (callback, saved) in zip(stateful, state.callbackStates) { try callback.restore(resumeState: saved) }
            try optimizer.importState(optimizerTensors, step: state.optimizerStep, parameters: model.parameters)
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

    /// The counters and small values of the JSON: within bounds and as a fit writes them.
    func checkCounters(batchesPerEpoch: Int, unwritten: (String) -> LSTMError) throws {
        guard !runID.isEmpty, runID.count <= 64,
            runID.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") })
        else { throw unwritten("run id \(displayedValue(runID)) is not letters, digits and '-' (1 to 64)") }
        guard (0...SizeLimits.maxCount).contains(epochsDone) else {
            throw unwritten("field 'epochsDone' is \(epochsDone), outside 0...\(SizeLimits.maxCount)")
        }
        guard epochsDone == records.count else {
            throw unwritten("field 'epochsDone' is \(epochsDone) but 'records' holds \(records.count) epochs")
        }
        if let wrong = records.indices.first(where: { records[$0].epoch != $0 + 1 }) {
            throw unwritten("record \(wrong + 1) of 'records' says epoch \(records[wrong].epoch)")
        }
        guard (0...SizeLimits.maxCount).contains(optimizerStep) else {
            throw unwritten("field 'optimizerStep' is \(optimizerStep), outside 0...\(SizeLimits.maxCount)")
        }
        let (steps, overflow) = epochsDone.multipliedReportingOverflow(by: batchesPerEpoch)
        guard !overflow, optimizerStep == steps else {
            throw unwritten(
                "field 'optimizerStep' is \(optimizerStep); \(epochsDone) epochs of \(batchesPerEpoch) batches take "
                    + (overflow ? "more steps than an Int holds" : "\(steps)"))
        }
        guard learningRateScale.isFinite, learningRateScale > 0, learningRateScale <= 1 else {
            throw unwritten(
                "field 'learningRateScale' is \(learningRateScale), outside (0, 1] (it starts at 1 and only falls)")
        }
        if let stoppedBy {
            guard epochsDone >= 1, !stoppedBy.isEmpty, stoppedBy.count <= 200,
                !stoppedBy.unicodeScalars.contains(where: isControlOrFormat)
            else {
                throw unwritten("field 'stoppedBy' is \(displayedValue(stoppedBy)) after \(epochsDone) epochs")
            }
        }
    }
}

/// The state keys `kind` keeps per parameter once it has stepped: "m" and "v" for Adam(W),
/// "momentum" for SGD with momentum, none for plain SGD.
func optimizerKeys(_ kind: OptimizerKind) -> [String] {
    switch kind {
    case let .sgd(momentum, _, _): momentum != 0 ? ["momentum"] : []
    case .adam, .adamW: ["m", "v"]
    }
}

/// The optimiser's kind and hyper-parameters in the user's terms: "adamw (beta1 0.9, beta2
/// 0.999, epsilon 1e-08, weight decay 0.01)".
func describe(_ kind: OptimizerKind) -> String {
    switch kind {
    case let .sgd(momentum, nesterov, weightDecay):
        "sgd (momentum \(momentum), nesterov \(nesterov), weight decay \(weightDecay))"
    case let .adam(beta1, beta2, epsilon, weightDecay), let .adamW(beta1, beta2, epsilon, weightDecay):
        "\(kind.name) (beta1 \(beta1), beta2 \(beta2), epsilon \(epsilon), weight decay \(weightDecay))"
    }
}

/// Whether `scalar` is a control, format or line/paragraph separator character.
func isControlOrFormat(_ scalar: Unicode.Scalar) -> Bool {
    switch scalar.properties.generalCategory {
    case .control, .format, .lineSeparator, .paragraphSeparator: true
    default: false
    }
}

/// The prefix of a fingerprint part given as a hash (a long metadata value such as a vocabulary).
let hashedPrefix = "FNV-1a "

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
