import Foundation
import XCTest

@testable import LSTMCPU
@testable import LSTMCore
@testable import LSTMData
@testable import LSTMKit
@testable import LSTMNN
@testable import LSTMOpenCL
@testable import LSTMReference

/// A task an LSTM learns in a few epochs: sequences of ids 2..<8 of length 3…12, labelled 1
/// when id 2 occurs more often than id 3 (ties: 0). Deterministic for a seed.
func countingTask(_ count: Int, seed: UInt64) -> [LabelledSequence] {
    var generator = SeededGenerator(seed: seed)
    return (0..<count).map { _ in
        let length = Int(generator.next() % 10) + 3
        let ids = (0..<length).map { _ in Int(generator.next() % 6) + 2 }
        let label = ids.filter { $0 == 2 }.count > ids.filter { $0 == 3 }.count ? 1 : 0
        return LabelledSequence(tokens: ids, label: label)
    }
}

/// Embedding(8, 8) → LSTM(8 → 16) → Dropout(0.2) → mean pooling → Linear(16 → 2), seeded.
func countingModel<Backend: ModelOps>(_ b: Backend, seed: UInt64 = 3) throws -> Sequential<Backend> {
    try Sequential<Backend>([
        Embedding(backend: b, vocabularySize: 8, dimension: 8, seed: seed),
        LSTMLayer(LSTMConfiguration(inputSize: 8, hiddenSize: 16), backend: b, seed: seed + 1),
        Dropout(backend: b, probability: 0.2, seed: seed + 2),
        SequencePooling(backend: b, mode: .mean),
        Linear(backend: b, inputSize: 16, outputSize: 2, seed: seed + 3),
    ])
}

func parameterValues<Backend: ModelOps>(_ model: Sequential<Backend>) throws -> [String: [Float]] {
    let backend = model.backend!
    return Dictionary(
        uniqueKeysWithValues: try model.parameters.map {
            ($0.name, try backend.read($0.value, offset: 0, count: $0.count))
        })
}

/// Collects what a fit told its callbacks.
final class Recorder: FitCallback {
    var batches: [BatchProgress] = []
    var epochs: [EpochRecord] = []
    func batchEnded(_ progress: BatchProgress, context: FitContext) throws { batches.append(progress) }
    func epochEnded(_ record: EpochRecord, context: FitContext) throws -> FitDecision {
        epochs.append(record)
        return .proceed
    }
}

final class FitTests: XCTestCase {
    func testAClassifierLearnsAndReportsBothSets() throws {
        let cpu = CPUBackend()
        let model = try countingModel(cpu)
        let recorder = Recorder()
        let history = try model.fit(
            training: countingTask(400, seed: 1), validation: countingTask(100, seed: 2), loss: .crossEntropy(),
            settings: FitSettings(epochs: 8, batchSize: 16, learningRate: 1e-2), callbacks: [recorder])
        XCTAssertEqual(history.records.count, 8)
        XCTAssertNil(history.stoppedBy)
        XCTAssertEqual(history.metric, .accuracy)
        XCTAssertEqual(recorder.batches.count, 8 * 25)
        XCTAssertEqual(recorder.epochs, history.records)
        let last = history.records.last!
        print(
            "counting task: train loss \(history.records[0].loss) → \(last.loss), val accuracy \(last.validationMetric!)"
        )
        XCTAssertLessThan(last.loss, history.records[0].loss * 0.6)
        XCTAssertGreaterThan(last.validationMetric!, 0.85)
        // The validation figures are those `evaluate` gives for the final weights.
        let measured = try SupervisedModel(model, loss: .crossEntropy()).evaluate(countingTask(100, seed: 2))
        XCTAssertEqual(measured.loss, last.validationLoss!, accuracy: 1e-6)
        XCTAssertEqual(measured.metricValue, last.validationMetric!, accuracy: 1e-6)
        XCTAssertEqual(measured.count, 100)
    }

