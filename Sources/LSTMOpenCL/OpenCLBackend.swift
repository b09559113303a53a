import COpenCL
import Foundation
@_spi(Backend) import LSTMCore

/// The OpenCL backend: weights, activations, states and gradients live in device buffers;
/// a whole sequence is enqueued (one fused step kernel per time step, plus one projection
/// kernel when P > 0) with no host wait in between; the host reads back only what it asks for.
///
/// Forward per direction: gates ← b_ih + b_hh, gates += X·W_ihᵀ (one GEMM over all T·B
/// rows), then per step one step kernel from cached derived weights (W_hhᵀ for the `classic`
/// variant, the gate-interleaved W4 for `split`: `OpenCLStepVariant`, tuned per shape).
/// Backward per step (reversed): [`lstm_projection_backward_step`], then `classic`:
/// `lstm_cell_backward_step` + `lstm_hidden_backward_step`, `split`: one
/// `lstm_hidden_backward_split` with the next step's cell backward fused in (without
/// projection); then the weight gradients as one GEMM each over all T·B rows and the bias
/// gradient as column sums. Not thread-safe: use one backend from one thread at a time.
public final class OpenCLBackend: LSTMBackend {
    public typealias Buffer = OpenCLBuffer
    public typealias Lengths = OpenCLBuffer

    let runtime: OpenCLRuntime
    /// The device this backend computes on.
    public var device: OpenCLDeviceInfo { runtime.device }
    public var name: String { "opencl: \(runtime.device.name)" }
    public var kind: BackendKind { .opencl }

    private let useTiledGEMM: Bool
    /// The step kernels forced for this backend (nil: `LSTM_GPU_KERNEL_VARIANT`, else tuned per shape).
    public let forcedStepVariant: OpenCLStepVariant?
    /// The variant being timed while `tune` runs (it overrides every other choice meanwhile).
    var variantUnderTest: OpenCLStepVariant?
    /// What `tune` found, per layer shape.
    public internal(set) var tunings: [OpenCLStepShape: OpenCLTuning] = [:]
    /// Tests: the K slices every tiled GEMM uses (nil: `gemmSlices(m:n:k:)` decides).
    var gemmSlicesOverride: Int?
    /// The GEMM kernel for unsplit products: forced (tests), or timed once (`tuneGEMM`).
    var gemmVariantOverride: OpenCLGEMMVariant?
    public internal(set) var gemmTuning: OpenCLGEMMTuning?
    /// Where tunings persist between processes (tests point it elsewhere before first use).
    var tuningStore: OpenCLTuningStore
    /// Whether `tuningStore` has been read into `tunings` and `gemmTuning`.
    var tuningsLoaded = false
    /// Why the last save of the tuning choices failed (nil: it did, or none was tried).
    public internal(set) var tuningSaveProblem: String?
    /// Where the tuning choices are stored (nil: `LSTM_GPU_KERNEL_CACHE=off` or no cache folder).
    public var tuningFile: String? { tuningStore.file }

    /// A backend on the device chosen by `device` (index or name substring; nil: the
    /// `LSTM_GPU_DEVICE` variable, else the first GPU, else the first device).
    public convenience init(device: String? = nil) throws {
        try self.init(info: OpenCLDevices.select(device))
    }

    /// A backend on `info`; with `profiling`, every launch records the device's start and end
    /// times for `takeProfile` (a little slower: for `bench --profile`, not for production runs).
    /// `stepVariant` forces the step kernels (`OpenCLStepVariant`); nil: the
    /// `LSTM_GPU_KERNEL_VARIANT` variable, else tuned per layer shape on first use.
    public init(info: OpenCLDeviceInfo, profiling: Bool = false, stepVariant: OpenCLStepVariant? = nil) throws {
        runtime = try OpenCLRuntime(device: info, profiling: profiling)
        forcedStepVariant = stepVariant
        tuningStore = OpenCLTuningStore(
            device: info, options: OpenCLTiles.buildOptions, sources: KernelSource.allCases.map(\.text))
        let program = try runtime.program(
            named: "gemm.cl", source: KernelSource.gemm.text, options: OpenCLTiles.buildOptions)
        let gemm = try runtime.kernel("gemm_tiled", programKey: KernelSource.gemm.rawValue) { program }
        let groupItems = OpenCLTiles.gemmGroupSide * OpenCLTiles.gemmGroupSide
        useTiledGEMM = gemm.maxWorkGroup >= groupItems && info.maxWorkGroupSize >= groupItems
    }

