import Foundation
import XCTest

@testable import LSTMCPU
@testable import LSTMCore
@testable import LSTMData
@testable import LSTMKit
@testable import LSTMNN
@testable import LSTMOpenCL
@testable import LSTMReference

/// `lstm-gpu train --task classify|tag|forecast|translate` as a user runs it, on the committed
/// slices: it trains, reports its figures, keeps the best model, resumes, and refuses options
/// of another task by name.
final class TrainTaskCommandTests: XCTestCase {
    let small = ["--hidden", "16", "--threads", "1"]

    func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try requireLSTMGPU()
        return try runProcess(lstmGPUExecutable.path, arguments)
    }

    func testEveryTaskRunsOnItsSlice() throws {
        let folder = try temporaryFolder()
        let table = folder + "/reviews.tsv"
        try
            (["label\ttext"]
            + (0..<60).map { "\($0 % 2 == 0 ? "pos" : "neg")\t\($0 % 2 == 0 ? "good" : "bad") film \($0)" })
            .joined(separator: "\n").write(toFile: table, atomically: true, encoding: .utf8)
        let runs: [(task: String, arguments: [String], expected: String)] = [
            (
                "classify", ["--data", table, "--bidirectional", "--pooling", "max", "--embedding", "8"],
                "test accuracy"
            ),
            ("tag", ["--data", appFixtureFolder + "/tagging-small.txt", "--embedding", "8"], "per word"),
            (
                "forecast", ["--data", appFixtureFolder + "/sunspots.csv", "--window", "22", "--season", "11"],
                "seasonal naive (11)"
            ),
            (
                "translate",
                [
                    "--data", appFixtureFolder + "/bible-300.en", "--target-data", appFixtureFolder + "/bible-300.es",
                    "--limit", "60", "--beam", "2", "--translations", folder + "/slice", "--embedding", "8",
                ],
                "test chrF"
            ),
        ]
        for (task, arguments, expected) in runs {
            let checkpoint = folder + "/\(task).safetensors"
            let result = try run(
                ["train", "--task", task, "--epochs", "2", "--checkpoint", checkpoint] + arguments + small)
            XCTAssertEqual(result.status, 0, "\(task): \(result.output)")
            XCTAssertTrue(result.output.contains(expected), "\(task): \(result.output)")
            XCTAssertTrue(result.output.contains("2 epochs"), "\(task): \(result.output)")
            XCTAssertTrue(FileManager.default.fileExists(atPath: checkpoint), task)
            XCTAssertTrue(FileManager.default.fileExists(atPath: checkpoint + ".fitstate"), task)
            // Not a terminal: one JSON line per epoch.
            XCTAssertEqual(result.output.split(separator: "\n").filter { $0.hasPrefix("{\"epoch\":") }.count, 2, task)
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder + "/slice.hyp"))
    }

    /// `--test-precision`: the best model tested again with its LSTM in each precision, one line
    /// each, the figure close to float32's; refused for lm and on OpenCL before any training.
    func testTestPrecisionTestsTheBestModelInEachPrecision() throws {
        let folder = try temporaryFolder()
        let result = try run(
            [
                "train", "--task", "forecast", "--data", appFixtureFolder + "/sunspots.csv", "--epochs", "2",
                "--checkpoint", folder + "/f.safetensors", "--test-precision", "int8,bf16",
            ] + small)
        XCTAssertEqual(result.status, 0, result.output)
        let mae = { (line: Substring) in Double(line.split(separator: " ").last!)! }
        let lines = result.output.split(separator: "\n")
        let float = try XCTUnwrap(lines.first { $0.hasPrefix("test MAE ") }, result.output)
        let floatMAE = Double(float.split(separator: " ")[2])!
        for precision in ["int8", "bf16"] {
            let line = try XCTUnwrap(
                lines.first { $0.contains("with the LSTM weights in \(precision): test_mae") }, result.output)
            XCTAssertLessThan(abs(mae(line) - floatMAE), 0.03 * floatMAE + 0.01, String(line))
        }
        let refused = try run([
            "train", "--task", "forecast", "--data", "x.csv", "--test-precision", "int8", "--backend", "opencl",
        ])
        XCTAssertEqual(refused.status, 64, refused.output)
        XCTAssertTrue(refused.output.contains("OpenCL computes in fp32 only"), refused.output)
    }

    func testResumeContinuesTheFit() throws {
        let folder = try temporaryFolder()
        let checkpoint = folder + "/forecast.safetensors"
        let base = [
            "train", "--task", "forecast", "--data", appFixtureFolder + "/sunspots.csv", "--checkpoint", checkpoint,
        ]
        let first = try run(base + ["--epochs", "2"] + small)
        XCTAssertEqual(first.status, 0, first.output)
        let resumed = try run(base + ["--epochs", "3", "--resume"] + small)
        XCTAssertEqual(resumed.status, 0, resumed.output)
        // The resumed run trains epoch 3 only: one new JSON line.
        let lines = resumed.output.split(separator: "\n").filter { $0.hasPrefix("{\"epoch\":") }
        XCTAssertEqual(lines.count, 1, resumed.output)
        XCTAssertTrue(lines.first?.hasPrefix("{\"epoch\":3,") ?? false, resumed.output)
        let other = try run(base + ["--epochs", "3", "--resume", "--batch", "8"] + small)
        XCTAssertNotEqual(other.status, 0)
        XCTAssertTrue(other.output.contains("the batch size is 8, the run being resumed used 16"), other.output)
    }

    func testRefusals() throws {
        let refusals: [([String], String)] = [
            (
                ["--task", "classify", "--data", "x.tsv", "--window", "3"],
                "--window is an option of --task forecast, not of classify"
            ),
            (
                ["--task", "forecast", "--data", "x.csv", "--seq-length", "3"],
                "--seq-length is an option of the language model"
            ),
            (["--task", "translate", "--data", "x"], "--task translate needs --target-data"),
            (["--task", "tag"], "--task tag needs --data FILE"),
            (["--window", "2", "--steps", "1"], "--window is an option of --task forecast, not of lm"),
            (["--task", "classify", "--data", "x.tsv", "--pooling", "median"], "--pooling must be last, mean or max"),
            (["--task", "forecast", "--data", "x.csv", "--embedding", "8"], "--embedding is for token inputs"),
            (
                ["--task", "translate", "--data", "x", "--target-data", "y", "--peephole"],
                "the translation model has plain LSTM cells"
            ),
            (
                ["--task", "forecast", "--data", "x.csv", "--validation-fraction", "0.6", "--test-fraction", "0.5"],
                "summing to less than 1"
            ),
            (["--task", "classify", "--data", "/nonexistent/x.tsv", "--epochs", "1"], "/nonexistent/x.tsv"),
        ]
        for (arguments, message) in refusals {
            let result = try run(["train"] + arguments)
            XCTAssertNotEqual(result.status, 0, "\(arguments)")
            XCTAssertTrue(result.output.contains(message), "\(arguments): \(result.output)")
        }
    }
}
