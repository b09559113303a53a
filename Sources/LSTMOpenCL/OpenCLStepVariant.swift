import Foundation
@_spi(Backend) import LSTMCore

/// The step kernels the OpenCL backend runs for the recurrence (the input projection and the
/// weight gradients are GEMMs either way).
///
/// - `classic`: `lstm_forward_step` (one item per hidden unit for `stepBatchTile` rows, each
///   walking all of K alone) and, per backward step, `lstm_cell_backward_step` +
///   `lstm_hidden_backward_step` (one item per output, a serial loop over 4H): few, simple
///   items, right for a CPU device and small shapes.
/// - `split`: `lstm_forward_step_split` (256-item work-groups, K split across the group and
///   summed in local memory, each unit's four gates in one float4 load from the interleaved
///   weights) and `lstm_hidden_backward_split` (the sum over units split across lanes, the
///   next step's cell backward fused in: one launch per backward step without projection):
///   shaped for GPUs. Needs work-groups of 256 items.
///
/// Chosen per device and layer shape (H, Hout, B) by timing both on first use
/// (`OpenCLBackend.tune`), unless `LSTM_GPU_KERNEL_VARIANT=classic|split` forces one for the
/// process (`auto` or unset: tune). `lstm-gpu tune` shows the timings and the choices.
public enum OpenCLStepVariant: String, CaseIterable, Sendable, Codable, CustomStringConvertible {
    case classic, split

    /// The environment variable that forces a variant.
    public static let environmentVariable = "LSTM_GPU_KERNEL_VARIANT"

    public var description: String { rawValue }

    /// The variant `LSTM_GPU_KERNEL_VARIANT` forces (nil: unset, empty or `auto`), or an error
    /// naming the variable and the values it takes.
    static func forced(_ value: String?) -> Result<OpenCLStepVariant?, LSTMError> {
        guard let value, !value.isEmpty, value != "auto" else { return .success(nil) }
        guard let variant = OpenCLStepVariant(rawValue: value) else {
            return .failure(
                .invalidArgument(
                    "\(environmentVariable)=\(displayedValue(value)) is not an OpenCL kernel variant: use "
                        + "\(allCases.map(\.rawValue).joined(separator: ", ")) or auto (tune per shape)"))
        }
        return .success(variant)
    }

    /// `LSTM_GPU_KERNEL_VARIANT` read once per process.
    static let environment: Result<OpenCLStepVariant?, LSTMError> = forced(
        ProcessInfo.processInfo.environment[environmentVariable])

    /// The variant `LSTM_GPU_KERNEL_VARIANT` forces for this process (nil: tuned per shape);
    /// throws `LSTMError.invalidArgument` naming the variable when its value is no variant.
    @discardableResult
    public static func configured() throws -> OpenCLStepVariant? {
        switch environment {
        case .success(let variant): return variant
        case .failure(let error): throw error
        }
    }
}

/// The layer shape the step variant is chosen for: what the step kernels' cost depends on.
public struct OpenCLStepShape: Hashable, Sendable, Codable, CustomStringConvertible {
    public var hiddenSize: Int  // H
    public var outputSize: Int  // Hout
    public var batch: Int  // B
    public var description: String { "H=\(hiddenSize) Hout=\(outputSize) B=\(batch)" }
    public init(hiddenSize: Int, outputSize: Int, batch: Int) {
        (self.hiddenSize, self.outputSize, self.batch) = (hiddenSize, outputSize, batch)
    }
    init(_ s: DirectionShape) { self.init(hiddenSize: s.hiddenSize, outputSize: s.outputSize, batch: s.batch) }
}

/// One variant's timing on one shape: milliseconds of a training step (forward with saved
/// activations + backward) over `OpenCLBackend.tuningSteps` time steps, best of the timed runs;
/// nil when the device cannot run it (e.g. work-groups of 256 items).
public struct OpenCLStepTiming: Sendable, Codable, Equatable {
    public var variant: OpenCLStepVariant
    public var milliseconds: Double?
}

/// What `OpenCLBackend.tune` found for a shape: each variant's timing and the one chosen.
public struct OpenCLTuning: Sendable, Codable, Equatable {
    public var shape: OpenCLStepShape
    public var timings: [OpenCLStepTiming]
    public var chosen: OpenCLStepVariant
    /// Why: "timed" (the faster), "forced" (`LSTM_GPU_KERNEL_VARIANT` or the backend's setting),
    /// "only" (the one the device can run), "cached" (timed by an earlier process on this
    /// device), or "untimed: …" (no memory to time it: `split` where the device takes it).
    public var reason: String
}

/// The GEMM kernel the OpenCL backend runs for its unsplit products (the input projection,
/// the weight gradients, the model's linear layers): `tiled` (16×16 items of 4×4 outputs) or
/// `blocked` (8×8 items of 8×8 outputs: a larger register tile). Chosen per backend by
/// running its first product with beta = 0 with both and timing them; `lstm-gpu tune`
/// (`OpenCLBackend.tuneGEMM()`) measures both more carefully on a 512³ product.
public enum OpenCLGEMMVariant: String, CaseIterable, Sendable, Codable, CustomStringConvertible {
    case tiled, blocked
    public var description: String { rawValue }
    /// The kernel's name in gemm.cl.
    var kernel: String { self == .tiled ? "gemm_tiled" : "gemm_blocked" }
    /// Items per side of its work-group.
    var groupSide: Int {
        self == .tiled ? OpenCLTiles.gemmGroupSide : OpenCLTiles.gemmTile / OpenCLTiles.gemmBlockedWidth
    }
}

/// What the GEMM tuning measured: milliseconds per variant and the one chosen.
public struct OpenCLGEMMTuning: Sendable, Codable, Equatable {
    public var milliseconds: [String: Double]
    public var chosen: OpenCLGEMMVariant
}
