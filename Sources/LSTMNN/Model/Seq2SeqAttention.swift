import Foundation
@_spi(Backend) import LSTMCore

/// Luong's global dot attention (Luong et al. 2015, "dot" score, no input feeding) over an
/// encoder's outputs, as `Seq2Seq` uses it between the decoder and the output layer.
///
/// For each sentence b and decoder step t, with decoder output hₜ [H] and encoder outputs
/// h̄ₛ [H] for the valid source steps s < lengths[b]:
///
///     score(t, s) = hₜ · h̄ₛ          α(t, ·) = softmax over s < lengths[b] (0 elsewhere)
///     cₜ = Σₛ α(t, s) h̄ₛ             h̃ₜ = tanh(W [cₜ; hₜ] + bias)
///
/// with `weight` W [H, 2H] (context columns first) and `bias` [H]: PyTorch's
/// `torch.tanh(nn.Linear(2H, H)(torch.cat([context, h], -1)))`. Scores and contexts are
/// one GEMM per sentence on the backend over strided views of the [T, B, H] / [S, B, H]
/// sequences; the masked softmax and the tanh run on the host (their inputs and outputs,
/// [B, T, S] and [T, B, H], travel to and from the device).
public final class LuongAttention<Backend: ModelOps> {
    public let backend: Backend
    /// H.
    public let hiddenSize: Int
    /// W [H, 2H], "weight" (a container prefixes it).
    public let weight: Parameter<Backend.Buffer>
    /// [H], "bias".
    public let bias: Parameter<Backend.Buffer>
    private var saved: Saved?

    private struct Saved {
        let decoded: Backend.Buffer, memory: Backend.Buffer, context: Backend.Buffer
        let weights: [Float], weightsBuffer: Backend.Buffer, output: [Float]
        let steps: Int, sourceSteps: Int, batch: Int
    }

    /// Weight and bias drawn U(−1/√(2H), 1/√(2H)) from `seed` (`nn.Linear(2H, H)`).
    public init(backend: Backend, hiddenSize: Int, seed: UInt64) throws {
        self.backend = backend
        self.hiddenSize = hiddenSize
        var generator = SeededGenerator(seed: seed)
        let linear = try Linear(
            backend: backend, inputSize: 2 * hiddenSize, outputSize: hiddenSize, name: "", generator: &generator)
        (weight, bias) = (linear.weight, linear.bias)
    }

    public var parameters: [Parameter<Backend.Buffer>] { [weight, bias] }

    /// h̃ [T, B, H] from the decoder's outputs `decoded` [T, B, H] and the encoder's `memory`
    /// [S, B, H] with source `lengths` [B] (each in 1...S). With `training`, keeps what
    /// `backward` needs.
    public func forward(
        decoded: Backend.Buffer, steps: Int, memory: Backend.Buffer, sourceSteps: Int, lengths: [Int],
        training: Bool
    ) throws -> Backend.Buffer {
        let (h, batch) = (hiddenSize, lengths.count)
        let scores = try backend.makeBuffer(count: batch * steps * sourceSteps)
        for b in 0..<batch {
            try backend.gemm(
                transposeA: false, transposeB: true, m: steps, n: sourceSteps, k: h, alpha: 1,
                a: sequenceRows(decoded, b, batch), b: sequenceRows(memory, b, batch), beta: 0,
                c: MatrixView(scores, offset: b * steps * sourceSteps, rowStride: sourceSteps))
        }
        var weights = try backend.read(scores, offset: 0, count: batch * steps * sourceSteps)
        for row in 0..<(batch * steps) {
            let valid = lengths[row / steps], start = row * sourceSteps
            let top = weights[start..<(start + valid)].max()!
            var total = 0.0
            for s in 0..<sourceSteps {
                let e = s < valid ? Foundation.exp(Double(weights[start + s] - top)) : 0
                weights[start + s] = Float(e)
                total += e
            }
            for s in 0..<sourceSteps { weights[start + s] = Float(Double(weights[start + s]) / total) }
        }
        try backend.write(weights, to: scores, offset: 0)
        let context = try backend.makeBuffer(count: steps * batch * h)
        for b in 0..<batch {
            try backend.gemm(
                transposeA: false, transposeB: false, m: steps, n: h, k: sourceSteps, alpha: 1,
                a: MatrixView(scores, offset: b * steps * sourceSteps, rowStride: sourceSteps),
                b: sequenceRows(memory, b, batch), beta: 0, c: sequenceRows(context, b, batch))
        }
        let z = try backend.makeBuffer(count: steps * batch * h)
        for (input, column) in [(context, 0), (decoded, h)] {
            try backend.gemm(
                transposeA: false, transposeB: true, m: steps * batch, n: h, k: h, alpha: 1,
                a: MatrixView(input, rowStride: h), b: MatrixView(weight.value, offset: column, rowStride: 2 * h),
                beta: column == 0 ? 0 : 1, c: MatrixView(z, rowStride: h))
        }
        try backend.addRowVector(bias.value, to: z, rows: steps * batch, width: h)
        let output = try backend.read(z, offset: 0, count: steps * batch * h).map { Float(Foundation.tanh(Double($0))) }
        try backend.write(output, to: z, offset: 0)
        saved =
            training
            ? Saved(
                decoded: decoded, memory: memory, context: context, weights: weights, weightsBuffer: scores,
                output: output, steps: steps, sourceSteps: sourceSteps, batch: batch) : nil
        return z
    }

