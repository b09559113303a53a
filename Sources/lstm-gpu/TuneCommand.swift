import ArgumentParser
import Foundation
import LSTMKit

/// `lstm-gpu tune`: runs the OpenCL step-kernel autotuner (`OpenCLBackend.tune`) on the
/// layer shapes of the selected bench rows and shows each variant's time and the choice, the
/// same choice a forward on that shape makes on first use.
struct TuneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tune",
        abstract: "Time the OpenCL step-kernel variants on a device and show the one chosen per layer shape.",
        discussion: """
            Each layer shape (H, Hout, B) of the selected rows is timed as a training step of \
            \(OpenCLBackend.tuningSteps) time steps per variant (classic, split), best of \
            \(OpenCLBackend.tuningRuns) after a warm-up; the faster is what the engine uses for \
            that shape on this device. A variant the device cannot run shows '-'. With \
            LSTM_GPU_KERNEL_VARIANT set, that variant is reported as forced and nothing is timed.
            """)

    @Option(help: "Comma-separated suite names (as bench; default: the whole suite).")
    var only: String?

    @Option(help: "A custom row: I,H,B,T[,layers[,bi]] (may be repeated).")
    var shape: [String] = []

    @Option(help: "OpenCL device: index or name substring (default: LSTM_GPU_DEVICE, else the first GPU).")
    var device: String?

    @Flag(help: "Print one JSON object per shape (its timings, the choice and why).")
    var json = false

    func run() throws {
        let rows = try selectedShapes(only: only, shapes: shape)
        var shapes: [OpenCLStepShape] = []
        for row in rows {
            let step = OpenCLStepShape(hiddenSize: row.hiddenSize, outputSize: row.hiddenSize, batch: row.batch)
            if !shapes.contains(step) { shapes.append(step) }
        }
        let backend = try OpenCLBackend(info: OpenCLDevices.select(device))
        if !json {
            print("device: \(backend.device.name) (\(backend.device.type))")
            let header = ["shape", "classic ms", "split ms", "chosen"]
            print(header[0].padding(toLength: 24, withPad: " ", startingAt: 0) + header[1...].map(pad).joined())
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
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
    }

    private func pad(_ text: String) -> String { String(repeating: " ", count: max(2, 14 - text.count)) + text }
}
