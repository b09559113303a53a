import CLSTMKernels
@_spi(Backend) import LSTMCore

/// The CPU path's forward of one direction (see `CPUBackend` for the scheme).
extension CPUBackend {
    @_spi(Backend) public func forward(_ job: DirectionForward<CPUBackend>) throws { try forward([job]) }

    /// Several independent directions at once (each on its own group of threads when there
    /// are enough).
    @_spi(Backend) public func forward(_ jobs: [DirectionForward<CPUBackend>]) throws {
        try CPUKernelVariant.selected()  // LSTM_GPU_CPU_ISA, when set, must be usable
        runIndependent(
            jobs.map { $0.shape.cell.isPlain ? forwardBody($0) : optionsForwardBody($0) },
            on: team(for: jobs.map(\.shape)))
        for job in jobs {
            for buffer in [job.output.buffer, job.finalHidden.buffer, job.finalCell.buffer] { buffer.markModified() }
        }
    }

    /// Prepares one direction's forward (weights regrouped and packed, state allocated) and
    /// returns what each thread of its crew runs.
    func forwardBody(_ job: DirectionForward<CPUBackend>) -> (Crew) -> Void {
        let s = job.shape
        let (steps, batch, h, hout, inputSize) = (
            s.sequenceLength, s.batch, s.hiddenSize, s.outputSize, s.layerInputSize
        )
        let (gateWidth, rows) = (s.gateWidth, s.rows)
        let layout = GateLayout(hiddenSize: h)
        let w = job.weights
        // Float32 weights regrouped and packed, or the reduced operands in the same row order.
        let reduced = w.reduced.map { CPUReducedDirection($0, layout: layout) }
        let inputWeights = reduced == nil ? regrouped(w.inputWeights, layout: layout, width: inputSize).pointer : nil
        let recurrentWeights =
            reduced == nil ? packedRegrouped(w.recurrentWeights, layout: layout, width: hout).pointer : nil
        let convertedInput = reduced.map { ScratchMemory(bytes: $0.input.scratchBytes(rows: rows)) }
        let stepScratch = reduced.map { ScratchMemory($0.stepScratch(threads: team.size, rows: batch)) }
        let bias = CPUBuffer(count: gateWidth)
        if w.inputBias != nil || w.recurrentBias != nil {
            let sum = CPUBuffer(count: gateWidth)
            for j in 0..<gateWidth {
                sum.pointer[j] = (w.inputBias?.pointer[j] ?? 0) + (w.recurrentBias?.pointer[j] ?? 0)
            }
            layout.regroupRows(sum.pointer, into: bias.pointer, width: 1)
        }
        let gates = job.activations?.gates ?? CPUBuffer(count: rows * gateWidth, zeroed: false)
        let states = (
            CPUBuffer(count: batch * hout), CPUBuffer(count: batch * hout),
            CPUBuffer(count: batch * h), CPUBuffer(count: batch * h)
        )
        let unprojected = s.projects ? CPUBuffer(count: batch * h) : nil
        copyRows(job.initialHidden, into: states.0.pointer, rows: batch, width: hout)
        copyRows(job.initialCell, into: states.2.pointer, rows: batch, width: h)
        let saved = job.activations
        let lengths = job.lengths, out = job.output
        let projection = reduced == nil ? w.projectionWeights?.pointer : nil

        return { crew in
            // Gate columns of this member's units: its share of the input projection (and,
            // split by units, of the step loop).
            let shared = self.blocks(layout, crew)
            let byBatch = self.stepSplit.resolved(for: s, threads: crew.size) == .batch
            let blocks = byBatch ? 0..<layout.blockCount : shared  // the units this member steps
            let columns = layout.columns(ofBlocks: blocks), units = layout.units(ofBlocks: blocks)
            let outputs = byBatch ? 0..<hout : s.projects ? self.panelShare(hout, crew) : units  // h columns it writes
            let members = byBatch ? crew.share(batch) : 0..<batch  // the batch rows it steps
            let (first, count) = (members.lowerBound, Int32(members.count))
            let fullBlocks = blocks.filter { layout.width(ofBlock: $0) == GateLayout.block }
            // Biases, then += X · W_ihᵀ for this member's gate columns of all T·B rows.
            let projected = layout.columns(ofBlocks: shared)
            for r in 0..<rows {
                (gates.pointer + r * gateWidth + projected.lowerBound).update(
                    from: bias.pointer + projected.lowerBound, count: projected.count)
            }
            self.projectInput(
                job, crew: crew, columns: projected, into: gates.pointer, ldc: gateWidth, float: inputWeights,
                reduced: reduced.map { ($0.input, convertedInput!) })
            if byBatch { crew.sync() }  // every column of this member's rows is projected
            var (hidden, nextHidden, cell, nextCell) = (
                states.0.pointer, states.1.pointer, states.2.pointer, states.3.pointer
            )
            for k in 0..<steps {
                let t = s.forwardStep(k, reverse: job.reverse)
                let g = gates.pointer + t * batch * gateWidth
                if let saved {
                    self.savePreviousStates(
                        saved, hidden: hidden, cell: cell, step: t, rows: members, batch: batch, outputs: outputs,
                        units: units, hout: hout, h: h)
                }
                if let reduced, let stepScratch {
                    reduced.recurrent.product(
                        m: members.count, a: hidden + first * hout, lda: hout, columns: columns,
                        c: g + first * gateWidth, ldc: gateWidth, scratch: stepScratch[crew.rank])
                } else if let recurrentWeights {
                    lstm_gemm_packed(
                        count, Int32(columns.count), Int32(hout), hidden + first * hout, Int32(hout),
                        recurrentWeights + columns.lowerBound * hout, g + first * gateWidth + columns.lowerBound,
                        Int32(gateWidth))
                }
                let r = unprojected?.pointer ?? nextHidden  // o·tanh(c), [B, H]
                for b in members {
                    let row = t * batch + b
                    if t < lengths[b] {
                        if let first = fullBlocks.first {
                            let u = first * GateLayout.block
                            lstm_cell_forward_blocks(
                                g + b * gateWidth + layout.column(ofBlock: first), cell + b * h + u,
                                nextCell + b * h + u, r + b * h + u, Int32(fullBlocks.count))
                        }
                        for block in blocks where layout.width(ofBlock: block) < GateLayout.block {
                            let u = block * GateLayout.block
                            lstm_cell_forward_partial(
                                g + b * gateWidth + layout.column(ofBlock: block), cell + b * h + u,
                                nextCell + b * h + u, r + b * h + u, Int32(layout.width(ofBlock: block)))
                        }
                        if let saved { copy(nextCell + b * h, to: saved.cell.pointer + row * h, units) }
                        if !s.projects {
                            copy(
                                nextHidden + b * hout, to: out.buffer.pointer + out.offset + row * out.rowStride, units)
                        }
                    } else {
                        copy(cell + b * h, to: nextCell + b * h, units)
                        if s.projects {
                            (r + b * h + units.lowerBound).update(repeating: 0, count: units.count)
                        } else {
                            copy(hidden + b * hout, to: nextHidden + b * hout, units)
                            (out.buffer.pointer + out.offset + row * out.rowStride + units.lowerBound).update(
                                repeating: 0, count: units.count)
                        }
                    }
                    if let saved, let savedR = saved.unprojected {
                        copy(r + b * h, to: savedR.pointer + row * h, units)
                    }
                }
                if s.projects {
                    if !byBatch { crew.sync() }  // every unit of r(t) is ready
                    self.project(
                        rows: members, outputs: outputs, r: r, h: h, into: nextHidden, hout: hout,
                        float: projection, reduced: reduced?.projection, scratch: stepScratch?[crew.rank])
                    for b in members {
                        let dst = out.buffer.pointer + out.offset + (t * batch + b) * out.rowStride
                        if t < lengths[b] {
                            copy(nextHidden + b * hout, to: dst, outputs)
                        } else {
                            copy(hidden + b * hout, to: nextHidden + b * hout, outputs)
                            (dst + outputs.lowerBound).update(repeating: 0, count: outputs.count)
                        }
                    }
                }
                if !byBatch { crew.sync() }  // h(t) is complete before step t+1 reads it
                swap(&hidden, &nextHidden)
                swap(&cell, &nextCell)
            }
            self.writeFinalStates(job, hidden: hidden, cell: cell, rows: members, outputs: outputs, units: units)
        }
    }

