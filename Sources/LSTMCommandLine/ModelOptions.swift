import ArgumentParser
import LSTMKit

/// The sizes of the model: `--layers`, `--hidden`, `--embedding`, `--proj-size`, `--dropout`.
/// Unset values take the task's defaults (with `--resume`, the checkpoint's).
public struct ModelSizeOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: "LSTM layers L (default: 1; lm --resume: the checkpoint's).")
    public var layers: Int?
    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "LSTM hidden size H (default: the program's, see its --help or docs/training.md; lm 512; lm --resume: "
                + "the checkpoint's)."))
    public var hidden: Int?
    @Option(
        parsing: .unconditional,
        help: "Embedding size E of token inputs (default: the program's; lm 64; lm --resume: the checkpoint's).")
    public var embedding: Int?
    @Option(
        name: .customLong("proj-size"), parsing: .unconditional,
        help: "Project h to P features, an LSTMP model (lm only; default: 0, none).")
    public var projSize: Int?
    @Option(parsing: .unconditional, help: "Dropout between LSTM layers, in [0, 1) (default: 0).")
    public var dropout: Float?

    public init() {}

    public func validate() throws {
        try CommandEntry.validating {
            try SettingBounds.modelSizes(
                layers: layers, hidden: hidden, embedding: embedding, projection: projSize, dropout: dropout)
        }
    }

    /// The options given, as written ("--hidden"), for refusals of options a task does not use.
    public var given: [String] {
        [(layers, "--layers"), (hidden, "--hidden"), (embedding, "--embedding"), (projSize, "--proj-size")]
            .compactMap { $0.0 == nil ? nil : $0.1 } + (dropout == nil ? [] : ["--dropout"])
    }
}

/// The cell options (`LSTMCellOptions`): `--peephole`, `--cifg`, `--layer-norm`,
/// `--layer-norm-eps`, `--activation-clip`, `--cell-clip`, `--proj-clip`.
public struct CellOptionFlags: ParsableArguments {
    @Flag(help: "Peephole connections p ⊙ c into the i, f and o gates.")
    public var peephole = false
    @Flag(help: "Coupled input-forget gate (CIFG): i = 1 − f, no input-gate weights.")
    public var cifg = false
    @Flag(name: .customLong("layer-norm"), help: "Layer-normalise each gate's pre-activation over its units.")
    public var layerNorm = false
    @Option(name: .customLong("layer-norm-eps"), parsing: .unconditional, help: "ε of --layer-norm (default: 1e-5).")
    public var layerNormEps: Float?
    @Option(
        name: .customLong("activation-clip"), parsing: .unconditional,
        help: "Clamp every gate pre-activation to [−C, C] (default: off).")
    public var activationClip: Float?
    @Option(
        name: .customLong("cell-clip"), parsing: .unconditional,
        help: "Clamp the cell state to [−C, C] after each update (default: off).")
    public var cellClip: Float?
    @Option(
        name: .customLong("proj-clip"), parsing: .unconditional,
        help: "Clamp the projected h to [−C, C] (with --proj-size; default: off).")
    public var projClip: Float?

    public init() {}

    public func validate() throws {
        try CommandEntry.validating {
            for (value, name) in [
                (activationClip, "--activation-clip"), (cellClip, "--cell-clip"), (projClip, "--proj-clip"),
            ] {
                try SettingBounds.number(value, name, in: SettingBounds.nonNegative)
            }
        }
        if let layerNormEps, !(layerNormEps.isFinite && layerNormEps > 0) {
            throw ValidationError("--layer-norm-eps must be a positive finite number, got \(layerNormEps)")
        }
    }

    /// The cell options given; nil when none was (a resumed run then keeps the checkpoint's,
    /// a new one the plain cell).
    public var given: LSTMCellOptions? {
        guard
            peephole || cifg || layerNorm || layerNormEps != nil || activationClip != nil || cellClip != nil
                || projClip != nil
        else { return nil }
        return LSTMCellOptions(
            peepholes: peephole, coupledInputForget: cifg, layerNorm: layerNorm,
            layerNormEpsilon: layerNormEps ?? 1e-5, activationClip: activationClip ?? 0, cellClip: cellClip ?? 0,
            projectionClip: projClip ?? 0)
    }

    /// Checks what the options say against the model: ε needs layer norm, a projection clip a
    /// projection (skipped when resuming, where the checkpoint has the model).
    public func validate(projects: Bool, resuming: Bool) throws {
        guard !resuming else { return }
        if layerNormEps != nil, !layerNorm { throw ValidationError("--layer-norm-eps needs --layer-norm") }
        if let projClip, projClip > 0, !projects {
            throw ValidationError("--proj-clip clamps the projected h: it needs --proj-size")
        }
    }
}