    private static let sharedLock = NSLock()
    nonisolated(unsafe) private static var sharedBackends: [Int: OpenCLBackend] = [:]

    /// One backend per device for the process, so programs are built once.
    public static func shared(device: String? = nil) throws -> OpenCLBackend {
        let info = try OpenCLDevices.select(device)
        sharedLock.lock()
        defer { sharedLock.unlock() }
        if let backend = sharedBackends[info.index] { return backend }
        let backend = try OpenCLBackend(info: info)
        sharedBackends[info.index] = backend
        return backend
    }

    func program(_ source: KernelSource) throws -> cl_program {
        try runtime.program(named: source.rawValue + ".cl", source: source.text, options: OpenCLTiles.buildOptions)
    }

    /// Builds arbitrary OpenCL C (for tools and tests); a failure throws with the build log.
    func buildProgram(named name: String, source: String, options: String = "") throws {
        _ = try runtime.program(named: name, source: source, options: options)
    }

    /// Device time per kernel since the last call (or since the backend was made), sorted by
    /// time, most first, with achieved GFLOP/s and GB/s where the launchers declare their
    /// work, and the device's idle time between launches; empty unless made with `profiling`.
    /// Waits for the queue.
    public func takeProfile() throws -> OpenCLProfile {
        let taken = try runtime.takeProfile()
        let kernels = taken.kernels.map { name, entry in
            let seconds = Double(entry.nanoseconds) / 1e9
            let rates = !entry.undeclared && seconds > 0
            return KernelProfile(
                kernel: name, launches: entry.launches, milliseconds: seconds * 1e3,
                gflops: rates ? entry.flops / seconds / 1e9 : nil,
                gigabytesPerSecond: rates ? entry.bytes / seconds / 1e9 : nil)
        }
        return OpenCLProfile(
            kernels: kernels.sorted { ($0.milliseconds, $1.kernel) > ($1.milliseconds, $0.kernel) },
            idleMilliseconds: Double(taken.idleNanoseconds) / 1e6)
    }

    /// Enqueues kernel `name` of `source` (built and looked up once, then cached by the runtime
    /// with its work-group limit, so a launch in the step loop costs one lookup and no query).
    /// `work` declares the launch's FLOPs and least bytes moved, for the profile's rates.
    /// Every launch has a local size: the kernel's own (`local`), or for the element-wise
    /// kernels (any work-group size, bounds-guarded) `OpenCLTiles.elementGroup` items along
    /// the first dimension — never the implementation's pick, which OpenCL 1.2 may make any
    /// divisor of the global size, down to 1. The global size is rounded up to it.
    func launch(
        _ name: String, in source: KernelSource, global: [Int], local: [Int]? = nil, work: KernelWork? = nil,
        _ arguments: [KernelArgument]
    ) throws {
        let entry = try runtime.kernel(name, programKey: source.rawValue) { try program(source) }
        let group = max(1, min(OpenCLTiles.elementGroup, entry.maxWorkGroup, device.maxWorkGroupSize))
        try runtime.launch(
            entry.kernel, name: name, maxWorkGroup: entry.maxWorkGroup, global: global,
            local: local ?? [group] + Array(repeating: 1, count: max(0, global.count - 1)), work: work, arguments)
    }

    // MARK: LSTMBackend basics

    public func makeBuffer(count: Int) throws -> OpenCLBuffer { try runtime.makeBuffer(count: count) }
    /// Uninitialised (no fill enqueued; NaN-filled in debug builds, so a read before a write shows).
    public func makeScratchBuffer(count: Int) throws -> OpenCLBuffer {
        try runtime.makeBuffer(count: count, zeroed: false)
    }
    public func write(_ values: [Float], to buffer: OpenCLBuffer, offset: Int) throws {
        try runtime.write(values, to: buffer, offset: offset)
        buffer.markModified()
    }

    /// A buffer derived from `weights` by `make` (e.g. its transpose), cached on the weights
    /// until their contents change (`OpenCLBuffer.version`): one cache per backend for derived
    /// weights, as `CPUWeightCache` on the CPU path.
    func derived(_ weights: OpenCLBuffer, _ kind: String, _ make: () throws -> OpenCLBuffer) rethrows -> OpenCLBuffer {
        if let cached = weights.derived[kind], cached.version == weights.version { return cached.buffer }
        let buffer = try make()
        weights.derived[kind] = (weights.version, buffer)
        return buffer
    }
    public func read(_ buffer: OpenCLBuffer, offset: Int, count: Int) throws -> [Float] {
        try runtime.read(buffer, offset: offset, count: count)
    }
    public func synchronize() throws { try runtime.finish() }
    public var memoryCapacity: Int { runtime.device.globalMemory }

