import Foundation
import XCTest

@testable import LSTMCPU
@testable import LSTMCore
@testable import LSTMData
@testable import LSTMKit
@testable import LSTMNN
@testable import LSTMReference

/// The fit state file as untrusted input: counters within bounds, only values a fit writes,
/// a fingerprint of the model, the data and the settings, and the run id that ties a model
/// file to its fit. Every refusal names the file and what differs, and changes nothing.
final class FitStateTests: XCTestCase {
    let cpu = CPUBackend()
    let training = countingTask(40, seed: 1)
    let validation = countingTask(12, seed: 2)

    /// One epoch of the counting model with Adam into a fresh state file at `name`; its path.
    func writeState(
        _ name: String, optimizer: OptimizerKind = .adam(), callbacks: [any FitCallback] = []
    ) throws
        -> String
    {
        let path = temporaryPath(name)
        try? FileManager.default.removeItem(atPath: path)
        _ = try countingModel(cpu).fit(
            training: training, validation: validation, loss: .crossEntropy(),
            settings: FitSettings(epochs: 1, batchSize: 8, optimizer: optimizer, stateFile: path, resume: true),
            callbacks: callbacks)
        return path
    }

    /// Rewrites the state file at `source` to `destination` with its JSON and tensors edited.
    func edit(
        _ source: String, to destination: String, state editState: (inout FitState) -> Void = { _ in },
        tensors editTensors: (inout [String: Tensor]) -> Void = { _ in }
    ) throws {
        let file = try SafeTensorsFile(contentsOf: source)
        var state = try FitState.decoder().decode(
            FitState.self, from: Data(file.metadata[FitState.metadataKey]!.utf8))
        editState(&state)
        var tensors = Dictionary(uniqueKeysWithValues: try file.names.map { ($0, try file.floatTensor($0)) })
        editTensors(&tensors)
        let json = String(decoding: try FitState.encoder().encode(state), as: UTF8.self)
        try SafeTensorsFile.write(
            tensors.sorted { $0.key < $1.key }.map { ($0.key, .float32($0.value)) },
            metadata: [FitState.metadataKey: json], to: destination)
    }

    /// Resumes the counting model from `path` (2 epochs, batch 8) and checks that a refusal
    /// left the model's weights as they were.
    func resume(
        _ path: String, model: Sequential<CPUBackend>? = nil, optimizer: OptimizerKind = .adam(),
        bucketing: Bool = true, bucketPool: Int = 50, data: [LabelledSequence]? = nil,
        validation held: [LabelledSequence]? = nil, callbacks: [any FitCallback] = []
    ) throws {
        let model = try model ?? countingModel(cpu, seed: 99)
        let before = try parameterValues(model)
        do {
            _ = try model.fit(
                training: data ?? training, validation: held ?? validation, loss: .crossEntropy(),
                settings: FitSettings(
                    epochs: 2, batchSize: 8, optimizer: optimizer, bucketing: bucketing, bucketPool: bucketPool,
                    stateFile: path, resume: true),
                callbacks: callbacks)
        } catch {
            XCTAssertEqual(try parameterValues(model), before, "a refused state file changes nothing")
            throw error
        }
    }

    /// Counters near Int.max (or otherwise out of what a fit writes) are refused by name, never
    /// trapping in arithmetic.
    func testCountersAreBoundedAndConsistent() throws {
        let good = try writeState("counters.fitstate")
        let bad = temporaryPath("counters-edited.fitstate")
        let cases: [(String, (inout FitState) -> Void, [String])] = [
            ("optimizerStep Int.max", { $0.optimizerStep = Int.max }, ["'optimizerStep' is \(Int.max)", "outside"]),
            ("optimizerStep -1", { $0.optimizerStep = -1 }, ["'optimizerStep' is -1"]),
            (
                "optimizerStep off by one", { $0.optimizerStep += 1 },
                ["'optimizerStep' is 6", "1 epochs of 5 batches take 5"]
            ),
            (
                "epochsDone Int.max",
                { $0.epochsDone = Int.max },
                ["'epochsDone' is \(Int.max)", "outside 0...\(SizeLimits.maxCount)"]
            ),
            ("epochsDone vs records", { $0.epochsDone = 2 }, ["'epochsDone' is 2 but 'records' holds 1"]),
            ("record numbering", { $0.records[0].epoch = Int.max }, ["record 1 of 'records' says epoch \(Int.max)"]),
            ("scale above 1", { $0.learningRateScale = 1.5 }, ["'learningRateScale' is 1.5, outside (0, 1]"]),
            ("scale NaN", { $0.learningRateScale = .nan }, ["'learningRateScale' is nan"]),
            ("scale 0", { $0.learningRateScale = 0 }, ["'learningRateScale' is 0.0"]),
            ("stoppedBy escape", { $0.stoppedBy = "Early\u{1B}[2J" }, ["'stoppedBy' is \"Early\\u{1B}[2J\""]),
            ("run id", { $0.runID = "" }, ["run id \"\""]),
        ]
        try edit(good, to: bad)
        try resume(bad)  // the file rewritten unchanged resumes
        for (name, change, fragments) in cases {
            try edit(good, to: bad, state: change)
            assertThrows(["counters-edited.fitstate", "a fit never writes that"] + fragments) {
                try self.resume(bad)
            }
            _ = name
        }
    }

