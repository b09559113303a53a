@_spi(Backend) import LSTMCore

/// The OpenCL options path: the general cell (`LSTMCellOptions`) for one direction, forward
/// and backward. Per step: the recurrent product as a GEMM into the step's gate sums, one
/// launch of the cell (`lstm_options.cl`, a work-group per sequence, so layer norm can sum a
/// gate's H units in local memory), and with projection a GEMM and its finishing launch. The
/// weight gradients are GEMMs over all T·B rows, as on the plain path. The kernels' launchers
/// are in OpenCLOptionsKernels.swift.
extension OpenCLBackend {
    /// `vectors` ([H] each, nil where a gate has none) side by side in one zero-filled buffer
    /// [count·H], as the kernels read peepholes (i, f, o) and layer-norm weights (i, f, g, o).
    private func packed(_ vectors: [OpenCLBuffer?], count: Int, hiddenSize h: Int) throws -> OpenCLBuffer {
        let buffer = try makeBuffer(count: count * h)
        for (index, vector) in vectors.enumerated() {
            guard let vector else { continue }
            try copyRows(
                from: MatrixView(vector, rowStride: h), to: MatrixView(buffer, offset: index * h, rowStride: h),
                rows: 1, width: h)
        }
        return buffer
    }

    @_spi(Backend) public func optionsForward(_ job: DirectionForward<OpenCLBackend>) throws {
        let s = job.shape, c = s.cell, w = job.weights
        let (steps, batch, h, hout, gateWidth) = (s.sequenceLength, s.batch, s.hiddenSize, s.outputSize, s.gateWidth)
        let saved = job.activations, extra = job.activations?.options
        let gates = try saved?.gates ?? makeScratchBuffer(count: s.rows * gateWidth)  // fillBias writes all
        // The sums: biases here without layer norm (with it they come after the normalisation).
        try fillBias(
            gates, rows: s.rows, width: gateWidth, inputBias: c.layerNorm ? nil : w.inputBias,
            recurrentBias: c.layerNorm ? nil : w.recurrentBias)
        try gemm(
            transposeB: true, m: s.rows, n: gateWidth, k: s.layerInputSize, a: job.input,
            b: MatrixView(w.inputWeights, rowStride: s.layerInputSize), beta: 1,
            c: MatrixView(gates, rowStride: gateWidth))
        let bias = try makeBuffer(count: gateWidth)
        if c.layerNorm {
            try fillBias(bias, rows: 1, width: gateWidth, inputBias: w.inputBias, recurrentBias: w.recurrentBias)
        }
        let peepholes = try packed(w.peepholes, count: 3, hiddenSize: h)
        let gamma = try packed(w.layerNormWeights, count: 4, hiddenSize: h)
        // What the cell writes on the way: saved, or per-step scratch indexed by sequence.
        let pre = try extra?.preActivations ?? makeScratchBuffer(count: batch * gateWidth)
        let normalized = try extra?.normalized ?? makeScratchBuffer(count: c.layerNorm ? batch * gateWidth : 1)
        let deviation = try extra?.inverseDeviation ?? makeScratchBuffer(count: batch * c.gateCount)
        let unclippedCell = try extra?.unclippedCell ?? makeScratchBuffer(count: 1)
        let unclippedHidden = try extra?.unclippedHidden ?? makeScratchBuffer(count: 1)
        let placeholder = try makeScratchBuffer(count: 1)  // for the saved buffers of an inference run

        var hidden = try contiguous(job.initialHidden, rows: batch, width: hout)
        var cell = try contiguous(job.initialCell, rows: batch, width: h)
        var nextHidden = try makeScratchBuffer(count: batch * hout), nextCell = try makeScratchBuffer(count: batch * h)
        let unprojected = s.projects ? try makeScratchBuffer(count: batch * h) : nil
        let out = job.output
        for k in 0..<steps {
            let t = s.forwardStep(k, reverse: job.reverse)
            try gemm(
                transposeB: true, m: batch, n: gateWidth, k: hout, a: MatrixView(hidden, rowStride: hout),
                b: MatrixView(w.recurrentWeights, rowStride: hout), beta: 1,
                c: MatrixView(gates, offset: t * batch * gateWidth, rowStride: gateWidth))
            try optionsForwardCell(
                shape: s, step: t, gates: gates, preActivations: pre, normalized: normalized,
                inverseDeviation: deviation, unclippedCell: unclippedCell, peepholes: peepholes,
                layerNormWeights: gamma, bias: bias, hidden: hidden, cell: cell, nextHidden: unprojected ?? nextHidden,
                nextCell: nextCell, output: out, lengths: job.lengths, saved: saved, placeholder: placeholder)
            if let unprojected, let projection = w.projectionWeights {
                try gemm(
                    transposeB: true, m: batch, n: hout, k: h, a: MatrixView(unprojected, rowStride: h),
                    b: MatrixView(projection, rowStride: h), beta: 0, c: MatrixView(nextHidden, rowStride: hout))
                try optionsProjectFinish(
                    shape: s, step: t, save: saved != nil, nextHidden: nextHidden, hidden: hidden,
                    unclippedHidden: unclippedHidden, output: out, lengths: job.lengths)
            }
            swap(&hidden, &nextHidden)
            swap(&cell, &nextCell)
        }
        try copyRows(from: MatrixView(hidden, rowStride: hout), to: job.finalHidden, rows: batch, width: hout)
        try copyRows(from: MatrixView(cell, rowStride: h), to: job.finalCell, rows: batch, width: h)
    }

