import Foundation
import LSTMCore

/// When a training run stops, evaluates and writes its checkpoint.
public struct TrainingSchedule: Sendable {
    /// Stop when the trainer's step count (counted from the first run, so a resumed run
    /// continues towards the same total) reaches this.
    public var totalSteps: Int?
    /// Stop after this many epochs in all.
    public var epochs: Int?
    /// Stop when this much wall time has passed since `run` began, the final evaluation included.
    public var seconds: Double?
    /// Evaluate every N steps (0: only at the end).
    public var evaluateEvery = 0
    /// Evaluate on at most the first N held-out characters (nil: all).
    public var evaluationCharacters: Int?
    /// Where to write checkpoints (nil: none), and every how many steps (0: only at the end).
    public var checkpoint: String?
    public var checkpointEvery = 0

    public init(totalSteps: Int? = nil, epochs: Int? = nil, seconds: Double? = nil) {
        self.totalSteps = totalSteps
        self.epochs = epochs
        self.seconds = seconds
    }
}

/// What a running `TrainingRun` reports, in order, to its observer.
public enum TrainingEvent {
    /// A step finished. `tokensPerSecond` counts the global batch (all replicas).
    case step(StepReport, tokensPerSecond: Double)
    /// An evaluation is under way: the fraction done.
    case evaluating(step: Int, fraction: Double)
    /// An evaluation finished (it may have been cut short by the time limit: see `complete`).
    case evaluated(step: Int, HeldOutEvaluation, seconds: Double)
    /// A checkpoint was written at `step`.
    case checkpointWritten(step: Int, path: String)
}

/// The training loop shared by `lstm-gpu train` and library users: stop conditions (steps,
/// epochs, wall time with the final evaluation inside it), evaluation and checkpoint cadence,
/// divergence handling (a `TrainingError` names the step and the last good checkpoint) and,
/// under data parallelism, one clock (rank 0's) for every replica.
///
/// ```swift
/// let run = TrainingRun(trainer: trainer, schedule: schedule)
/// let summary = try run.run { event in if case let .step(report, _) = event { print(report.loss) } }
/// ```
public final class TrainingRun<Backend: ModelOps> {
    public let trainer: LanguageModelTrainer<Backend>
    public let schedule: TrainingSchedule
    /// The step of the last checkpoint written (or resumed from).
    public private(set) var lastCheckpointStep: Int

    /// What `run` did.
    public struct Summary: Sendable {
        public var steps: Int
        public var seconds: Double
        public var tokensPerSecond: Double
        /// The last held-out loss measured (nil when none was).
        public var heldOutLoss: Float?
    }

    /// Why a run stopped early on a non-finite number: the error, and the last checkpoint
    /// that is intact on disk (nil when none was written).
    public struct Diverged: Error, CustomStringConvertible, LocalizedError {
        public let error: TrainingError
        public let lastCheckpoint: (path: String, step: Int)?
        public var description: String {
            "\(error)" + (lastCheckpoint.map { "\nlast good checkpoint: \($0.path) (step \($0.step))" } ?? "")
        }
        public var errorDescription: String? { description }
    }

    /// `resumed` says whether the trainer was restored from `schedule.checkpoint` (then that
    /// file counts as the last good checkpoint).
    public init(trainer: LanguageModelTrainer<Backend>, schedule: TrainingSchedule, resumed: Bool = false) {
        self.trainer = trainer
        self.schedule = schedule
        lastCheckpointStep = resumed ? trainer.step : 0
        hasCheckpoint = resumed && schedule.checkpoint != nil
    }

    private var hasCheckpoint: Bool

    /// The step at which the run stops (the smaller of `totalSteps` and `epochs`), if any.
    public var stopStep: Int? {
        let epochSteps = schedule.epochs.map { SizeLimits.saturatingProduct([$0, trainer.data.chunksPerEpoch]) }
        return [schedule.totalSteps, epochSteps].compactMap { $0 }.min()
    }

