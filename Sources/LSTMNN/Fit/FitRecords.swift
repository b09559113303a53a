import Foundation
import LSTMCore

/// One epoch of a fit: the training figures (running means over the epoch's batches, as the
/// weights changed), the validation figures (measured after the epoch), the learning rate of
/// its last step and its wall time.
public struct EpochRecord: Equatable, Sendable, Codable {
    /// 1-based.
    public var epoch: Int
    public var loss: Double
    public var metric: Double
    public var validationLoss: Double?
    public var validationMetric: Double?
    public var learningRate: Double
    public var seconds: Double

    public init(
        epoch: Int, loss: Double, metric: Double, validationLoss: Double?, validationMetric: Double?,
        learningRate: Double, seconds: Double
    ) {
        self.epoch = epoch
        self.loss = loss
        self.metric = metric
        self.validationLoss = validationLoss
        self.validationMetric = validationMetric
        self.learningRate = learningRate
        self.seconds = seconds
    }

    /// The value `monitor` watches (nil when it watches validation and there was none).
    public func value(of monitor: FitMonitor) -> Double? {
        switch monitor {
        case .loss: loss
        case .metric: metric
        case .validationLoss: validationLoss
        case .validationMetric: validationMetric
        }
    }

    /// The record as one JSON object: {"epoch":…,"loss":…,"<metric>":…,"val_loss":…,
    /// "val_<metric>":…,"lr":…,"seconds":…}; non-finite numbers as null.
    public func jsonLine(metric name: String) -> String {
        func number(_ value: Double?) -> JSONLineValue { .double(value ?? .nan) }  // nil and NaN: null
        var fields: [(key: String, value: JSONLineValue)] = [
            ("epoch", .int(epoch)), ("loss", number(loss)), (name, number(metric)),
        ]
        if validationLoss != nil {
            fields += [("val_loss", number(validationLoss)), ("val_\(name)", number(validationMetric))]
        }
        fields += [("lr", number(learningRate)), ("seconds", number(seconds))]
        return LSTMCore.jsonLine(fields)
    }
}

/// Which figure of an `EpochRecord` a callback watches.
public enum FitMonitor: String, Equatable, Sendable, Codable, CaseIterable {
    case loss, metric
    case validationLoss = "val_loss"
    case validationMetric = "val_metric"

    /// Whether a larger value is better: never for a loss; for a metric, as the metric says.
    func higherIsBetter(_ metric: MetricKind) -> Bool {
        switch self {
        case .loss, .validationLoss: false
        case .metric, .validationMetric: metric.higherIsBetter
        }
    }
}

/// What `fit` returns: every epoch's record (those of a resumed fit's earlier run included)
/// and why it stopped.
public struct FitHistory: Equatable, Sendable {
    public var records: [EpochRecord]
    /// The callback that stopped the fit before its last epoch ("EarlyStopping"), or nil.
    public var stoppedBy: String?
    public var metric: MetricKind
    /// The fit's run id: random at the start of a fresh fit, kept in its state file and by every
    /// resume, and written into the metadata of every model file the fit saves (under
    /// `runIDMetadataKey`; `SupervisedModel` and `Seq2Seq`).
    public var runID: String
    /// The fit's state file (`FitSettings.stateFile`), if it had one.
    public var stateFile: String?

    /// The model-file metadata key of the run id.
    public static let runIDMetadataKey = "lstm_gpu_fit_run"

    /// Checks that the model file at `path` was saved by this fit (or the run it resumed): its
    /// metadata's run id is this fit's. A file another run left at the path (another model,
    /// data or settings) is refused, naming both files.
    /// - Throws: `LSTMError` when the file cannot be read or belongs to another run.
    public func requireModelFile(_ path: String) throws {
        let file = try SafeTensorsFile(contentsOf: path)
        let found = file.metadata[Self.runIDMetadataKey]
        guard found == runID else {
            let run = stateFile.map { "the run of \($0) (run id \(runID))" } ?? "this fit (run id \(runID))"
            throw LSTMError.io(
                path: path,
                reason:
                    "this model file was not saved by \(run): it "
                    + (found.map { "has run id \(displayedValue($0))" } ?? "has no run id")
                    + ", so it belongs to another run; move it away or start the fit afresh")
        }
    }
}

/// Progress within an epoch, given to callbacks after every batch.
public struct BatchProgress: Sendable {
    /// 1-based.
    public var epoch: Int
    /// Batches done in this epoch (1-based), of `batches`.
    public var batch: Int
    public var batches: Int
    /// Running means over this epoch's batches so far.
    public var loss: Double
    public var metric: Double
    public var learningRate: Double
    /// Wall time since the epoch started.
    public var seconds: Double
}

/// Whether a callback lets the fit go on after an epoch.
public enum FitDecision: Sendable { case proceed, stop }
