import Foundation
@_spi(Backend) import LSTMCore

/// The on-device autotuner of the step kernels (`OpenCLStepVariant`): per layer shape, the
/// first forward on it times every variant the device can run and keeps the faster for the
/// life of the backend.
extension OpenCLBackend {
    /// Time steps of one tuning run (a training step: forward with saved activations, then
    /// backward). Few enough to cost milliseconds on a GPU; the choice depends on the
    /// per-step kernels only, so T does not change it.
    public static let tuningSteps = 8
    /// Timed runs per variant after one warm-up run (which also builds the programs); the
    /// best is kept.
    public static let tuningRuns = 3

    /// The variant the forward and backward of shape `s` run: the one being timed during
    /// tuning, else the forced one (the backend's `forcedStepVariant`, or
    /// `LSTM_GPU_KERNEL_VARIANT`), else the one tuned for this shape (tuned now on first use).
    func stepVariant(for s: DirectionShape) throws -> OpenCLStepVariant {
        if let timing = variantUnderTest { return timing }
        if let forced = try forcedVariant() {
            try requireSupported(forced)
            return forced
        }
        let key = OpenCLStepShape(s)
        loadTuningsOnce()
        if let known = tunings[key] { return known.chosen }
        do {
            return try tune(key).chosen
        } catch LSTMError.outOfMemory {
            // Timing needs a second model of this shape; where that does not fit, the forward
            // itself still runs, on the GPU-shaped variant when the device takes it.
            let fallback: OpenCLStepVariant = try supports(.split) ? .split : .classic
            tunings[key] = OpenCLTuning(
                shape: key, timings: [], chosen: fallback, reason: "untimed: no memory for a second model to time")
            return fallback
        }
    }

    /// Reads the choices an earlier process stored for this device (once; `reason` "cached").
    func loadTuningsOnce() {
        guard !tuningsLoaded else { return }
        tuningsLoaded = true
        let contents = tuningStore.load()
        for var tuning in contents.steps where tunings[tuning.shape] == nil {
            tuning.reason = "cached"
            tunings[tuning.shape] = tuning
        }
        if gemmTuning == nil { gemmTuning = contents.gemm }
    }

    /// Writes every choice made so far to the store; a failure is kept in `tuningSaveProblem`.
    func saveTunings() {
        let steps = tunings.values.sorted {
            ($0.shape.hiddenSize, $0.shape.outputSize, $0.shape.batch)
                < ($1.shape.hiddenSize, $1.shape.outputSize, $1.shape.batch)
        }
        do {
            try tuningStore.store(OpenCLTuningStore.Contents(steps: steps, gemm: gemmTuning))
            tuningSaveProblem = nil
        } catch {
            tuningSaveProblem =
                "cannot save the tuning choices to \(tuningStore.file ?? "-"): \(error.localizedDescription)"
        }
    }

    /// The variant forced for this backend (`init(info:profiling:stepVariant:)`, else
    /// `LSTM_GPU_KERNEL_VARIANT`); nil when the variants are tuned. Throws for a value of the
    /// variable that names no variant.
    func forcedVariant() throws -> OpenCLStepVariant? {
        try forcedStepVariant ?? OpenCLStepVariant.configured()
    }

    /// Throws, naming the device, when it cannot run `variant` (a forced one).
    func requireSupported(_ variant: OpenCLStepVariant) throws {
        guard try supports(variant) else {
            throw LSTMError.invalidArgument(
                "OpenCL kernel variant \(variant) needs work-groups of "
                    + "\(OpenCLTiles.splitUnits * OpenCLTiles.splitSlices) items, more than \(device.name) allows")
        }
    }

    /// Whether this device can run `variant`: the `split` kernels need work-groups of 256 items.
    public func supports(_ variant: OpenCLStepVariant) throws -> Bool {
        switch variant {
        case .classic: return true
        case .split:
            let needs: [(String, KernelSource, Int)] = [
                ("lstm_forward_step_split", .lstmForward, OpenCLTiles.splitUnits * OpenCLTiles.splitSlices),
                ("lstm_hidden_backward_split", .lstmBackward, OpenCLTiles.backwardLanes * OpenCLTiles.backwardOutputs),
            ]
            for (name, source, items) in needs {
                let entry = try runtime.kernel(name, programKey: source.rawValue) { try program(source) }
                if entry.maxWorkGroup < items || device.maxWorkGroupSize < items { return false }
            }
            return true
        }
    }

    /// Times every variant this device runs on `shape` (a training step of `tuningSteps`
    /// steps on a one-layer LSTM of that shape, best of `tuningRuns` after a warm-up) and
    /// remembers the faster for this backend and, through `OpenCLTuningStore`, for later
    /// processes on this device. With a forced variant, reports it without timing.
    @discardableResult
    public func tune(_ shape: OpenCLStepShape) throws -> OpenCLTuning {
        if let forced = try forcedVariant() {
            try requireSupported(forced)
            let tuning = OpenCLTuning(
                shape: shape, timings: [OpenCLStepTiming(variant: forced, milliseconds: nil)], chosen: forced,
                reason: "forced")
            return tuning
        }
        let runnable = try OpenCLStepVariant.allCases.filter { try supports($0) }
        var times: [OpenCLStepVariant: Double] = [:]
        if runnable.count > 1 {
            let run = try tuningRun(shape)
            times = try timeEach(runnable, warmUp: true, runs: Self.tuningRuns) { variant in  // warm-up: programs, W4
                variantUnderTest = variant
                defer { variantUnderTest = nil }
                try run()
            }
        }
        let timings = OpenCLStepVariant.allCases.map { OpenCLStepTiming(variant: $0, milliseconds: times[$0]) }
        let chosen = runnable.count == 1 ? runnable[0] : fastest(times)
        let tuning = OpenCLTuning(
            shape: shape, timings: timings, chosen: chosen, reason: runnable.count == 1 ? "only" : "timed")
        loadTuningsOnce()  // so that saving keeps what an earlier process found for other shapes
        tunings[shape] = tuning
        saveTunings()
        return tuning
    }

