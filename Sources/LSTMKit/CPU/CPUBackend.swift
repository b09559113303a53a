import CLSTMKernels
import Foundation

/// A float32 array in host memory (64-byte aligned; zero-filled unless made as scratch).
public final class CPUBuffer {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int
    /// Bumped by every `CPUBackend.write`; derived copies (regrouped weights) check it.
    /// Code that writes through `pointer` directly must call `markModified()`.
    public private(set) var version = 0
    /// Copies derived from the contents (regrouped, packed), by kind, with the version they saw.
    var derived: [String: (version: Int, buffer: CPUBuffer)] = [:]

    init(count: Int, zeroed: Bool = true) {
        self.count = count
        pointer = HostMemoryPool.shared.take(floats: max(count, 1))
        if zeroed { pointer.update(repeating: 0, count: max(count, 1)) }
    }
    deinit { HostMemoryPool.shared.give(pointer, floats: max(count, 1)) }

    /// Records that the contents changed.
    public func markModified() { version &+= 1 }
}

/// The fast CPU path (not the reference: that is `ReferenceLSTM`, the plain-loop oracle this
/// backend is tested against element by element): OpenBLAS for the matrix products, SIMD for
/// the fused cell math (portable, AVX2 or AVX-512 bodies: `CPUKernelVariant`),
/// its own team of threads for parallelism (OpenBLAS runs single-threaded in each).
///
/// Per direction, each thread owns a range of hidden units and therefore (in the
/// `GateLayout` order) one contiguous range of gate columns: it computes the input
/// projection of all T steps for its columns (one sgemm [T·B, In] × [In, its 4H share],
/// biases folded in), then per step its share of the recurrent product (one sgemm, or a
/// gemv for B = 1) and the fused activations + cell update of its units, and meets the
/// others at one barrier per step (two with projection). The backward mirrors it; the
/// weight gradients are one sgemm per thread over all T·B rows. Nothing is allocated
/// inside the step loop.
public final class CPUBackend: LSTMBackend {
    public typealias Buffer = CPUBuffer
    public typealias Lengths = [Int]

    let team: WorkerTeam
    /// Whether a layer may run on fewer threads than `threads` when its steps are small
    /// (see `CPUThreads.minimumStepWorkPerThread`); false when the count was given.
    public let adaptsThreads: Bool
    /// The most threads this backend computes with.
    public var threads: Int { team.size }

    /// A backend on exactly `threads` threads, or, by default, on up to `CPUThreads.current`
    /// (the active cores) with fewer for layers whose steps are too small to share
    /// (`threads(hiddenSize:outputSize:batch:directions:)`).
    /// An explicit count above the cores is honoured (the barrier then yields instead of spinning).
    public init(threads: Int? = nil) {
        team = WorkerTeam.shared(size: max(1, threads ?? CPUThreads.current))
        adaptsThreads = threads == nil
        CPUThreads.singleThreadedBLAS()
    }

    /// Threads a layer of `directions` directions of this shape runs on.
    public func threads(hiddenSize: Int, outputSize: Int, batch: Int, directions: Int = 1) -> Int {
        guard adaptsThreads else { return team.size }
        let jobs = max(1, directions)
        let perJob = CPUThreads.threads(hiddenSize: hiddenSize, outputSize: outputSize, batch: batch,
                                        limit: max(1, team.size / jobs))
        return min(team.size, perJob * jobs)
    }

    /// The team for these independent directions (all of `team` unless they are small).
    private func team(for shapes: [DirectionShape]) -> WorkerTeam {
        guard adaptsThreads, let widest = shapes.max(by: { $0.batch * $0.hiddenSize * $0.outputSize < $1.batch * $1.hiddenSize * $1.outputSize })
        else { return team }
        let size = threads(hiddenSize: widest.hiddenSize, outputSize: widest.outputSize, batch: widest.batch,
                           directions: shapes.count)
        return size == team.size ? team : WorkerTeam.shared(size: size)
    }