    public func makeLengths(_ lengths: [Int]?, batch: Int, sequenceLength steps: Int) throws -> OpenCLBuffer {
        let buffer = try runtime.makeBuffer(count: batch, zeroed: false)
        // Not waited for: the forward that follows is enqueued behind it on the same queue.
        try runtime.writeWithoutWaiting(
            (lengths ?? [Int](repeating: steps, count: batch)).map { Int32($0) }, to: buffer)
        return buffer
    }

    // MARK: building blocks

    /// C[m, n] = alpha·op(A)·op(B) + beta·C on views (row-major, offsets and leading dimensions).
    @_spi(Backend) public func gemm(
        transposeA: Bool = false, transposeB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
        a: MatrixView<OpenCLBuffer>, b: MatrixView<OpenCLBuffer>, beta: Float, c: MatrixView<OpenCLBuffer>
    ) throws {
        guard m > 0, n > 0 else { return }
        let slices = useTiledGEMM ? gemmSlicesOverride ?? gemmSlices(m: m, n: n, k: k) : 1
        if slices > 1 {
            try splitGEMM(
                transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha, a: a, b: b,
                beta: beta, c: c, slices: slices)
        } else if useTiledGEMM {
            let run = { (variant: OpenCLGEMMVariant) in
                try self.gemmTiled(
                    variant, transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha, a: a,
                    b: b, beta: beta, c: c)
            }
            loadTuningsOnce()
            if gemmVariantOverride == nil, gemmTuning == nil, beta == 0 {
                try tuneGEMM(on: run)  // runs it with each kernel
            } else {
                try run(gemmVariant())
            }
        } else {
            try gemmPlain(
                transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha, a: a, b: b,
                beta: beta, c: c)
        }
    }

    /// The recurrent weights as `variant`'s step kernels read them, derived from W_hh [4H, Hout]
    /// once per weight version: W_hhᵀ [Hout, 4H] (`classic`), W4 [Hout, H] of float4 (`split`).
    func recurrentWeights(
        _ weights: OpenCLBuffer, shape s: DirectionShape, variant: OpenCLStepVariant
    ) throws -> OpenCLBuffer {
        switch variant {
        case .classic:
            return try derived(weights, "transposed") {
                try transposed(weights, rows: s.gateWidth, columns: s.outputSize)
            }
        case .split:
            return try derived(weights, "interleaved") {
                try interleavedGates(weights, hiddenSize: s.hiddenSize, columns: s.outputSize)
            }
        }
    }

    /// K slices for a tiled GEMM: 1, unless its M×N output has too few 64×64 tiles to give the
    /// device two work-groups per compute unit while K is long (the weight gradients, K = T·B,
    /// M×N = 4H×In): then enough slices of at least `splitKMinimum` to fill it, at most
    /// `splitKMaximumSlices`.
    func gemmSlices(m: Int, n: Int, k: Int) -> Int {
        let tile = OpenCLTiles.gemmTile
        let tiles = ((m + tile - 1) / tile) * ((n + tile - 1) / tile)
        let target = 2 * max(1, device.computeUnits)
        guard tiles < target, k >= 2 * OpenCLTiles.splitKMinimum else { return 1 }
        return min(OpenCLTiles.splitKMaximumSlices, (target + tiles - 1) / tiles, k / OpenCLTiles.splitKMinimum)
    }

    /// Split-K: `gemm_tiled_split` writes each slice's product to a [S, M, N] workspace, then
    /// `gemm_sum_splits` adds the slices (and beta·C) into C: two passes, no atomics.
    private func splitGEMM(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        a: MatrixView<OpenCLBuffer>, b: MatrixView<OpenCLBuffer>, beta: Float, c: MatrixView<OpenCLBuffer>,
        slices requested: Int
    ) throws {
        let step = OpenCLTiles.gemmK
        let chunk = ((k + requested - 1) / requested + step - 1) / step * step  // whole GEMM_K slices
        let slices = (k + chunk - 1) / chunk
        let workspace = try makeScratchBuffer(count: slices * m * n)
        try gemmTiledSplit(
            transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, chunk: chunk, alpha: alpha, a: a,
            b: b, workspace: workspace, slices: slices)
        try gemmSumSplits(m: m, n: n, slices: slices, workspace: workspace, beta: beta, c: c, declaringWork: true)
    }

