import Foundation
import LSTMBenchmark
import XCTest

@testable import LSTMCPU
@testable import LSTMCore
@testable import LSTMData
@testable import LSTMKit
@testable import LSTMNN
@testable import LSTMOpenCL
@testable import LSTMReference

/// What a new user of the `lstm-gpu` command meets: `--version`, `--help`, `sample --score`.
final class CommandUsabilityTests: XCTestCase {
    var executable: URL { lstmGPUExecutable }

    func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try runProcess(executable.path, arguments)
    }

    func testVersionNamesTheVersionAndTheCheckoutsCommit() throws {
        try requireLSTMGPU()
        let result = try run(["--version"])
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(result.output.hasPrefix("lstm-gpu 0."), result.output)
        // Built in this checkout: the commit of the source tree is named.
        let root = packageRoot.path
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/git"),
            case let head = try runProcess("/usr/bin/git", ["-C", root, "rev-parse", "--short=12", "HEAD"]),
            head.status == 0
        {
            let commit = head.output.trimmingCharacters(in: .whitespacesAndNewlines)
            XCTAssertTrue(result.output.contains("git \(commit)"), "\(result.output) lacks \(commit)")
        }
    }

    func testHelpShowsControlCharactersInDefaultsEscaped() throws {
        try requireLSTMGPU()
        let result = try run(["sample", "--help"])
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(result.output.contains("default: a newline"), result.output)  // described, not printed raw
        XCTAssertFalse(result.output.contains("(default: \n"), result.output)
    }

    /// A tiny checkpoint trained for one step on the built-in text.
    func trainTinyCheckpoint(_ folder: String) throws -> String {
        let path = folder + "/tiny.safetensors", data = folder + "/text.txt"
        // Quotes, a backslash, a tab and line breaks: characters that JSON must escape.
        let text = String(repeating: "ROMEO:\tO, \"she\" doth teach the torches to burn bright! C:\\path\n", count: 40)
        try text.write(toFile: data, atomically: true, encoding: .utf8)
        let train = try run([
            "train", "--data", data, "--steps", "1", "--hidden", "8", "--embedding", "4", "--batch", "2",
            "--seq-length", "8",
            "--eval-every", "0", "--dropout", "0", "--layers", "1", "--threads", "1", "--checkpoint", path,
        ])
        XCTAssertEqual(train.status, 0, train.output)
        return path
    }

    /// The JSON object `sample --score` printed (its last line).
    func scoreObject(_ output: String) throws -> [String: Any] {
        let line = try XCTUnwrap(output.split(separator: "\n").last, output)
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], output)
    }

    func testScoreIsValidJSONWithVocabularyAndNullsWhereThereIsNoNumber() throws {
        try requireLSTMGPU()
        let folder = try temporaryFolder()
        let checkpoint = try trainTinyCheckpoint(folder)

        // A 1-character prompt predicts nothing: null, not 0.
        let single = try run(["sample", "--checkpoint", checkpoint, "--score", "--prompt", "R"])
        XCTAssertEqual(single.status, 0, single.output)
        let one = try scoreObject(single.output)
        XCTAssertTrue(one["cross_entropy"] is NSNull, single.output)
        XCTAssertEqual(one["characters"] as? Int, 1)

        // A longer prompt: a number, and logits that map to the vocabulary's characters.
        let longer = try run(["sample", "--checkpoint", checkpoint, "--score", "--prompt", "ROMEO:\nO, \"she\""])
        XCTAssertEqual(longer.status, 0, longer.output)
        let object = try scoreObject(longer.output)
        let crossEntropy = try XCTUnwrap(object["cross_entropy"] as? Double, longer.output)
        XCTAssertTrue(crossEntropy.isFinite && crossEntropy > 0, longer.output)
        let vocabulary = try XCTUnwrap(object["vocabulary"] as? [String], longer.output)
        let logits = try XCTUnwrap(object["last_logits"] as? [Double], longer.output)
        XCTAssertEqual(vocabulary.count, logits.count)
        let (_, stored) = try Checkpoint.loadModel(checkpoint, backend: CPUBackend(threads: 1))
        XCTAssertEqual(vocabulary, stored.characters.map(String.init))
        XCTAssertTrue(
            vocabulary.contains("\n") && vocabulary.contains("\"") && vocabulary.contains("\\")
                && vocabulary.contains("\t"), "\(vocabulary)")

        // Head weights so large that the logits overflow: the cross-entropy is not finite,
        // and the line is still JSON (null, not -nan / inf).
        let file = try SafeTensorsFile(contentsOf: checkpoint)
        var tensors: [(name: String, value: SafeTensorsValue)] = []
        for name in file.names {
            if file.entries[name]!.dtype.isFloatingPoint {
                var t = try file.floatTensor(name)
                if name.hasPrefix("head.") { t.scalars = t.scalars.indices.map { $0 % 2 == 0 ? 3e38 : -3e38 } }
                tensors.append((name, .float32(t)))
            } else {
                let (shape, values) = try file.intTensor(name)
                tensors.append((name, .int64(shape: shape, values: values)))
            }
        }
        let overflowing = folder + "/overflowing.safetensors"
        try SafeTensorsFile.encode(tensors, metadata: file.metadata).write(to: URL(fileURLWithPath: overflowing))
        let broken = try run(["sample", "--checkpoint", overflowing, "--score", "--prompt", "ROMEO:"])
        XCTAssertEqual(broken.status, 0, broken.output)
        XCTAssertFalse(broken.output.contains("nan") || broken.output.contains("inf"), broken.output)
        let nonFinite = try scoreObject(broken.output)
        XCTAssertTrue(nonFinite["cross_entropy"] is NSNull, broken.output)
        XCTAssertTrue((nonFinite["last_logits"] as? [Any])?.contains { $0 is NSNull } ?? false, broken.output)
    }
}

