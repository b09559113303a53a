import ArgumentParser
import Foundation
import LSTMCommandLine
import LSTMKit

/// Parses the command line, runs the subcommand, and maps every failure to one exit code
/// (docs/command.md, "Exit codes"): 0 success, 1 a parity check failed, 2 an input (file, device,
/// checkpoint) cannot be used, 3 training diverged, 64 a usage error (printed with the
/// subcommand's usage, also when it is found after parsing).
@main
enum Entry {
    static func main() {
        var command: ParsableCommand
        do { command = try LSTMGPUCommand.parseAsRoot() } catch { LSTMGPUCommand.exit(withError: error) }
        do {
            // LSTM_GPU_CPU_ISA, when set, must name CPU kernels this machine runs, and
            // LSTM_GPU_KERNEL_VARIANT an OpenCL step variant (exit 2 if not); help and
            // --version answer whatever the environment says.
            let informational = command is LSTMGPUCommand || "\(type(of: command))" == "HelpCommand"
            if !informational {
                try CPUKernelVariant.selected()
                try OpenCLStepVariant.configured()
            }
            try command.run()
        } catch { finish(error, in: type(of: command)) }
    }

    static func finish(_ error: Error, in command: ParsableCommand.Type) -> Never {
        CommandEntry.finish(error, in: command, program: LSTMGPUCommand._commandName)
    }
}

struct LSTMGPUCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lstm-gpu",
        abstract: "LSTM training and inference on OpenCL GPUs and OpenBLAS, with torch.nn.LSTM semantics.",
        subcommands: [
            DevicesCommand.self, CheckCommand.self, BenchCommand.self, TrainCommand.self, SampleCommand.self,
            InspectCommand.self, TuneCommand.self, RunCommand.self, QuantizeCommand.self, ImportCommand.self,
            ExportCommand.self,
        ])

    @Flag(help: "Print the version (and the git commit when run from a checkout's build folder) and exit.")
    var version = false

    func run() throws {
        guard version else { throw CleanExit.helpRequest(self) }
        print(LSTMGPUVersion.describe())
    }
}