    public var name: String { "cpu" }
    public var kind: BackendKind { .cpu }
    public var memoryCapacity: Int { Int(clamping: ProcessInfo.processInfo.physicalMemory) }
    public func synchronize() throws {}

    public func makeBuffer(count: Int) throws -> CPUBuffer {
        guard count >= 0 else { throw LSTMError.invalidArgument("buffer of \(count) floats") }
        try BLASLibrary.require()   // every computation starts with buffers: a missing BLAS is reported here
        return CPUBuffer(count: count)
    }

    public func makeScratchBuffer(count: Int) throws -> CPUBuffer {
        guard count >= 0 else { throw LSTMError.invalidArgument("buffer of \(count) floats") }
        try BLASLibrary.require()
        return CPUBuffer(count: count, zeroed: false)
    }

    public func write(_ values: [Float], to buffer: CPUBuffer, offset: Int) throws {
        guard offset >= 0, offset + values.count <= buffer.count else {
            throw LSTMError.invalidArgument("write of \(values.count) floats at \(offset) into a buffer of \(buffer.count)")
        }
        values.withUnsafeBufferPointer { (buffer.pointer + offset).update(from: $0.baseAddress!, count: values.count) }
        buffer.markModified()
    }

    public func read(_ buffer: CPUBuffer, offset: Int, count: Int) throws -> [Float] {
        guard offset >= 0, count >= 0, offset + count <= buffer.count else {
            throw LSTMError.invalidArgument("read of \(count) floats at \(offset) from a buffer of \(buffer.count)")
        }
        return Array(UnsafeBufferPointer(start: buffer.pointer + offset, count: count))
    }

    public func makeLengths(_ lengths: [Int]?, batch: Int, steps: Int) throws -> [Int] {
        lengths ?? [Int](repeating: steps, count: batch)
    }

    public func swapOuterDimensions(_ src: CPUBuffer, into dst: CPUBuffer, a: Int, c: Int, inner: Int) throws {
        for i in 0..<a {
            for j in 0..<c {
                (dst.pointer + (j * a + i) * inner).update(from: src.pointer + (i * c + j) * inner, count: inner)
            }
        }
        dst.markModified()
    }

    /// A copy derived from `weights` by `make`, cached on the buffer until its contents change.
    func derived(_ weights: CPUBuffer, _ kind: String, count: Int, _ make: (UnsafeMutablePointer<Float>) -> Void) -> CPUBuffer {
        if let cached = weights.derived[kind], cached.version == weights.version { return cached.buffer }
        let buffer = CPUBuffer(count: count)
        make(buffer.pointer)
        weights.derived[kind] = (weights.version, buffer)
        return buffer
    }

    /// `weights` [4H, width] with its rows in `GateLayout` order.
    func regrouped(_ weights: CPUBuffer, layout: GateLayout, width: Int) -> CPUBuffer {
        derived(weights, "regrouped", count: 4 * layout.hiddenSize * width) {
            layout.regroupRows(weights.pointer, into: $0, width: width)
        }
    }

    /// `weights` [4H, width] regrouped, packed in panels of 16 rows for `lstm_gemm_packed`
    /// (C += A · regroupedᵀ).
    func packedRegrouped(_ weights: CPUBuffer, layout: GateLayout, width: Int) -> CPUBuffer {
        let rows = 4 * layout.hiddenSize
        let source = regrouped(weights, layout: layout, width: width)
        return derived(weights, "packed", count: lstm_packed_size(Int32(rows), Int32(width))) {
            lstm_pack_rows(source.pointer, Int32(rows), Int32(width), Int32(width), $0)
        }
    }

