import Foundation
import LSTMCore

extension Trainable {
    /// Trains the model on `training` for `settings.epochs` epochs (Keras' `fit`): each epoch
    /// visits the examples in a seeded order, batched by length (`FitSettings.bucketing`),
    /// runs forward, loss and backward on every batch, clips and steps the optimiser over all
    /// parameters, then measures `validation`; callbacks see every batch and epoch and may
    /// stop the fit. With `settings.stateFile`, everything needed to resume exactly is written
    /// after every epoch, and with `settings.resume` a fit continues from that file: the same
    /// weights, optimiser state, example order and dropout masks as an uninterrupted fit.
    ///
    /// - Returns: every epoch's record and what stopped the fit early, if anything.
    /// - Throws: `LSTMError` for settings out of range, an empty training set, an example the
    ///   model refuses (named by its set and position), a state file that cannot be resumed
    ///   (saying which setting differs), or any failure of the model, a callback or a file.
    public func fit(
        training: [Example], validation: [Example]? = nil, settings: FitSettings,
        callbacks: [any FitCallback] = []
    ) throws -> FitHistory {
        try settings.validate()
        guard !training.isEmpty else { throw LSTMError.invalidArgument("fit: the training set is empty") }
        for (index, example) in training.enumerated() { try check(example, position: "training example \(index)") }
        for (index, example) in (validation ?? []).enumerated() {
            try check(example, position: "validation example \(index)")
        }
        try requireTrainingMemory(optimizer: settings.optimizer)
        let optimizer = Optimizer(backend: backend, kind: settings.optimizer)
        let lengths = training.map { length(of: $0) }
        let batchesPerEpoch = (training.count + settings.batchSize - 1) / settings.batchSize
        let fingerprint = FitState.Fingerprint(
            model: try fitIdentity(of: self), trainingExamples: training.count,
            validationExamples: validation?.count ?? 0, trainingData: contentHash(training),
            validationData: contentHash(validation ?? []), batchSize: settings.batchSize, seed: settings.seed,
            optimizer: describe(settings.optimizer), bucketing: settings.bucketing, bucketPool: settings.bucketPool,
            rate:
                "\(settings.learningRate) \(settings.schedule) warmup \(settings.warmup) clip "
                + (settings.maxGradientNorm.map { "\($0)" } ?? "none"))
        var shuffle = SeededGenerator(seed: settings.seed)
        var stoppedBy: String?
        var restored: FitState?
        if settings.resume, let path = settings.stateFile, FileManager.default.fileExists(atPath: path) {
            let state = try FitState.restore(
                from: path, model: self, optimizer: optimizer, callbacks: callbacks, fingerprint: fingerprint,
                batchesPerEpoch: batchesPerEpoch)
            shuffle.state = state.shuffleState
            stoppedBy = state.stoppedBy
            restored = state
        }
        let runID = restored?.runID ?? UUID().uuidString
        let context = FitContext(
            settings: settings, metric: metric, hasValidation: validation.map { !$0.isEmpty } ?? false,
            batchesPerEpoch: batchesPerEpoch,
            saveModel: { path in
                if let stamped = self as? any FitIdentifiable {
                    try stamped.save(to: path, adding: [FitHistory.runIDMetadataKey: runID])
                } else {
                    try self.save(to: path)
                }
            })
        if let restored {
            context.records = restored.records
            context.learningRateScale = restored.learningRateScale
        }
        for callback in callbacks { try callback.fitStarted(context) }

        var epoch = context.records.count + 1
        while epoch <= settings.epochs, stoppedBy == nil {
            let started = Date()
            var sum = BatchOutcome.zero, rate: Float = 0
            let batches = BatchPlan.training(
                lengths: lengths, batchSize: settings.batchSize, bucketing: settings.bucketing,
                pool: settings.bucketPool, generator: &shuffle)
            for (index, batch) in batches.enumerated() {
                sum = sum + (try run(batch.map { training[$0] }, training: true))
                if let maxNorm = settings.maxGradientNorm { try optimizer.clipGradients(parameters, maxNorm: maxNorm) }
                rate =
                    settings.schedule.rate(
                        base: settings.learningRate, step: optimizer.step + 1, warmup: settings.warmup)
                    * context.learningRateScale
                try optimizer.update(parameters, learningRate: rate)
                let progress = BatchProgress(
                    epoch: epoch, batch: index + 1, batches: batches.count, loss: sum.loss, metric: sum.metricValue,
                    learningRate: Double(rate), seconds: Date().timeIntervalSince(started))
                for callback in callbacks { try callback.batchEnded(progress, context: context) }
            }
            let measured = try validation.flatMap {
                $0.isEmpty
                    ? nil : try evaluateChecked($0, batchSize: settings.evaluationBatchSize ?? 4 * settings.batchSize)
            }
            let record = EpochRecord(
                epoch: epoch, loss: sum.loss, metric: sum.metricValue, validationLoss: measured?.loss,
                validationMetric: measured?.metricValue, learningRate: Double(rate),
                seconds: Date().timeIntervalSince(started))
            context.records.append(record)
            for callback in callbacks where try callback.epochEnded(record, context: context) == .stop {
                stoppedBy = stoppedBy ?? "\(type(of: callback))"
            }
            if let path = settings.stateFile {
                let state = FitState(
                    runID: runID, fingerprint: fingerprint, epochsDone: epoch, optimizerStep: optimizer.step,
                    shuffleState: shuffle.state, randomStates: randomStates,
                    learningRateScale: context.learningRateScale,
                    callbacks: statefulCallbacks(callbacks).map { "\(type(of: $0))" },
                    callbackStates: statefulCallbacks(callbacks).map(\.resumeState), records: context.records,
                    stoppedBy: stoppedBy)
                try FitState.write(state, model: self, optimizer: optimizer, to: path)
            }
            epoch += 1
        }
        let history = FitHistory(
            records: context.records, stoppedBy: stoppedBy, metric: metric, runID: runID, stateFile: settings.stateFile)
        for callback in callbacks { try callback.fitEnded(history, context: context) }
        return history
    }