/// `lstm-gpu bench` output that a reader (or a script splitting on runs of spaces) can parse.
final class BenchOutputTests: XCTestCase {
    func testBenchColumnsNeverRunTogetherAndRowsSayTheirThreads() throws {
        let executable = lstmGPUExecutable
        try requireLSTMGPU()
        // A long custom name, a value wider than its column (T), one row: "1 row".
        let result = try runProcess(
            executable.path,
            [
                "bench", "--backend", "cpu", "--repeat", "1",
                "--shape", "64,128,8,20,1,0",
            ])
        XCTAssertEqual(result.status, 0, result.output)
        let lines = result.output.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines.contains { $0.hasPrefix("lstm-gpu bench: 1 row,") }, result.output)
        // Progress reaches standard error as plain lines when it is not a terminal.
        XCTAssertTrue(lines.contains("bench: row 1/1 custom-64-128-b8-t20 on cpu"), result.output)
        let header = try XCTUnwrap(lines.first { $0.hasPrefix("name") }, result.output)
        let row = try XCTUnwrap(lines.first { $0.hasPrefix("custom-64-128-b8-t20") }, result.output)
        func cells(_ line: String) -> [String] {
            line.split(separator: "  ", omittingEmptySubsequences: true).map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty }
        }
        let titles = cells(header)
        XCTAssertEqual(
            titles,
            [
                "name", "backend", "prec", "threads", "I", "H", "B", "T", "L", "D", "fwd ms (min-max)", "GFLOP/s",
                "train ms (min-max)", "GFLOP/s", "parity",
            ], header)
        let values = cells(row)
        XCTAssertEqual(values.count, titles.count, "columns ran together:\n\(header)\n\(row)")
        XCTAssertEqual(
            Array(values.prefix(10)),
            ["custom-64-128-b8-t20", "cpu", "fp32", "1", "64", "128", "8", "20", "1", "1"], row)
    }

    func testSmallShapesRunOnOneThreadUnlessThreadsAreGiven() throws {
        let executable = lstmGPUExecutable
        try requireLSTMGPU()
        func threads(_ extra: [String]) throws -> Int {
            let result = try runProcess(
                executable.path,
                [
                    "bench", "--backend", "cpu", "--repeat", "1", "--json",
                    "--shape", "64,128,8,20",
                ] + extra)
            XCTAssertEqual(result.status, 0, result.output)
            let line = try XCTUnwrap(result.output.split(separator: "\n").first { $0.hasPrefix("{") }, result.output)
            return try JSONDecoder().decode(BenchmarkRow.self, from: Data(line.utf8)).threads
        }
        XCTAssertEqual(try threads([]), 1)  // 1 MFLOP per step: not worth a second thread
        XCTAssertEqual(try threads(["--threads", "2"]), 2)  // an explicit count is used as given
    }

    func testThreadChoiceFollowsWorkPerStep() {
        let backend = CPUBackend()
        let explicit = CPUBackend(threads: 2)
        XCTAssertEqual(backend.threads(hiddenSize: 128, outputSize: 128, batch: 8), 1)
        XCTAssertEqual(explicit.threads(hiddenSize: 128, outputSize: 128, batch: 8), 2)
        // mt-1024: 537 MFLOP per step, worth every core there is (up to the team).
        XCTAssertEqual(backend.threads(hiddenSize: 1024, outputSize: 1024, batch: 64), min(backend.threads, 8))
        // Two small directions each take one thread of their own.
        XCTAssertEqual(
            backend.threads(hiddenSize: 64, outputSize: 64, batch: 4, directions: 2), min(backend.threads, 2))
    }
}
