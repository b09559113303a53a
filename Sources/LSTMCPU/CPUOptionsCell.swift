import CLSTMKernels
@_spi(Backend) import LSTMCore

/// The CPU path's options path: the general cell (`LSTMCellOptions`: peepholes, CIFG, layer
/// norm, clips) for one direction, forward and backward.
///
/// It keeps the plain path's shape of work (one input-projection sgemm before the loop, per
/// step one recurrent sgemm and one fused pass of cell math per sequence, the weight gradients
/// as sgemms over all T·B rows after it) but in PyTorch's gate layout, G blocks of H
/// (`lstm_cell_options.h`), since layer norm needs a gate's H units together. The step loop is
/// split by batch rows (each thread runs its sequences through every unit, no barrier inside the
/// loop); the products before and after it are split by gate columns.
extension CPUBackend {
    /// The C kernels' description of the cell, pointing at `w`'s per-unit weights. `bias` is the
    /// summed bias the layer norm adds (nil without layer norm or bias).
    func cellOptions(
        _ s: DirectionShape, _ w: DirectionWeights<CPUBuffer>, bias: CPUBuffer?
    ) -> lstm_cell_options {
        let c = s.cell
        let peephole = { (index: Int) -> UnsafePointer<Float>? in
            index < w.peepholes.count ? w.peepholes[index].map { UnsafePointer($0.pointer) } : nil
        }
        let norm = { (index: Int) -> UnsafePointer<Float>? in
            index < w.layerNormWeights.count ? w.layerNormWeights[index].map { UnsafePointer($0.pointer) } : nil
        }
        return lstm_cell_options(
            hidden: Int32(s.hiddenSize), cifg: c.coupledInputForget ? 1 : 0, layer_norm: c.layerNorm ? 1 : 0,
            epsilon: c.layerNormEpsilon, activation_clip: c.activationClip, cell_clip: c.cellClip,
            peephole_i: peephole(0), peephole_f: peephole(1), peephole_o: peephole(2),
            norm_weight: (norm(0), norm(1), norm(2), norm(3)),
            bias: c.layerNorm ? bias.map { UnsafePointer($0.pointer) } : nil)
    }

    /// b_ih + b_hh [G·H], nil without bias.
    func summedBias(_ w: DirectionWeights<CPUBuffer>, width: Int) -> CPUBuffer? {
        guard w.inputBias != nil || w.recurrentBias != nil else { return nil }
        let sum = CPUBuffer(count: width)
        for j in 0..<width { sum.pointer[j] = (w.inputBias?.pointer[j] ?? 0) + (w.recurrentBias?.pointer[j] ?? 0) }
        return sum
    }