    /// `weights` [4H, width] regrouped and transposed to [width, 4H], packed in panels of 16
    /// rows (C += A · regrouped, for the backward's dG · W_hh).
    func packedRegroupedTransposed(_ weights: CPUBuffer, layout: GateLayout, width: Int) -> CPUBuffer {
        let rows = 4 * layout.hiddenSize
        let source = regrouped(weights, layout: layout, width: width)
        return derived(weights, "packed-transposed", count: lstm_packed_size(Int32(width), Int32(rows))) { packed in
            let transposed = CPUBuffer(count: rows * width)
            for r in 0..<rows { for c in 0..<width { transposed.pointer[c * rows + r] = source.pointer[r * width + c] } }
            lstm_pack_rows(transposed.pointer, Int32(width), Int32(rows), Int32(rows), packed)
        }
    }

    /// A thread's blocks of units: whole pairs of blocks, so that its units start at a
    /// multiple of 16 and its gate columns at a multiple of 64 (panel boundaries).
    func blocks(_ layout: GateLayout, _ crew: Crew) -> Range<Int> {
        let pairs = crew.share((layout.blockCount + 1) / 2)
        return min(2 * pairs.lowerBound, layout.blockCount)..<min(2 * pairs.upperBound, layout.blockCount)
    }

    /// A thread's share of `count` outputs in whole panels of 16.
    func panelShare(_ count: Int, _ crew: Crew) -> Range<Int> {
        let panels = crew.share((count + 15) / 16)
        return min(16 * panels.lowerBound, count)..<min(16 * panels.upperBound, count)
    }

    /// Runs `bodies` (independent jobs, e.g. the two directions of a layer) on the team: with
    /// at least as many threads as jobs, each job gets its own group of threads.
    private func runIndependent(_ bodies: [(Crew) -> Void], on team: WorkerTeam) {
        let groups = min(bodies.count, team.size)
        team.run(groups: groups) { group, crew in
            for (index, body) in bodies.enumerated() where index % groups == group { body(crew) }
        }
    }

    // MARK: forward

    @_spi(Backend) public func forward(_ job: DirectionForward<CPUBackend>) throws { try forward([job]) }

    /// Several independent directions at once (each on its own group of threads when there
    /// are enough).
    @_spi(Backend) public func forward(_ jobs: [DirectionForward<CPUBackend>]) throws {
        try CPUKernelVariant.selected()        // LSTM_GPU_CPU_ISA, when set, must be usable
        runIndependent(jobs.map(forwardBody), on: team(for: jobs.map(\.shape)))
        for job in jobs { for buffer in [job.output.buffer, job.finalHidden.buffer, job.finalCell.buffer] { buffer.markModified() } }
    }

