import Foundation

/// A float32 array in host memory (16-byte aligned, zero-filled).
public final class CPUBuffer {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int
    init(count: Int) {
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 4, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }
    deinit { pointer.deallocate() }
}

/// The reference backend: OpenBLAS for the matrix products, SIMD for the fused cell math.
///
/// Per direction: the input projection of all T steps is one sgemm [T·B, In] × [In, 4H]
/// into the gate buffer (biases folded in); each step adds one recurrent sgemm
/// [B, Hout] × [Hout, 4H] in place and runs the fused activations + cell update in one
/// pass. The backward's weight gradients are one sgemm each over all T·B rows. No
/// allocation happens inside the step loop.
public final class CPUBackend: LSTMBackend {
    public typealias Buffer = CPUBuffer
    public typealias Lengths = [Int]

    public init() {}
    public var name: String { "cpu" }

    public func makeBuffer(count: Int) throws -> CPUBuffer {
        guard count >= 0 else { throw LSTMError.invalidArgument("buffer of \(count) floats") }
        return CPUBuffer(count: count)
    }

    public func write(_ values: [Float], to buffer: CPUBuffer, offset: Int) throws {
        guard offset >= 0, offset + values.count <= buffer.count else {
            throw LSTMError.invalidArgument("write of \(values.count) floats at \(offset) into a buffer of \(buffer.count)")
        }
        values.withUnsafeBufferPointer { (buffer.pointer + offset).update(from: $0.baseAddress!, count: values.count) }
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
    }

    public func synchronize() throws {}
    public var memoryCapacity: Int { Int(clamping: ProcessInfo.processInfo.physicalMemory) }

    public func forward(_ job: DirectionForward<CPUBackend>) throws {
        let s = job.shape
        let (steps, batch, h, hout) = (s.steps, s.batch, s.hiddenSize, s.outputSize)
        let gateWidth = 4 * h
        let w = job.weights
        // Gate pre-activations of all steps: bias, then += X · W_ih^T (one sgemm).
        let gates = job.activations?.gates ?? CPUBuffer(count: steps * batch * gateWidth)
        fillBias(gates.pointer, rows: steps * batch, width: gateWidth, w.inputBias, w.recurrentBias)
        sgemm(transposeB: true, m: steps * batch, n: gateWidth, k: s.inputSize,
              a: job.input.buffer.pointer + job.input.offset, lda: job.input.rowStride,
              b: w.inputWeights.pointer, ldb: s.inputSize, beta: 1, c: gates.pointer, ldc: gateWidth)

        // Double-buffered state and per-step scratch, allocated once.
        var hidden = CPUBuffer(count: batch * hout), nextHidden = CPUBuffer(count: batch * hout)
        var cell = CPUBuffer(count: batch * h), nextCell = CPUBuffer(count: batch * h)
        let unprojected = s.projects ? CPUBuffer(count: batch * h) : nil
        copyRows(job.initialHidden, into: hidden.pointer, rows: batch, width: hout)
        copyRows(job.initialCell, into: cell.pointer, rows: batch, width: h)

        for k in 0..<steps {
            let t = job.reverse ? steps - 1 - k : k
            let g = gates.pointer + t * batch * gateWidth
            if let saved = job.activations {
                (saved.previousHidden.pointer + t * batch * hout).update(from: hidden.pointer, count: batch * hout)
                (saved.previousCell.pointer + t * batch * h).update(from: cell.pointer, count: batch * h)
            }
            sgemm(transposeB: true, m: batch, n: gateWidth, k: hout, a: hidden.pointer, lda: hout,
                  b: w.recurrentWeights.pointer, ldb: hout, beta: 1, c: g, ldc: gateWidth)
            let cellOut = job.activations.map { $0.cell.pointer + t * batch * h }
            for b in 0..<batch where t < job.lengths[b] {
                let r = (unprojected ?? nextHidden).pointer + b * (s.projects ? h : hout)
                cellForwardRow(gates: g + b * gateWidth, previousCell: cell.pointer + b * h,
                               cell: nextCell.pointer + b * h, hidden: r, hiddenSize: h)
                cellOut.map { ($0 + b * h).update(from: nextCell.pointer + b * h, count: h) }
            }
            if let unprojected, let whr = w.projectionWeights {
                for b in 0..<batch where t >= job.lengths[b] { (unprojected.pointer + b * h).update(repeating: 0, count: h) }
                sgemm(transposeB: true, m: batch, n: hout, k: h, a: unprojected.pointer, lda: h,
                      b: whr.pointer, ldb: h, beta: 0, c: nextHidden.pointer, ldc: hout)
                job.activations?.unprojected.map {
                    ($0.pointer + t * batch * h).update(from: unprojected.pointer, count: batch * h)
                }
            }
            let out = job.output
            for b in 0..<batch {
                let dst = out.buffer.pointer + out.offset + (t * batch + b) * out.rowStride
                if t < job.lengths[b] {
                    dst.update(from: nextHidden.pointer + b * hout, count: hout)
                } else {
                    dst.update(repeating: 0, count: hout)
                    (nextHidden.pointer + b * hout).update(from: hidden.pointer + b * hout, count: hout)
                    (nextCell.pointer + b * h).update(from: cell.pointer + b * h, count: h)
                }
            }
            swap(&hidden, &nextHidden)
            swap(&cell, &nextCell)
        }
        copyRows(from: hidden.pointer, into: job.finalHidden, rows: batch, width: hout)
        copyRows(from: cell.pointer, into: job.finalCell, rows: batch, width: h)
    }

