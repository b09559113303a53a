import LSTMCore

/// One example for a `Sequential` trained by `fit`: an input sequence and its target.
///
/// Inputs: token ids (a model that starts with an `Embedding`) or T steps of F features
/// (`steps(values, width: F)`, values in step order, T·F of them). Targets, with the loss
/// that takes them:
/// - `label(c)`: one class for the whole sequence (classification; the model ends in rows
///   [B, C]) — `.crossEntropy`, or `.binaryCrossEntropy` with c ∈ {0, 1} and one logit.
/// - `labels([c₀ … c_T−1])`: one class per step (tagging, language models; the model ends in
///   a sequence [T, B, C]) — `.crossEntropy`; a label equal to the loss's ignore index is
///   not counted.
/// - `values([y₀ … y_K−1])`: K numbers for the whole sequence (forecasting; rows [B, K]) —
///   `.meanSquaredError`, or `.binaryCrossEntropy` with targets in [0, 1].
public struct LabelledSequence: Equatable, Sendable {
    public enum Input: Equatable, Sendable {
        case tokens([Int])
        /// T·F values, step after step; `width` is F.
        case steps([Float], width: Int)
    }
    public enum Target: Equatable, Sendable {
        case label(Int)
        case labels([Int])
        case values([Float])
    }
    public var input: Input
    public var target: Target

    public init(_ input: Input, target: Target) {
        self.input = input
        self.target = target
    }

    /// A token sequence with one class.
    public init(tokens: [Int], label: Int) { self.init(.tokens(tokens), target: .label(label)) }

    /// T = the number of steps.
    public var length: Int {
        switch input {
        case let .tokens(ids): ids.count
        case let .steps(values, width): width > 0 ? values.count / width : 0
        }
    }
}
