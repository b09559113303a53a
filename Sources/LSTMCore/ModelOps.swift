/// The operations around the LSTM that model pieces, losses and optimisers need (the LSTM
/// itself needs only `LSTMBackend`), on each
/// backend (CPU and OpenCL compute the same formulas, so training agrees across them).
/// Shapes are given per call; buffers hold row-major float32, index buffers int32.
public protocol ModelOps: LSTMBackend {
    /// Integer indices (token ids, class targets) in the form the kernels read.
    associatedtype Indices

    /// Uploads `values` as indices.
    func makeIndices(_ values: [Int]) throws -> Indices
    /// The values `indices` were made from (the host copy every backend keeps; no device read).
    func indexValues(_ indices: Indices) -> [Int]
    /// C[m, n] = alpha·op(A)·op(B) + beta·C on views.
    @_spi(Backend) func gemm(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        a: MatrixView<Buffer>, b: MatrixView<Buffer>, beta: Float, c: MatrixView<Buffer>) throws
    /// out[i, :] = table[indices[i], :] for i < count; table [V, width].
    func gatherRows(_ table: Buffer, width: Int, indices: Indices, count: Int, into out: Buffer) throws
    /// table[indices[i], :] += src[i, :] for i < count (table [rows, width]).
    func scatterAddRows(_ src: Buffer, width: Int, indices: Indices, count: Int, rows: Int, into table: Buffer) throws
    /// matrix[r, :] += vector for r < rows.
    func addRowVector(_ vector: Buffer, to matrix: Buffer, rows: Int, width: Int) throws
    /// out[c] = Σ_r matrix[r, c] (overwrites out).
    func columnSums(_ matrix: Buffer, rows: Int, width: Int, into out: Buffer) throws
    /// Softmax cross-entropy averaged over the rows whose target is not `ignoreIndex`:
    /// loss[lossSlot] = mean_r (logsumexp(logits[r]) − logits[r, target[r]]); gradient [rows, classes]
    /// = d loss / d logits (0 on ignored rows). Stable for large logits (max subtracted).
    func softmaxCrossEntropy(
        logits: Buffer, rows: Int, classes: Int, targets: Indices, ignoreIndex: Int,
        gradient: Buffer, loss: Buffer, lossSlot: Int) throws
    /// Mean squared error: loss[lossSlot] = mean (prediction − target)²; gradient = d loss / d prediction.
    func meanSquaredError(
        prediction: Buffer, target: Buffer, count: Int, gradient: Buffer, loss: Buffer, lossSlot: Int) throws
    /// Binary cross-entropy with logits averaged over `count` elements (PyTorch's
    /// `BCEWithLogitsLoss`, stable form): loss[lossSlot] = mean (max(x, 0) − x·y + log(1 + e^−|x|));
    /// gradient [count] = (σ(x) − y)/count. logits, targets [count].
    func binaryCrossEntropyWithLogits(
        logits: Buffer, targets: Buffer, count: Int, gradient: Buffer, loss: Buffer, lossSlot: Int) throws
    /// Pools a sequence [T, B, F] over each sequence's valid steps t < lengths[b] into out [B, F]
    /// (`mode`: the last valid step, the mean or the maximum, the first maximum on ties); a
    /// length-0 sequence pools to zeros. argmax [B, F] receives the step each output came from
    /// (as a float; −1 for length 0; mean writes −1), for `poolStepsBackward`. lengths [B], each in 0...T.
    func poolSteps(
        _ input: Buffer, steps: Int, batch: Int, width: Int, lengths: Indices, mode: PoolingMode,
        into out: Buffer, argmax: Buffer) throws
    /// The gradient of `poolSteps`: inputGradient [T, B, F] (every element written) from
    /// outputGradient [B, F]: the valid steps get their share (the chosen step for last and max,
    /// 1/length each for mean), padded steps and length-0 sequences 0.
    func poolStepsBackward(
        _ outputGradient: Buffer, steps: Int, batch: Int, width: Int, lengths: Indices, mode: PoolingMode,
        argmax: Buffer, into inputGradient: Buffer) throws
    /// sums[slot] = Σ x[i]² (for gradient norms).
    func sumOfSquares(_ x: Buffer, count: Int, into sums: Buffer, slot: Int) throws
    /// x *= min(1, maxNorm / (sqrt(Σ sums[0..<slots]) + 1e-6)): clipping by global norm without a host round trip.
    func clipByNorm(_ x: Buffer, count: Int, sums: Buffer, slots: Int, maxNorm: Float) throws
    /// One SGD step (PyTorch's formula): g += wd·p; buf = momentum·buf + g; g = nesterov ? g + momentum·buf : buf
    /// (plain g without momentum); p −= lr·g.
    func sgdStep(
        parameter: Buffer, gradient: Buffer, momentumBuffer: Buffer?, count: Int, learningRate: Float,
        momentum: Float, nesterov: Bool, weightDecay: Float) throws
    /// One Adam/AdamW step (PyTorch's formula) with bias corrections bc1 = 1 − β1^t, bc2 = 1 − β2^t;
    /// `decoupled` applies weight decay as AdamW (p ·= 1 − lr·wd) rather than as Adam (g += wd·p).
    func adamStep(
        parameter: Buffer, gradient: Buffer, firstMoment: Buffer, secondMoment: Buffer, count: Int,
        learningRate: Float, beta1: Float, beta2: Float, epsilon: Float, weightDecay: Float,
        decoupled: Bool, biasCorrection1: Float, biasCorrection2: Float) throws
}