    /// Prepares one direction's forward with cell options; returns what each thread runs.
    func optionsForwardBody(_ job: DirectionForward<CPUBackend>) -> (Crew) -> Void {
        let s = job.shape
        let (steps, batch, h, hout) = (s.sequenceLength, s.batch, s.hiddenSize, s.outputSize)
        let (gateWidth, rows, gateCount) = (s.gateWidth, s.rows, s.cell.gateCount)
        let w = job.weights
        let bias = summedBias(w, width: gateWidth)
        var options = cellOptions(s, w, bias: bias)
        let gates = job.activations?.gates ?? CPUBuffer(count: rows * gateWidth, zeroed: false)
        let saved = job.activations, extra = job.activations?.options
        // Without saved activations, what the cell writes on the way goes to per-sequence scratch.
        let scratchPre = extra == nil ? CPUBuffer(count: batch * gateWidth, zeroed: false) : nil
        let scratchNorm = extra == nil && s.cell.layerNorm ? CPUBuffer(count: batch * gateWidth, zeroed: false) : nil
        let scratchDeviation = extra == nil && s.cell.layerNorm ? CPUBuffer(count: batch * gateCount) : nil
        let states = (
            CPUBuffer(count: batch * hout), CPUBuffer(count: batch * hout),
            CPUBuffer(count: batch * h), CPUBuffer(count: batch * h)
        )
        let unprojected = s.projects ? CPUBuffer(count: batch * h) : nil
        copyRows(job.initialHidden, into: states.0.pointer, rows: batch, width: hout)
        copyRows(job.initialCell, into: states.2.pointer, rows: batch, width: h)
        let lengths = job.lengths, out = job.output
        // W_hh packed once per weight version for the register-blocked step product (as on the
        // plain path; OpenBLAS would repack it on every step's small sgemm).
        // Float32 weights (W_hh packed), or the reduced operands in PyTorch's row order.
        let reduced = w.reduced.map { CPUReducedDirection($0, layout: nil) }
        let inputWeights = reduced == nil ? w.inputWeights.pointer : nil
        let recurrentWeights = reduced == nil ? packed(w.recurrentWeights, rows: gateWidth, width: hout).pointer : nil
        let projection = reduced == nil ? w.projectionWeights?.pointer : nil
        let convertedInput = reduced.map { ScratchMemory(bytes: $0.input.scratchBytes(rows: rows)) }
        let stepScratch = reduced.map { ScratchMemory($0.stepScratch(threads: team.size, rows: batch)) }

        return { crew in
            // Biases (without layer norm), then += X · W_ihᵀ, for this member's gate columns of all T·B rows
            // (whole panels for the reduced kernels).
            let columns = reduced == nil ? crew.share(gateWidth) : self.panelShare(gateWidth, crew)
            for r in 0..<rows {
                let row = gates.pointer + r * gateWidth + columns.lowerBound
                if let bias, !s.cell.layerNorm {
                    row.update(from: bias.pointer + columns.lowerBound, count: columns.count)
                } else {
                    row.update(repeating: 0, count: columns.count)
                }
            }
            self.projectInput(
                job, crew: crew, columns: columns, into: gates.pointer, ldc: gateWidth, float: inputWeights,
                reduced: reduced.map { ($0.input, convertedInput!) })
            crew.sync()  // every column of every row is projected
            let members = crew.share(batch), first = members.lowerBound
            var (hidden, nextHidden, cell, nextCell) = (
                states.0.pointer, states.1.pointer, states.2.pointer, states.3.pointer
            )
            for k in 0..<steps {
                let t = s.forwardStep(k, reverse: job.reverse)
                let g = gates.pointer + t * batch * gateWidth
                if let saved {
                    self.savePreviousStates(
                        saved, hidden: hidden, cell: cell, step: t, rows: members, batch: batch, outputs: 0..<hout,
                        units: 0..<h, hout: hout, h: h)
                }
                if let reduced, let stepScratch {
                    reduced.recurrent.product(
                        m: members.count, a: hidden + first * hout, lda: hout, columns: 0..<gateWidth,
                        c: g + first * gateWidth, ldc: gateWidth, scratch: stepScratch[crew.rank])
                } else if let recurrentWeights {
                    lstm_gemm_packed(
                        Int32(members.count), Int32(gateWidth), Int32(hout), hidden + first * hout, Int32(hout),
                        recurrentWeights, g + first * gateWidth, Int32(gateWidth))
                }
                let r = unprojected?.pointer ?? nextHidden  // m = o·tanh(c), [B, H]
                for b in members {
                    let row = t * batch + b
                    let outRow = out.buffer.pointer + out.offset + row * out.rowStride
                    guard t < lengths[b] else {
                        copy(cell + b * h, to: nextCell + b * h, 0..<h)
                        if s.projects {  // m = 0: dW_hr reads every row's m
                            (r + b * h).update(repeating: 0, count: h)
                            if let savedR = saved?.unprojected { copy(r + b * h, to: savedR.pointer + row * h, 0..<h) }
                        } else {
                            copy(hidden + b * hout, to: nextHidden + b * hout, 0..<hout)
                            outRow.update(repeating: 0, count: hout)
                        }
                        continue
                    }
                    let (savedRow, scratchRow) = (row, b)
                    lstm_cell_options_forward(
                        &options, g + b * gateWidth,
                        extra.map { $0.preActivations.pointer + savedRow * gateWidth }
                            ?? scratchPre!.pointer + scratchRow * gateWidth,
                        extra?.normalized.map { $0.pointer + savedRow * gateWidth }
                            ?? scratchNorm.map { $0.pointer + scratchRow * gateWidth },
                        extra?.inverseDeviation.map { $0.pointer + savedRow * gateCount }
                            ?? scratchDeviation.map { $0.pointer + scratchRow * gateCount },
                        cell + b * h, nextCell + b * h, extra?.unclippedCell.map { $0.pointer + savedRow * h },
                        r + b * h)
                    if let saved { copy(nextCell + b * h, to: saved.cell.pointer + row * h, 0..<h) }
                    if let savedR = saved?.unprojected { copy(r + b * h, to: savedR.pointer + row * h, 0..<h) }
                    if !s.projects { copy(nextHidden + b * hout, to: outRow, 0..<hout) }
                }
                if s.projects {
                    self.project(
                        rows: members, outputs: 0..<hout, r: r, h: h, into: nextHidden, hout: hout, float: projection,
                        reduced: reduced?.projection, scratch: stepScratch?[crew.rank])
                    for b in members {
                        let row = t * batch + b
                        let outRow = out.buffer.pointer + out.offset + row * out.rowStride
                        if t < lengths[b] {
                            if s.cell.projectionClip > 0 {
                                lstm_clip(
                                    nextHidden + b * hout, extra?.unclippedHidden.map { $0.pointer + row * hout },
                                    Int32(hout), s.cell.projectionClip)
                            }
                            copy(nextHidden + b * hout, to: outRow, 0..<hout)
                        } else {
                            copy(hidden + b * hout, to: nextHidden + b * hout, 0..<hout)
                            outRow.update(repeating: 0, count: hout)
                        }
                    }
                }
                swap(&hidden, &nextHidden)
                swap(&cell, &nextCell)
            }
            self.writeFinalStates(job, hidden: hidden, cell: cell, rows: members, outputs: 0..<hout, units: 0..<h)
        }
    }
}

