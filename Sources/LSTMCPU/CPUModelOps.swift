import Foundation
@_spi(Backend) import LSTMCore

extension CPUBackend: ModelOps {
    public typealias Indices = [Int32]

    public func makeIndices(_ values: [Int]) throws -> [Int32] { values.map { Int32(truncatingIfNeeded: $0) } }

    public func indexValues(_ indices: [Int32]) -> [Int] { indices.map(Int.init) }

    @_spi(Backend) public func gemm(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        a: MatrixView<CPUBuffer>, b: MatrixView<CPUBuffer>, beta: Float, c: MatrixView<CPUBuffer>
    ) throws {
        // Large products are split by rows of C over the team (OpenBLAS is single-threaded here).
        let flops = m * n * k
        if flops < 1 << 20 || team.size == 1 || m < 2 * team.size {
            sgemm(
                transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
                a: a.buffer.pointer + a.offset, lda: a.rowStride, b: b.buffer.pointer + b.offset, ldb: b.rowStride,
                beta: beta, c: c.buffer.pointer + c.offset, ldc: c.rowStride)
        } else {
            team.run { _, crew in
                let rows = crew.share(m)
                let aStart = transposeA ? a.offset + rows.lowerBound : a.offset + rows.lowerBound * a.rowStride
                sgemm(
                    transposeA: transposeA, transposeB: transposeB, m: rows.count, n: n, k: k, alpha: alpha,
                    a: a.buffer.pointer + aStart, lda: a.rowStride, b: b.buffer.pointer + b.offset, ldb: b.rowStride,
                    beta: beta, c: c.buffer.pointer + c.offset + rows.lowerBound * c.rowStride, ldc: c.rowStride)
            }
        }
        c.buffer.markModified()
    }

    public func gatherRows(_ table: CPUBuffer, width: Int, indices: [Int32], count: Int, into out: CPUBuffer) throws {
        for i in 0..<count {
            (out.pointer + i * width).update(from: table.pointer + Int(indices[i]) * width, count: width)
        }
        out.markModified()
    }

    public func scatterAddRows(
        _ src: CPUBuffer, width: Int, indices: [Int32], count: Int, rows: Int, into table: CPUBuffer
    ) throws {
        for i in 0..<count {
            let dst = table.pointer + Int(indices[i]) * width, s = src.pointer + i * width
            for j in 0..<width { dst[j] += s[j] }
        }
        table.markModified()
    }

    public func addRowVector(_ vector: CPUBuffer, to matrix: CPUBuffer, rows: Int, width: Int) throws {
        for r in 0..<rows {
            let row = matrix.pointer + r * width
            for j in 0..<width { row[j] += vector.pointer[j] }
        }
        matrix.markModified()
    }

    public func columnSums(_ matrix: CPUBuffer, rows: Int, width: Int, into out: CPUBuffer) throws {
        sumColumns(matrix.pointer, rows: rows, width: width, columns: 0..<width, into: out.pointer)
        out.markModified()
    }

    public func softmaxCrossEntropy(
        logits: CPUBuffer, rows: Int, classes: Int, targets: [Int32], ignoreIndex: Int,
        gradient: CPUBuffer, loss: CPUBuffer, lossSlot: Int
    ) throws {
        let counted = targets.prefix(rows).filter { Int($0) != ignoreIndex }.count
        let scale = counted > 0 ? 1 / Float(counted) : 0
        var total: Double = 0
        for r in 0..<rows {
            let x = logits.pointer + r * classes, g = gradient.pointer + r * classes
            let target = Int(targets[r])
            if target == ignoreIndex { g.update(repeating: 0, count: classes); continue }
            var top = -Float.infinity
            for j in 0..<classes { top = max(top, x[j]) }
            var sum: Float = 0
            for j in 0..<classes { let e = Foundation.exp(x[j] - top); g[j] = e; sum += e }
            total += Double(Foundation.log(sum) + top - x[target])
            for j in 0..<classes { g[j] = g[j] / sum * scale }
            g[target] -= scale
        }
        loss.pointer[lossSlot] = Float(total * Double(scale))
        gradient.markModified(); loss.markModified()
    }

