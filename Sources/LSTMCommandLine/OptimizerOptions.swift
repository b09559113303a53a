import ArgumentParser
import LSTMKit

extension OptimizerName: ExpressibleByArgument {}

/// The optimiser and its schedule: `--optimizer`, `--lr`, `--momentum`, `--nesterov`,
/// `--weight-decay`, `--clip`, `--schedule`, `--warmup` (bounds: `SettingBounds`).
public struct OptimizerOptions: ParsableArguments {
    @Option(help: "sgd, adam or adamw (default: adam).")
    public var optimizer: String?
    @Option(parsing: .unconditional, help: "Learning rate (default: the program's; lm 0.002).")
    public var lr: Float?
    @Option(parsing: .unconditional, help: "SGD momentum, in [0, 1] (default: 0.9).")
    public var momentum: Float?
    @Flag(help: "Nesterov momentum (SGD).")
    public var nesterov = false
    @Option(
        name: .customLong("weight-decay"), parsing: .unconditional, help: "Weight decay (default: 0; AdamW 0.01).")
    public var weightDecay: Float?
    @Option(parsing: .unconditional, help: "Clip gradients to this global norm; 0 is off (default: 5).")
    public var clip: Float?
    @Option(help: "constant, cosine or step:EVERY:GAMMA (default: constant).")
    public var schedule: String?
    @Option(parsing: .unconditional, help: "Linear warm-up steps (default: 0).")
    public var warmup: Int?

    public init() {}

    public func validate() throws {
        try CommandEntry.validating {
            if let optimizer { _ = try OptimizerName(parsing: optimizer) }
            try SettingBounds.number(lr, "--lr", in: SettingBounds.learningRate)
            try SettingBounds.number(momentum, "--momentum", in: SettingBounds.momentum)
            try SettingBounds.number(weightDecay, "--weight-decay", in: SettingBounds.nonNegative)
            try SettingBounds.number(clip, "--clip", in: SettingBounds.nonNegative)
            try SettingBounds.count(warmup, "--warmup", minimum: 0)
        }
    }

    /// The optimiser named (adam when none is).
    public var name: OptimizerName { optimizer.flatMap(OptimizerName.init(rawValue:)) ?? .adam }

    /// The update rule these options give.
    public var kind: OptimizerKind {
        name.kind(momentum: momentum ?? 0.9, nesterov: nesterov, weightDecay: weightDecay)
    }

    /// The schedule named, for a run of `steps` steps (nil: unknown, which cosine refuses).
    public func learningRateSchedule(steps: Int?, learningRate: Float) throws -> LearningRateSchedule? {
        guard let schedule else { return nil }
        do {
            return try LearningRateSchedule(parsing: schedule, steps: steps, learningRate: learningRate)
        } catch let error as SettingError { throw ValidationError(error.description) }
    }
}