    /// A member's share of a direction's input projection: gates[all T·B rows, columns] +=
    /// X · W_ih[columns]ᵀ, through sgemm on the float32 weights `float` [G·H, In] (in the
    /// gates' column order), or the reduced operand, whose conversion of the rows is shared by
    /// the crew (each member converts its share into `converted`, then they meet).
    func projectInput(
        _ job: DirectionForward<CPUBackend>, crew: Crew, columns: Range<Int>, into gates: UnsafeMutablePointer<Float>,
        ldc: Int, float: UnsafePointer<Float>?, reduced: (operand: CPUReducedOperand, converted: ScratchMemory)?
    ) {
        let (rows, inputSize, lda) = (job.shape.rows, job.shape.layerInputSize, job.input.rowStride)
        let x = job.input.buffer.pointer + job.input.offset
        if let (operand, converted) = reduced {
            if operand.converts {
                operand.convert(rows: crew.share(rows), of: rows, a: x, lda: lda, into: converted[0])
                crew.sync()
            }
            operand.multiplyAdd(
                m: rows, of: rows, scratch: converted[0], a: x, lda: lda, columns: columns, c: gates, ldc: ldc,
                mayWiden: true)
        } else if let float {
            sgemm(
                transposeB: true, m: rows, n: columns.count, k: inputSize, a: x, lda: lda,
                b: float + columns.lowerBound * inputSize, ldb: inputSize, beta: 1, c: gates + columns.lowerBound,
                ldc: ldc)
        }
    }