extension CPUBackend {
    /// Prepares one direction's backward with cell options; returns the per-thread recurrence
    /// (with the weight gradients) and the per-thread input-gradient product.
    func optionsBackwardBody(
        _ job: DirectionBackward<CPUBackend>
    ) -> (recurrence: (Crew) -> Void, inputGradient: (Crew) -> Void, finish: () -> Void) {
        let s = job.shape
        let (steps, batch, h, hout, inputSize) = (
            s.sequenceLength, s.batch, s.hiddenSize, s.outputSize, s.layerInputSize
        )
        let (gateWidth, rows, gateCount) = (s.gateWidth, s.rows, s.cell.gateCount)
        let saved = job.activations, extra = job.activations.options!, w = job.weights
        var options = cellOptions(s, w, bias: summedBias(w, width: gateWidth))
        let gateGradients = job.gateGradients  // dL/ds [T·B, G·H]
        // dL/dz [T·B, G·H] (the biases' and γ's gradient): its own buffer only with layer norm.
        let preGradients = s.cell.layerNorm ? CPUBuffer(count: rows * gateWidth, zeroed: false) : nil
        let hiddenGradient = CPUBuffer(count: batch * hout)  // carried dL/dh
        let cellGradient = CPUBuffer(count: batch * h)  // carried dL/dc
        let previousHidden = CPUBuffer(count: batch * hout)  // dG(t)·W_hh
        let unprojectedGradient = CPUBuffer(count: batch * h)  // dL/dm
        let cellScratch = CPUBuffer(count: batch * h, zeroed: false)  // tanh(c) of each sequence's step
        let projectedGradients = s.projects ? CPUBuffer(count: rows * hout) : nil  // dL/dh(t), for dW_hr
        copyRows(job.finalHiddenGradient, into: hiddenGradient.pointer, rows: batch, width: hout)
        copyRows(job.finalCellGradient, into: cellGradient.pointer, rows: batch, width: h)
        let lengths = job.lengths, dy = job.outputGradient
        let projection = w.projectionWeights?.pointer
        let recurrentTransposed = packedTransposed(w.recurrentWeights, rows: gateWidth, width: hout).pointer
        let g = job.weightGradients

        let recurrence: (Crew) -> Void = { crew in
            let members = crew.share(batch), first = members.lowerBound
            let dh = hiddenGradient.pointer, dc = cellGradient.pointer, dm = unprojectedGradient.pointer
            for k in 0..<steps {
                let t = s.backwardStep(k, reverse: job.reverse)
                // dL/dh(t) = carried + the output's, through the projection clip.
                let stepHidden = projectedGradients.map { $0.pointer + t * batch * hout } ?? dm
                for b in members {
                    let dst = stepHidden + b * hout, row = t * batch + b
                    guard t < lengths[b] else { dst.update(repeating: 0, count: hout); continue }
                    dst.update(from: dh + b * hout, count: hout)
                    if let dy {
                        let src = dy.buffer.pointer + dy.offset + row * dy.rowStride
                        for j in 0..<hout { dst[j] += src[j] }
                    }
                    if let unclipped = extra.unclippedHidden {
                        lstm_clip_backward(dst, unclipped.pointer + row * hout, Int32(hout), s.cell.projectionClip)
                    }
                }
                if s.projects, let projection {
                    sgemm(
                        m: members.count, n: h, k: hout, a: stepHidden + first * hout, lda: hout,
                        b: projection, ldb: h, beta: 0, c: dm + first * h, ldc: h)
                }
                let dG = gateGradients.pointer + t * batch * gateWidth
                let dZ = preGradients.map { $0.pointer + t * batch * gateWidth }
                for b in members {
                    let row = t * batch + b
                    guard t < lengths[b] else {  // padding: dG = dZ = 0 (the weight gradients read every row)
                        (dG + b * gateWidth).update(repeating: 0, count: gateWidth)
                        dZ.map { ($0 + b * gateWidth).update(repeating: 0, count: gateWidth) }
                        continue
                    }
                    lstm_cell_options_backward(
                        &options, saved.gates.pointer + row * gateWidth, extra.preActivations.pointer + row * gateWidth,
                        extra.normalized.map { $0.pointer + row * gateWidth },
                        extra.inverseDeviation.map { $0.pointer + row * gateCount },
                        saved.previousCell.pointer + row * h, saved.cell.pointer + row * h,
                        extra.unclippedCell.map { $0.pointer + row * h }, dm + b * h, dc + b * h,
                        dG + b * gateWidth, dZ.map { $0 + b * gateWidth }, cellScratch.pointer + b * h)
                }
                // dL/dh(prev) = dG(t) · W_hh; padded sequences carry theirs.
                (previousHidden.pointer + first * hout).update(repeating: 0, count: members.count * hout)
                lstm_gemm_packed(
                    Int32(members.count), Int32(hout), Int32(gateWidth), dG + first * gateWidth, Int32(gateWidth),
                    recurrentTransposed, previousHidden.pointer + first * hout, Int32(hout))
                for b in members where t < lengths[b] {
                    copy(previousHidden.pointer + b * hout, to: dh + b * hout, 0..<hout)
                }
            }
            for b in members {
                let gh = job.initialHiddenGradient, gc = job.initialCellGradient
                copy(dh + b * hout, to: gh.buffer.pointer + gh.offset + b * gh.rowStride, 0..<hout)
                copy(dc + b * h, to: gc.buffer.pointer + gc.offset + b * gc.rowStride, 0..<h)
            }
            crew.sync()  // dG complete for every step
            // Weight gradients: this member's gate rows, one sgemm each over all T·B rows.
            let columns = crew.share(gateWidth)
            sgemm(
                transposeA: true, m: columns.count, n: inputSize, k: rows,
                a: gateGradients.pointer + columns.lowerBound,
                lda: gateWidth, b: job.input.buffer.pointer + job.input.offset, ldb: job.input.rowStride,
                beta: 0, c: g.inputWeights.pointer + columns.lowerBound * inputSize, ldc: inputSize)
            sgemm(
                transposeA: true, m: columns.count, n: hout, k: rows, a: gateGradients.pointer + columns.lowerBound,
                lda: gateWidth, b: saved.previousHidden.pointer, ldb: hout,
                beta: 0, c: g.recurrentWeights.pointer + columns.lowerBound * hout, ldc: hout)
            if let bias = g.bias {
                sumColumns(
                    (preGradients ?? gateGradients).pointer, rows: rows, width: gateWidth, columns: columns,
                    into: bias.pointer)
            }
            if let dwhr = g.projectionWeights, let projected = projectedGradients, let m = saved.unprojected {
                let outputs = crew.share(hout)
                sgemm(
                    transposeA: true, m: outputs.count, n: h, k: rows, a: projected.pointer + outputs.lowerBound,
                    lda: hout, b: m.pointer, ldb: h, beta: 0, c: dwhr.pointer + outputs.lowerBound * h, ldc: h)
            }
            self.perUnitGradients(job, units: crew.share(h), preGradients: preGradients)
        }
        let inputGradientProduct: (Crew) -> Void = { crew in
            guard let dx = job.inputGradient else { return }
            let share = crew.share(rows)
            sgemm(
                m: share.count, n: inputSize, k: gateWidth, a: gateGradients.pointer + share.lowerBound * gateWidth,
                lda: gateWidth, b: w.inputWeights.pointer, ldb: inputSize, beta: job.accumulateInputGradient ? 1 : 0,
                c: dx.buffer.pointer + dx.offset + share.lowerBound * dx.rowStride, ldc: dx.rowStride)
        }
        let finish = {
            var touched = [
                g.inputWeights, g.recurrentWeights, job.initialHiddenGradient.buffer, job.initialCellGradient.buffer,
            ]
            touched += [g.bias, g.projectionWeights, job.inputGradient?.buffer].compactMap { $0 }
            touched += (g.peepholes + g.layerNormWeights).compactMap { $0 }
            for buffer in touched { buffer.markModified() }
        }
        return (recurrence, inputGradientProduct, finish)
    }

