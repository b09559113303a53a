import Foundation
import XCTest
@testable import LSTMKit

/// What a new user of the `lstm-gpu` command meets: `--version`, `--help`, `sample --score`.
final class CommandUsabilityTests: XCTestCase {
    var executable: URL { lstmGPUExecutable }

    func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try runProcess(executable.path, arguments)
    }

    func requireExecutable() throws {
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: executable.path), "lstm-gpu not built at \(executable.path)")
    }

    func testVersionNamesTheVersionAndTheCheckoutsCommit() throws {
        try requireExecutable()
        let result = try run(["--version"])
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(result.output.hasPrefix("lstm-gpu 0."), result.output)
        // Built in this checkout: the commit of the source tree is named.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/git"),
           case let head = try runProcess("/usr/bin/git", ["-C", root, "rev-parse", "--short=12", "HEAD"]), head.status == 0 {
            let commit = head.output.trimmingCharacters(in: .whitespacesAndNewlines)
            XCTAssertTrue(result.output.contains("git \(commit)"), "\(result.output) lacks \(commit)")
        }
    }

    func testHelpShowsControlCharactersInDefaultsEscaped() throws {
        try requireExecutable()
        let result = try run(["sample", "--help"])
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(result.output.contains(#"(default: "\n")"#), result.output)
        XCTAssertFalse(result.output.contains("(default: \n"), result.output)
    }

    /// A tiny checkpoint trained for one step on the built-in text.
    func trainTinyCheckpoint(_ folder: String) throws -> String {
        let path = folder + "/tiny.safetensors", data = folder + "/text.txt"
        // Quotes, a backslash, a tab and line breaks: characters that JSON must escape.
        let text = String(repeating: "ROMEO:\tO, \"she\" doth teach the torches to burn bright! C:\\path\n", count: 40)
        try text.write(toFile: data, atomically: true, encoding: .utf8)
        let train = try run(["train", "--data", data, "--steps", "1", "--hidden", "8", "--embedding", "4", "--batch", "2", "--seq-length", "8",
                             "--eval-every", "0", "--dropout", "0", "--layers", "1", "--threads", "1", "--checkpoint", path])
        XCTAssertEqual(train.status, 0, train.output)
        return path
    }

    /// The JSON object `sample --score` printed (its last line).
    func scoreObject(_ output: String) throws -> [String: Any] {
        let line = try XCTUnwrap(output.split(separator: "\n").last, output)
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], output)
    }

    func testScoreIsValidJSONWithVocabularyAndNullsWhereThereIsNoNumber() throws {
        try requireExecutable()
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
        XCTAssertTrue(vocabulary.contains("\n") && vocabulary.contains("\"") && vocabulary.contains("\\") && vocabulary.contains("\t"), "\(vocabulary)")

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
