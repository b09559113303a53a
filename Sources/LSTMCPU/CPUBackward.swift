import CLSTMKernels
@_spi(Backend) import LSTMCore

/// The CPU path's backpropagation through time for one direction (see `CPUBackend`).
extension CPUBackend {
    @_spi(Backend) public func backward(_ job: DirectionBackward<CPUBackend>) throws { try backward([job]) }

    /// Several independent directions at once. Their input gradients may share a buffer
    /// (accumulating), so those products run afterwards, one job after another, on the whole team.
    @_spi(Backend) public func backward(_ jobs: [DirectionBackward<CPUBackend>]) throws {
        try CPUKernelVariant.selected()
        let parts = jobs.map { $0.shape.cell.isPlain ? backwardBody($0) : optionsBackwardBody($0) }
        let team = team(for: jobs.map(\.shape))
        runIndependent(parts.map(\.recurrence), on: team)
        for part in parts { team.run { _, crew in part.inputGradient(crew) } }
        for part in parts { part.finish() }
    }

    /// Prepares one direction's backward; returns the per-thread recurrence (with the weight
    /// gradients), the per-thread input-gradient product, and the final un-regrouping.
    func backwardBody(
        _ job: DirectionBackward<CPUBackend>
    )
        -> (recurrence: (Crew) -> Void, inputGradient: (Crew) -> Void, finish: () -> Void)
    {
        let s = job.shape
        let (steps, batch, h, hout, inputSize) = (
            s.sequenceLength, s.batch, s.hiddenSize, s.outputSize, s.layerInputSize
        )
        let (gateWidth, rows) = (s.gateWidth, s.rows)
        let layout = GateLayout(hiddenSize: h)
        let saved = job.activations, w = job.weights
        let inputWeights = regrouped(w.inputWeights, layout: layout, width: inputSize).pointer
        let recurrentWeights = packedRegroupedTransposed(w.recurrentWeights, layout: layout, width: hout).pointer
        let gateGradients = job.gateGradients  // dG, GateLayout columns
        let hiddenGradient = CPUBuffer(count: batch * hout)  // carried dL/dh
        let cellGradient = CPUBuffer(count: batch * h)  // carried dL/dc
        let previousHidden = CPUBuffer(count: batch * hout)  // dG(t)·W_hh before masking
        let unprojectedGradient = CPUBuffer(count: batch * h)  // dL/d(o·tanh c)
        let projectedGradients = s.projects ? CPUBuffer(count: rows * hout) : nil  // dL/dh(t) per step, for dW_hr
        let inputGradient = CPUBuffer(count: gateWidth * inputSize)  // dW_ih, GateLayout rows
        let recurrentGradient = CPUBuffer(count: gateWidth * hout)  // dW_hh, GateLayout rows
        let biasGradient = CPUBuffer(count: gateWidth)
        copyRows(job.finalHiddenGradient, into: hiddenGradient.pointer, rows: batch, width: hout)
        copyRows(job.finalCellGradient, into: cellGradient.pointer, rows: batch, width: h)
        let lengths = job.lengths, dy = job.outputGradient
        let projection = w.projectionWeights?.pointer

        let recurrence: (Crew) -> Void = { crew in
            // This member's share of the weight gradients (gate columns of its units, dW_hr rows)…
            let shared = self.blocks(layout, crew)
            let sharedColumns = layout.columns(ofBlocks: shared)
            let sharedOutputs = s.projects ? self.panelShare(hout, crew) : layout.units(ofBlocks: shared)
            // … and of the step loop: the same units for every row, or every unit for a range of rows.
            let byBatch = self.stepSplit.resolved(for: s, threads: crew.size) == .batch
            let blocks = byBatch ? 0..<layout.blockCount : shared
            let units = layout.units(ofBlocks: blocks), stepColumns = layout.columns(ofBlocks: blocks)
            let outputs = byBatch ? 0..<hout : sharedOutputs
            let members = byBatch ? crew.share(batch) : 0..<batch
            let first = members.lowerBound
            let fullBlocks = blocks.filter { layout.width(ofBlock: $0) == GateLayout.block }
            let dh = hiddenGradient.pointer, dc = cellGradient.pointer, dr = unprojectedGradient.pointer
            for k in 0..<steps {
                let t = s.backwardStep(k, reverse: job.reverse)
                // dL/dh(t) = carried + the output's, for this member's h columns.
                let stepHidden = projectedGradients.map { $0.pointer + t * batch * hout } ?? dr
                for b in members {
                    let dst = stepHidden + b * hout + outputs.lowerBound
                    if t < lengths[b] {
                        dst.update(from: dh + b * hout + outputs.lowerBound, count: outputs.count)
                        if let dy {
                            let src =
                                dy.buffer.pointer + dy.offset + (t * batch + b) * dy.rowStride + outputs.lowerBound
                            for j in 0..<outputs.count { dst[j] += src[j] }
                        }
                    } else {
                        dst.update(repeating: 0, count: outputs.count)
                    }
                }
                if s.projects, let projection {
                    if !byBatch { crew.sync() }  // all of dL/dh(t) is ready
                    sgemm(
                        m: members.count, n: units.count, k: hout, a: stepHidden + first * hout, lda: hout,
                        b: projection + units.lowerBound, ldb: h, beta: 0, c: dr + first * h + units.lowerBound, ldc: h)
                }
                let dG = gateGradients.pointer + t * batch * gateWidth
                for b in members where t >= lengths[b] {  // padding: dG = 0 (the weight gradients read every row)
                    (dG + b * gateWidth + stepColumns.lowerBound).update(repeating: 0, count: stepColumns.count)
                }
                for b in members where t < lengths[b] {
                    let row = t * batch + b
                    if let first = fullBlocks.first {
                        let u = first * GateLayout.block, column = layout.column(ofBlock: first)
                        lstm_cell_backward_blocks(
                            saved.gates.pointer + row * gateWidth + column, saved.cell.pointer + row * h + u,
                            saved.previousCell.pointer + row * h + u, dr + b * h + u, dc + b * h + u,
                            dG + b * gateWidth + column, Int32(fullBlocks.count))
                    }
                    for block in blocks where layout.width(ofBlock: block) < GateLayout.block {
                        let u = block * GateLayout.block, column = layout.column(ofBlock: block)
                        lstm_cell_backward_partial(
                            saved.gates.pointer + row * gateWidth + column, saved.cell.pointer + row * h + u,
                            saved.previousCell.pointer + row * h + u, dr + b * h + u, dc + b * h + u,
                            dG + b * gateWidth + column, Int32(layout.width(ofBlock: block)))
                    }
                }
                if !byBatch { crew.sync() }  // all of dG(t) is ready
                // dL/dh(prev) = dG(t) · W_hh for this member's h columns; padded sequences carry theirs.
                for b in members {
                    (previousHidden.pointer + b * hout + outputs.lowerBound).update(repeating: 0, count: outputs.count)
                }
                lstm_gemm_packed(
                    Int32(members.count), Int32(outputs.count), Int32(gateWidth), dG + first * gateWidth,
                    Int32(gateWidth), recurrentWeights + outputs.lowerBound * gateWidth,
                    previousHidden.pointer + first * hout + outputs.lowerBound, Int32(hout))
                for b in members where t < lengths[b] {
                    copy(previousHidden.pointer + b * hout, to: dh + b * hout, outputs)
                }
            }
            for b in members {
                let gh = job.initialHiddenGradient, gc = job.initialCellGradient
                copy(dh + b * hout, to: gh.buffer.pointer + gh.offset + b * gh.rowStride, outputs)
                copy(dc + b * h, to: gc.buffer.pointer + gc.offset + b * gc.rowStride, units)
            }
            crew.sync()  // dG complete for every step
            // Weight gradients: this member's gate rows, one sgemm each over all T·B rows.
            sgemm(
                transposeA: true, m: sharedColumns.count, n: inputSize, k: rows,
                a: gateGradients.pointer + sharedColumns.lowerBound,
                lda: gateWidth, b: job.input.buffer.pointer + job.input.offset, ldb: job.input.rowStride,
                beta: 0, c: inputGradient.pointer + sharedColumns.lowerBound * inputSize, ldc: inputSize)
            sgemm(
                transposeA: true, m: sharedColumns.count, n: hout, k: rows,
                a: gateGradients.pointer + sharedColumns.lowerBound,
                lda: gateWidth, b: saved.previousHidden.pointer, ldb: hout,
                beta: 0, c: recurrentGradient.pointer + sharedColumns.lowerBound * hout, ldc: hout)
            if job.weightGradients.bias != nil {
                sumColumns(
                    gateGradients.pointer, rows: rows, width: gateWidth, columns: sharedColumns,
                    into: biasGradient.pointer)
            }
            if let dwhr = job.weightGradients.projectionWeights, let projected = projectedGradients,
                let r = saved.unprojected
            {
                sgemm(
                    transposeA: true, m: sharedOutputs.count, n: h, k: rows,
                    a: projected.pointer + sharedOutputs.lowerBound,
                    lda: hout,
                    b: r.pointer, ldb: h, beta: 0, c: dwhr.pointer + sharedOutputs.lowerBound * h, ldc: h)
            }
        }
        let inputGradientProduct: (Crew) -> Void = { crew in
            guard let dx = job.inputGradient else { return }
            let share = crew.share(rows)
            sgemm(
                m: share.count, n: inputSize, k: gateWidth, a: gateGradients.pointer + share.lowerBound * gateWidth,
                lda: gateWidth, b: inputWeights, ldb: inputSize, beta: job.accumulateInputGradient ? 1 : 0,
                c: dx.buffer.pointer + dx.offset + share.lowerBound * dx.rowStride, ldc: dx.rowStride)
        }
        let finish = {
            let g = job.weightGradients
            layout.restoreRows(inputGradient.pointer, into: g.inputWeights.pointer, width: inputSize)
            layout.restoreRows(recurrentGradient.pointer, into: g.recurrentWeights.pointer, width: hout)
            if let bias = g.bias { layout.restoreRows(biasGradient.pointer, into: bias.pointer, width: 1) }
            var touched = [
                g.inputWeights, g.recurrentWeights, job.initialHiddenGradient.buffer, job.initialCellGradient.buffer,
            ]
            touched += [g.bias, g.projectionWeights, job.inputGradient?.buffer].compactMap { $0 }
            for buffer in touched { buffer.markModified() }
        }
        return (recurrence, inputGradientProduct, finish)
    }
}
