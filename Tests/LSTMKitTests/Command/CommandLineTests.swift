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

/// The `lstm-gpu` executable, run as a user runs it.
final class CommandLineTests: XCTestCase {
    var executable: URL { lstmGPUExecutable }

    func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try runProcess(executable.path, arguments)
    }

    func testCheckPassesFailsAndReportsErrors() throws {
        try requireLSTMGPU()
        let pass = try run(["check", fixtureFolder + "/bi-proj-lengths.safetensors"])
        XCTAssertEqual(pass.status, 0, pass.output)
        XCTAssertTrue(pass.output.contains("grad.weight_hr_l1_reverse"), pass.output)
        XCTAssertTrue(pass.output.contains("check: 1 passed, 0 failed"), pass.output)

        let strict = try run(["check", fixtureFolder + "/wide.safetensors", "--atol", "0", "--rtol", "0"])
        XCTAssertEqual(strict.status, 1, strict.output)
        XCTAssertTrue(strict.output.contains("FAIL"), strict.output)

        let folder = try temporaryFolder()
        try Data("garbage".utf8).write(to: URL(fileURLWithPath: folder + "/bad.safetensors"))
        let broken = try run(["check", folder + "/bad.safetensors"])
        XCTAssertEqual(broken.status, 2, broken.output)
        XCTAssertTrue(broken.output.contains("not a valid safetensors file"), broken.output)
    }

    func testBenchJSONRowsAreWellFormed() throws {
        try requireLSTMGPU()
        let folder = try temporaryFolder()
        let result = try run([
            "bench", "--shape", "8,6,2,3", "--shape", "4,5,3,2,2,1", "--repeat", "2", "--json",
            "--backend", "cpu", "--output", folder + "/rows.json",
        ])
        XCTAssertEqual(result.status, 0, result.output)
        let lines = result.output.split(separator: "\n").filter { $0.hasPrefix("{") }
        XCTAssertEqual(lines.count, 2, result.output)
        for line in lines {
            let row = try JSONDecoder().decode(BenchmarkRow.self, from: Data(line.utf8))
            XCTAssertEqual(row.backend, "cpu")
            XCTAssertGreaterThan(row.forwardGflops, 0)
            XCTAssertGreaterThan(row.trainGflops ?? 0, 0)
            XCTAssertEqual(row.precision, .fp32)
            XCTAssertEqual(row.forward.runs, 2)
            XCTAssertLessThanOrEqual(row.forward.minMs, row.forward.medianMs)
            XCTAssertLessThanOrEqual(row.forward.medianMs, row.forward.maxMs)
            XCTAssertEqual(row.parityMaxAbs, 0)
        }
        let saved = try JSONDecoder().decode(
            [BenchmarkRow].self, from: Data(contentsOf: URL(fileURLWithPath: folder + "/rows.json")))
        XCTAssertEqual(saved.map(\.directions), [1, 2])
        XCTAssertEqual(saved.map(\.layers), [1, 2])
    }

    /// `bench --precision` times each precision on the CPU path, forward only for the reduced
    /// ones, their parity column against float32 on the same weights and input.
    func testBenchTimesReducedPrecisions() throws {
        try requireLSTMGPU()
        let result = try run([
            "bench", "--shape", "16,24,3,4", "--repeat", "1", "--json", "--backend", "cpu", "--precision",
            "int8,fp32,bf16,fp16",
        ])
        XCTAssertEqual(result.status, 0, result.output)
        let rows = try result.output.split(separator: "\n").filter { $0.hasPrefix("{") }.map {
            try JSONDecoder().decode(BenchmarkRow.self, from: Data($0.utf8))
        }
        XCTAssertEqual(rows.map(\.precision), [.int8, .fp32, .bf16, .fp16])
        for row in rows {
            XCTAssertEqual(row.train == nil, row.precision != .fp32, "\(row.precision!)")
            if row.precision == .fp32 {
                XCTAssertEqual(row.parityMaxAbs, 0)
            } else {
                XCTAssertGreaterThan(row.parityMaxAbs, 0, "\(row.precision!) differs from float32")
                XCTAssertLessThan(row.parityMaxAbs, 0.05, "\(row.precision!) is close to float32")
            }
        }
        let table = try run([
            "bench", "--shape", "16,24,3,4", "--repeat", "1", "--backend", "cpu", "--precision", "int8",
        ])
        XCTAssertEqual(table.status, 0, table.output)
        XCTAssertTrue(table.output.contains("int8") && table.output.contains("inference only"), table.output)
        let bad = try run(["bench", "--precision", "int4", "--list"])
        XCTAssertEqual(bad.status, 64, bad.output)
        XCTAssertTrue(bad.output.contains("'int4' is not one of fp32, bf16, fp16, int8"), bad.output)
    }

    /// `bench --cell` runs every row with the options (recorded in the JSON rows) on both
    /// backends, OpenCL checked against the CPU path; a bad list is a usage error naming it.
    func testBenchTakesCellOptions() throws {
        try requireLSTMGPU()
        let result = try run([
            "bench", "--shape", "8,6,2,3,2,1", "--repeat", "1", "--json", "--cell",
            "peephole,cifg,layer-norm,cell-clip=0.5",
        ])
        XCTAssertEqual(result.status, 0, result.output)
        let rows = try result.output.split(separator: "\n").filter { $0.hasPrefix("{") }.map {
            try JSONDecoder().decode(BenchmarkRow.self, from: Data($0.utf8))
        }
        XCTAssertFalse(rows.isEmpty, result.output)
        for row in rows {
            XCTAssertEqual(
                row.cell, LSTMCellOptions(peepholes: true, coupledInputForget: true, layerNorm: true, cellClip: 0.5))
            XCTAssertLessThan(row.parityMaxAbs, 1e-4, "\(row.backend): \(row.parityMaxAbs)")
        }
        let refused = try run(["bench", "--shape", "8,6,2,3", "--cell", "peephole,clip=1"])
        XCTAssertEqual(refused.status, 64, refused.output)
        XCTAssertTrue(refused.output.contains("--cell: unknown option 'clip=1'"), refused.output)
    }

    /// `bench --profile` on OpenCL, each step variant forced: one forward launch per step and
    /// layer-direction; backward, `classic` a cell and a hidden launch per step, `split` one
    /// fused launch per step (plus one cell launch per layer-direction); no weight transposes
    /// or interleaving in steady state (cached); rates for the kernels that declare their work.
    func testBenchProfileCountsLaunchesPerStep() throws {
        try requireLSTMGPU()
        let device = try requireOpenCL()
        for variant in OpenCLStepVariant.allCases {
            let result = try runProcess(
                executable.path,
                [
                    "bench", "--backend", "opencl", "--device", "\(device.device.index)", "--shape", "8,12,3,5,2,1",
                    "--repeat", "1", "--profile", "--json",
                ], environment: [OpenCLStepVariant.environmentVariable: variant.rawValue])
            XCTAssertEqual(result.status, 0, result.output)
            let line = try XCTUnwrap(result.output.split(separator: "\n").first { $0.hasPrefix("{") }, result.output)
            let profile = try XCTUnwrap(try JSONDecoder().decode(BenchmarkRow.self, from: Data(line.utf8)).profile)
            XCTAssertEqual(profile.steps, 5 * 2 * 2)
            func launches(_ kernels: [KernelProfile], _ name: String) -> Int {
                kernels.first { $0.kernel == name }?.launches ?? 0
            }
            let directions = 2 * 2  // L·D
            switch variant {
            case .classic:
                XCTAssertEqual(launches(profile.forward, "lstm_forward_step"), profile.steps)
                XCTAssertEqual(launches(profile.train, "lstm_cell_backward_step"), profile.steps)
                XCTAssertEqual(launches(profile.train, "lstm_hidden_backward_step"), profile.steps)
            case .split:
                XCTAssertEqual(launches(profile.forward, "lstm_forward_step_split"), profile.steps)
                XCTAssertEqual(launches(profile.train, "lstm_hidden_backward_split"), profile.steps)
                XCTAssertEqual(launches(profile.train, "lstm_cell_backward_step"), directions)
            }
            for derived in ["transpose", "interleave_gates"] {
                XCTAssertEqual(launches(profile.forward, derived), 0, "\(variant): \(derived) once, then cached")
            }
            XCTAssertTrue(profile.forward.allSatisfy { $0.milliseconds >= 0 })
            XCTAssertGreaterThanOrEqual(profile.forwardIdleMilliseconds, 0)
            let step = try XCTUnwrap(profile.forward.first { $0.kernel.hasPrefix("lstm_forward_step") })
            XCTAssertGreaterThan(try XCTUnwrap(step.gflops), 0)
            XCTAssertGreaterThan(try XCTUnwrap(step.gigabytesPerSecond), 0)
            XCTAssertNil(profile.forward.first { $0.kernel == "copy_rows" }?.gflops, "data movement declares no work")
        }
    }

    /// `tune`: the GEMM choice, then per distinct layer shape each variant's time and the choice;
    /// with the variable set, the forced variant and no timing; `--json` lines decode.
    func testTuneReportsTimingsAndChoices() throws {
        try requireLSTMGPU()
        let device = try requireOpenCL()
        let arguments = [
            "tune", "--device", "\(device.device.index)", "--shape", "8,12,3,5", "--shape", "4,12,3,9", "--shape",
            "8,16,2,4", "--json",
        ]
        let timed = try runProcess(executable.path, arguments, removing: [OpenCLStepVariant.environmentVariable])
        XCTAssertEqual(timed.status, 0, timed.output)
        let lines = timed.output.split(separator: "\n").filter { $0.hasPrefix("{") }.map { Data($0.utf8) }
        XCTAssertEqual(lines.count, 3, "the GEMM and two distinct shapes (H=12 B=3 twice)\n\(timed.output)")
        let gemm = try JSONDecoder().decode([String: OpenCLGEMMTuning].self, from: lines[0])["gemm"]
        XCTAssertEqual(Set(try XCTUnwrap(gemm).milliseconds.keys), ["tiled", "blocked"])
        let tunings = try lines.dropFirst().map { try JSONDecoder().decode(OpenCLTuning.self, from: $0) }
        XCTAssertEqual(tunings.map(\.shape.hiddenSize), [12, 16])
        XCTAssertTrue(tunings.allSatisfy { $0.reason == "timed" && $0.timings.allSatisfy { $0.milliseconds != nil } })
        let forced = try runProcess(
            executable.path, Array(arguments.dropLast()), environment: [OpenCLStepVariant.environmentVariable: "split"])
        XCTAssertEqual(forced.status, 0, forced.output)
        XCTAssertTrue(forced.output.contains("split (forced)"), forced.output)
        XCTAssertTrue(forced.output.contains("GEMM 512³:"), forced.output)
        // Choices that cannot be saved are reported (the cache "folder" is a file here).
        let notAFolder = try temporaryFolder() + "/file"
        try Data("x".utf8).write(to: URL(fileURLWithPath: notAFolder))
        let unsaved = try runProcess(
            executable.path, Array(arguments.dropLast()), environment: ["LSTM_GPU_KERNEL_CACHE": notAFolder],
            removing: [OpenCLStepVariant.environmentVariable])
        XCTAssertEqual(unsaved.status, 0, unsaved.output)
        XCTAssertTrue(unsaved.output.contains("warning: cannot save the tuning choices"), unsaved.output)
    }

    /// A run killed after its checkpoint and resumed with --resume logs the same losses as an
    /// uninterrupted run (bitwise: the CPU path is deterministic).
    func testKilledTrainingResumesExactly() throws {
        try requireLSTMGPU()
        let folder = try temporaryFolder()
        let common = [
            "train", "--steps", "8", "--hidden", "16", "--embedding", "8", "--batch", "4", "--seq-length", "12",
            "--eval-every", "0", "--dropout", "0", "--layers", "2",
        ]
        let straight = try run(common + ["--log", folder + "/straight.jsonl"])
        XCTAssertEqual(straight.status, 0, straight.output)
        let killed = try runProcess(
            executable.path,
            common + [
                "--checkpoint", folder + "/run.safetensors", "--checkpoint-every", "3",
                "--log", folder + "/resumed.jsonl",
            ],
            environment: ["LSTM_GPU_FAULT": "exit", "LSTM_GPU_FAULT_STEP": "5"])
        XCTAssertEqual(killed.status, 9, killed.output)
        let resumed = try run(
            common + ["--checkpoint", folder + "/run.safetensors", "--resume", "--log", folder + "/resumed.jsonl"])
        XCTAssertEqual(resumed.status, 0, resumed.output)
        XCTAssertTrue(resumed.output.contains("resumed"), resumed.output)
        func losses(_ name: String) throws -> [Int: Double] {
            var out: [Int: Double] = [:]
            for line in try String(contentsOfFile: folder + "/" + name, encoding: .utf8).split(separator: "\n") {
                let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
                if let step = object["step"] as? Int, let loss = object["loss"] as? Double { out[step] = loss }
            }
            return out
        }
        let a = try losses("straight.jsonl"), b = try losses("resumed.jsonl")
        XCTAssertEqual(a.count, 8)
        XCTAssertEqual(
            Set(b.keys), Set(1...8), "steps 4 and 5 ran twice (before the kill and after the resume); all 8 are logged")
        for step in 1...8 { XCTAssertEqual(a[step], b[step], "step \(step)") }
    }

    /// Bad training configurations are refused with a message that names the option.
    func testTrainRefusesBadConfigurations() throws {
        try requireLSTMGPU()
        // Usage errors exit 64 with the subcommand's usage; unusable inputs exit 2 (docs/command.md, "Exit codes").
        let cases: [([String], String, Int32)] = [
            (["train", "--hidden", "8"], "say when to stop", 64),
            (["train", "--steps", "0"], "--steps must be in 1...1099511627776, got 0", 64),
            (["train", "--steps", "2", "--hidden", "-3"], "--hidden must be in 1...16777216, got -3", 64),
            (
                ["train", "--steps", "2", "--dropout", "1.5"],
                "--dropout must be a finite number in 0.0...0.999999, got 1.5", 64
            ),
            (
                ["train", "--steps", "2", "--momentum", "nan"],
                "--momentum must be a finite number in 0.0...1.0, got nan", 64
            ),
            (["train", "--minutes", "inf"], "--minutes must be a finite number in 1e-06...10000000.0, got inf", 64),
            (["train", "--steps", "2", "--schedule", "step:1:nan"], "GAMMA, a finite number > 0, got 'nan'", 64),
            (["train", "--steps", "2", "--optimizer", "lion"], "--optimizer must be sgd, adam or adamw", 64),
            (["train", "--steps", "2", "--resume"], "--resume needs --checkpoint", 64),
            (
                ["train", "--steps", "2", "--schedule", "linear"],
                "--schedule must be constant, cosine or step:EVERY:GAMMA", 64
            ),
            (["train", "--steps", "2", "--data", "/no/such/file.txt"], "/no/such/file.txt: no such file", 2),
            (["train", "--steps", "2", "--data", "/"], "/: is a directory", 2),
            (
                ["sample", "--checkpoint", "/no/such/checkpoint.safetensors"],
                "/no/such/checkpoint.safetensors: no such file", 2
            ),
            (["sample", "--checkpoint", "x", "--length", "-5"], "--length must be at least 0, got -5", 64),
            (["bench", "--only", "nosuch"], "Usage: lstm-gpu bench", 64),
            (["bench", "--seconds", "nan"], "--seconds must be a finite number", 64),
        ]
        for (arguments, message, status) in cases where status != 0 {
            let result = try run(arguments)
            XCTAssertEqual(result.status, status, "\(arguments): \(result.output)")
            XCTAssertTrue(result.output.contains(message), "\(arguments): \(result.output)")
        }
        // The usage printed after a usage error is the subcommand's, not the top-level one.
        let usage = try run(["train", "--steps", "0"])
        XCTAssertTrue(usage.output.contains("Usage: lstm-gpu train"), usage.output)
        XCTAssertFalse(usage.output.contains("SUBCOMMANDS"), usage.output)
    }
}