    public func backward(_ job: DirectionBackward<CPUBackend>) throws {
        let s = job.shape
        let (steps, batch, h, hout) = (s.steps, s.batch, s.hiddenSize, s.outputSize)
        let gateWidth = 4 * h
        let rows = steps * batch
        let saved = job.activations, w = job.weights
        let gateGradients = CPUBuffer(count: rows * gateWidth)
        let hiddenGradient = CPUBuffer(count: batch * hout)     // carried dL/dh
        let cellGradient = CPUBuffer(count: batch * h)          // carried dL/dc
        let stepHidden = CPUBuffer(count: batch * hout)         // dL/dh(t) incl. the output's
        let unprojectedGradient = s.projects ? CPUBuffer(count: batch * h) : nil
        let projectedGradients = s.projects ? CPUBuffer(count: rows * hout) : nil  // for dW_hr
        let previousHidden = CPUBuffer(count: batch * hout)
        copyRows(job.finalHiddenGradient, into: hiddenGradient.pointer, rows: batch, width: hout)
        copyRows(job.finalCellGradient, into: cellGradient.pointer, rows: batch, width: h)

        for k in 0..<steps {
            let t = job.reverse ? k : steps - 1 - k     // the forward's order, reversed
            for b in 0..<batch {
                let dst = stepHidden.pointer + b * hout
                if t < job.lengths[b] {
                    dst.update(from: hiddenGradient.pointer + b * hout, count: hout)
                    if let dy = job.outputGradient {
                        let src = dy.buffer.pointer + dy.offset + (t * batch + b) * dy.rowStride
                        for j in 0..<hout { dst[j] += src[j] }
                    }
                } else {
                    dst.update(repeating: 0, count: hout)
                }
            }
            var r = stepHidden.pointer
            if let unprojectedGradient, let projected = projectedGradients, let whr = w.projectionWeights {
                (projected.pointer + t * batch * hout).update(from: stepHidden.pointer, count: batch * hout)
                sgemm(m: batch, n: h, k: hout, a: stepHidden.pointer, lda: hout, b: whr.pointer, ldb: h,
                      beta: 0, c: unprojectedGradient.pointer, ldc: h)
                r = unprojectedGradient.pointer
            }
            let dG = gateGradients.pointer + t * batch * gateWidth
            for b in 0..<batch where t < job.lengths[b] {
                let row = (t * batch + b)
                cellBackwardRow(gates: saved.gates.pointer + row * gateWidth, cell: saved.cell.pointer + row * h,
                                previousCell: saved.previousCell.pointer + row * h, hiddenGradient: r + b * h,
                                cellGradient: cellGradient.pointer + b * h, gateGradients: dG + b * gateWidth,
                                hiddenSize: h)
            }
            // dL/dh(prev) = dG(t) · W_hh for running sequences; padded ones carry theirs through.
            sgemm(m: batch, n: hout, k: gateWidth, a: dG, lda: gateWidth, b: w.recurrentWeights.pointer, ldb: hout,
                  beta: 0, c: previousHidden.pointer, ldc: hout)
            for b in 0..<batch where t < job.lengths[b] {
                (hiddenGradient.pointer + b * hout).update(from: previousHidden.pointer + b * hout, count: hout)
            }
        }
        copyRows(from: hiddenGradient.pointer, into: job.initialHiddenGradient, rows: batch, width: hout)
        copyRows(from: cellGradient.pointer, into: job.initialCellGradient, rows: batch, width: h)

        // Weight gradients: one sgemm each over all T·B rows.
        let g = job.weightGradients
        sgemm(transposeA: true, m: gateWidth, n: s.inputSize, k: rows, a: gateGradients.pointer, lda: gateWidth,
              b: job.input.buffer.pointer + job.input.offset, ldb: job.input.rowStride,
              beta: 0, c: g.inputWeights.pointer, ldc: s.inputSize)
        sgemm(transposeA: true, m: gateWidth, n: hout, k: rows, a: gateGradients.pointer, lda: gateWidth,
              b: saved.previousHidden.pointer, ldb: hout, beta: 0, c: g.recurrentWeights.pointer, ldc: hout)
        if let bias = g.bias {
            columnSums(gateGradients.pointer, rows: rows, width: gateWidth, into: bias.pointer)
        }
        if let dwhr = g.projectionWeights, let projected = projectedGradients, let r = saved.unprojected {
            sgemm(transposeA: true, m: hout, n: h, k: rows, a: projected.pointer, lda: hout, b: r.pointer, ldb: h,
                  beta: 0, c: dwhr.pointer, ldc: h)
        }
        if let dx = job.inputGradient {
            sgemm(m: rows, n: s.inputSize, k: gateWidth, a: gateGradients.pointer, lda: gateWidth,
                  b: w.inputWeights.pointer, ldb: s.inputSize, beta: job.accumulateInputGradient ? 1 : 0,
                  c: dx.buffer.pointer + dx.offset, ldc: dx.rowStride)
        }
    }