    /// Prepares one direction's forward (weights regrouped and packed, state allocated) and
    /// returns what each thread of its crew runs.
    private func forwardBody(_ job: DirectionForward<CPUBackend>) -> (Crew) -> Void {
        let s = job.shape
        let (steps, batch, h, hout, inputSize) = (s.steps, s.batch, s.hiddenSize, s.outputSize, s.inputSize)
        let gateWidth = 4 * h, rows = steps * batch
        let layout = GateLayout(hiddenSize: h)
        let w = job.weights
        let inputWeights = regrouped(w.inputWeights, layout: layout, width: inputSize).pointer
        let recurrentWeights = packedRegrouped(w.recurrentWeights, layout: layout, width: hout).pointer
        let bias = CPUBuffer(count: gateWidth)
        if w.inputBias != nil || w.recurrentBias != nil {
            let sum = CPUBuffer(count: gateWidth)
            for j in 0..<gateWidth { sum.pointer[j] = (w.inputBias?.pointer[j] ?? 0) + (w.recurrentBias?.pointer[j] ?? 0) }
            layout.regroupRows(sum.pointer, into: bias.pointer, width: 1)
        }
        let gates = job.activations?.gates ?? CPUBuffer(count: rows * gateWidth, zeroed: false)
        let states = (CPUBuffer(count: batch * hout), CPUBuffer(count: batch * hout),
                      CPUBuffer(count: batch * h), CPUBuffer(count: batch * h))
        let unprojected = s.projects ? CPUBuffer(count: batch * h) : nil
        copyRows(job.initialHidden, into: states.0.pointer, rows: batch, width: hout)
        copyRows(job.initialCell, into: states.2.pointer, rows: batch, width: h)
        let saved = job.activations
        let lengths = job.lengths, out = job.output
        let projection = w.projectionWeights?.pointer

        return { crew in
            let blocks = self.blocks(layout, crew)
            let columns = layout.columns(ofBlocks: blocks), units = layout.units(ofBlocks: blocks)
            let outputs = s.projects ? self.panelShare(hout, crew) : units   // the h columns this thread writes
            let fullBlocks = blocks.filter { layout.width(ofBlock: $0) == GateLayout.block }
            // Biases, then += X · W_ihᵀ for this member's gate columns of all T·B rows.
            for r in 0..<rows { (gates.pointer + r * gateWidth + columns.lowerBound).update(from: bias.pointer + columns.lowerBound, count: columns.count) }
            sgemm(transposeB: true, m: rows, n: columns.count, k: inputSize,
                  a: job.input.buffer.pointer + job.input.offset, lda: job.input.rowStride,
                  b: inputWeights + columns.lowerBound * inputSize, ldb: inputSize,
                  beta: 1, c: gates.pointer + columns.lowerBound, ldc: gateWidth)
            var (hidden, nextHidden, cell, nextCell) = (states.0.pointer, states.1.pointer, states.2.pointer, states.3.pointer)
            for k in 0..<steps {
                let t = job.reverse ? steps - 1 - k : k
                let g = gates.pointer + t * batch * gateWidth
                if let saved {
                    for b in 0..<batch {
                        copy(hidden + b * hout, to: saved.previousHidden.pointer + (t * batch + b) * hout, outputs)
                        copy(cell + b * h, to: saved.previousCell.pointer + (t * batch + b) * h, units)
                    }
                }
                lstm_gemm_packed(Int32(batch), Int32(columns.count), Int32(hout), hidden, Int32(hout),
                                 recurrentWeights + columns.lowerBound * hout, g + columns.lowerBound, Int32(gateWidth))
                let r = unprojected?.pointer ?? nextHidden     // o·tanh(c), [B, H]
                for b in 0..<batch {
                    let row = t * batch + b
                    if t < lengths[b] {
                        if let first = fullBlocks.first {
                            let u = first * GateLayout.block
                            lstm_cell_forward_blocks(g + b * gateWidth + layout.column(ofBlock: first), cell + b * h + u,
                                                     nextCell + b * h + u, r + b * h + u, Int32(fullBlocks.count))
                        }
                        for block in blocks where layout.width(ofBlock: block) < GateLayout.block {
                            let u = block * GateLayout.block
                            lstm_cell_forward_partial(g + b * gateWidth + layout.column(ofBlock: block), cell + b * h + u,
                                                      nextCell + b * h + u, r + b * h + u, Int32(layout.width(ofBlock: block)))
                        }
                        if let saved { copy(nextCell + b * h, to: saved.cell.pointer + row * h, units) }
                        if !s.projects { copy(nextHidden + b * hout, to: out.buffer.pointer + out.offset + row * out.rowStride, units) }
                    } else {
                        copy(cell + b * h, to: nextCell + b * h, units)
                        if s.projects {
                            (r + b * h + units.lowerBound).update(repeating: 0, count: units.count)
                        } else {
                            copy(hidden + b * hout, to: nextHidden + b * hout, units)
                            (out.buffer.pointer + out.offset + row * out.rowStride + units.lowerBound).update(repeating: 0, count: units.count)
                        }
                    }
                    if let saved, let savedR = saved.unprojected { copy(r + b * h, to: savedR.pointer + row * h, units) }
                }
                if s.projects, let projection {
                    crew.sync()             // every unit of r(t) is ready
                    sgemm(transposeB: true, m: batch, n: outputs.count, k: h, a: r, lda: h,
                          b: projection + outputs.lowerBound * h, ldb: h, beta: 0, c: nextHidden + outputs.lowerBound, ldc: hout)
                    for b in 0..<batch {
                        let dst = out.buffer.pointer + out.offset + (t * batch + b) * out.rowStride
                        if t < lengths[b] {
                            copy(nextHidden + b * hout, to: dst, outputs)
                        } else {
                            copy(hidden + b * hout, to: nextHidden + b * hout, outputs)
                            (dst + outputs.lowerBound).update(repeating: 0, count: outputs.count)
                        }
                    }
                }
                crew.sync()                 // h(t) is complete before step t+1 reads it
                swap(&hidden, &nextHidden)
                swap(&cell, &nextCell)
            }
            for b in 0..<batch {
                let fh = job.finalHidden, fc = job.finalCell
                copy(hidden + b * hout, to: fh.buffer.pointer + fh.offset + b * fh.rowStride, outputs)
                copy(cell + b * h, to: fc.buffer.pointer + fc.offset + b * fc.rowStride, units)
            }
        }
    }

