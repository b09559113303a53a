import LSTMCore

/// The loss `fit` trains a `Sequential` with (PyTorch's losses, reduction "mean"), and the
/// metric it reports beside it: accuracy for the cross-entropies, mean absolute error for MSE.
public enum FitLoss: Equatable, Sendable {
    /// Softmax cross-entropy over classes (`CrossEntropyLoss`); targets equal to
    /// `ignoreIndex` and padded steps are not counted.
    case crossEntropy(ignoreIndex: Int = -100)
    /// Sigmoid binary cross-entropy on logits (`BCEWithLogitsLoss`).
    case binaryCrossEntropy
    /// Mean squared error (`MSELoss`).
    case meanSquaredError

    /// "cross_entropy", "binary_cross_entropy" or "mse".
    public var name: String {
        switch self {
        case .crossEntropy: "cross_entropy"
        case .binaryCrossEntropy: "binary_cross_entropy"
        case .meanSquaredError: "mse"
        }
    }

    /// Accuracy for the cross-entropies, MAE for MSE.
    public var metric: MetricKind {
        switch self {
        case .crossEntropy, .binaryCrossEntropy: .accuracy
        case .meanSquaredError: .meanAbsoluteError
        }
    }
}
