import ArgumentParser
import Foundation
import LSTMKit
import LSTMONNX

/// The exit codes of `lstm-gpu` and of every example program (docs/command.md, "Exit codes").
public enum ExitStatus {
    public static let success: Int32 = 0
    /// A parity check failed.
    public static let checkFailed: Int32 = 1
    /// An input (file, device, checkpoint, data) cannot be used.
    public static let unusable: Int32 = 2
    /// Training diverged (a non-finite loss).
    public static let diverged: Int32 = 3
    /// A usage error: an option's value, a missing or contradicting option.
    public static let usage: Int32 = 64
}

/// Prints `message` to standard error.
public func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}

/// One way of ending a command for every program of the package: each failure is printed
/// with the program's name and mapped to its exit code (`ExitStatus`).
public enum CommandEntry {
    /// Parses the command line as `Command`, runs it and exits (the example programs' `main`).
    public static func main<Command: ParsableCommand>(_: Command.Type) -> Never {
        var command: ParsableCommand
        do { command = try Command.parseAsRoot() } catch { Command.exit(withError: error) }
        do { try command.run() } catch { finish(error, in: type(of: command), program: Command._commandName) }
        exit(ExitStatus.success)
    }

    /// Prints `error` as the program (`program`, or `program subcommand`) reports it and exits
    /// with its status: a usage error (`ValidationError`, `SettingError`) with the usage and 64,
    /// a diverged fit 3, an unusable input 2; argument parser's own outcomes as it decides.
    public static func finish(_ error: Error, in command: ParsableCommand.Type, program: String) -> Never {
        let name = command._commandName == program ? program : "\(program) \(command._commandName)"
        switch error {
        case let code as ExitCode: exit(code.rawValue)
        case is ValidationError, is SettingError:
            printError("Error: \(error)")
            printError("Usage: \(program == command._commandName ? "" : program + " ")\(command.usageString())")
            printError("  See '\(name) --help' for more information.")
            exit(ExitStatus.usage)
        case let training as TrainingError:
            printError("\(name): \(training)")
            exit(training.isDivergence ? ExitStatus.diverged : ExitStatus.unusable)
        case is LSTMError, is DistributedError, is CocoaError, is ONNXError:
            printError("\(name): error: \(error.localizedDescription)")
            exit(ExitStatus.unusable)
        default:
            command.exit(withError: error)
        }
    }

    /// Runs `body`, turning a `SettingError` into argument parser's `ValidationError` (for a
    /// `validate()`, whose errors argument parser prints with the usage and exit 64).
    public static func validating(_ body: () throws -> Void) throws {
        do { try body() } catch let error as SettingError { throw ValidationError(error.description) }
    }
}