    func testBucketedBatchesCoverEveryExampleOnceWithLittlePadding() {
        let lengths = (0..<1000).map { ($0 * 7919) % 97 + 1 }
        var generator = SeededGenerator(seed: 5)
        let batches = BatchPlan.training(
            lengths: lengths, batchSize: 32, bucketing: true, pool: 50, generator: &generator)
        XCTAssertEqual(batches.flatMap { $0 }.sorted(), Array(0..<1000))
        let padding = batches.reduce(0) { sum, batch in
            let longest = batch.map { lengths[$0] }.max()!
            return sum + batch.reduce(0) { $0 + longest - lengths[$1] }
        }
        var plain = SeededGenerator(seed: 5)
        let unbucketed = BatchPlan.training(
            lengths: lengths, batchSize: 32, bucketing: false, pool: 50, generator: &plain)
        let plainPadding = unbucketed.reduce(0) { sum, batch in
            let longest = batch.map { lengths[$0] }.max()!
            return sum + batch.reduce(0) { $0 + longest - lengths[$1] }
        }
        print("padded steps: bucketed \(padding), not bucketed \(plainPadding)")
        XCTAssertLessThan(padding * 10, plainPadding)
        // The same generator state gives the same plan; the next epoch another one.
        var again = SeededGenerator(seed: 5)
        XCTAssertEqual(
            BatchPlan.training(lengths: lengths, batchSize: 32, bucketing: true, pool: 50, generator: &again), batches)
        XCTAssertNotEqual(
            BatchPlan.training(lengths: lengths, batchSize: 32, bucketing: true, pool: 50, generator: &again), batches)
    }

    /// Four epochs straight and two + a resumed two give bit-identical weights, history and
    /// callback decisions (dropout in the model, a plateau callback that changes the rate).
    func testResumeIsExact() throws {
        let cpu = CPUBackend()
        let training = countingTask(120, seed: 1), validation = countingTask(40, seed: 2)
        func settings(_ epochs: Int, _ path: String) -> FitSettings {
            FitSettings(
                epochs: epochs, batchSize: 16, learningRate: 5e-3, maxGradientNorm: 1, seed: 9, stateFile: path,
                resume: true)
        }
        func callbacks() throws -> [any FitCallback] {
            [
                try ReduceLearningRateOnPlateau(monitor: .validationMetric, factor: 0.5, patience: 0),
                SaveBestModel(path: temporaryPath("best-\(UUID()).safetensors")),
            ]
        }
        let straightPath = temporaryPath("straight.fitstate"), splitPath = temporaryPath("split.fitstate")
        try? FileManager.default.removeItem(atPath: straightPath)
        try? FileManager.default.removeItem(atPath: splitPath)
        let straight = try countingModel(cpu)
        let full = try straight.fit(
            training: training, validation: validation, loss: .crossEntropy(), settings: settings(4, straightPath),
            callbacks: try callbacks())

        let first = try countingModel(cpu)
        _ = try first.fit(
            training: training, validation: validation, loss: .crossEntropy(), settings: settings(2, splitPath),
            callbacks: try callbacks())
        let resumed = try countingModel(cpu, seed: 77)  // other initial weights: the state file replaces them
        let rest = try resumed.fit(
            training: training, validation: validation, loss: .crossEntropy(), settings: settings(4, splitPath),
            callbacks: try callbacks())
        XCTAssertEqual(try parameterValues(resumed), try parameterValues(straight))
        XCTAssertEqual(rest.records.map(\.loss), full.records.map(\.loss))
        XCTAssertEqual(rest.records.map(\.learningRate), full.records.map(\.learningRate))
        XCTAssertEqual(resumed.randomStates, straight.randomStates)
        // A finished fit resumed again trains no more.
        let again = try resumed.fit(
            training: training, validation: validation, loss: .crossEntropy(), settings: settings(4, splitPath),
            callbacks: try callbacks())
        XCTAssertEqual(again.records, rest.records)
    }

