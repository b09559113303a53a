import Foundation
import XCTest

@testable import LSTMCPU
@testable import LSTMCore
@testable import LSTMData
@testable import LSTMKit
@testable import LSTMNN
@testable import LSTMOpenCL
@testable import LSTMReference

/// Mutated fixtures, checkpoints, state dicts and quantized files through `check`, `sample` and `inspect`
/// (which loads a state dict with `LSTM(contentsOf:)`), each in a child process with a time
/// and memory limit: a crash or a hang fails the test instead of killing the runner. Every
/// run must end with exit code 0 (a harmless mutation), 1 or 2, and say what was wrong.
final class FuzzTests: XCTestCase {
    /// Numbers that break size arithmetic, as JSON text.
    static let boundaryNumbers = [
        "0", "-1", "2147483647", "4294967296", "4611686018427387904", "9223372036854775807",
        "18446744073709551616", "1e300", "-1e300", "NaN", "1.5", "\"x\"", "{\"a\":[1]}", "[]", "null",
    ]
    /// The same as metadata strings (metadata values must be strings).
    static let boundaryStrings = [
        "0", "-1", "2147483647", "4294967296", "4611686018427387904", "9223372036854775807",
        "1e300", "nan", "inf", "-inf", "1.5", "x", "", "true", "[\"a\"]", "{}", "100000000",
    ]

    struct Outcome {
        var cases = 0, clean = 0, accepted = 0, signals = 0, timeouts = 0

        /// Counts one run; returns what is wrong with it (a signal, a time-out, an exit code
        /// outside `clean` or without a message), or nil.
        mutating func record(status: Int32, signal: Int32, output: String, clean statuses: Set<Int32>) -> String? {
            cases += 1
            if signal == SIGKILL || status == 124 {
                timeouts += 1
                return "timed out or killed for memory"
            }
            if signal != 0 {
                signals += 1
                return "signal \(signal)\n\(output.suffix(400))"
            }
            if status == 0 {
                accepted += 1
                return nil
            }
            guard statuses.contains(status), output.contains(": ") else {
                return "exit \(status) without a usable message:\n\(output.suffix(400))"
            }
            clean += 1
            return nil
        }
    }

    func testMutatedFilesGiveCleanErrors() throws {
        let executable = lstmGPUExecutable.path
        try requireLSTMGPU()
        let folder = try temporaryFolder()
        let checkpoint = folder + "/checkpoint.safetensors", stateDict = folder + "/lstm.safetensors"
        try makeSmallCheckpoint(checkpoint)
        try LSTM(
            LSTMConfiguration(inputSize: 3, hiddenSize: 4, numLayers: 2, bidirectional: true, projectionSize: 2),
            seed: 1
        ).saveWeights(to: stateDict)
        // Quantized files too: an int8 state dict (I8 matrices with F32 scales) and an fp16 model file.
        let int8Dict = folder + "/lstm-int8.safetensors", fp16Model = folder + "/model-fp16.safetensors"
        try LSTM(LSTMConfiguration(inputSize: 3, hiddenSize: 8, projectionSize: 2), seed: 2).quantized(.int8)
            .saveWeights(to: int8Dict)
        try countingModel(CPUBackend()).quantized(.fp16).save(to: fp16Model)
        let bases = [
            fixtureFolder + "/bi-proj-lengths.safetensors", checkpoint, stateDict, int8Dict, fp16Model,
        ]
        var generator = SeededGenerator(seed: 20_261_127)
        var outcome = Outcome()
        var failures: [String] = []
        let mutants = 250
        let started = Date()
        for index in 0..<mutants {
            let base = bases[index % bases.count]
            let mutant = folder + "/mutant-\(index).safetensors"
            let how = try mutate(base, into: mutant, generator: &generator)
            for arguments in [
                ["check", mutant, "--quiet"], ["sample", "--checkpoint", mutant, "--length", "5"], ["inspect", mutant],
            ] {
                let (status, signal, output) = try runLimited(executable, arguments)
                if let failure = outcome.record(status: status, signal: signal, output: output, clean: [1, 2]) {
                    failures.append("\(arguments[0]) on \(how) (\(mutant)): \(failure)")
                }
            }
        }
        print(
            "fuzz: \(outcome.cases) cases (\(mutants) mutants × 3 commands): \(outcome.clean) clean errors, "
                + "\(outcome.accepted) accepted, \(outcome.signals) signals, \(outcome.timeouts) time-outs, "
                + "\(String(format: "%.1f", Date().timeIntervalSince(started))) s")
        XCTAssertTrue(failures.isEmpty, failures.prefix(10).joined(separator: "\n"))
        XCTAssertGreaterThan(outcome.clean, outcome.cases / 2, "most mutations must be refused")
    }