    /// The loss and metric over `examples` (inference: no dropout, nothing kept), in batches of
    /// `batchSize` sorted by length.
    /// - Throws: `LSTMError` for an example the model refuses or a failure of the model.
    public func evaluate(_ examples: [Example], batchSize: Int = 256) throws -> BatchOutcome {
        try SizeLimits.requireSize(batchSize, "evaluation batchSize")
        for (index, example) in examples.enumerated() { try check(example, position: "example \(index)") }
        return try evaluateChecked(examples, batchSize: batchSize)
    }

    /// `evaluate` over examples already checked (`fit`'s validation set, checked once at the start).
    func evaluateChecked(_ examples: [Example], batchSize: Int) throws -> BatchOutcome {
        try BatchPlan.evaluation(lengths: examples.map { length(of: $0) }, batchSize: batchSize).reduce(.zero) {
            $0 + (try run($1.map { examples[$0] }, training: false))
        }
    }
}

extension Sequential {
    /// Trains the model with `loss` (see `Trainable.fit`): `model.fit(training: examples,
    /// validation: held, loss: .crossEntropy(), settings: FitSettings(epochs: 5, batchSize: 32),
    /// callbacks: [ProgressReport(), EarlyStopping()])`.
    public func fit(
        training: [LabelledSequence], validation: [LabelledSequence]? = nil, loss: FitLoss, settings: FitSettings,
        callbacks: [any FitCallback] = []
    ) throws -> FitHistory {
        try SupervisedModel(self, loss: loss).fit(
            training: training, validation: validation, settings: settings, callbacks: callbacks)
    }

    /// `fit` with the defaults of `FitSettings` (Adam at 1e-3, seed 1, bucketing) and a progress
    /// report: the few-argument form.
    public func fit(
        training: [LabelledSequence], validation: [LabelledSequence]? = nil, loss: FitLoss, epochs: Int,
        batchSize: Int, callbacks: [any FitCallback] = [ProgressReport()]
    ) throws -> FitHistory {
        try fit(
            training: training, validation: validation, loss: loss,
            settings: FitSettings(epochs: epochs, batchSize: batchSize), callbacks: callbacks)
    }
}

extension Trainable {
    /// Refuses a fit whose model cannot train where it lives: the weights, their gradients and
    /// the optimiser's moments (two for Adam and AdamW, one for SGD with momentum) must fit in
    /// the backend's memory with a quarter left for the activations and the batches, so a
    /// model that fits but leaves no room is refused up front instead of failing mid-epoch.
    /// (`capacity` is the backend's memory unless a test gives another.)
    func requireTrainingMemory(optimizer kind: OptimizerKind, capacity: Int? = nil) throws {
        let count = SizeLimits.saturatingSum(parameters.map(\.count))
        let moments: Int
        switch kind {
        case .adam, .adamW: moments = 2
        case let .sgd(momentum, _, _): moments = momentum == 0 ? 0 : 1
        }
        let bytes = SizeLimits.saturatingProduct([count, 4, 2 + moments])
        let needed = bytes > Int.max / 4 ? Int.max : bytes / 3 * 4
        let available = capacity ?? backend.memoryCapacity
        guard needed <= available else {
            throw LSTMError.outOfMemory(
                device: "\(backend.name) (training \(count) parameters: weights, gradients and \(moments) optimiser "
                    + "moment\(moments == 1 ? "" : "s"), and a quarter more for activations)",
                needed: needed, available: available)
        }
    }
}
