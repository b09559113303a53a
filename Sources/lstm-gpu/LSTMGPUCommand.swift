import ArgumentParser
import Foundation
import LSTMKit

@main
struct LSTMGPUCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lstm-gpu",
        abstract: "LSTM training and inference on OpenCL GPUs and OpenBLAS, with torch.nn.LSTM semantics.",
        subcommands: [DevicesCommand.self, CheckCommand.self, BenchCommand.self, TrainCommand.self, SampleCommand.self])

    @Flag(help: "Print the version (and the git commit when run from a checkout's build folder) and exit.")
    var version = false

    func run() throws {
        guard version else { throw CleanExit.helpRequest(self) }
        print(LSTMGPUVersion.describe())
    }
}

extension BackendKind: ExpressibleByArgument {}

/// Prints `message` to standard error.
func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}

/// Formats a number with a fixed count of decimals.
func fixed(_ value: Double, _ decimals: Int) -> String {
    String(format: "%.\(decimals)f", value)
}

/// Formats a small difference in scientific notation.
func scientific(_ value: Float) -> String {
    value.isFinite ? String(format: "%.2e", Double(value)) : "\(value)"
}

/// Pads `text` to `width` columns (left-aligned, or right-aligned when `right`).
func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
    let fill = String(repeating: " ", count: max(0, width - text.count))
    return right ? fill + text : text + fill
}