    public func meanSquaredError(
        prediction: CPUBuffer, target: CPUBuffer, count: Int, gradient: CPUBuffer,
        loss: CPUBuffer, lossSlot: Int
    ) throws {
        var total: Double = 0
        let scale = 2 / Float(max(count, 1))
        for i in 0..<count {
            let d = prediction.pointer[i] - target.pointer[i]
            total += Double(d * d)
            gradient.pointer[i] = scale * d
        }
        loss.pointer[lossSlot] = Float(total / Double(max(count, 1)))
        gradient.markModified(); loss.markModified()
    }

    public func dropoutMask(
        count: Int, probability: Float, seed: UInt64, layout: DropoutLayout, into mask: CPUBuffer
    ) throws {
        for i in 0..<count {
            mask.pointer[i] = dropoutMaskValue(index: i, probability: probability, seed: seed, layout: layout)
        }
        mask.markModified()
    }

    public func multiply(_ a: CPUBuffer, _ b: CPUBuffer, into out: CPUBuffer, count: Int) throws {
        for i in 0..<count { out.pointer[i] = a.pointer[i] * b.pointer[i] }
        out.markModified()
    }

    public func sumOfSquares(_ x: CPUBuffer, count: Int, into sums: CPUBuffer, slot: Int) throws {
        var total: Float = 0
        for i in 0..<count { total += x.pointer[i] * x.pointer[i] }
        sums.pointer[slot] = total
        sums.markModified()
    }

    public func clipByNorm(_ x: CPUBuffer, count: Int, sums: CPUBuffer, slots: Int, maxNorm: Float) throws {
        var total: Float = 0
        for s in 0..<slots { total += sums.pointer[s] }
        let factor = maxNorm / (total.squareRoot() + 1e-6)
        guard factor < 1 else { return }
        for i in 0..<count { x.pointer[i] *= factor }
        x.markModified()
    }

    public func sgdStep(
        parameter: CPUBuffer, gradient: CPUBuffer, momentumBuffer: CPUBuffer?, count: Int,
        learningRate: Float, momentum: Float, nesterov: Bool, weightDecay: Float
    ) throws {
        let p = parameter.pointer, g = gradient.pointer
        for i in 0..<count {
            var d = g[i] + weightDecay * p[i]
            if let buffer = momentumBuffer?.pointer {
                buffer[i] = momentum * buffer[i] + d
                d = nesterov ? d + momentum * buffer[i] : buffer[i]
            }
            p[i] -= learningRate * d
        }
        parameter.markModified(); momentumBuffer?.markModified()
    }

    public func adamStep(
        parameter: CPUBuffer, gradient: CPUBuffer, firstMoment: CPUBuffer, secondMoment: CPUBuffer,
        count: Int, learningRate: Float, beta1: Float, beta2: Float, epsilon: Float, weightDecay: Float,
        decoupled: Bool, biasCorrection1: Float, biasCorrection2: Float
    ) throws {
        let p = parameter.pointer, g = gradient.pointer, m = firstMoment.pointer, v = secondMoment.pointer
        let stepSize = learningRate / biasCorrection1, root = biasCorrection2.squareRoot()
        for i in 0..<count {
            var d = g[i]
            if decoupled { p[i] *= 1 - learningRate * weightDecay } else { d += weightDecay * p[i] }
            m[i] = beta1 * m[i] + (1 - beta1) * d
            v[i] = beta2 * v[i] + (1 - beta2) * d * d
            p[i] -= stepSize * m[i] / (v[i].squareRoot() / root + epsilon)
        }
        parameter.markModified(); firstMoment.markModified(); secondMoment.markModified()
    }
}
