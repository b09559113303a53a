import ArgumentParser
import Foundation
import LSTMBenchmark
import LSTMCommandLine
import LSTMKit

/// `lstm-gpu tune`: runs the OpenCL step-kernel autotuner (`OpenCLBackend.tune`) on the
/// layer shapes of the selected bench rows and shows each variant's time and the choice, the
/// same choice a forward on that shape makes on first use.
struct TuneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tune",
        abstract:
            "Time the OpenCL step-kernel variants per layer shape, and the GEMM kernels, on a device; show the choices.",
        discussion: """
            Each layer shape (H, Hout, B) of the selected rows is timed as a training step of \
            \(OpenCLBackend.tuningSteps) time steps per variant (classic, split), best of \
            \(OpenCLBackend.tuningRuns) after a warm-up; the faster is what the engine uses for \
            that shape on this device. A variant the device cannot run shows '-'. With \
            LSTM_GPU_KERNEL_VARIANT set, that variant is reported as forced and no step variant is \
            timed. The GEMM kernel (tiled or blocked) is chosen by timing a 512³ product. The \
            choices are saved beside the program binaries for later runs on this device.
            """)

    @Option(help: "Comma-separated suite names (as bench; default: the whole suite).")
    var only: String?

    @Option(help: "A custom row: I,H,B,T[,layers[,bi]] (may be repeated).")
    var shape: [String] = []

    @OptionGroup var deviceOption: DeviceOption
    var device: String? { deviceOption.device }

    @Flag(help: "Print one JSON object per shape (its timings, the choice and why).")
    var json = false

    func run() throws {
        let rows: [BenchmarkShape]
        do { rows = try BenchmarkShape.selected(only: only, shapes: shape) } catch let error as SettingError {
            throw ValidationError(error.description)
        }
        var shapes: [OpenCLStepShape] = []
        for row in rows {
            let step = OpenCLStepShape(hiddenSize: row.hiddenSize, outputSize: row.hiddenSize, batch: row.batch)
            if !shapes.contains(step) { shapes.append(step) }
        }
        let backend = try OpenCLBackend(info: OpenCLDevices.select(device))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let gemm = try backend.tuneGEMM()
        if json {
            print(String(decoding: try encoder.encode(["gemm": gemm]), as: UTF8.self))
        } else {
            let times = OpenCLGEMMVariant.allCases.map {
                "\($0) \(String(format: "%.3f", gemm.milliseconds[$0.rawValue] ?? .nan)) ms"
            }
            print("device: \(backend.device.name) (\(backend.device.type))")
            print("GEMM 512³: \(times.joined(separator: ", ")); chosen \(gemm.chosen)")
            let header = ["shape", "classic ms", "split ms", "chosen"]
            print(header[0].padding(toLength: 24, withPad: " ", startingAt: 0) + header[1...].map(pad).joined())
        }
        for step in shapes {
            let tuning = try backend.tune(step)
            if json {
                print(String(decoding: try encoder.encode(tuning), as: UTF8.self))
                continue
            }
            let times = OpenCLStepVariant.allCases.map { variant in
                tuning.timings.first { $0.variant == variant }?.milliseconds.map { String(format: "%.3f", $0) } ?? "-"
            }
            print(
                step.description.padding(toLength: 24, withPad: " ", startingAt: 0) + times.map(pad).joined()
                    + pad("\(tuning.chosen) (\(tuning.reason))"))
        }
        // What `tune` is for is saving the choices: say when they were not.
        if let problem = backend.tuningSaveProblem {
            printError("warning: \(problem)")
        } else if backend.tuningFile == nil {
            printError("note: LSTM_GPU_KERNEL_CACHE is off (or there is no cache folder): the choices are not saved")
        }
    }

    private func pad(_ text: String) -> String { String(repeating: " ", count: max(2, 14 - text.count)) + text }
}