    /// From dL/dh̃ [T, B, H], sets the weight and bias gradients and returns dL/d(decoded)
    /// [T, B, H] and dL/d(memory) [S, B, H].
    /// - Throws: `LSTMError` without a training forward.
    public func backward(_ outputGradient: Backend.Buffer) throws -> (decoded: Backend.Buffer, memory: Backend.Buffer) {
        guard let s = saved else { throw backwardBeforeForward("LuongAttention") }
        let (h, rows, batch) = (hiddenSize, s.steps * s.batch, s.batch)
        let dOutput = try backend.read(outputGradient, offset: 0, count: rows * h)
        let dz = try backend.makeBuffer(count: rows * h)
        try backend.write(zip(dOutput, s.output).map { $0 * (1 - $1 * $1) }, to: dz, offset: 0)
        let dWeight = try backend.makeBuffer(count: h * 2 * h), dBias = try backend.makeBuffer(count: h)
        let dContext = try backend.makeBuffer(count: rows * h), dDecoded = try backend.makeBuffer(count: rows * h)
        for (input, gradient, column) in [(s.context, dContext, 0), (s.decoded, dDecoded, h)] {
            try backend.gemm(
                transposeA: true, transposeB: false, m: h, n: h, k: rows, alpha: 1, a: MatrixView(dz, rowStride: h),
                b: MatrixView(input, rowStride: h), beta: 0, c: MatrixView(dWeight, offset: column, rowStride: 2 * h))
            try backend.gemm(
                transposeA: false, transposeB: false, m: rows, n: h, k: h, alpha: 1, a: MatrixView(dz, rowStride: h),
                b: MatrixView(weight.value, offset: column, rowStride: 2 * h), beta: 0,
                c: MatrixView(gradient, rowStride: h))
        }
        try backend.columnSums(dz, rows: rows, width: h, into: dBias)
        (weight.gradient, bias.gradient) = (dWeight, dBias)
        // Through the context: dα = dc · h̄ᵀ, dh̄ = αᵀ · dc; then the softmax and the scores.
        let block = s.steps * s.sourceSteps
        let dWeights = try backend.makeBuffer(count: batch * block)
        let dMemory = try backend.makeBuffer(count: s.sourceSteps * batch * h)
        for b in 0..<batch {
            let alpha = MatrixView(s.weightsBuffer, offset: b * block, rowStride: s.sourceSteps)
            try backend.gemm(
                transposeA: false, transposeB: true, m: s.steps, n: s.sourceSteps, k: h, alpha: 1,
                a: sequenceRows(dContext, b, batch), b: sequenceRows(s.memory, b, batch), beta: 0,
                c: MatrixView(dWeights, offset: b * block, rowStride: s.sourceSteps))
            try backend.gemm(
                transposeA: true, transposeB: false, m: s.sourceSteps, n: h, k: s.steps, alpha: 1, a: alpha,
                b: sequenceRows(dContext, b, batch), beta: 0, c: sequenceRows(dMemory, b, batch))
        }
        var dScores = try backend.read(dWeights, offset: 0, count: batch * block)
        for row in 0..<(batch * s.steps) {
            let range = (row * s.sourceSteps)..<((row + 1) * s.sourceSteps)
            let dot = range.reduce(0.0) { $0 + Double(s.weights[$1] * dScores[$1]) }
            for i in range { dScores[i] = s.weights[i] * (dScores[i] - Float(dot)) }
        }
        try backend.write(dScores, to: dWeights, offset: 0)
        for b in 0..<batch {
            let scores = MatrixView(dWeights, offset: b * block, rowStride: s.sourceSteps)
            try backend.gemm(
                transposeA: false, transposeB: false, m: s.steps, n: h, k: s.sourceSteps, alpha: 1, a: scores,
                b: sequenceRows(s.memory, b, batch), beta: 1, c: sequenceRows(dDecoded, b, batch))
            try backend.gemm(
                transposeA: true, transposeB: false, m: s.sourceSteps, n: h, k: s.steps, alpha: 1, a: scores,
                b: sequenceRows(s.decoded, b, batch), beta: 1, c: sequenceRows(dMemory, b, batch))
        }
        saved = nil
        return (dDecoded, dMemory)
    }

    /// Sentence b's rows [steps, H] of a sequence [steps, B, H]: a strided view.
    private func sequenceRows(_ buffer: Backend.Buffer, _ b: Int, _ batch: Int) -> MatrixView<Backend.Buffer> {
        MatrixView(buffer, offset: b * hiddenSize, rowStride: batch * hiddenSize)
    }
}
