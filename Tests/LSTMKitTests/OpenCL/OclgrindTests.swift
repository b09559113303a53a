import Foundation
import XCTest

@testable import LSTMCPU
@testable import LSTMCore
@testable import LSTMData
@testable import LSTMKit
@testable import LSTMNN
@testable import LSTMOpenCL
@testable import LSTMReference

/// The OpenCL kernels under Oclgrind, a second OpenCL implementation that simulates a device
/// and reports out-of-bounds accesses, data races and barrier divergence:
/// - the step kernels, each variant (`OpenCLStepVariant`) forced: a few committed fixtures
///   (ragged lengths, both directions, projection, saturated gates) through
///   `lstm-gpu check --backend opencl`, each kernel checked element by element against
///   PyTorch and by the simulator;
/// - the options path's kernels (`lstm_options.cl`): the option fixtures with every option,
///   lengths, layers and both directions;
/// - the training kernels (embedding gather and scatter, the work-group-per-row softmax of a
///   158-symbol vocabulary, reductions, clipping, Adam): two steps of `lstm-gpu train`;
/// - the model API's kernels (pooling, dropout, MSE): `train --task classify` and `forecast`.
/// Skips only where `oclgrind` is not installed (`make test` installs it).
final class OclgrindTests: XCTestCase {
    func testStepKernelsAreCleanUnderOclgrind() throws {
        let (oclgrind, executable) = try tools()
        let fixtures = ["basic", "bi-proj-lengths", "lengths-zero", "saturated-proj"].map {
            fixtureFolder + "/\($0).safetensors"
        }
        for variant in OpenCLStepVariant.allCases {
            let result = try runProcess(
                oclgrind,
                ["--data-races", executable, "check"] + fixtures + ["--backend", "opencl", "--quiet"],
                environment: ["LSTM_GPU_KERNEL_CACHE": "off", OpenCLStepVariant.environmentVariable: variant.rawValue])
            print("[\(variant)] " + result.output)
            XCTAssertEqual(result.status, 0, result.output)
            XCTAssertTrue(result.output.contains("check: \(fixtures.count) passed, 0 failed"), result.output)
            assertClean(result.output, "\(variant)")
        }
    }

    func testOptionKernelsAreCleanUnderOclgrind() throws {
        let (oclgrind, executable) = try tools()
        let fixtures = ["opt-all-bi-layers", "opt-cifg-peephole-ln-reverse", "opt-all-cifg-batch-first"].map {
            fixtureFolder + "/\($0).safetensors"
        }
        let result = try runProcess(
            oclgrind, ["--data-races", executable, "check"] + fixtures + ["--backend", "opencl", "--quiet"],
            environment: ["LSTM_GPU_KERNEL_CACHE": "off"])
        print(result.output)
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(result.output.contains("check: \(fixtures.count) passed, 0 failed"), result.output)
        assertClean(result.output, "options")
    }

    func testTrainingKernelsAreCleanUnderOclgrind() throws {
        let (oclgrind, executable) = try tools()
        // 158 distinct symbols: wider than OpenCLTiles.softmaxGroupClasses.
        let symbols =
            Array((0x20..<0x7f).map { Character(UnicodeScalar($0)!) })
            + (0xa1..<0xe0).map { Character(UnicodeScalar($0)!) }
        var generator = SeededGenerator(seed: 1)
        let text = String((0..<3000).map { _ in symbols[Int(generator.next() % UInt64(symbols.count))] })
        let data = try temporaryFolder() + "/wide.txt"
        try text.write(toFile: data, atomically: true, encoding: .utf8)
        XCTAssertGreaterThanOrEqual(Set(text).count, OpenCLTiles.softmaxGroupClasses)
        let result = try runProcess(
            oclgrind,
            [
                "--data-races", executable, "train", "--data", data, "--backend", "opencl", "--steps", "2",
                "--hidden", "8", "--embedding", "4", "--batch", "2", "--seq-length", "4", "--eval-every", "0",
                "--eval-chars", "8", "--clip", "1",
            ], environment: ["LSTM_GPU_KERNEL_CACHE": "off"])
        print(result.output)
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(result.output.contains("done: 2 steps"), result.output)
        assertClean(result.output, "train")
    }

    /// The model API's kernels (pooling forward and backward by max and by last step, per-step
    /// Linear, dropout, MSE, the fit loop's reads) through `train --task classify` and
    /// `--task forecast` on a few examples.
    func testModelKernelsAreCleanUnderOclgrind() throws {
        let (oclgrind, executable) = try tools()
        let table = try temporaryFolder() + "/tiny.tsv"
        try (["label\ttext"] + (0..<12).map { "\($0 % 3)\tw\($0 % 5) x y\(String(repeating: " z", count: $0 % 4))" })
            .joined(separator: "\n").write(toFile: table, atomically: true, encoding: .utf8)
        let small = [
            "--backend", "opencl", "--epochs", "1", "--hidden", "4", "--embedding", "4", "--batch", "4",
            "--min-count", "1",
        ]
        let runs: [[String]] = [
            ["--task", "classify", "--data", table, "--pooling", "max", "--bidirectional", "--dropout", "0.2"] + small,
            [
                "--task", "forecast", "--data", appFixtureFolder + "/sunspots.csv", "--limit", "40", "--window", "4",
                "--backend", "opencl", "--epochs", "1", "--hidden", "4", "--batch", "8",
            ],
        ]
        for arguments in runs {
            let result = try runProcess(
                oclgrind, ["--data-races", executable, "train"] + arguments,
                environment: ["LSTM_GPU_KERNEL_CACHE": "off"])
            print(result.output)
            XCTAssertEqual(result.status, 0, result.output)
            XCTAssertTrue(result.output.contains("1 epochs"), result.output)
            assertClean(result.output, arguments[1])
        }
    }

    /// Oclgrind and the binary, or a skip.
    private func tools() throws -> (oclgrind: String, executable: String) {
        guard
            let oclgrind = ["/usr/bin/oclgrind", "/usr/local/bin/oclgrind"].first(where: {
                FileManager.default.isExecutableFile(atPath: $0)
            })
        else { throw XCTSkip("oclgrind not installed (apt-get install oclgrind)") }
        let executable = lstmGPUExecutable.path
        try requireLSTMGPU()
        return (oclgrind, executable)
    }

    /// Oclgrind reports a problem as a block such as "Invalid read of size 4", "Read-write data
    /// race at …", "Work-group divergence detected" or "OCLGRIND FATAL ERROR".
    private func assertClean(_ output: String, _ label: String, line: UInt = #line) {
        let report = output.lowercased()
        for problem in ["invalid read", "invalid write", "data race", "divergence", "oclgrind fatal", "oclgrind error"]
        {
            XCTAssertFalse(report.contains(problem), "Oclgrind found (\(label)): \(problem)\n\(output)", line: line)
        }
    }
}