    /// Milliseconds of `run(candidate)` for each candidate, the best of `runs` (after one
    /// untimed run each with `warmUp`), the device drained before and after every timed run.
    func timeEach<Candidate: Hashable>(
        _ candidates: [Candidate], warmUp: Bool, runs: Int, _ run: (Candidate) throws -> Void
    ) throws -> [Candidate: Double] {
        var times: [Candidate: Double] = [:]
        for candidate in candidates {
            if warmUp { try run(candidate) }
            var best = Double.infinity
            for _ in 0..<max(1, runs) {
                try synchronize()
                let start = DispatchTime.now().uptimeNanoseconds
                try run(candidate)
                try synchronize()
                best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
            }
            times[candidate] = best
        }
        return times
    }

    /// The candidate with the least time (ties: the first in `allCases` order).
    func fastest<Candidate: CaseIterable & Hashable>(_ times: [Candidate: Double]) -> Candidate {
        Candidate.allCases.filter { times[$0] != nil }.min { times[$0]! < times[$1]! }!
    }

    /// One training step of a one-layer LSTM of `shape` (input width 1: the input projection
    /// is not what is tuned) over `tuningSteps` steps (`timeEach` waits for the device).
    private func tuningRun(_ shape: OpenCLStepShape) throws -> () throws -> Void {
        let (h, hout, batch, steps) = (shape.hiddenSize, shape.outputSize, shape.batch, Self.tuningSteps)
        let config = LSTMConfiguration(inputSize: 1, hiddenSize: h, projectionSize: hout == h ? 0 : hout)
        try config.validate()
        // The weights are made on the host first: refuse a shape that cannot fit before allocating.
        try SizeLimits.requireHostMemory(
            floats: SizeLimits.saturatingProduct([config.parameterCount, 2]),
            for: "tuning the step kernels for \(shape)")
        let stack = try LSTMStack(configuration: config, backend: self, weights: config.initialWeights(seed: 1))
        let input = try makeBuffer(count: steps * batch)
        let outputGradient = try makeBuffer(count: steps * batch * hout)
        return {
            let forward = try stack.forward(
                input: input, sequenceLength: steps, batch: batch, saveActivations: true)
            _ = try stack.backward(forward, outputGradient: outputGradient)
        }
    }
}

/// The GEMM kernel choice (`OpenCLGEMMVariant`), once per backend.
extension OpenCLBackend {
    /// The GEMM variant unsplit tiled products run: forced, else the one timed, else `tiled`
    /// (until the first product with beta = 0 times both: `tuneGEMM(on:)`).
    func gemmVariant() throws -> OpenCLGEMMVariant {
        gemmVariantOverride ?? gemmTuning?.chosen ?? .tiled
    }

    /// Times the backend's first GEMM with beta = 0 with each kernel in turn (both write the
    /// same C, so the second run only repeats the first: one extra product per backend, no
    /// extra work otherwise) and keeps the faster. The queue is drained before and after each.
    func tuneGEMM(on run: (OpenCLGEMMVariant) throws -> Void) throws {
        keepGEMMTuning(try timeEach(OpenCLGEMMVariant.allCases, warmUp: false, runs: 1, run))
    }

    /// Records GEMM timings and the faster kernel for this backend and later processes.
    @discardableResult
    private func keepGEMMTuning(_ times: [OpenCLGEMMVariant: Double]) -> OpenCLGEMMTuning {
        let tuning = OpenCLGEMMTuning(
            milliseconds: Dictionary(uniqueKeysWithValues: times.map { ($0.key.rawValue, $0.value) }),
            chosen: fastest(times))
        loadTuningsOnce()  // so that saving keeps what an earlier process found
        gemmTuning = tuning
        saveTunings()
        return tuning
    }

    /// Times both GEMM kernels on a 512 × 512 × 512 product (A · Bᵀ, as the input projection),
    /// best of `tuningRuns` after a warm-up each, and keeps the faster for this backend (a
    /// more careful measurement than the first product's, for `lstm-gpu tune`).
    @discardableResult
    public func tuneGEMM() throws -> OpenCLGEMMTuning {
        let size = 512
        let a = try makeBuffer(count: size * size), b = try makeBuffer(count: size * size)
        let c = try makeScratchBuffer(count: size * size)
        try write((0..<(size * size)).map { Float($0 % 7) - 3 }, to: a, offset: 0)
        try write((0..<(size * size)).map { Float($0 % 5) - 2 }, to: b, offset: 0)
        let times = try timeEach(OpenCLGEMMVariant.allCases, warmUp: true, runs: Self.tuningRuns) { variant in
            (gemmVariantOverride, gemmSlicesOverride) = (variant, 1)  // the whole product, unsplit
            defer { (gemmVariantOverride, gemmSlicesOverride) = (nil, nil) }
            try gemm(
                transposeB: true, m: size, n: size, k: size, a: MatrixView(a, rowStride: size),
                b: MatrixView(b, rowStride: size), beta: 0, c: MatrixView(c, rowStride: size))
        }
        return keepGEMMTuning(times)
    }
}