    @_spi(Backend) public func optionsBackward(_ job: DirectionBackward<OpenCLBackend>) throws {
        let s = job.shape, c = s.cell, w = job.weights
        let (steps, batch, h, hout, gateWidth, rows) = (
            s.sequenceLength, s.batch, s.hiddenSize, s.outputSize, s.gateWidth, s.rows
        )
        let saved = job.activations
        guard let extra = saved.options else {
            throw LSTMError.invalidArgument("the forward of a cell with options kept no option activations")
        }
        let peepholes = try packed(w.peepholes, count: 3, hiddenSize: h)
        let gamma = try packed(w.layerNormWeights, count: 4, hiddenSize: h)
        let placeholder = try makeScratchBuffer(count: 1)
        let gateGradients = job.gateGradients  // dL/ds
        let preGradients = c.layerNorm ? try makeScratchBuffer(count: rows * gateWidth) : placeholder  // dL/dz
        let hiddenGradient = try contiguous(job.finalHiddenGradient, rows: batch, width: hout)
        let cellGradient = try contiguous(job.finalCellGradient, rows: batch, width: h)
        let previousHidden = try makeScratchBuffer(count: batch * hout)  // dG(t)·W_hh
        let unprojectedGradient = try makeScratchBuffer(count: batch * h)  // dL/dm
        let projectedGradients = s.projects ? try makeScratchBuffer(count: rows * hout) : nil
        let dy = job.outputGradient
        for k in 0..<steps {
            let t = s.backwardStep(k, reverse: job.reverse)
            try optionsHiddenGradient(
                shape: s, step: t, hiddenGradient: hiddenGradient, outputGradient: dy,
                unclippedHidden: extra.unclippedHidden, into: projectedGradients ?? unprojectedGradient,
                offset: projectedGradients == nil ? 0 : t * batch * hout, lengths: job.lengths, placeholder: placeholder
            )
            if let projectedGradients, let projection = w.projectionWeights {
                try gemm(
                    m: batch, n: h, k: hout,
                    a: MatrixView(projectedGradients, offset: t * batch * hout, rowStride: hout),
                    b: MatrixView(projection, rowStride: h), beta: 0, c: MatrixView(unprojectedGradient, rowStride: h))
            }
            try optionsBackwardCell(
                shape: s, step: t, saved: saved, options: extra, peepholes: peepholes, layerNormWeights: gamma,
                unprojectedGradient: unprojectedGradient, cellGradient: cellGradient, gateGradients: gateGradients,
                preActivationGradients: preGradients, lengths: job.lengths, placeholder: placeholder)
            try gemm(
                m: batch, n: hout, k: gateWidth,
                a: MatrixView(gateGradients, offset: t * batch * gateWidth, rowStride: gateWidth),
                b: MatrixView(w.recurrentWeights, rowStride: hout), beta: 0,
                c: MatrixView(previousHidden, rowStride: hout))
            try optionsCarryHidden(
                shape: s, step: t, source: previousHidden, hiddenGradient: hiddenGradient, lengths: job.lengths)
        }
        try copyRows(
            from: MatrixView(hiddenGradient, rowStride: hout), to: job.initialHiddenGradient, rows: batch, width: hout)
        try copyRows(from: MatrixView(cellGradient, rowStride: h), to: job.initialCellGradient, rows: batch, width: h)

        try weightAndInputGradients(
            job, projectedGradients: projectedGradients, biasGradients: c.layerNorm ? preGradients : gateGradients)
        let g = job.weightGradients
        if c.peepholes || c.layerNorm {
            let peepholeGradients = try makeBuffer(count: 3 * h), gammaGradients = try makeBuffer(count: 4 * h)
            try optionsUnitGradients(
                shape: s, gateGradients: gateGradients, preActivationGradients: preGradients, saved: saved,
                normalized: extra.normalized, lengths: job.lengths, peepholeGradients: peepholeGradients,
                layerNormWeightGradients: gammaGradients, placeholder: placeholder)
            for (index, gradient) in g.peepholes.enumerated() {
                guard let gradient else { continue }
                try copyRows(
                    from: MatrixView(peepholeGradients, offset: index * h, rowStride: h),
                    to: MatrixView(gradient, rowStride: h), rows: 1, width: h)
            }
            for (index, gradient) in g.layerNormWeights.enumerated() {
                guard let gradient else { continue }
                try copyRows(
                    from: MatrixView(gammaGradients, offset: index * h, rowStride: h),
                    to: MatrixView(gradient, rowStride: h), rows: 1, width: h)
            }
        }
    }
}