    /// NaN or infinite weights and moments, a negative Adam v, missing, extra or misshapen
    /// optimiser tensors: refused naming the file and the tensor, and nothing changes.
    func testValuesAFitNeverWritesAreRefused() throws {
        let good = try writeState("values.fitstate")
        let bad = temporaryPath("values-edited.fitstate")
        func poke(_ name: String, _ value: Float) -> (inout [String: Tensor]) -> Void {
            { tensors in tensors[name]!.scalars[1] = value }
        }
        let cases: [((inout [String: Tensor]) -> Void, [String])] = [
            (poke("1.weight_ih_l0", .nan), ["weight '1.weight_ih_l0' has nan at element 1"]),
            (poke("4.bias", .infinity), ["weight '4.bias' has inf at element 1"]),
            (poke("optimizer.0.weight.m", -.infinity), ["optimizer tensor 'optimizer.0.weight.m' has -inf"]),
            (poke("optimizer.1.weight_hh_l0.v", -1e-3), ["'optimizer.1.weight_hh_l0.v'", "has -0.001 at element 1"]),
            ({ $0["optimizer.4.bias.v"] = nil }, ["missing tensor 'optimizer.4.bias.v'"]),
            (
                { $0["optimizer.4.bias.momentum"] = $0["optimizer.4.bias.m"] },
                ["tensor 'optimizer.4.bias.momentum'", "adam optimizer keeps at step 5 (m and v per parameter)"]
            ),
            (
                { $0["optimizer.4.bias.m"] = try! Tensor(shape: [3], scalars: [0, 0, 0]) },
                ["shape mismatch", "optimizer.4.bias.m", "expected [2], got [3]"]
            ),
        ]
        for (change, fragments) in cases {
            try edit(good, to: bad, tensors: change)
            assertThrows(["values-edited.fitstate"] + fragments) { try self.resume(bad) }
        }
        // Optimiser state at step 0 is state a fit never writes either.
        try edit(
            good, to: bad,
            state: {
                $0.optimizerStep = 0; $0.epochsDone = 0; $0.records = []
            })
        assertThrows(["values-edited.fitstate", "'optimizer.0.weight.m'", "at step 0 (none)"]) { try self.resume(bad) }
    }