    /// A [rows, width] buffer holding `view`'s rows, or zeros when `view` is nil.
    func contiguous(_ view: MatrixView<OpenCLBuffer>?, rows: Int, width: Int) throws -> OpenCLBuffer {
        let buffer = try makeBuffer(count: rows * width)
        if let view { try copyRows(from: view, to: MatrixView(buffer, rowStride: width), rows: rows, width: width) }
        return buffer
    }

    // MARK: forward

    @_spi(Backend) public func forward(_ job: DirectionForward<OpenCLBackend>) throws {
        guard job.shape.cell.isPlain else { return try optionsForward(job) }
        let s = job.shape
        let (steps, batch, h, hout, gateWidth) = (s.sequenceLength, s.batch, s.hiddenSize, s.outputSize, s.gateWidth)
        let w = job.weights
        let gates = try job.activations?.gates ?? makeScratchBuffer(count: s.rows * gateWidth)  // fillBias writes all
        try fillBias(gates, rows: s.rows, width: gateWidth, inputBias: w.inputBias, recurrentBias: w.recurrentBias)
        try gemm(
            transposeB: true, m: s.rows, n: gateWidth, k: s.layerInputSize, a: job.input,
            b: MatrixView(w.inputWeights, rowStride: s.layerInputSize), beta: 1,
            c: MatrixView(gates, rowStride: gateWidth))
        let variant = try stepVariant(for: s)
        let recurrent = try recurrentWeights(w.recurrentWeights, shape: s, variant: variant)
        let projectionT = try w.projectionWeights.map { whr in  // [H, P]
            try derived(whr, "transposed") { try transposed(whr, rows: hout, columns: h) }
        }

        var hidden = try contiguous(job.initialHidden, rows: batch, width: hout)
        var cell = try contiguous(job.initialCell, rows: batch, width: h)
        // Written whole by every step before the next reads them.
        var nextHidden = try makeScratchBuffer(count: batch * hout), nextCell = try makeScratchBuffer(count: batch * h)
        let unprojected = s.projects ? try makeScratchBuffer(count: batch * h) : nil
        let saved = job.activations
        let out = job.output
        for k in 0..<steps {
            let t = s.forwardStep(k, reverse: job.reverse)
            try forwardStep(
                variant, shape: s, step: t, recurrent: recurrent, gates: gates, hidden: hidden, cell: cell,
                nextHidden: unprojected ?? nextHidden, nextCell: nextCell, output: out, lengths: job.lengths,
                saved: saved)
            if let unprojected, let projectionT {
                try projectionStep(
                    shape: s, step: t, projectionTransposed: projectionT, unprojected: unprojected, hidden: hidden,
                    nextHidden: nextHidden, output: out, lengths: job.lengths)
            }
            swap(&hidden, &nextHidden)
            swap(&cell, &nextCell)
        }
        try copyRows(from: MatrixView(hidden, rowStride: hout), to: job.finalHidden, rows: batch, width: hout)
        try copyRows(from: MatrixView(cell, rowStride: h), to: job.finalCell, rows: batch, width: h)
    }

    // MARK: backward

