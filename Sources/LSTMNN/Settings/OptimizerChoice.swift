import LSTMCore

/// The optimiser a user names ("sgd", "adam", "adamw"): one list of names for every front end.
public enum OptimizerName: String, CaseIterable, Codable, Sendable {
    case sgd, adam, adamw

    /// Parses a name; a `SettingError` for `option` lists the names.
    public init(parsing text: String, option: String = "--optimizer") throws {
        guard let name = OptimizerName(rawValue: text) else {
            throw SettingError(option, "\(option) must be sgd, adam or adamw, got '\(text)'")
        }
        self = name
    }

    /// The update rule with these hyper-parameters; a nil weight decay is the rule's default
    /// (0, and 0.01 for AdamW, as PyTorch).
    public func kind(momentum: Float = 0.9, nesterov: Bool = false, weightDecay: Float? = nil) -> OptimizerKind {
        switch self {
        case .sgd: .sgd(momentum: momentum, nesterov: nesterov, weightDecay: weightDecay ?? 0)
        case .adam: .adam(weightDecay: weightDecay ?? 0)
        case .adamw: .adamW(weightDecay: weightDecay ?? 0.01)
        }
    }
}

extension LearningRateSchedule {
    /// Parses "constant", "cosine" (decay to lr/20 over `steps`, which it needs) or
    /// "step:EVERY:GAMMA"; errors name `option`.
    public init(parsing text: String, steps: Int?, learningRate lr: Float, option: String = "--schedule") throws {
        if text == "constant" {
            self = .constant
            return
        }
        if text == "cosine" {
            guard let steps else { throw SettingError(option, "\(option) cosine needs --steps (its length)") }
            self = .cosine(totalSteps: steps, minimum: lr / 20)
            return
        }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "step" else {
            throw SettingError(option, "\(option) must be constant, cosine or step:EVERY:GAMMA, got '\(text)'")
        }
        guard let every = Int(parts[1]), every > 0 else {
            throw SettingError(
                option, "\(option) step:EVERY:GAMMA needs EVERY, a step count of at least 1, got '\(parts[1])'")
        }
        guard let gamma = Float(parts[2]), gamma.isFinite, gamma > 0 else {
            throw SettingError(
                option, "\(option) step:EVERY:GAMMA needs GAMMA, a finite number > 0, got '\(parts[2])'")
        }
        self = .step(every: every, gamma: gamma)
    }
}