    /// A fit whose weights went non-finite keeps its last finite state file instead of
    /// writing one a resume would refuse.
    func testADivergedFitWritesNoStateFile() throws {
        let path = temporaryPath("diverged.fitstate")
        try? FileManager.default.removeItem(atPath: path)
        let history = try countingModel(cpu).fit(
            training: training, loss: .crossEntropy(),
            settings: FitSettings(
                epochs: 2, batchSize: 8, optimizer: .sgd(), learningRate: 1e38, stateFile: path, resume: true))
        XCTAssertFalse(history.records.last!.loss.isFinite)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path))
    }

    /// The fingerprint covers the architecture, the metadata, the data's content, the
    /// optimiser, the validation count and bucketing; each refusal says what differs in the
    /// user's terms.
    func testResumeRefusesAnotherModelDataOrOptimizer() throws {
        let path = try writeState("fingerprint.fitstate")
        func model(pooling: PoolingMode = .mean, peepholes: Bool = false) throws -> Sequential<CPUBackend> {
            var configuration = LSTMConfiguration(inputSize: 8, hiddenSize: 16)
            configuration.cellOptions.peepholes = peepholes
            return try Sequential<CPUBackend>([
                Embedding(backend: cpu, vocabularySize: 8, dimension: 8, seed: 3),
                LSTMLayer(configuration, backend: cpu, seed: 4),
                Dropout(backend: cpu, probability: 0.2, seed: 5),
                SequencePooling(backend: cpu, mode: pooling),
                Linear(backend: cpu, inputSize: 16, outputSize: 2, seed: 6),
            ])
        }
        try resume(path, model: model())  // the same architecture resumes
        let again = try writeState("fingerprint.fitstate")
        assertThrows([
            "fingerprint.fitstate: cannot resume exactly: the model's layer 3 (pooling) mode is max, the run being resumed used mean"
        ]) {
            try self.resume(again, model: model(pooling: .max))
        }
        assertThrows(["the model's layer 1 (lstm) cellOptions.peepholes is true, the run being resumed used false"]) {
            try self.resume(again, model: model(peepholes: true))
        }
        assertThrows([
            "the optimizer is adamw (beta1 0.9, beta2 0.999, epsilon 1e-08, weight decay 0.01), the run being resumed "
                + "used adam (beta1 0.9, beta2 0.999, epsilon 1e-08, weight decay 0.0)"
        ]) {
            try self.resume(again, optimizer: .adamW())
        }
        assertThrows(["the optimizer is adam (beta1 0.8,"]) { try self.resume(again, optimizer: .adam(beta1: 0.8)) }
        assertThrows(["bucketing is off, the run being resumed had it on"]) { try self.resume(again, bucketing: false) }
        assertThrows(["the bucket pool is 10 batches, the run being resumed used 50 batches"]) {
            try self.resume(again, bucketPool: 10)
        }
        // Other words of the same lengths; a swapped label; fewer validation examples.
        var words = training
        guard case let .tokens(ids) = training[0].input else { return XCTFail("token input expected") }
        words[0].input = .tokens(ids.map { $0 == 7 ? 6 : 7 })
        XCTAssertEqual(words[0].length, training[0].length)
        assertThrows(["the training data differs from the run being resumed (another file, or edited)"]) {
            try self.resume(again, data: words)
        }
        var labels = training
        labels[5].target = labels[5].target == .label(0) ? .label(1) : .label(0)
        assertThrows(["the training data differs from the run being resumed"]) { try self.resume(again, data: labels) }
        assertThrows(["the validation data has 11 examples, the run being resumed had 12"]) {
            try self.resume(again, validation: Array(self.validation.dropLast()))
        }
        var heldLabels = validation
        heldLabels[0].target = heldLabels[0].target == .label(0) ? .label(1) : .label(0)
        assertThrows(["the validation data differs from the run being resumed"]) {
            try self.resume(again, validation: heldLabels)
        }
        // Metadata: class names in another order are another model.
        let classes = try SupervisedModel(try countingModel(cpu), loss: .crossEntropy())
        classes.metadata = ["lstm_gpu_classes": #"["neg","pos"]"#]
        let metadataPath = temporaryPath("metadata.fitstate")
        try? FileManager.default.removeItem(atPath: metadataPath)
        _ = try classes.fit(
            training: training, settings: FitSettings(epochs: 1, batchSize: 8, stateFile: metadataPath, resume: true))
        let swapped = try SupervisedModel(try countingModel(cpu), loss: .crossEntropy())
        swapped.metadata = ["lstm_gpu_classes": #"["pos","neg"]"#]
        assertThrows([
            #"the model's metadata lstm_gpu_classes is ["pos","neg"], the run being resumed used ["neg","pos"]"#
        ]) {
            _ = try swapped.fit(
                training: self.training,
                settings: FitSettings(epochs: 2, batchSize: 8, stateFile: metadataPath, resume: true))
        }
    }

    /// A state file of the previous format version is named as such.
    func testAnOlderVersionIsNamed() throws {
        let good = try writeState("version.fitstate")
        let old = temporaryPath("version-2.fitstate")
        try edit(good, to: old, state: { $0.version = 2 })
        assertThrows([
            "version-2.fitstate", "version 2; this build reads 'lstm-gpu-fit-state' version 3",
            "start the fit afresh",
        ]) { try self.resume(old) }
    }

    /// Every model file a fit saves carries its run id, which its state file keeps and a resume
    /// keeps; `requireModelFile` refuses a model file of another run, naming both files.
    func testTheRunIDTiesTheModelFileToItsFit() throws {
        let state = temporaryPath("run-id.fitstate"), best = temporaryPath("run-id.safetensors")
        for path in [state, best] { try? FileManager.default.removeItem(atPath: path) }
        let first = try countingModel(cpu).fit(
            training: training, validation: validation, loss: .crossEntropy(),
            settings: FitSettings(epochs: 1, batchSize: 8, stateFile: state, resume: true),
            callbacks: [SaveBestModel(path: best)])
        XCTAssertEqual(try SafeTensorsFile(contentsOf: best).metadata[FitHistory.runIDMetadataKey], first.runID)
        XCTAssertNoThrow(try first.requireModelFile(best))
        let resumed = try countingModel(cpu).fit(
            training: training, validation: validation, loss: .crossEntropy(),
            settings: FitSettings(epochs: 2, batchSize: 8, stateFile: state, resume: true),
            callbacks: [SaveBestModel(path: best)])
        XCTAssertEqual(resumed.runID, first.runID)
        XCTAssertNoThrow(try resumed.requireModelFile(best))
        // Another run's model (a fresh fit) at the path.
        let other = temporaryPath("run-id-other.safetensors")
        let fresh = try countingModel(cpu).fit(
            training: training, validation: validation, loss: .crossEntropy(),
            settings: FitSettings(epochs: 1, batchSize: 8), callbacks: [SaveBestModel(path: other)])
        XCTAssertNotEqual(fresh.runID, first.runID)
        assertThrows([
            "run-id-other.safetensors: this model file was not saved by the run of", "run-id.fitstate",
            "has run id \(fresh.runID)",
        ]) { try resumed.requireModelFile(other) }
        try countingModel(cpu).save(to: other)
        assertThrows(["run-id-other.safetensors", "has no run id"]) { try resumed.requireModelFile(other) }
    }

    /// ReduceLearningRateOnPlateau applies its factor once per plateau: exact scales over a
    /// hand-built loss sequence (patience 1: the second epoch without improvement lowers it,
    /// and the count starts again), floored at minimumScale.
    func testReduceLearningRateOnPlateauScalesExactly() throws {
        func scales(_ losses: [Double], factor: Float, patience: Int, minimum: Float) throws -> [Float] {
            let callback = try ReduceLearningRateOnPlateau(
                monitor: .loss, factor: factor, patience: patience, minimumScale: minimum)
            let context = FitContext(
                settings: FitSettings(epochs: losses.count, batchSize: 1), metric: .accuracy, hasValidation: false,
                batchesPerEpoch: 1, saveModel: { _ in })
            try callback.fitStarted(context)
            return try losses.enumerated().map { epoch, loss in
                let record = EpochRecord(
                    epoch: epoch + 1, loss: loss, metric: 0, validationLoss: nil, validationMetric: nil,
                    learningRate: 0, seconds: 0)
                context.records.append(record)
                _ = try callback.epochEnded(record, context: context)
                return context.learningRateScale
            }
        }
        XCTAssertEqual(
            try scales([5, 4, 4, 4, 4, 3, 3, 3, 3, 3], factor: 0.5, patience: 1, minimum: 0),
            [1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.125])
        XCTAssertEqual(try scales([2, 2, 2, 2], factor: 0.5, patience: 0, minimum: 0), [1, 0.5, 0.25, 0.125])
        XCTAssertEqual(
            try scales([2, 2, 2, 2, 2], factor: 0.1, patience: 0, minimum: 0.05), [1, 0.1, 0.05, 0.05, 0.05])
    }

    /// The fit runs each step at the schedule's rate times the scale a callback set: exactly
    /// (not the scale applied twice, nor late).
    func testTheLearningRateScaleAppliesFromTheNextStep() throws {
        final class Quarter: FitCallback {
            func epochEnded(_ record: EpochRecord, context: FitContext) throws -> FitDecision {
                if record.epoch == 1 { context.learningRateScale = 0.25 }
                return .proceed
            }
        }
        let history = try countingModel(cpu).fit(
            training: training, loss: .crossEntropy(),
            settings: FitSettings(epochs: 2, batchSize: 8, learningRate: 0.004), callbacks: [Quarter()])
        XCTAssertEqual(history.records.map(\.learningRate), [Double(Float(0.004)), Double(Float(0.004) * 0.25)])
    }
}
