import ArgumentParser
import Foundation
import LSTMBenchmark
import LSTMCommandLine
import LSTMKit

struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check the engine against PyTorch parity fixtures (lstm-fixture/1 safetensors files).",
        discussion: """
            For every reference tensor prints the max absolute and max relative difference and \
            PASS/FAIL. Default rule per element: |ours - ref| <= 1e-5 + 1e-4*|ref| for outputs and \
            states, <= 1e-4 + 1e-3*|ref| for gradients; --atol/--rtol replace both. Exits 1 when \
            any tensor fails, 2 when a file cannot be used.
            """)

    @Argument(help: "Fixture files, or folders of *.safetensors fixtures.")
    var files: [String]

    @OptionGroup var engine: BackendOptions
    var backend: BackendKind { engine.backend }
    var device: String? { engine.device }

    @Option(parsing: .unconditional, help: "Absolute tolerance for every tensor (replaces the defaults).")
    var atol: Float?

    @Option(parsing: .unconditional, help: "Relative tolerance for every tensor (replaces the defaults).")
    var rtol: Float?

    @Flag(help: "Print only one line per file.")
    var quiet = false

    func run() throws {
        if let atol, !(atol.isFinite && atol >= 0) {
            throw ValidationError("--atol must be a finite number >= 0, got \(atol)")
        }
        if let rtol, !(rtol.isFinite && rtol >= 0) {
            throw ValidationError("--rtol must be a finite number >= 0, got \(rtol)")
        }
        guard !files.isEmpty else { throw ValidationError("give at least one fixture file or folder") }
        var paths: [String] = []
        for item in files {
            var isFolder: ObjCBool = false
            if FileManager.default.fileExists(atPath: item, isDirectory: &isFolder), isFolder.boolValue {
                let names: [String]
                do { names = try FileManager.default.contentsOfDirectory(atPath: item) } catch {
                    throw LSTMError.io(path: item, reason: "cannot list the folder: \(error.localizedDescription)")
                }
                let found = names.filter { $0.hasSuffix(".safetensors") }.sorted().map { item + "/" + $0 }
                guard !found.isEmpty else {
                    throw LSTMError.io(path: item, reason: "no *.safetensors fixtures in this folder")
                }
                paths += found
            } else {
                paths.append(item)
            }
        }
        let tolerance: Tolerance? =
            (atol != nil || rtol != nil)
            ? Tolerance(absolute: atol ?? 0, relative: rtol ?? 0) : nil
        if backend == .opencl {
            do { _ = try OpenCLBackend.shared(device: device) } catch {
                print("ERROR: \(error)")
                throw ExitCode(2)
            }
        }
        var passed = 0, failed = 0, broken = 0
        for path in paths {
            do {
                let fixture = try Fixture(contentsOf: path)
                let rows = try fixture.check(backend: backend, device: device, tolerance: tolerance)
                let ok = rows.allSatisfy(\.passed)
                ok ? (passed += 1) : (failed += 1)
                let c = fixture.configuration
                let shape =
                    describeModel(c)
                    + " T=\(fixture.input.shape[c.batchFirst ? 1 : 0]) B=\(fixture.input.shape[c.batchFirst ? 0 : 1])"
                    + (fixture.lengths.map { " lengths=\($0)" } ?? "")
                let worst = rows.contains { $0.maxAbsolute.isNaN } ? Float.nan : rows.map(\.maxAbsolute).max() ?? 0
                print(
                    "\(ok ? "PASS" : "FAIL") \(path) [\(backend.rawValue)] \(shape) max abs diff \(scientific(worst))")
                if !quiet || !ok {
                    print(
                        "  " + pad("tensor", 26) + pad("max abs", 11, right: true) + pad("max rel", 11, right: true)
                            + "  result")
                    for row in rows where !quiet || !row.passed {
                        let verdict = row.passed ? "PASS" : "FAIL (\(row.failures) of \(row.count) elements)"
                        print(
                            "  " + pad(row.name, 26) + pad(scientific(row.maxAbsolute), 11, right: true)
                                + pad(scientific(row.maxRelative), 11, right: true) + "  " + verdict)
                    }
                }
            } catch {
                broken += 1
                // File errors already start with the path: name it once.
                let message = "\(error)"
                print(message.hasPrefix(path) ? "ERROR \(message)" : "ERROR \(path): \(message)")
            }
        }
        print("check: \(passed) passed, \(failed) failed" + (broken > 0 ? ", \(broken) could not run" : ""))
        if broken > 0 { throw ExitCode(ExitStatus.unusable) }
        if failed > 0 { throw ExitCode(ExitStatus.checkFailed) }
    }
}