    func testResumeRefusesAnotherFit() throws {
        let cpu = CPUBackend()
        let path = temporaryPath("refuse.fitstate")
        try? FileManager.default.removeItem(atPath: path)
        let training = countingTask(40, seed: 1)
        _ = try countingModel(cpu).fit(
            training: training, loss: .crossEntropy(),
            settings: FitSettings(epochs: 1, batchSize: 8, stateFile: path, resume: true))
        func resume(
            _ settings: FitSettings, _ data: [LabelledSequence] = training, callbacks: [any FitCallback] = []
        )
            throws
        {
            _ = try countingModel(cpu).fit(
                training: data, loss: .crossEntropy(), settings: settings, callbacks: callbacks)
        }
        assertThrows(["refuse.fitstate: cannot resume exactly: the batch size is 4, the run being resumed used 8"]) {
            try resume(FitSettings(epochs: 2, batchSize: 4, stateFile: path, resume: true))
        }
        assertThrows(["the training data has 41 examples, the run being resumed had 40"]) {
            try resume(FitSettings(epochs: 2, batchSize: 8, stateFile: path, resume: true), countingTask(41, seed: 1))
        }
        assertThrows(["the seed is 2, the run being resumed used 1"]) {
            try resume(FitSettings(epochs: 2, batchSize: 8, seed: 2, stateFile: path, resume: true))
        }
        assertThrows(["callbacks that keep state [], this fit has [\"EarlyStopping\"]"]) {
            try resume(
                FitSettings(epochs: 2, batchSize: 8, stateFile: path, resume: true),
                callbacks: [try EarlyStopping(monitor: .loss)])
        }
        assertThrows([
            "the learning-rate settings are 0.002 constant warmup 0 clip none, the run being resumed used 0.001"
        ]) {
            try resume(FitSettings(epochs: 2, batchSize: 8, learningRate: 2e-3, stateFile: path, resume: true))
        }
        var shuffled = training
        shuffled.swapAt(0, 5)
        if shuffled[0].length != training[0].length {
            assertThrows(["the training data differs from the run being resumed"]) {
                try resume(FitSettings(epochs: 2, batchSize: 8, stateFile: path, resume: true), shuffled)
            }
        }
        // A callback without state (a progress report, a log) may come or go.
        try resume(
            FitSettings(epochs: 1, batchSize: 8, stateFile: path, resume: true),
            callbacks: [StopOnNonFiniteLoss(), EpochLog(path: temporaryPath("resume-log.jsonl"))])
        // Another model's parameters.
        let other = try Sequential<CPUBackend>([
            Embedding(backend: cpu, vocabularySize: 8, dimension: 4, seed: 1),
            LSTMLayer(LSTMConfiguration(inputSize: 4, hiddenSize: 16), backend: cpu, seed: 2),
            Dropout(backend: cpu, probability: 0.2, seed: 3),
            SequencePooling(backend: cpu, mode: .mean),
            Linear(backend: cpu, inputSize: 16, outputSize: 2, seed: 4),
        ])
        let before = try parameterValues(other)
        assertThrows(["the model's layer 0 (embedding) dimension is 4, the run being resumed used 8"]) {
            _ = try other.fit(
                training: training, loss: .crossEntropy(),
                settings: FitSettings(epochs: 2, batchSize: 8, stateFile: path, resume: true))
        }
        XCTAssertEqual(try parameterValues(other), before, "a refused state file changes nothing")
        // Not a state file; a truncated one.
        let modelPath = temporaryPath("plain-model.safetensors")
        try other.save(to: modelPath)
        assertThrows(["not an lstm-gpu fit state file"]) {
            try resume(FitSettings(epochs: 2, batchSize: 8, stateFile: modelPath, resume: true))
        }
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let truncated = temporaryPath("truncated.fitstate")
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: truncated))
        assertThrows(["truncated.fitstate"]) {
            try resume(FitSettings(epochs: 2, batchSize: 8, stateFile: truncated, resume: true))
        }
    }

    func testEarlyStoppingStopsAndSaveBestKeepsTheBest() throws {
        let cpu = CPUBackend()
        let model = try countingModel(cpu)
        let best = temporaryPath("best.safetensors")
        try? FileManager.default.removeItem(atPath: best)
        let saver = SaveBestModel(path: best, monitor: .validationLoss)
        // A rate so small that nothing improves by 0.5 after the first epoch.
        let history = try model.fit(
            training: countingTask(64, seed: 1), validation: countingTask(32, seed: 2), loss: .crossEntropy(),
            settings: FitSettings(epochs: 20, batchSize: 16, learningRate: 1e-9),
            callbacks: [saver, try EarlyStopping(monitor: .validationLoss, patience: 2, minimumDelta: 0.5)])
        // Epoch 1 sets the best, epochs 2 and 3 do not improve by 0.5: patience 2 stops after 3.
        XCTAssertEqual(history.records.count, 3)
        XCTAssertEqual(history.stoppedBy, "EarlyStopping")
        let bestLoss = history.records.compactMap(\.validationLoss).min()!
        XCTAssertEqual(saver.best, bestLoss)
        let loaded = try Sequential<CPUBackend>(contentsOf: best, backend: cpu)
        let measured = try SupervisedModel(loaded, loss: .crossEntropy()).evaluate(countingTask(32, seed: 2))
        XCTAssertEqual(measured.loss, bestLoss, accuracy: 1e-6)
    }

    func testLogsAndProgress() throws {
        let cpu = CPUBackend()
        let logPath = temporaryPath("epochs.jsonl"), progressPath = temporaryPath("progress.txt")
        _ = FileManager.default.createFile(atPath: progressPath, contents: nil)
        let progressFile = try FileHandle(forWritingTo: URL(fileURLWithPath: progressPath))
        let barPath = temporaryPath("bar.txt")
        _ = FileManager.default.createFile(atPath: barPath, contents: nil)
        let barFile = try FileHandle(forWritingTo: URL(fileURLWithPath: barPath))
        _ = try countingModel(cpu).fit(
            training: countingTask(48, seed: 1), validation: countingTask(16, seed: 2), loss: .crossEntropy(),
            settings: FitSettings(epochs: 2, batchSize: 16),
            callbacks: [
                EpochLog(path: logPath), ProgressReport(output: progressFile, style: .automatic),
                ProgressReport(output: barFile, style: .bar),
            ])
        try progressFile.close()
        try barFile.close()
        for path in [logPath, progressPath] {
            let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
            XCTAssertEqual(lines.count, 2, path)
            for (index, line) in lines.enumerated() {
                let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
                XCTAssertEqual(object["epoch"] as? Int, index + 1)
                for key in ["loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"] {
                    XCTAssertNotNil(object[key] as? Double, "\(key) in \(line)")
                }
            }
        }
        let bar = try String(contentsOfFile: barPath, encoding: .utf8)
        XCTAssertTrue(bar.contains("ETA"), bar)
        XCTAssertTrue(bar.contains("epoch 2/2: loss"), bar)
        XCTAssertTrue(bar.contains("val_accuracy"), bar)
    }

    func testTaggingAndForecastingLosses() throws {
        let cpu = CPUBackend()
        // Tagging: the tag of each step is whether its id is even (per-step labels).
        var generator = SeededGenerator(seed: 4)
        let tagged = (0..<200).map { _ -> LabelledSequence in
            let ids = (0..<(Int(generator.next() % 6) + 2)).map { _ in Int(generator.next() % 8) }
            return LabelledSequence(.tokens(ids), target: .labels(ids.map { $0 % 2 }))
        }
        let tagger = try Sequential<CPUBackend>([
            Embedding(backend: cpu, vocabularySize: 8, dimension: 8, seed: 1),
            LSTMLayer(LSTMConfiguration(inputSize: 8, hiddenSize: 16), backend: cpu, seed: 2),
            Linear(backend: cpu, inputSize: 16, outputSize: 2, seed: 3),
        ])
        let tags = try tagger.fit(
            training: tagged, loss: .crossEntropy(), settings: FitSettings(epochs: 6, batchSize: 16, learningRate: 1e-2)
        )
        XCTAssertGreaterThan(tags.records.last!.metric, 0.95)
        let steps = tagged.reduce(0) { $0 + $1.length }
        XCTAssertEqual(try SupervisedModel(tagger, loss: .crossEntropy()).evaluate(tagged).count, steps)

        // Forecasting: the next value of a sine from the 8 before it (steps of width 1), MSE and MAE.
        let series = (0..<300).map { Float(sin(Double($0) * 0.3)) }
        let windows = (0..<(series.count - 8)).map {
            LabelledSequence(.steps(Array(series[$0..<($0 + 8)]), width: 1), target: .values([series[$0 + 8]]))
        }
        let forecaster = try Sequential<CPUBackend>([
            LSTMLayer(LSTMConfiguration(inputSize: 1, hiddenSize: 16), backend: cpu, seed: 2),
            SequencePooling(backend: cpu, mode: .last),
            Linear(backend: cpu, inputSize: 16, outputSize: 1, seed: 3),
        ])
        let forecast = try forecaster.fit(
            training: windows, loss: .meanSquaredError,
            settings: FitSettings(epochs: 15, batchSize: 16, learningRate: 1e-2))
        XCTAssertEqual(forecast.metric, .meanAbsoluteError)
        print("sine forecast MAE: \(forecast.records[0].metric) → \(forecast.records.last!.metric)")
        XCTAssertLessThan(forecast.records.last!.metric, 0.05)
    }

    func testCPUAndOpenCLFitFollowTheSameLosses() throws {
        let opencl = try requireOpenCL()
        func losses<Backend: ModelOps>(_ b: Backend) throws -> [Double] {
            try countingModel(b).fit(
                training: countingTask(64, seed: 1), validation: countingTask(32, seed: 2), loss: .crossEntropy(),
                settings: FitSettings(epochs: 3, batchSize: 16, learningRate: 1e-2)
            ).records.flatMap { [$0.loss, $0.validationLoss!] }
        }
        let cpu = try losses(CPUBackend()), gpu = try losses(opencl)
        print("fit losses cpu \(cpu)\n          opencl \(gpu)")
        for (a, b) in zip(cpu, gpu) { XCTAssertEqual(a, b, accuracy: 1e-4 * max(1, abs(a))) }
    }

    func testRefusals() throws {
        let cpu = CPUBackend()
        let model = try countingModel(cpu)
        func fit(
            _ data: [LabelledSequence], _ loss: FitLoss = .crossEntropy(), validation: [LabelledSequence]? = nil,
            settings: FitSettings = FitSettings(epochs: 1, batchSize: 4), callbacks: [any FitCallback] = []
        ) throws {
            _ = try model.fit(
                training: data, validation: validation, loss: loss, settings: settings, callbacks: callbacks)
        }
        let good = countingTask(8, seed: 1)
        assertThrows(["training set is empty"]) { try fit([]) }
        assertThrows(["training example 8: token id 9"]) {
            try fit(good + [LabelledSequence(tokens: [1, 9], label: 0)])
        }
        assertThrows(["training example 8: the sequence is empty"]) {
            try fit(good + [LabelledSequence(tokens: [], label: 0)])
        }
        assertThrows(["validation example 0: the model starts with an Embedding but the input is feature steps"]) {
            try fit(good, validation: [LabelledSequence(.steps([1, 2], width: 1), target: .label(0))])
        }
        assertThrows(["mse needs values"]) { try fit(good, .meanSquaredError) }
        assertThrows(["1 per-step labels for a sequence of 2"]) {
            try fit([LabelledSequence(.tokens([2, 3]), target: .labels([1]))])
        }
        assertThrows(["epochs is 0"]) { try fit(good, settings: FitSettings(epochs: 0, batchSize: 4)) }
        assertThrows(["batchSize"]) { try fit(good, settings: FitSettings(epochs: 1, batchSize: 0)) }
        assertThrows(["learningRate is nan"]) {
            try fit(good, settings: FitSettings(epochs: 1, batchSize: 4, learningRate: .nan))
        }
        assertThrows(["resume needs a stateFile"]) {
            try fit(good, settings: FitSettings(epochs: 1, batchSize: 4, resume: true))
        }
        assertThrows(["EarlyStopping watches val_loss but the fit has no validation set"]) {
            try fit(good, callbacks: [try EarlyStopping()])
        }
        assertThrows(["patience (-1)"]) { _ = try EarlyStopping(patience: -1) }
        // A class beyond the model's outputs is the loss's error.
        assertThrows(["training example 0: class 5 is outside the model's 2 outputs"]) {
            try fit([LabelledSequence(tokens: [2, 3], label: 5)])
        }
    }
}

