import ArgumentParser
import LSTMKit

extension BackendKind: ExpressibleByArgument {}

/// `--device`: which OpenCL device (the same option and text in every command).
public struct DeviceOption: ParsableArguments {
    @Option(help: "OpenCL device: index or name substring (default: LSTM_GPU_DEVICE, else the first GPU).")
    public var device: String?

    public init() {}
}

/// `--backend` and `--device`: where a command computes.
public struct BackendOptions: ParsableArguments {
    @Option(
        help: "cpu, opencl, or reference (the slow plain-loop oracle; only check, run and the library's LSTM take it).")
    public var backend: BackendKind = .cpu
    @OptionGroup public var deviceOption: DeviceOption

    public init() {}

    /// The OpenCL device given, if any.
    public var device: String? { deviceOption.device }

    /// Refuses `--backend reference` in `command`, which runs on the model backends (cpu, opencl).
    public func requireModelBackend(_ command: String) throws {
        if backend == .reference { throw Self.referenceRefused(command) }
    }

    /// The usage error for `--backend reference` in a command that runs on cpu or opencl only.
    public static func referenceRefused(_ command: String) -> ValidationError {
        ValidationError(
            "--backend reference is only for 'lstm-gpu check', 'lstm-gpu run' and the library's LSTM (it is the "
                + "slow, readable oracle); '\(command)' runs on cpu or opencl")
    }

    /// Runs `body` on the backend chosen (cpu or opencl; `requireModelBackend` refuses reference).
    public func withModelBackend<T>(_ command: String, _ body: (any ModelOps) throws -> T) throws -> T {
        try requireModelBackend(command)
        switch backend {
        case .opencl: return try body(OpenCLBackend.shared(device: device))
        default: return try body(CPUBackend())
        }
    }
}
