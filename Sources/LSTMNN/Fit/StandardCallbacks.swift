import Foundation
import LSTMCore

/// Saves the whole model to `path` (atomically) after every epoch whose monitored figure is
/// the best so far: at the end `path` holds the best model, loadable with
/// `Sequential(contentsOf:backend:)` (or the model's own loader).
public final class SaveBestModel: FitCallback {
    public let path: String
    public let monitor: FitMonitor
    var tracker = BestValue()

    public init(path: String, monitor: FitMonitor = .validationLoss) {
        self.path = path
        self.monitor = monitor
    }

    /// The best value so far (nil before the first epoch).
    public var best: Double? { tracker.best }

    public func fitStarted(_ context: FitContext) throws {
        try tracker.start(watching: monitor, in: context, for: "SaveBestModel")
    }

    public func epochEnded(_ record: EpochRecord, context: FitContext) throws -> FitDecision {
        let value = monitored(record, monitor)
        if tracker.update(value, higherIsBetter: monitor.higherIsBetter(context.metric), delta: 0) {
            try context.saveModel(to: path)
        }
        return .proceed
    }

    public var resumeState: [Double] { tracker.state }
    public func restore(resumeState: [Double]) throws {
        tracker = try BestValue(state: resumeState, owner: "SaveBestModel")
    }
}

/// Stops the fit when the monitored figure has not improved by more than `minimumDelta` for
/// `patience` epochs in a row (Keras' `EarlyStopping`: with patience 2, after the second
/// epoch without improvement; patience 0 stops at the first).
public final class EarlyStopping: FitCallback {
    public let monitor: FitMonitor
    public let patience: Int
    public let minimumDelta: Double
    var tracker = BestValue()

    /// - Throws: `LSTMError` for a negative patience or delta.
    public init(monitor: FitMonitor = .validationLoss, patience: Int = 3, minimumDelta: Double = 0) throws {
        guard patience >= 0, minimumDelta >= 0, minimumDelta.isFinite else {
            throw LSTMError.invalidArgument(
                "EarlyStopping: patience (\(patience)) and minimumDelta (\(minimumDelta)) must be ≥ 0")
        }
        self.monitor = monitor
        self.patience = patience
        self.minimumDelta = minimumDelta
    }

    public func fitStarted(_ context: FitContext) throws {
        try tracker.start(watching: monitor, in: context, for: "EarlyStopping")
    }

    public func epochEnded(_ record: EpochRecord, context: FitContext) throws -> FitDecision {
        let value = monitored(record, monitor)
        let improved = tracker.update(
            value, higherIsBetter: monitor.higherIsBetter(context.metric), delta: minimumDelta)
        return !improved && tracker.wait >= patience ? .stop : .proceed
    }

    public var resumeState: [Double] { tracker.state }
    public func restore(resumeState: [Double]) throws {
        tracker = try BestValue(state: resumeState, owner: "EarlyStopping")
    }
}

/// Multiplies the learning rate by `factor` when the monitored figure has not improved for
/// `patience` epochs (PyTorch's `ReduceLROnPlateau`), down to `minimumScale` of the base rate.
public final class ReduceLearningRateOnPlateau: FitCallback {
    public let monitor: FitMonitor
    public let factor: Float
    public let patience: Int
    public let minimumScale: Float
    var tracker = BestValue()

    /// - Throws: `LSTMError` unless 0 < factor < 1, patience ≥ 0 and 0 ≤ minimumScale ≤ 1.
    public init(
        monitor: FitMonitor = .validationLoss, factor: Float = 0.5, patience: Int = 1, minimumScale: Float = 1e-3
    ) throws {
        guard factor > 0, factor < 1, patience >= 0, minimumScale >= 0, minimumScale <= 1 else {
            throw LSTMError.invalidArgument(
                "ReduceLearningRateOnPlateau: needs 0 < factor < 1 (got \(factor)), patience ≥ 0 (got \(patience)),"
                    + " 0 ≤ minimumScale ≤ 1 (got \(minimumScale))")
        }
        self.monitor = monitor
        self.factor = factor
        self.patience = patience
        self.minimumScale = minimumScale
    }

    public func fitStarted(_ context: FitContext) throws {
        try tracker.start(watching: monitor, in: context, for: "ReduceLearningRateOnPlateau")
    }

    public func epochEnded(_ record: EpochRecord, context: FitContext) throws -> FitDecision {
        let value = monitored(record, monitor)
        _ = tracker.update(value, higherIsBetter: monitor.higherIsBetter(context.metric), delta: 0)
        if tracker.wait > patience {
            context.learningRateScale = max(minimumScale, context.learningRateScale * factor)
            tracker.wait = 0
        }
        return .proceed
    }

    public var resumeState: [Double] { tracker.state }
    public func restore(resumeState: [Double]) throws {
        tracker = try BestValue(state: resumeState, owner: "ReduceLearningRateOnPlateau")
    }
}

/// Stops the fit after an epoch whose training loss is NaN or infinite (Keras'
/// `TerminateOnNaN`); without it a diverged fit runs on, as PyTorch's loop would.
public final class StopOnNonFiniteLoss: FitCallback {
    public init() {}
    public func epochEnded(_ record: EpochRecord, context: FitContext) throws -> FitDecision {
        record.loss.isFinite ? .proceed : .stop
    }
}

/// Writes every epoch's record as one JSON line (`EpochRecord.jsonLine`) to `path`, the whole
/// file rewritten atomically after each epoch, so it is never half-written and, on resume, holds
/// the earlier run's epochs too.
public final class EpochLog: FitCallback {
    public let path: String
    public init(path: String) { self.path = path }

    public func epochEnded(_ record: EpochRecord, context: FitContext) throws -> FitDecision {
        let lines = context.records.map { $0.jsonLine(metric: context.metric.name) + "\n" }.joined()
        try writeAtomically(Data(lines.utf8), to: path)
        return .proceed
    }
}

func requireValidation(_ monitor: FitMonitor, _ context: FitContext, _ owner: String) throws {
    if !context.hasValidation, monitor == .validationLoss || monitor == .validationMetric {
        throw LSTMError.invalidArgument(
            "\(owner) watches \(monitor.rawValue) but the fit has no validation set (watch loss or metric)")
    }
}