/// A fit whose weights, gradients and optimiser moments would not leave room in the backend's
/// memory is refused before training, saying what it needs.
final class FitMemoryTests: XCTestCase {
    func testTheTrainingStateMustFitWithRoomToSpare() throws {
        let model = try countingModel(CPUBackend())
        let count = model.parameters.reduce(0) { $0 + $1.count }
        let supervised = try SupervisedModel(model, loss: .crossEntropy())
        // Adam: weights, gradients, two moments (16 bytes per parameter), plus a quarter more.
        let adamBytes = count * 16 / 3 * 4
        XCTAssertNoThrow(try supervised.requireTrainingMemory(optimizer: .adam(), capacity: adamBytes))
        assertThrows(["out of memory", "training \(count) parameters", "2 optimiser moments"]) {
            try supervised.requireTrainingMemory(optimizer: .adam(), capacity: adamBytes - 1)
        }
        // Plain SGD keeps no moment: half of Adam's state.
        XCTAssertNoThrow(try supervised.requireTrainingMemory(optimizer: .sgd(), capacity: count * 8 / 3 * 4))
        assertThrows(["1 optimiser moment,"]) {
            try supervised.requireTrainingMemory(optimizer: .sgd(momentum: 0.9), capacity: count * 8 / 3 * 4)
        }
    }
}