    /// Trains until a stop condition holds, reporting every step, evaluation and checkpoint to
    /// `observe` (called on rank 0 only for evaluations; every rank takes part in checkpoints).
    /// - Throws: `Diverged` when the loss, the gradient norm or a weight to be saved is not
    ///   finite (nothing of that step was applied or written); any other error as it comes.
    public func run(_ observe: (TrainingEvent) throws -> Void = { _ in }) throws -> Summary {
        let started = Date()
        let deadline = schedule.seconds.map { started.addingTimeInterval($0) }
        let reducer = trainer.reducer
        let leader = (reducer?.rank ?? 0) == 0
        let firstStep = trainer.step
        let tokensPerStep = trainer.data.batch * trainer.data.sequenceLength
        var heldOutLoss: Float?
        var averageStepSeconds = 0.0

        func guarded<T>(_ body: () throws -> T) throws -> T {
            do { return try body() } catch let error as TrainingError where error.isDivergence {
                throw Diverged(
                    error: error,
                    lastCheckpoint: hasCheckpoint ? schedule.checkpoint.map { ($0, lastCheckpointStep) } : nil)
            }
        }
        func evaluate() throws {
            guard leader else { return }
            let step = trainer.step
            let evaluation = try trainer.evaluate(limit: schedule.evaluationCharacters, deadline: deadline) {
                fraction in
                try? observe(.evaluating(step: step, fraction: fraction))
            }
            if evaluation.characters > 0 { heldOutLoss = evaluation.loss }
            try observe(.evaluated(step: step, evaluation, seconds: Date().timeIntervalSince(started)))
        }
        func writeCheckpoint() throws {
            guard let path = schedule.checkpoint else { return }
            try guarded { try trainer.saveCheckpoint(to: path) }  // every rank takes part; rank 0 writes
            lastCheckpointStep = trainer.step
            hasCheckpoint = true
            if leader { try observe(.checkpointWritten(step: trainer.step, path: path)) }
        }

        while true {
            if let stopStep, trainer.step >= stopStep { break }
            if let deadline {
                // The final evaluation must fit before the deadline too: stop training when the
                // time left is less than its estimate. Under data parallelism rank 0's clock (and
                // estimate) decides for everyone, so no rank stops alone.
                let reserve = leader ? estimatedEvaluationSeconds(secondsPerStep: averageStepSeconds) : 0
                var stop: [Float] = [Date().addingTimeInterval(reserve) >= deadline ? 1 : 0]
                try reducer?.broadcast(&stop, root: 0)
                if stop[0] != 0 { break }
            }
            FaultInjection.beforeStep(rank: reducer?.rank ?? 0, step: trainer.step)
            let report = try guarded { try trainer.trainStep() }
            averageStepSeconds =
                averageStepSeconds == 0 ? report.seconds : 0.8 * averageStepSeconds + 0.2 * report.seconds
            try observe(.step(report, tokensPerSecond: Double(tokensPerStep) / report.seconds))
            if schedule.evaluateEvery > 0, report.step % schedule.evaluateEvery == 0 { try evaluate() }
            if schedule.checkpointEvery > 0, report.step % schedule.checkpointEvery == 0 { try writeCheckpoint() }
        }
        if trainer.step > firstStep, schedule.evaluateEvery <= 0 || trainer.step % schedule.evaluateEvery != 0 {
            try evaluate()
        }
        try writeCheckpoint()
        let seconds = Date().timeIntervalSince(started)
        let steps = trainer.step - firstStep
        return Summary(
            steps: steps, seconds: seconds, tokensPerSecond: Double(steps * tokensPerStep) / max(seconds, 1e-9),
            heldOutLoss: heldOutLoss)
    }
}

extension TrainingRun {
    /// Seconds the final evaluation is expected to take, from a training step's time: it runs
    /// forward only (about a third of a step per character) on fewer streams (less efficient
    /// per character), so 0.7 of a step per `batch × sequenceLength` characters evaluated.
    func estimatedEvaluationSeconds(secondsPerStep: Double) -> Double {
        let characters = min(trainer.data.heldOut.count, schedule.evaluationCharacters ?? trainer.data.heldOut.count)
        // Rank 0 evaluates alone, and its step time is for its own streams (the local batch).
        let perStep = Double(max(trainer.options.batch * trainer.data.sequenceLength, 1))
        return 0.7 * secondsPerStep * Double(characters) / perStep
    }
}

/// Fault injection for the tests of failure handling: `LSTM_GPU_FAULT=exit|hang`,
/// `LSTM_GPU_FAULT_RANK=R` and `LSTM_GPU_FAULT_STEP=S` make rank R die (exit 9) or hang before
/// step S + 1. Unset, it does nothing.
enum FaultInjection {
    /// (fault, rank, step) from the environment, read once per process, not once per step.
    private static let planned: (fault: String, rank: Int, step: Int)? = {
        let environment = ProcessInfo.processInfo.environment
        guard let fault = environment["LSTM_GPU_FAULT"], let rank = Int(environment["LSTM_GPU_FAULT_RANK"] ?? "0"),
            let step = Int(environment["LSTM_GPU_FAULT_STEP"] ?? "0")
        else { return nil }
        return (fault, rank, step)
    }()

    static func beforeStep(rank: Int, step: Int) {
        guard let (fault, faultRank, faultStep) = planned, faultRank == rank, faultStep == step else { return }
        if fault == "exit" { exit(9) }
        while fault == "hang" { sleep(1000) }
    }
}