    // MARK: backward

    @_spi(Backend) public func backward(_ job: DirectionBackward<CPUBackend>) throws { try backward([job]) }

    /// Several independent directions at once. Their input gradients may share a buffer
    /// (accumulating), so those products run afterwards, one job after another, on the whole team.
    @_spi(Backend) public func backward(_ jobs: [DirectionBackward<CPUBackend>]) throws {
        try CPUKernelVariant.selected()
        let parts = jobs.map(backwardBody)
        let team = team(for: jobs.map(\.shape))
        runIndependent(parts.map(\.recurrence), on: team)
        for part in parts { team.run { _, crew in part.inputGradient(crew) } }
        for part in parts { part.finish() }
    }

    /// Prepares one direction's backward; returns the per-thread recurrence (with the weight
    /// gradients), the per-thread input-gradient product, and the final un-regrouping.
    private func backwardBody(_ job: DirectionBackward<CPUBackend>)
        -> (recurrence: (Crew) -> Void, inputGradient: (Crew) -> Void, finish: () -> Void) {
        let s = job.shape
        let (steps, batch, h, hout, inputSize) = (s.steps, s.batch, s.hiddenSize, s.outputSize, s.inputSize)
        let gateWidth = 4 * h, rows = steps * batch
        let layout = GateLayout(hiddenSize: h)
        let saved = job.activations, w = job.weights
        let inputWeights = regrouped(w.inputWeights, layout: layout, width: inputSize).pointer
        let recurrentWeights = packedRegroupedTransposed(w.recurrentWeights, layout: layout, width: hout).pointer
        let gateGradients = CPUBuffer(count: rows * gateWidth)            // dG, GateLayout columns
        let hiddenGradient = CPUBuffer(count: batch * hout)               // carried dL/dh
        let cellGradient = CPUBuffer(count: batch * h)                    // carried dL/dc
        let previousHidden = CPUBuffer(count: batch * hout)               // dG(t)·W_hh before masking
        let unprojectedGradient = CPUBuffer(count: batch * h)             // dL/d(o·tanh c)
        let projectedGradients = s.projects ? CPUBuffer(count: rows * hout) : nil   // dL/dh(t) per step, for dW_hr
        let inputGradient = CPUBuffer(count: gateWidth * inputSize)       // dW_ih, GateLayout rows
        let recurrentGradient = CPUBuffer(count: gateWidth * hout)        // dW_hh, GateLayout rows
        let biasGradient = CPUBuffer(count: gateWidth)
        copyRows(job.finalHiddenGradient, into: hiddenGradient.pointer, rows: batch, width: hout)
        copyRows(job.finalCellGradient, into: cellGradient.pointer, rows: batch, width: h)
        let lengths = job.lengths, dy = job.outputGradient
        let projection = w.projectionWeights?.pointer

        let recurrence: (Crew) -> Void = { crew in
            let blocks = self.blocks(layout, crew)
            let columns = layout.columns(ofBlocks: blocks), units = layout.units(ofBlocks: blocks)
            let outputs = s.projects ? self.panelShare(hout, crew) : units
            let fullBlocks = blocks.filter { layout.width(ofBlock: $0) == GateLayout.block }
            let dh = hiddenGradient.pointer, dc = cellGradient.pointer, dr = unprojectedGradient.pointer
            for k in 0..<steps {
                let t = job.reverse ? k : steps - 1 - k        // the forward's order, reversed
                // dL/dh(t) = carried + the output's, for this member's h columns.
                let stepHidden = projectedGradients.map { $0.pointer + t * batch * hout } ?? dr
                for b in 0..<batch {
                    let dst = stepHidden + b * hout + outputs.lowerBound
                    if t < lengths[b] {
                        dst.update(from: dh + b * hout + outputs.lowerBound, count: outputs.count)
                        if let dy {
                            let src = dy.buffer.pointer + dy.offset + (t * batch + b) * dy.rowStride + outputs.lowerBound
                            for j in 0..<outputs.count { dst[j] += src[j] }
                        }
                    } else {
                        dst.update(repeating: 0, count: outputs.count)
                    }
                }
                if s.projects, let projection {
                    crew.sync()                 // all of dL/dh(t) is ready
                    sgemm(m: batch, n: units.count, k: hout, a: stepHidden, lda: hout, b: projection + units.lowerBound,
                          ldb: h, beta: 0, c: dr + units.lowerBound, ldc: h)
                }
                let dG = gateGradients.pointer + t * batch * gateWidth
                for b in 0..<batch where t < lengths[b] {
                    let row = t * batch + b
                    if let first = fullBlocks.first {
                        let u = first * GateLayout.block, column = layout.column(ofBlock: first)
                        lstm_cell_backward_blocks(saved.gates.pointer + row * gateWidth + column, saved.cell.pointer + row * h + u,
                                                  saved.previousCell.pointer + row * h + u, dr + b * h + u, dc + b * h + u,
                                                  dG + b * gateWidth + column, Int32(fullBlocks.count))
                    }
                    for block in blocks where layout.width(ofBlock: block) < GateLayout.block {
                        let u = block * GateLayout.block, column = layout.column(ofBlock: block)
                        lstm_cell_backward_partial(saved.gates.pointer + row * gateWidth + column, saved.cell.pointer + row * h + u,
                                                   saved.previousCell.pointer + row * h + u, dr + b * h + u, dc + b * h + u,
                                                   dG + b * gateWidth + column, Int32(layout.width(ofBlock: block)))
                    }
                }
                crew.sync()                     // all of dG(t) is ready
                // dL/dh(prev) = dG(t) · W_hh for this member's h columns; padded sequences carry theirs.
                for b in 0..<batch { (previousHidden.pointer + b * hout + outputs.lowerBound).update(repeating: 0, count: outputs.count) }
                lstm_gemm_packed(Int32(batch), Int32(outputs.count), Int32(gateWidth), dG, Int32(gateWidth),
                                 recurrentWeights + outputs.lowerBound * gateWidth, previousHidden.pointer + outputs.lowerBound, Int32(hout))
                for b in 0..<batch where t < lengths[b] { copy(previousHidden.pointer + b * hout, to: dh + b * hout, outputs) }
            }
            for b in 0..<batch {
                let gh = job.initialHiddenGradient, gc = job.initialCellGradient
                copy(dh + b * hout, to: gh.buffer.pointer + gh.offset + b * gh.rowStride, outputs)
                copy(dc + b * h, to: gc.buffer.pointer + gc.offset + b * gc.rowStride, units)
            }
            crew.sync()                         // dG complete for every step
            // Weight gradients: this member's gate rows, one sgemm each over all T·B rows.
            sgemm(transposeA: true, m: columns.count, n: inputSize, k: rows, a: gateGradients.pointer + columns.lowerBound,
                  lda: gateWidth, b: job.input.buffer.pointer + job.input.offset, ldb: job.input.rowStride,
                  beta: 0, c: inputGradient.pointer + columns.lowerBound * inputSize, ldc: inputSize)
            sgemm(transposeA: true, m: columns.count, n: hout, k: rows, a: gateGradients.pointer + columns.lowerBound,
                  lda: gateWidth, b: saved.previousHidden.pointer, ldb: hout,
                  beta: 0, c: recurrentGradient.pointer + columns.lowerBound * hout, ldc: hout)
            if job.weightGradients.bias != nil {
                sumColumns(gateGradients.pointer, rows: rows, width: gateWidth, columns: columns, into: biasGradient.pointer)
            }
            if let dwhr = job.weightGradients.projectionWeights, let projected = projectedGradients, let r = saved.unprojected {
                sgemm(transposeA: true, m: outputs.count, n: h, k: rows, a: projected.pointer + outputs.lowerBound, lda: hout,
                      b: r.pointer, ldb: h, beta: 0, c: dwhr.pointer + outputs.lowerBound * h, ldc: h)
            }
        }
        let inputGradientProduct: (Crew) -> Void = { crew in
            guard let dx = job.inputGradient else { return }
            let share = crew.share(rows)
            sgemm(m: share.count, n: inputSize, k: gateWidth, a: gateGradients.pointer + share.lowerBound * gateWidth,
                  lda: gateWidth, b: inputWeights, ldb: inputSize, beta: job.accumulateInputGradient ? 1 : 0,
                  c: dx.buffer.pointer + dx.offset + share.lowerBound * dx.rowStride, ldc: dx.rowStride)
        }
        let finish = {
            let g = job.weightGradients
            layout.restoreRows(inputGradient.pointer, into: g.inputWeights.pointer, width: inputSize)
            layout.restoreRows(recurrentGradient.pointer, into: g.recurrentWeights.pointer, width: hout)
            if let bias = g.bias { layout.restoreRows(biasGradient.pointer, into: bias.pointer, width: 1) }
            var touched = [g.inputWeights, g.recurrentWeights, job.initialHiddenGradient.buffer, job.initialCellGradient.buffer]
            touched += [g.bias, g.projectionWeights, job.inputGradient?.buffer].compactMap { $0 }
            for buffer in touched { buffer.markModified() }
        }
        return (recurrence, inputGradientProduct, finish)
    }

    // MARK: helpers

    private func copyRows(_ view: MatrixView<CPUBuffer>?, into dst: UnsafeMutablePointer<Float>, rows: Int, width: Int) {
        guard let view else { dst.update(repeating: 0, count: rows * width); return }
        for r in 0..<rows {
            (dst + r * width).update(from: view.buffer.pointer + view.offset + r * view.rowStride, count: width)
        }
    }
}

/// dst[range] = src[range].
@inline(__always)
private func copy(_ src: UnsafePointer<Float>, to dst: UnsafeMutablePointer<Float>, _ range: Range<Int>) {
    (dst + range.lowerBound).update(from: src + range.lowerBound, count: range.count)
}

/// out[c] = Σ_r m[r, c] for c in `columns` of an [R, W] matrix.
func sumColumns(_ m: UnsafePointer<Float>, rows: Int, width: Int, columns: Range<Int>, into out: UnsafeMutablePointer<Float>) {
    let o = out + columns.lowerBound
    o.update(repeating: 0, count: columns.count)
    for r in 0..<rows {
        let row = m + r * width + columns.lowerBound
        for j in 0..<columns.count { o[j] += row[j] }
    }
}