    /// h[rows, outputs] = W_hr[outputs] · r[rows] (r = o·tanh c [B, H], h [B, Hout]): float32
    /// weights `float` [P, H] through sgemm, or the `reduced` operand through its kernels.
    func project(
        rows: Range<Int>, outputs: Range<Int>, r: UnsafePointer<Float>, h: Int,
        into hidden: UnsafeMutablePointer<Float>,
        hout: Int, float: UnsafePointer<Float>?, reduced: CPUReducedOperand?, scratch: UnsafeMutableRawPointer?
    ) {
        let first = rows.lowerBound
        if let reduced, let scratch {
            for b in rows { (hidden + b * hout + outputs.lowerBound).update(repeating: 0, count: outputs.count) }
            reduced.product(
                m: rows.count, a: r + first * h, lda: h, columns: outputs, c: hidden + first * hout, ldc: hout,
                scratch: scratch)
        } else if let float {
            sgemm(
                transposeB: true, m: rows.count, n: outputs.count, k: h, a: r + first * h, lda: h,
                b: float + outputs.lowerBound * h, ldb: h, beta: 0, c: hidden + first * hout + outputs.lowerBound,
                ldc: hout)
        }
    }

    /// h(prev) and c(prev) of sequences `rows` at step t into the saved activations: columns
    /// `outputs` of h [B, Hout], `units` of c [B, H] (a thread's share).
    func savePreviousStates(
        _ saved: DirectionActivations<CPUBuffer>, hidden: UnsafePointer<Float>, cell: UnsafePointer<Float>,
        step t: Int, rows: Range<Int>, batch: Int, outputs: Range<Int>, units: Range<Int>, hout: Int, h: Int
    ) {
        for b in rows {
            copy(hidden + b * hout, to: saved.previousHidden.pointer + (t * batch + b) * hout, outputs)
            copy(cell + b * h, to: saved.previousCell.pointer + (t * batch + b) * h, units)
        }
    }

    /// The states after the last step into the job's hn, cn for sequences `rows` (columns
    /// `outputs` of h, `units` of c).
    func writeFinalStates(
        _ job: DirectionForward<CPUBackend>, hidden: UnsafePointer<Float>, cell: UnsafePointer<Float>,
        rows: Range<Int>, outputs: Range<Int>, units: Range<Int>
    ) {
        let (fh, fc) = (job.finalHidden, job.finalCell)
        let (hout, h) = (job.shape.outputSize, job.shape.hiddenSize)
        for b in rows {
            copy(hidden + b * hout, to: fh.buffer.pointer + fh.offset + b * fh.rowStride, outputs)
            copy(cell + b * h, to: fc.buffer.pointer + fc.offset + b * fc.rowStride, units)
        }
    }
}