    /// The peepholes' and layer-norm weights' gradients of `units`, summed over the valid rows:
    /// dp_i = Σ ds_i ⊙ c(prev), dp_f = Σ ds_f ⊙ c(prev), dp_o = Σ ds_o ⊙ c(t), dγ_q = Σ dz_q ⊙ x̂_q.
    /// Padded rows are skipped (their saved values are never written).
    func perUnitGradients(_ job: DirectionBackward<CPUBackend>, units: Range<Int>, preGradients: CPUBuffer?) {
        let s = job.shape, g = job.weightGradients, saved = job.activations
        let (h, batch, gateWidth) = (s.hiddenSize, s.batch, s.gateWidth)
        let cifg = s.cell.coupledInputForget
        /// The column of unit j of gate q (0 i, 1 f, 2 g, 3 o) in a row of G·H.
        func column(_ q: Int, _ j: Int) -> Int { (cifg ? q - 1 : q) * h + j }
        var sums: [(gradient: CPUBuffer, a: CPUBuffer, gate: Int, b: CPUBuffer, width: Int)] = []
        for (index, gate) in [0, 1, 3].enumerated() where index < g.peepholes.count {
            guard let gradient = g.peepholes[index] else { continue }
            sums.append((gradient, job.gateGradients, gate, gate == 3 ? saved.cell : saved.previousCell, h))
        }
        if let dZ = preGradients ?? (s.cell.layerNorm ? job.gateGradients : nil),
            let normalized = saved.options?.normalized
        {
            for gate in 0..<4 where gate < g.layerNormWeights.count {
                guard let gradient = g.layerNormWeights[gate] else { continue }
                sums.append((gradient, dZ, gate, normalized, gateWidth))
            }
        }
        // Rows outer, units inner: both operands are contiguous over the units.
        let (first, count) = (units.lowerBound, units.count)
        for sum in sums {
            let total = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
            defer { total.deallocate() }
            total.update(repeating: 0, count: count)
            let aColumn = column(sum.gate, first)
            for t in 0..<s.sequenceLength {
                for b in 0..<batch where t < job.lengths[b] {
                    let row = t * batch + b
                    let a = sum.a.pointer + row * gateWidth + aColumn
                    let other = sum.b.pointer + (sum.width == h ? row * h + first : row * gateWidth + aColumn)
                    for k in 0..<count { total[k] += a[k] * other[k] }
                }
            }
            (sum.gradient.pointer + first).update(from: total, count: count)
        }
    }
}
