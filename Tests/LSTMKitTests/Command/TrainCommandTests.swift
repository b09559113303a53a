import Foundation
import XCTest

@testable import LSTMCPU
@testable import LSTMCore
@testable import LSTMData
@testable import LSTMKit
@testable import LSTMNN
@testable import LSTMOpenCL
@testable import LSTMReference

/// `lstm-gpu train` as a user runs it: resuming, divergence, output paths, time limits.
final class TrainCommandTests: XCTestCase {
    let small = [
        "--hidden", "16", "--embedding", "8", "--batch", "4", "--seq-length", "10", "--eval-every", "0",
        "--threads", "1",
    ]

    func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try requireLSTMGPU()
        return try runProcess(lstmGPUExecutable.path, arguments)
    }

    /// `sample` without --prompt starts from a newline, or, for a model whose vocabulary has
    /// none, from its first character (not an error about a prompt the user never gave).
    func testSampleWithoutAPromptFitsTheVocabulary() throws {
        let folder = try temporaryFolder()
        let data = folder + "/line.txt", checkpoint = folder + "/run.safetensors"
        try String(repeating: "abcab", count: 200).write(toFile: data, atomically: true, encoding: .utf8)
        XCTAssertEqual(
            try run(["train", "--data", data, "--steps", "1", "--checkpoint", checkpoint] + small).status, 0)
        let sampled = try run(["sample", "--checkpoint", checkpoint, "--length", "5"])
        XCTAssertEqual(sampled.status, 0, sampled.output)
        XCTAssertTrue(sampled.output.hasPrefix("a"), sampled.output)
        let refused = try run(["sample", "--checkpoint", checkpoint, "--prompt", "z"])
        XCTAssertEqual(refused.status, 2, refused.output)
    }

    /// --resume takes the model, batch, length and optimiser from the checkpoint; a given value
    /// that contradicts it is refused by name; --steps counts from the first run's start.
    func testResumeTakesSettingsFromTheCheckpoint() throws {
        let folder = try temporaryFolder()
        let checkpoint = folder + "/run.safetensors"
        let first = try run(
            ["train", "--steps", "2", "--checkpoint", checkpoint, "--optimizer", "sgd", "--lr", "0.05"] + small)
        XCTAssertEqual(first.status, 0, first.output)
        let resumed = try run([
            "train", "--resume", "--checkpoint", checkpoint, "--steps", "3", "--threads", "1", "--eval-every", "0",
        ])
        XCTAssertEqual(resumed.status, 0, resumed.output)
        XCTAssertTrue(resumed.output.contains("resumed \(checkpoint) at step 2"), resumed.output)
        XCTAssertTrue(resumed.output.contains("model 1×16 LSTM, embedding 8"), resumed.output)
        XCTAssertTrue(resumed.output.contains("batch 4 × 10, sgd lr 0.05"), resumed.output)
        XCTAssertTrue(resumed.output.contains("done: 1 steps (step 3 in all)"), resumed.output)
        for (option, value, recorded) in [
            ("--hidden", "64", "16"), ("--batch", "8", "4"), ("--optimizer", "adam", "sgd"),
            ("--seq-length", "12", "10"),
        ] {
            let refused = try run(["train", "--resume", "--checkpoint", checkpoint, "--steps", "4", option, value])
            XCTAssertEqual(refused.status, 64, refused.output)
            XCTAssertTrue(refused.output.contains("\(option) \(value) contradicts the checkpoint's"), refused.output)
            XCTAssertTrue(refused.output.contains(recorded), refused.output)
            XCTAssertFalse(
                refused.output.contains("LanguageModelConfiguration("), "no internal structs: \(refused.output)")
        }
    }

    /// The training options a checkpoint records are untrusted too: out of range, refused by field.
    /// The cell options: shown in the banner, recorded in the checkpoint, kept by --resume; a
    /// contradicting option and a bad value are refused by name.
    func testCellOptionsAreRecordedAndKept() throws {
        let folder = try temporaryFolder()
        let checkpoint = folder + "/cell.safetensors"
        let first = try run(
            ["train", "--steps", "1", "--checkpoint", checkpoint, "--peephole", "--layer-norm", "--cell-clip", "0.5"]
                + small)
        XCTAssertEqual(first.status, 0, first.output)
        XCTAssertTrue(
            first.output.contains("peepholes, layer norm (ε 1e-05), cell clip 0.5, embedding 8"), first.output)
        let resumed = try run([
            "train", "--resume", "--checkpoint", checkpoint, "--steps", "2", "--threads", "1", "--eval-every", "0",
        ])
        XCTAssertEqual(resumed.status, 0, resumed.output)
        XCTAssertTrue(resumed.output.contains("peepholes, layer norm (ε 1e-05), cell clip 0.5"), resumed.output)
        let contradicted = try run(["train", "--resume", "--checkpoint", checkpoint, "--steps", "3", "--cifg"])
        XCTAssertEqual(contradicted.status, 64, contradicted.output)
        XCTAssertTrue(contradicted.output.contains("contradict the checkpoint's"), contradicted.output)
        for (arguments, message) in [
            (["--cell-clip", "-1"], "--cell-clip must be a finite number in 0.0..."),
            (["--activation-clip", "nan"], "--activation-clip"),
            (["--proj-clip", "0.5"], "--proj-clip clamps the projected h: it needs --proj-size"),
            (["--layer-norm-eps", "0"], "--layer-norm-eps must be a positive finite number"),
            (["--layer-norm-eps", "1e-3"], "--layer-norm-eps needs --layer-norm"),
        ] {
            let refused = try run(["train", "--steps", "1"] + arguments + small)
            XCTAssertEqual(refused.status, 64, refused.output)
            XCTAssertTrue(refused.output.contains(message), "\(arguments): \(refused.output)")
        }
    }

    func testCheckpointTrainingOptionsAreValidated() throws {
        let folder = try temporaryFolder()
        let checkpoint = folder + "/run.safetensors"
        XCTAssertEqual(try run(["train", "--steps", "1", "--checkpoint", checkpoint] + small).status, 0)
        try rewriteHeader(checkpoint, to: checkpoint) { header in
            var metadata = header["__metadata__"] as! [String: Any]
            let options = (metadata["train_options"] as! String).replacingOccurrences(
                of: "\"lr\":0.002", with: "\"lr\":-1")
            metadata["train_options"] = options
            header["__metadata__"] = metadata
        }
        let result = try run(["train", "--resume", "--checkpoint", checkpoint, "--steps", "2", "--threads", "1"])
        XCTAssertEqual(result.status, 2, result.output)
        XCTAssertTrue(
            result.output.contains("'train_options': lr must be a finite number in 1e-30...1000000.0, got -1.0"),
            result.output)
    }

    /// A checkpoint with a NaN weight stops the run with exit 3, naming the step and tensor.
    func testResumingANonFiniteCheckpointExitsAsDivergence() throws {
        let folder = try temporaryFolder()
        let checkpoint = folder + "/run.safetensors"
        XCTAssertEqual(try run(["train", "--steps", "2", "--checkpoint", checkpoint] + small).status, 0)
        try rewriteNaN(into: checkpoint, tensor: "lstm.weight_hh_l0")
        let result = try run(["train", "--resume", "--checkpoint", checkpoint, "--steps", "4", "--threads", "1"])
        XCTAssertEqual(result.status, 3, result.output)
        XCTAssertTrue(
            result.output.contains("checkpoint of step 2 holds NaN or infinite values in 'lstm.weight_hh_l0'"),
            result.output)
    }

    /// Output paths are checked before training, and a second run on a checkpoint in use is refused.
    func testOutputPathsAreCheckedFirstAndCheckpointsLocked() throws {
        let folder = try temporaryFolder()
        let started = Date()
        let directory = try run(["train", "--steps", "50", "--checkpoint", folder] + small)
        XCTAssertEqual(directory.status, 2, directory.output)
        XCTAssertTrue(directory.output.contains("--checkpoint: is a directory"), directory.output)
        XCTAssertFalse(directory.output.contains("step 1"), "refused before training: \(directory.output)")
        let device = try run(["train", "--steps", "50", "--log", "/dev/full"] + small)
        XCTAssertEqual(device.status, 2, device.output)
        XCTAssertTrue(device.output.contains("--log: is not a regular file"), device.output)
        XCTAssertLessThan(Date().timeIntervalSince(started), 30)

        let checkpoint = folder + "/run.safetensors"
        let lock = try FileLock(for: checkpoint, what: "checkpoint")
        let busy = try run(["train", "--steps", "2", "--checkpoint", checkpoint] + small)
        XCTAssertEqual(busy.status, 2, busy.output)
        XCTAssertTrue(busy.output.contains("checkpoint \(checkpoint) is in use by process \(getpid())"), busy.output)
        withExtendedLifetime(lock) {}
    }

    /// --minutes bounds the whole run, the evaluation included; --eval-chars caps it; a summary ends it.
    func testMinutesBoundTheWholeRunAndEvaluationIsCapped() throws {
        let folder = try temporaryFolder()
        let text = String(repeating: "All the world's a stage, and all the men and women merely players. ", count: 4000)
        try text.write(toFile: folder + "/text.txt", atomically: true, encoding: .utf8)
        let started = Date()
        let timed = try run(["train", "--data", folder + "/text.txt", "--minutes", "0.05"] + small)
        let seconds = Date().timeIntervalSince(started)
        XCTAssertEqual(timed.status, 0, timed.output)
        XCTAssertLessThan(seconds, 3 + 10, "0.05 min (3 s) plus start-up, evaluation included: \(timed.output)")
        XCTAssertTrue(timed.output.contains("done: "), timed.output)
        let capped = try run(["train", "--data", folder + "/text.txt", "--steps", "1", "--eval-chars", "500"] + small)
        XCTAssertEqual(capped.status, 0, capped.output)
        XCTAssertTrue(capped.output.contains("held-out loss"), capped.output)
        let bad = try run(["train", "--steps", "1", "--eval-chars", "-1"] + small)
        XCTAssertEqual(bad.status, 64, bad.output)
        XCTAssertTrue(bad.output.contains("--eval-chars must be in 2...1099511627776, got -1"), bad.output)
    }

    /// More threads than cores are capped, with a note saying why (they made two steps take minutes).
    func testThreadsAreCappedAtTheCores() throws {
        let started = Date()
        let result = try run([
            "train", "--steps", "2", "--hidden", "16", "--embedding", "8", "--batch", "4", "--seq-length", "10",
            "--eval-every", "0", "--eval-chars", "200", "--threads", "10000",
        ])
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(
            result.output.contains(
                "--threads 10000 is more than the \(ProcessInfo.processInfo.activeProcessorCount) cores"),
            result.output)
        XCTAssertLessThan(Date().timeIntervalSince(started), 60)
    }
}