/// How sequence pooling reduces the valid steps of each sequence (`ModelOps.poolSteps`).
public enum PoolingMode: Int32, Sendable, CaseIterable {
    /// The output of the last valid step, t = length − 1.
    case last = 0
    /// The mean over the valid steps.
    case mean = 1
    /// The element-wise maximum over the valid steps.
    case max = 2

    /// "last", "mean" or "max".
    public init?(name: String) {
        switch name {
        case "last": self = .last
        case "mean": self = .mean
        case "max": self = .max
        default: return nil
        }
    }
}

/// Where a replica's [T, b, W] rows sit in the global [T, B, W] batch (data parallelism):
/// local element (t, r, j) is global element (t, offset + r, j).
public struct DropoutLayout: Equatable, Sendable {
    public var localBatch: Int
    public var globalBatch: Int
    public var offset: Int
    public var width: Int
    public init(localBatch: Int, globalBatch: Int, offset: Int, width: Int) {
        self.localBatch = localBatch
        self.globalBatch = globalBatch
        self.offset = offset
        self.width = width
    }
    /// The whole batch is local.
    public static func whole(batch: Int, width: Int) -> DropoutLayout {
        DropoutLayout(localBatch: batch, globalBatch: batch, offset: 0, width: width)
    }
    @inline(__always)
    func globalIndex(_ i: Int) -> Int {
        let perStep = localBatch * width
        let t = i / perStep, rest = i % perStep
        return (t * globalBatch + offset + rest / width) * width + rest % width
    }
}

/// The dropout hash, shared by both backends (the OpenCL kernel spells out the same steps):
/// murmur3's 32-bit finaliser over the element index mixed with the seed's two halves.
@inline(__always)
func dropoutKeeps(index: UInt32, seed: UInt64, probability: Float) -> Bool {
    var x = index &* 0x9E37_79B9 ^ UInt32(truncatingIfNeeded: seed)
    x ^= x >> 16; x &*= 0x85EB_CA6B; x ^= x >> 13; x &*= 0xC2B2_AE35; x ^= x >> 16
    x ^= UInt32(truncatingIfNeeded: seed >> 32)
    x &*= 0x27D4_EB2D; x ^= x >> 15
    return Float(x >> 8) * (1.0 / 16_777_216.0) >= probability
}

/// Element `index` of a host dropout mask (local index in `layout`): 0 when dropped, else
/// 1/(1−p). The one mask generator on the host: the CPU backend's `dropoutMask` and the
/// `Reference` model both call it, so their masks are the same by construction.
@inline(__always)
package func dropoutMaskValue(index: Int, probability: Float, seed: UInt64, layout: DropoutLayout) -> Float {
    let global = UInt32(truncatingIfNeeded: layout.globalIndex(index))
    return dropoutKeeps(index: global, seed: seed, probability: probability) ? 1 / (1 - probability) : 0
}
