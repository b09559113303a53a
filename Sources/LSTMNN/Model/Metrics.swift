import Foundation
import LSTMCore

/// Evaluation metrics, computed on the host from a model's output.
public enum Metrics {
    /// The fraction of counted targets whose class has the largest logit (the first on ties):
    /// logits rows [N, C] with targets [N] or a sequence [T, B, C] with targets [T·B], steps
    /// t ≥ lengths[b] and `ignoreIndex` targets not counted (as `CrossEntropyLoss`). With C = 1
    /// the one logit is binary: class 1 when it is > 0. NaN when nothing is counted.
    public static func accuracy<Backend: ModelOps>(
        _ logits: LayerValue<Backend>, targets: [Int], ignoreIndex: Int = -100, backend: Backend
    ) throws -> Float {
        let (buffer, rows, classes, counted) = try countedTargets(
            logits, targets, ignoreIndex: ignoreIndex, for: "accuracy", binary: true)
        let values = try backend.read(buffer, offset: 0, count: rows * classes)
        var correct = 0, total = 0
        for r in 0..<rows where counted[r] != ignoreIndex {
            let row = Array(values[(r * classes)..<((r + 1) * classes)])
            total += 1
            if predictedClass(row) == counted[r] { correct += 1 }
        }
        return Float(correct) / Float(total)
    }

    /// The first index of the largest logit; with one logit, 1 when it is > 0 (binary).
    static func predictedClass(_ logits: [Float]) -> Int {
        guard logits.count > 1 else { return logits.first.map { $0 > 0 ? 1 : 0 } ?? 0 }
        var best = 0
        for j in logits.indices where logits[j] > logits[best] { best = j }
        return best
    }

    /// exp(mean cross-entropy), the perplexity of a language model or tagger.
    public static func perplexity(crossEntropy: Float) -> Float { Float(Foundation.exp(Double(crossEntropy))) }

    /// mean |prediction − target| over rows [N, K] or an unpadded sequence, targets of the same count.
    public static func meanAbsoluteError<Backend: ModelOps>(
        _ prediction: LayerValue<Backend>, targets: [Float], backend: Backend
    ) throws -> Float {
        let buffer = try denseElements(prediction, count: targets.count, for: "meanAbsoluteError")
        let values = try backend.read(buffer, offset: 0, count: targets.count)
        let total = zip(values, targets).reduce(0.0) { $0 + Double(abs($1.0 - $1.1)) }
        return Float(total / Double(max(targets.count, 1)))
    }
}
