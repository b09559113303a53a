import Foundation
import LSTMApplications
import XCTest

@testable import LSTMCPU
@testable import LSTMCore
@testable import LSTMData
@testable import LSTMKit
@testable import LSTMNN

/// The applications' resume and bookkeeping, with hand-computed expectations: a resume of
/// another model, data or run is refused naming what differs; the forecaster's standardiser
/// and windows per part.
final class ApplicationResumeTests: XCTestCase {
    func quiet() -> ApplicationSettings {
        var settings = ApplicationSettings()
        settings.progress = .jsonLines
        settings.epochs = 2
        settings.batchSize = 16
        return settings
    }

    /// Writes a small synthetic sentiment table ("good"/"bad" among filler words); its path.
    func syntheticTable(_ name: String, rows count: Int = 120, swapLabels: Bool = false) throws -> String {
        var generator = SeededGenerator(seed: 3)
        let filler = ["the", "film", "was", "a", "plot", "and", "actors", "it", "very"]
        var rows = ["label\ttext"]
        for _ in 0..<count {
            var words = (0..<6).map { _ in filler[Int(generator.next() % UInt64(filler.count))] }
            let positive = generator.next() % 2 == 0
            words.insert(positive ? "good" : "bad", at: Int(generator.next() % 6))
            rows.append("\(positive != swapLabels ? "pos" : "neg")\t\(words.joined(separator: " "))")
        }
        let path = temporaryPath(name)
        try rows.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func classify(_ data: String, _ shape: NetworkShape, _ settings: ApplicationSettings) throws -> ApplicationReport {
        try TextClassification.run(
            LabelledText(contentsOf: data), shape: shape, settings: settings, backend: CPUBackend(), say: { _ in })
    }

    func small() -> NetworkShape {
        var shape = NetworkShape()
        (shape.embedding, shape.hidden) = (8, 8)
        return shape
    }

    /// A finished run resumed reloads its best model for the test figures only when the file
    /// carries its run id: another run's model at the path is refused, naming both files.
    func testAFinishedResumeRefusesAnotherRunsModelFile() throws {
        let data = try syntheticTable("resume-owner.tsv")
        var settings = quiet()
        settings.modelPath = temporaryPath("resume-owner.safetensors")
        try? FileManager.default.removeItem(atPath: settings.modelPath! + ".fitstate")
        let first = try classify(data, small(), settings)
        settings.resume = true
        let again = try classify(data, small(), settings)  // finished: trains no more, same figures
        XCTAssertEqual(again.figures["test_accuracy"], first.figures["test_accuracy"])
        XCTAssertEqual(again.history.records, first.history.records)
        // Another run (another seed) writes its own model; copied over this run's.
        var other = quiet()
        other.seed = 2
        other.modelPath = temporaryPath("resume-other.safetensors")
        try? FileManager.default.removeItem(atPath: other.modelPath! + ".fitstate")
        _ = try classify(data, small(), other)
        try FileManager.default.removeItem(atPath: settings.modelPath!)
        try FileManager.default.copyItem(atPath: other.modelPath!, toPath: settings.modelPath!)
        assertThrows([
            "resume-owner.safetensors: this model file was not saved by the run of",
            "resume-owner.safetensors.fitstate", "belongs to another run",
        ]) { _ = try self.classify(data, self.small(), settings) }
    }

    /// A resume with another pooling, direction or cell option, or with other labels in the
    /// data, is refused saying what differs.
    func testAResumeOfAnotherModelOrDataIsRefused() throws {
        let data = try syntheticTable("resume-model.tsv")
        var settings = quiet()
        settings.modelPath = temporaryPath("resume-model.safetensors")
        try? FileManager.default.removeItem(atPath: settings.modelPath! + ".fitstate")
        _ = try classify(data, small(), settings)
        settings.resume = true
        let state = settings.modelPath! + ".fitstate", before = try Data(contentsOf: URL(fileURLWithPath: state))
        var pooling = small()
        pooling.pooling = .max
        assertThrows([
            "resume-model.safetensors.fitstate: cannot resume exactly: the model's layer 2 (pooling) mode is max, "
                + "the run being resumed used mean"
        ]) { _ = try self.classify(data, pooling, settings) }
        var direction = small()
        direction.bidirectional = true
        assertThrows(["the model's layer 1 (lstm) bidirectional is true, the run being resumed used false"]) {
            _ = try self.classify(data, direction, settings)
        }
        var cell = small()
        cell.cell.peepholes = true
        assertThrows(["the model's layer 1 (lstm) cellOptions.peepholes is true, the run being resumed used false"]) {
            _ = try self.classify(data, cell, settings)
        }
        let swapped = try syntheticTable("resume-model-swapped.tsv", swapLabels: true)
        assertThrows(["the training data differs from the run being resumed (another file, or edited)"]) {
            _ = try self.classify(swapped, self.small(), settings)
        }
        var adamW = settings
        adamW.optimizer = .adamW()
        assertThrows(["the optimizer is adamw", "the run being resumed used adam ("]) {
            _ = try self.classify(data, self.small(), adamW)
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: state)), before, "a refused resume writes nothing")
    }

    /// 40 values 0, 1, 4, 9, … (t²), window 3, horizon 1 or 2, 15% validation and 15% test:
    /// the training part is t < 28 (⌊40 · 0.7⌋), validation 28 ≤ t < 34 (⌊40 · 0.85⌋), test
    /// t ≥ 34. The standardiser is fitted on the training part alone: mean Σ t² / 28 over
    /// t < 28 = 6930 / 28 = 247.5 (the whole series' would be 513.5). A window belongs to the part of its
    /// first target and needs all its targets there: with horizon 1 the first targets are
    /// 3…27, 28…33, 34…39 (25, 6, 6 windows); with horizon 2, 3…26, 28…32, 34…38 (24, 5, 5).
    func testForecastStandardiserAndWindowsPerPart() throws {
        let series = (0..<40).map { Double($0 * $0) }
        var settings = quiet()
        settings.epochs = 1
        settings.validationFraction = 0.15
        settings.testFraction = 0.15
        settings.modelPath = temporaryPath("forecast-parts.safetensors")
        try? FileManager.default.removeItem(atPath: settings.modelPath! + ".fitstate")
        var shape = NetworkShape()
        shape.hidden = 4
        let one = try Forecasting.run(
            series, window: 3, horizon: 1, shape: shape, settings: settings, backend: CPUBackend(), say: { _ in })
        XCTAssertEqual(one.figures["training_windows"], 25)
        XCTAssertEqual(one.figures["validation_windows"], 6)
        XCTAssertEqual(one.figures["test_windows"], 6)
        let file = try SafeTensorsFile(contentsOf: settings.modelPath!)
        let standardizer = try JSONDecoder().decode(
            Standardizer.self, from: Data(file.metadata[Forecasting.standardizerKey]!.utf8))
        let training = (0..<28).map { Double($0 * $0) }
        let mean = training.reduce(0, +) / 28
        XCTAssertEqual(mean, 247.5)
        XCTAssertEqual(standardizer.mean, mean, accuracy: 1e-12)
        let deviation = (training.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 28).squareRoot()
        XCTAssertEqual(standardizer.standardDeviation, deviation, accuracy: 1e-9)

        settings.modelPath = nil
        let two = try Forecasting.run(
            series, window: 3, horizon: 2, shape: shape, settings: settings, backend: CPUBackend(), say: { _ in })
        XCTAssertEqual(two.figures["training_windows"], 24)
        XCTAssertEqual(two.figures["validation_windows"], 5)
        XCTAssertEqual(two.figures["test_windows"], 5)
    }

    /// Resuming a forecast on another column (other values, the same length) is refused as
    /// other data.
    func testAForecastResumeOnOtherValuesIsRefused() throws {
        var settings = quiet()
        settings.modelPath = temporaryPath("forecast-resume.safetensors")
        try? FileManager.default.removeItem(atPath: settings.modelPath! + ".fitstate")
        var shape = NetworkShape()
        shape.hidden = 4
        _ = try Forecasting.run(
            (0..<60).map { sin(Double($0)) }, window: 5, shape: shape, settings: settings, backend: CPUBackend(),
            say: { _ in })
        settings.resume = true
        assertThrows(["forecast-resume.safetensors.fitstate", "the training data differs from the run being resumed"]) {
            _ = try Forecasting.run(
                (0..<60).map { cos(Double($0)) }, window: 5, shape: shape, settings: settings, backend: CPUBackend(),
                say: { _ in })
        }
    }
}