    // MARK: helpers

    private func fillBias(_ gates: UnsafeMutablePointer<Float>, rows: Int, width: Int, _ a: CPUBuffer?, _ b: CPUBuffer?) {
        guard a != nil || b != nil else { gates.update(repeating: 0, count: rows * width); return }
        let sum = CPUBuffer(count: width)
        for j in 0..<width { sum.pointer[j] = (a?.pointer[j] ?? 0) + (b?.pointer[j] ?? 0) }
        for r in 0..<rows { (gates + r * width).update(from: sum.pointer, count: width) }
    }

    private func columnSums(_ m: UnsafePointer<Float>, rows: Int, width: Int, into out: UnsafeMutablePointer<Float>) {
        out.update(repeating: 0, count: width)
        for r in 0..<rows {
            let row = m + r * width
            var j = 0
            while j + vectorWidth <= width { store(load(out + j) + load(row + j), out + j); j += vectorWidth }
            while j < width { out[j] += row[j]; j += 1 }
        }
    }

    private func copyRows(_ view: MatrixView<CPUBuffer>?, into dst: UnsafeMutablePointer<Float>, rows: Int, width: Int) {
        guard let view else { dst.update(repeating: 0, count: rows * width); return }
        for r in 0..<rows {
            (dst + r * width).update(from: view.buffer.pointer + view.offset + r * view.rowStride, count: width)
        }
    }

    private func copyRows(from src: UnsafePointer<Float>, into view: MatrixView<CPUBuffer>, rows: Int, width: Int) {
        for r in 0..<rows {
            (view.buffer.pointer + view.offset + r * view.rowStride).update(from: src + r * width, count: width)
        }
    }
}