    /// The project's newer files (a Sequential model file, a Seq2Seq model file, their fit
    /// states) mutated at the JSON-leaf level (inside the architecture and fit-state JSON), at the
    /// tensor level (shapes) and at the byte level, through `inspect` (which loads every kind
    /// whole) and, for fit states, through the resume that reads them (`train --task --resume`).
    func testMutatedModelAndFitStateFilesGiveCleanErrors() throws {
        let executable = lstmGPUExecutable.path
        try requireLSTMGPU()
        let folder = try temporaryFolder()
        let series = fixtureFolder + "/apps/sunspots.csv"
        let model = folder + "/forecast.safetensors", translator = folder + "/translate.safetensors"
        let forecast = try runProcess(
            executable,
            ["train", "--task", "forecast", "--data", series, "--epochs", "2", "--checkpoint", model, "--threads", "1"])
        XCTAssertEqual(forecast.status, 0, forecast.output)
        let translate = try runProcess(
            executable,
            [
                "train", "--task", "translate", "--data", fixtureFolder + "/apps/bible-300.en", "--target-data",
                fixtureFolder + "/apps/bible-300.es", "--limit", "40", "--epochs", "1", "--hidden", "8",
                "--embedding", "8", "--checkpoint", translator, "--threads", "1",
            ])
        XCTAssertEqual(translate.status, 0, translate.output)
        let bases: [(path: String, jsonKey: String, resumes: Bool)] = [
            (model, "lstm_gpu_model", false), (translator, "lstm_gpu_seq2seq", false),
            (model + ".fitstate", "lstm_gpu_fit_state", true), (translator + ".fitstate", "lstm_gpu_fit_state", false),
        ]
        var generator = SeededGenerator(seed: 20_261_207)
        var outcome = Outcome()
        var failures: [String] = []
        let mutants = 96
        let started = Date()
        for index in 0..<mutants {
            let base = bases[index % bases.count]
            let mutant = folder + "/mutant-\(index).safetensors"
            let how =
                index % 3 == 0
                ? try mutateJSONLeaf(base.path, key: base.jsonKey, into: mutant, generator: &generator)
                : try mutate(base.path, into: mutant, generator: &generator)
            var runs = [["inspect", mutant]]
            if base.resumes {
                // The mutant as the fit state beside an intact model, resumed by the command.
                let run = folder + "/resume-\(index)"
                try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
                try FileManager.default.copyItem(atPath: model, toPath: run + "/m.safetensors")
                try FileManager.default.copyItem(atPath: mutant, toPath: run + "/m.safetensors.fitstate")
                runs.append([
                    "train", "--task", "forecast", "--data", series, "--epochs", "3", "--checkpoint",
                    run + "/m.safetensors", "--resume", "--threads", "1",
                ])
            }
            for arguments in runs {
                let (status, signal, output) = try runLimited(executable, arguments)
                if let failure = outcome.record(status: status, signal: signal, output: output, clean: [2]) {
                    failures.append("\(arguments[0]) on \(how) (\(mutant)): \(failure)")
                }
            }
        }
        print(
            "fuzz (model, seq2seq and fit-state files): \(outcome.cases) cases from \(mutants) mutants: "
                + "\(outcome.clean) clean errors (exit 2), \(outcome.accepted) accepted, \(outcome.signals) signals, "
                + "\(outcome.timeouts) time-outs, \(String(format: "%.1f", Date().timeIntervalSince(started))) s")
        XCTAssertTrue(failures.isEmpty, failures.prefix(10).joined(separator: "\n"))
        XCTAssertGreaterThan(outcome.clean, outcome.cases / 2, "most mutations must be refused")
    }