    @_spi(Backend) public func backward(_ job: DirectionBackward<OpenCLBackend>) throws {
        guard job.shape.cell.isPlain else { return try optionsBackward(job) }
        let s = job.shape
        let (steps, batch, h, hout, rows) = (s.sequenceLength, s.batch, s.hiddenSize, s.outputSize, s.rows)
        let saved = job.activations, w = job.weights
        let gateGradients = job.gateGradients
        let hiddenGradient = try contiguous(job.finalHiddenGradient, rows: batch, width: hout)
        let cellGradient = try contiguous(job.finalCellGradient, rows: batch, width: h)
        // Written whole by lstm_projection_backward_step (padded rows as 0) before anything reads them.
        let unprojectedGradient = s.projects ? try makeScratchBuffer(count: batch * h) : nil
        let projectedGradients = s.projects ? try makeScratchBuffer(count: rows * hout) : nil
        let variant = try stepVariant(for: s)
        let interleaved = variant == .split ? try recurrentWeights(w.recurrentWeights, shape: s, variant: .split) : nil
        // split without projection: the cell backward of each step after the first is fused
        // into the previous hidden-gradient launch.
        let fuses = interleaved != nil && !s.projects
        for k in 0..<steps {
            let t = s.backwardStep(k, reverse: job.reverse)
            if let unprojectedGradient, let projectedGradients, let whr = w.projectionWeights {
                try projectionBackwardStep(
                    shape: s, step: t, projectionWeights: whr, hiddenGradient: hiddenGradient,
                    outputGradient: job.outputGradient, projectedGradients: projectedGradients,
                    unprojectedGradient: unprojectedGradient, lengths: job.lengths)
            }
            if !fuses || k == 0 {
                try cellBackwardStep(
                    shape: s, step: t, saved: saved, unprojectedGradient: unprojectedGradient,
                    hiddenGradient: hiddenGradient, outputGradient: job.outputGradient, cellGradient: cellGradient,
                    gateGradients: gateGradients, lengths: job.lengths)
            }
            if let interleaved {
                try hiddenBackwardSplit(
                    shape: s, step: t, interleaved: interleaved, gateGradients: gateGradients,
                    hiddenGradient: hiddenGradient, lengths: job.lengths,
                    fusedStep: fuses && k + 1 < steps ? s.backwardStep(k + 1, reverse: job.reverse) : nil,
                    saved: saved, outputGradient: job.outputGradient, cellGradient: cellGradient)
            } else {
                try hiddenBackwardStep(
                    shape: s, step: t, recurrentWeights: w.recurrentWeights, gateGradients: gateGradients,
                    hiddenGradient: hiddenGradient, lengths: job.lengths)
            }
        }
        try copyRows(
            from: MatrixView(hiddenGradient, rowStride: hout), to: job.initialHiddenGradient, rows: batch, width: hout)
        try copyRows(from: MatrixView(cellGradient, rowStride: h), to: job.initialCellGradient, rows: batch, width: h)

        try weightAndInputGradients(job, projectedGradients: projectedGradients, biasGradients: gateGradients)
    }

    /// After the step loop of a backward: dW_ih = dGᵀ·X, dW_hh = dGᵀ·h(prev), the bias
    /// gradient as column sums of `biasGradients` (dG, or dZ of a layer-normalised cell),
    /// dW_hr = (dL/dh)ᵀ·m from `projectedGradients`, and dX (+)= dG·W_ih, all over T·B rows.
    func weightAndInputGradients(
        _ job: DirectionBackward<OpenCLBackend>, projectedGradients: OpenCLBuffer?, biasGradients: OpenCLBuffer
    ) throws {
        let s = job.shape, saved = job.activations, w = job.weights, g = job.weightGradients
        let (h, hout, gateWidth, rows) = (s.hiddenSize, s.outputSize, s.gateWidth, s.rows)
        let dG = MatrixView(job.gateGradients, rowStride: gateWidth)
        try gemm(
            transposeA: true, m: gateWidth, n: s.layerInputSize, k: rows, a: dG, b: job.input, beta: 0,
            c: MatrixView(g.inputWeights, rowStride: s.layerInputSize))
        try gemm(
            transposeA: true, m: gateWidth, n: hout, k: rows, a: dG,
            b: MatrixView(saved.previousHidden, rowStride: hout),
            beta: 0, c: MatrixView(g.recurrentWeights, rowStride: hout))
        if let bias = g.bias {
            try launchColumnSums(biasGradients, rows: rows, width: gateWidth, into: bias)
        }
        if let dwhr = g.projectionWeights, let projected = projectedGradients, let r = saved.unprojected {
            try gemm(
                transposeA: true, m: hout, n: h, k: rows, a: MatrixView(projected, rowStride: hout),
                b: MatrixView(r, rowStride: h), beta: 0, c: MatrixView(dwhr, rowStride: h))
        }
        if let dx = job.inputGradient {
            try gemm(
                m: rows, n: s.layerInputSize, k: gateWidth, a: dG,
                b: MatrixView(w.inputWeights, rowStride: s.layerInputSize),
                beta: job.accumulateInputGradient ? 1 : 0, c: dx)
        }
    }
}

/// One kernel's share of a profiled run: its launches, their total device time, and the
/// rates its declared work gives (nil for kernels that declare none: data movement).
public struct KernelProfile: Sendable, Codable, Equatable {
    public var kernel: String
    public var launches: Int
    public var milliseconds: Double
    /// FLOPs per second of device time, in 10⁹.
    public var gflops: Double?
    /// Least bytes moved (every input read once, every output written once) per second, in 10⁹.
    public var gigabytesPerSecond: Double?
}

/// A profiled run (`OpenCLBackend.takeProfile`): per kernel, and the device's idle time
/// between the first launch and the last (no kernel of the queue running: the host's enqueue
/// cost and launch latency that a whole-sequence enqueue should hide).
public struct OpenCLProfile: Sendable, Codable, Equatable {
    public var kernels: [KernelProfile]
    public var idleMilliseconds: Double
}
