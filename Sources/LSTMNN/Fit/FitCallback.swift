import Foundation
import LSTMCore

/// A hook into `fit`: told when the fit starts, after every batch, after every epoch (where it
/// may stop the fit) and at the end. Every requirement has a default that does nothing, so a
/// callback implements only what it needs. A callback that keeps state across epochs (a best
/// value, a patience counter) gives it in `resumeState` and takes it back in
/// `restore(resumeState:)`, so that a resumed fit decides as the uninterrupted one would.
///
/// ```swift
/// final class PrintEveryEpoch: FitCallback {
///     func epochEnded(_ record: EpochRecord, context: FitContext) throws -> FitDecision {
///         print("epoch \(record.epoch): \(record.loss)")
///         return .proceed
///     }
/// }
/// ```
public protocol FitCallback: AnyObject {
    func fitStarted(_ context: FitContext) throws
    func batchEnded(_ progress: BatchProgress, context: FitContext) throws
    func epochEnded(_ record: EpochRecord, context: FitContext) throws -> FitDecision
    func fitEnded(_ history: FitHistory, context: FitContext) throws
    /// Numbers that carry the callback's state into a fit state file.
    var resumeState: [Double] { get }
    /// Takes back what `resumeState` gave (from an untrusted file: check it).
    func restore(resumeState: [Double]) throws
}

extension FitCallback {
    public func fitStarted(_ context: FitContext) throws {}
    public func batchEnded(_ progress: BatchProgress, context: FitContext) throws {}
    public func epochEnded(_ record: EpochRecord, context: FitContext) throws -> FitDecision { .proceed }
    public func fitEnded(_ history: FitHistory, context: FitContext) throws {}
    public var resumeState: [Double] { [] }
    public func restore(resumeState: [Double]) throws {
        guard resumeState.isEmpty else {
            throw LSTMError.invalidArgument("\(type(of: self)) keeps no state, but the state file gives it some")
        }
    }
}

/// What a callback can see and change during a fit.
public final class FitContext {
    public let settings: FitSettings
    public let metric: MetricKind
    /// Whether the fit has a validation set.
    public let hasValidation: Bool
    /// Batches per training epoch.
    public let batchesPerEpoch: Int
    /// The epochs so far (a resumed fit's earlier ones included).
    public internal(set) var records: [EpochRecord] = []
    /// Multiplies the scheduled learning rate from the next step on (`ReduceLearningRateOnPlateau`
    /// lowers it); kept in the fit state file.
    public var learningRateScale: Float = 1
    let saveModel: (String) throws -> Void

    init(
        settings: FitSettings, metric: MetricKind, hasValidation: Bool, batchesPerEpoch: Int,
        saveModel: @escaping (String) throws -> Void
    ) {
        self.settings = settings
        self.metric = metric
        self.hasValidation = hasValidation
        self.batchesPerEpoch = batchesPerEpoch
        self.saveModel = saveModel
    }

    /// Writes the model as it is now to `path` (its whole-model file, atomically).
    public func saveModel(to path: String) throws { try saveModel(path) }
}

/// Tracks the best value of a monitored figure: the state `SaveBestModel`, `EarlyStopping`
/// and `ReduceLearningRateOnPlateau` share.
struct BestValue {
    var best: Double?
    /// Epochs since the best one.
    var wait = 0

    /// Whether `value` improves on the best by more than `delta` (in the better direction);
    /// updates the best and the wait count. NaN never improves.
    mutating func update(_ value: Double, higherIsBetter: Bool, delta: Double) -> Bool {
        let improved: Bool
        if let best {
            improved = higherIsBetter ? value > best + delta : value < best - delta
        } else {
            improved = !value.isNaN
        }
        if improved {
            best = value
            wait = 0
        } else {
            wait += 1
        }
        return improved
    }

    /// At the start of a fit: refuses a validation figure without a validation set, and forgets
    /// an earlier fit's best (a resumed fit keeps the state restored from its file).
    mutating func start(watching monitor: FitMonitor, in context: FitContext, for owner: String) throws {
        try requireValidation(monitor, context, owner)
        if context.records.isEmpty { self = BestValue() }
    }

    var state: [Double] { [best ?? .nan, Double(wait)] }

    init() {}

    /// From `state` of an untrusted file: two numbers, the wait a whole number ≥ 0.
    init(state: [Double], owner: String) throws {
        guard state.count == 2, state[1] >= 0, state[1] == state[1].rounded(), state[1] < 1e9 else {
            throw LSTMError.invalidArgument("\(owner): the state file's state \(state) is not [best, wait]")
        }
        best = state[0].isNaN ? nil : state[0]
        wait = Int(state[1])
    }
}

/// The figure a callback watches (NaN when it is a validation figure and there is no
/// validation set, which `requireValidation` refuses when the fit starts).
func monitored(_ record: EpochRecord, _ monitor: FitMonitor) -> Double { record.value(of: monitor) ?? .nan }