    /// Writes `source` with one leaf of the JSON held in its metadata under `key` replaced by a
    /// boundary value (a number, a string, null, a container), and says which.
    func mutateJSONLeaf(
        _ source: String, key: String, into destination: String, generator: inout SeededGenerator
    ) throws -> String {
        let data = try Data(contentsOf: URL(fileURLWithPath: source))
        let headerSize = Int(data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        var header = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + headerSize))) as! [String: Any]
        var metadata = header["__metadata__"] as! [String: Any]
        let json = try JSONSerialization.jsonObject(
            with: Data((metadata[key] as! String).utf8), options: .fragmentsAllowed)
        // Every path to a leaf, then one replaced.
        var paths: [[Any]] = []
        func walk(_ value: Any, _ path: [Any]) {
            if let object = value as? [String: Any] {
                for (k, v) in object { walk(v, path + [k]) }
            } else if let array = value as? [Any] {
                for (i, v) in array.enumerated() { walk(v, path + [i]) }
            } else {
                paths.append(path)
            }
        }
        walk(json, [])
        let path = paths.sorted { "\($0)" < "\($1)" }[Int(generator.next() % UInt64(paths.count))]
        let replacement: Any = [
            0, -1, Int.max, 4_611_686_018_427_387_904, 1e300, "nan", "x", NSNull(), [1], ["a": 1], true, "\u{1B}[31m",
        ][Int(generator.next() % 12)]
        func replaced(_ value: Any, _ rest: ArraySlice<Any>) -> Any {
            guard let step = rest.first else { return replacement }
            if var object = value as? [String: Any], let k = step as? String {
                object[k] = replaced(object[k]!, rest.dropFirst())
                return object
            }
            if var array = value as? [Any], let i = step as? Int {
                array[i] = replaced(array[i], rest.dropFirst())
                return array
            }
            return value
        }
        let mutated = replaced(json, path[...])
        metadata[key] = String(
            decoding: try JSONSerialization.data(withJSONObject: mutated, options: .fragmentsAllowed), as: UTF8.self)
        header["__metadata__"] = metadata
        let headerBytes = try JSONSerialization.data(withJSONObject: header)
        var out = Data()
        withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { out.append(contentsOf: $0) }
        out += headerBytes + data.subdata(in: (8 + headerSize)..<data.count)
        try out.write(to: URL(fileURLWithPath: destination))
        return "\(key) leaf \(path.map { "\($0)" }.joined(separator: ".")) → \(replacement)"
    }

    /// Writes a mutation of `source` to `destination` and says what it was.
    func mutate(_ source: String, into destination: String, generator: inout SeededGenerator) throws -> String {
        let data = try Data(contentsOf: URL(fileURLWithPath: source))
        let headerSize = Int(data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        let headerText = String(decoding: data.subdata(in: 8..<(8 + headerSize)), as: UTF8.self)
        let body = data.subdata(in: (8 + headerSize)..<data.count)
        func pick<T>(_ items: [T]) -> T { items[Int(generator.next() % UInt64(items.count))] }
        func assemble(_ header: String, _ body: Data) -> Data {
            var out = Data()
            let bytes = Data(header.utf8)
            withUnsafeBytes(of: UInt64(bytes.count).littleEndian) { out.append(contentsOf: $0) }
            return out + bytes + body
        }
        var out: Data
        var how: String
        switch generator.next() % 6 {
        case 0:  // a number anywhere in the header (shapes, offsets, digits inside metadata strings)
            let numbers = try NSRegularExpression(pattern: "-?[0-9]+").matches(
                in: headerText, range: NSRange(headerText.startIndex..., in: headerText))
            let match = pick(numbers)
            let replacement = pick(Self.boundaryNumbers)
            let range = Range(match.range, in: headerText)!
            how = "header number '\(headerText[range])' → \(replacement)"
            out = assemble(headerText.replacingCharacters(in: range, with: replacement), body)
        case 1:  // a metadata value
            var header = try JSONSerialization.jsonObject(with: Data(headerText.utf8)) as! [String: Any]
            var metadata = header["__metadata__"] as? [String: Any] ?? [:]
            let key = pick(metadata.keys.sorted() + ["num_layers", "hidden_size", "step"])
            let value = pick(Self.boundaryStrings)
            metadata[key] = value
            header["__metadata__"] = metadata
            how = "metadata \(key) = '\(value)'"
            out = assemble(String(decoding: try JSONSerialization.data(withJSONObject: header), as: UTF8.self), body)
        case 2:  // a shape
            var header = try JSONSerialization.jsonObject(with: Data(headerText.utf8)) as! [String: Any]
            let name = pick(header.keys.filter { $0 != "__metadata__" }.sorted())
            var entry = header[name] as! [String: Any]
            let shape = pick([
                [4_611_686_018_427_387_904], [0], [1 << 31, 1 << 31], [1, 2, 3, 4, 5, 6, 7, 8], [], [1 << 62, 4],
            ])
            entry["shape"] = shape
            header[name] = entry
            how = "shape of \(name) = \(shape)"
            out = assemble(String(decoding: try JSONSerialization.data(withJSONObject: header), as: UTF8.self), body)
        case 3:  // byte flips anywhere
            out = data
            let flips = 1 + Int(generator.next() % 4)
            for _ in 0..<flips {
                let at = Int(generator.next() % UInt64(out.count))
                out[at] ^= UInt8(truncatingIfNeeded: 1 + generator.next() % 255)
            }
            how = "\(flips) byte flips"
        case 4:  // truncation
            let length = Int(generator.next() % UInt64(data.count))
            out = data.prefix(length)
            how = "truncated to \(length) bytes"
        default:  // the header size
            let size = pick([
                UInt64(0), 1, UInt64(headerSize - 1), UInt64(headerSize + 1), UInt64(Int32.max), UInt64.max, 1 << 62,
            ])
            out = data
            withUnsafeBytes(of: size.littleEndian) { out.replaceSubrange(0..<8, with: $0) }
            how = "header size \(size)"
        }
        try out.write(to: URL(fileURLWithPath: destination))
        return how
    }

}
