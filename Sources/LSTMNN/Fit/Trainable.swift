import LSTMCore

/// A model that `fit` can train: it runs a batch of its own examples (forward and loss, and
/// in training the backward that sets every parameter's gradient), and exposes its
/// parameters, its random generators and a way to save itself. `SupervisedModel` (a
/// `Sequential` with a loss) and `Seq2Seq` conform; a model of your own can too.
public protocol Trainable<Backend>: AnyObject {
    associatedtype Backend: ModelOps
    /// One training example (`LabelledSequence` for a `Sequential`).
    associatedtype Example

    /// Where the parameters live (the optimiser runs there).
    var backend: Backend { get }
    /// Every trainable weight, with unique names (they key the optimiser's state in a
    /// resumable fit state file).
    var parameters: [Parameter<Backend.Buffer>] { get }
    /// The metric `run` reports beside the loss.
    var metric: MetricKind { get }
    /// The number of steps of `example`: `fit` batches examples of similar length together.
    func length(of example: Example) -> Int
    /// Checks one example before training starts; `position` ("training example 12") names
    /// it in the error.
    /// - Throws: `LSTMError` saying what is wrong with the example.
    func check(_ example: Example, position: String) throws
    /// Runs `batch`: forward and loss, and with `training` the backward (every parameter's
    /// gradient set, ready for the optimiser). Without `training` nothing is kept.
    func run(_ batch: [Example], training: Bool) throws -> BatchOutcome
    /// The state of every random generator in the model (dropout masks), in a fixed order:
    /// restoring it makes a resumed fit draw the masks it would have drawn.
    var randomStates: [UInt64] { get set }
    /// Writes the whole model to one file that its own loader reads back.
    func save(to path: String) throws
}

/// The metric a model reports: its name in records and logs ("accuracy", "mae",
/// "token_accuracy") and which way is better.
public struct MetricKind: Equatable, Sendable, Codable {
    public var name: String
    public var higherIsBetter: Bool
    public init(name: String, higherIsBetter: Bool) {
        self.name = name
        self.higherIsBetter = higherIsBetter
    }
    public static let accuracy = MetricKind(name: "accuracy", higherIsBetter: true)
    public static let meanAbsoluteError = MetricKind(name: "mae", higherIsBetter: false)
}

/// What one batch gave: sums and counts, so that an epoch's figures are exact means over
/// everything counted (not means of batch means).
public struct BatchOutcome: Equatable, Sendable {
    /// Σ over the counted targets of their loss (the batch's mean loss × `count`).
    public var lossSum: Double
    /// Targets the loss counted (rows, valid steps, or elements for a regression).
    public var count: Int
    /// Σ of the metric over the `metricCount` items it was measured on.
    public var metricSum: Double
    public var metricCount: Int

    public init(lossSum: Double, count: Int, metricSum: Double, metricCount: Int) {
        self.lossSum = lossSum
        self.count = count
        self.metricSum = metricSum
        self.metricCount = metricCount
    }

    public static let zero = BatchOutcome(lossSum: 0, count: 0, metricSum: 0, metricCount: 0)

    /// Both sums and counts added.
    public static func + (a: BatchOutcome, b: BatchOutcome) -> BatchOutcome {
        BatchOutcome(
            lossSum: a.lossSum + b.lossSum, count: a.count + b.count, metricSum: a.metricSum + b.metricSum,
            metricCount: a.metricCount + b.metricCount)
    }

    /// The mean loss (NaN when nothing was counted).
    public var loss: Double { count > 0 ? lossSum / Double(count) : .nan }
    /// The mean metric (NaN when nothing was measured).
    public var metricValue: Double { metricCount > 0 ? metricSum / Double(metricCount) : .nan }
}
