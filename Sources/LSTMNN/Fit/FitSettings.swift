import LSTMCore

/// How `fit` trains: epochs, batches, the optimiser and its learning rate, clipping, the
/// seed of every shuffle, bucketing, and the state file that makes a fit resumable.
public struct FitSettings: Equatable, Sendable {
    public var epochs: Int
    /// B: examples per training batch.
    public var batchSize: Int
    public var optimizer: OptimizerKind
    /// The base rate; `schedule` and `warmup` (in steps) shape it, and callbacks such as
    /// `ReduceLearningRateOnPlateau` scale it.
    public var learningRate: Float
    public var schedule: LearningRateSchedule
    public var warmup: Int
    /// Clip every gradient by their global norm (PyTorch's `clip_grad_norm_`); nil: none.
    public var maxGradientNorm: Float?
    /// Seeds the order of the examples in every epoch.
    public var seed: UInt64
    /// Batch sequences of similar length together: the shuffled examples are cut into pools of
    /// `bucketPool` batches, each pool sorted by length and cut into batches, and the batches
    /// shuffled. Padding stays small; every epoch still sees another order.
    public var bucketing: Bool
    public var bucketPool: Int
    /// Examples per batch when measuring (validation and inference); nil: 4 × `batchSize`.
    public var evaluationBatchSize: Int?
    /// A file written atomically after every epoch with everything needed to resume exactly:
    /// the weights, the optimiser's state, every random generator, the callbacks' state and the
    /// history so far. nil: none.
    public var stateFile: String?
    /// With `stateFile`: when the file exists, continue from it (it must come from the same
    /// data, batch size, seed and optimiser; `epochs` may be raised) instead of starting over.
    public var resume: Bool

    public init(
        epochs: Int, batchSize: Int, optimizer: OptimizerKind = .adam(), learningRate: Float = 1e-3,
        schedule: LearningRateSchedule = .constant, warmup: Int = 0, maxGradientNorm: Float? = nil, seed: UInt64 = 1,
        bucketing: Bool = true, bucketPool: Int = 50, evaluationBatchSize: Int? = nil, stateFile: String? = nil,
        resume: Bool = false
    ) {
        self.epochs = epochs
        self.batchSize = batchSize
        self.optimizer = optimizer
        self.learningRate = learningRate
        self.schedule = schedule
        self.warmup = warmup
        self.maxGradientNorm = maxGradientNorm
        self.seed = seed
        self.bucketing = bucketing
        self.bucketPool = bucketPool
        self.evaluationBatchSize = evaluationBatchSize
        self.stateFile = stateFile
        self.resume = resume
    }

    /// - Throws: `LSTMError.invalidArgument` naming the first setting out of range.
    public func validate() throws {
        func bad(_ what: String) -> LSTMError { .invalidArgument("fit: \(what)") }
        guard epochs >= 1 else { throw bad("epochs is \(epochs); it must be at least 1") }
        try SizeLimits.requireSize(batchSize, "fit batchSize")
        guard learningRate.isFinite, learningRate > 0 else {
            throw bad("learningRate is \(learningRate); it must be finite and > 0")
        }
        guard warmup >= 0 else { throw bad("warmup is \(warmup); it must be ≥ 0") }
        if let maxGradientNorm, !(maxGradientNorm.isFinite && maxGradientNorm > 0) {
            throw bad("maxGradientNorm is \(maxGradientNorm); it must be finite and > 0")
        }
        guard bucketPool >= 1 else { throw bad("bucketPool is \(bucketPool); it must be at least 1") }
        try SizeLimits.requireSize(
            evaluationBatchSize ?? SizeLimits.saturatingProduct([4, batchSize]),
            "fit evaluationBatchSize (4 × batchSize when not given)")
        if resume, stateFile == nil { throw bad("resume needs a stateFile") }
        switch schedule {
        case let .step(every, gamma) where every < 1 || !(gamma.isFinite && gamma > 0):
            throw bad("step schedule needs every ≥ 1 and a finite gamma > 0 (got \(every), \(gamma))")
        case let .cosine(total, minimum) where total < 1 || !(minimum.isFinite && minimum >= 0):
            throw bad("cosine schedule needs totalSteps ≥ 1 and a finite minimum ≥ 0 (got \(total), \(minimum))")
        default: break
        }
    }
}
