/// What differs between backends, at the level where fusion happens: one layer and
/// direction over a whole sequence, forward and backward. Stacking, directions,
/// lengths and batch-first handling are written once above it (`LSTMStack`).
/// The backends behind it (`CPUBackend`, `OpenCLBackend`) are the fast paths; the oracle
/// they are tested against, `ReferenceLSTM`, deliberately stands outside this contract.
///
/// Shape letters: T steps, B batch, In the layer's input width, H hidden,
/// Hout output width (P when projecting), D directions.
public protocol LSTMBackend: AnyObject {
    /// A float32 array living where this backend computes (host memory, a `cl_mem`).
    associatedtype Buffer: AnyObject
    /// Per-sequence lengths in the form the kernels read.
    associatedtype Lengths

    /// Human-readable name ("cpu", "opencl: <device>").
    var name: String { get }
    /// Which engine this is (so callers never test the backend's type).
    var kind: BackendKind { get }
    /// A zero-filled buffer of `count` floats.
    func makeBuffer(count: Int) throws -> Buffer
    /// A buffer of `count` floats whose contents are undefined (the caller overwrites it).
    func makeScratchBuffer(count: Int) throws -> Buffer
    /// Copies `values` into `buffer` starting at float `offset`.
    func write(_ values: [Float], to buffer: Buffer, offset: Int) throws
    /// Copies `count` floats from `buffer` starting at float `offset` back to the host.
    func read(_ buffer: Buffer, offset: Int, count: Int) throws -> [Float]
    /// Makes the kernels' form of `lengths` ([B], each in 0...T), or of "all T" when nil.
    func makeLengths(_ lengths: [Int]?, batch: Int, sequenceLength steps: Int) throws -> Lengths
    /// dst[j, i, :] = src[i, j, :] for src of shape [A, C, inner].
    func swapOuterDimensions(_ src: Buffer, into dst: Buffer, a: Int, c: Int, inner: Int) throws
    /// One direction of one layer, all T steps (see `DirectionForward`).
    @_spi(Backend) func forward(_ job: DirectionForward<Self>) throws
    /// Backpropagation through time for one direction of one layer (see `DirectionBackward`).
    @_spi(Backend) func backward(_ job: DirectionBackward<Self>) throws
    /// Independent directions (of one layer) at once; a backend may run them concurrently.
    @_spi(Backend) func forward(_ jobs: [DirectionForward<Self>]) throws
    /// Independent directions at once, in order where they accumulate into one input gradient.
    @_spi(Backend) func backward(_ jobs: [DirectionBackward<Self>]) throws
    /// mask[i] = 0 with probability p, else 1/(1−p), from a counter-based hash of (seed, the
    /// element's index in `layout`'s global batch): the same seed gives the same mask on every
    /// backend, and a replica holding a slice of the batch draws that slice of the whole mask.
    /// (The stack's dropout between layers.)
    func dropoutMask(count: Int, probability: Float, seed: UInt64, layout: DropoutLayout, into mask: Buffer) throws
    /// out[i] = a[i]·b[i] (out may be a or b).
    func multiply(_ a: Buffer, _ b: Buffer, into out: Buffer, count: Int) throws
    /// Waits until every enqueued operation has finished (no-op on the CPU).
    func synchronize() throws
    /// Bytes this backend can hold at most (device global memory; host physical memory).
    var memoryCapacity: Int { get }
    /// The precisions this backend's forward computes in (`Precision`); float32 only unless a
    /// backend says more. A stack in a reduced precision passes `DirectionWeights.reduced`.
    var precisions: [Precision] { get }
}

extension LSTMBackend {
    public var precisions: [Precision] { [.fp32] }
    public func makeScratchBuffer(count: Int) throws -> Buffer { try makeBuffer(count: count) }
    @_spi(Backend) public func forward(_ jobs: [DirectionForward<Self>]) throws { for job in jobs { try forward(job) } }
    @_spi(Backend) public func backward(_ jobs: [DirectionBackward<Self>]) throws {
        for job in jobs { try backward(job) }
    }

    /// Throws `outOfMemory`, saying what needed how much, when `bytes` exceed `memoryCapacity`.
    package func requireCapacity(_ bytes: Int, for what: String) throws {
        guard bytes <= memoryCapacity else {
            throw LSTMError.outOfMemory(device: "\(name) (\(what))", needed: bytes, available: memoryCapacity)
        }
    }
}

/// A matrix view into a buffer: row r, column c is at `offset + r * rowStride + c`.
public struct MatrixView<Buffer: AnyObject> {
    public var buffer: Buffer
    public var offset: Int
    public var rowStride: Int
    public init(_ buffer: Buffer, offset: Int = 0, rowStride: Int) {
        self.buffer = buffer
        self.offset = offset
        self.rowStride = rowStride
    }
}

/// The weights of one layer and direction, PyTorch layouts, gate order i, f, g, o.
@_spi(Backend) public struct DirectionWeights<Buffer: AnyObject> {
    /// `weight_ih` [4H, In].
    public var inputWeights: Buffer
    /// `weight_hh` [4H, Hout].
    public var recurrentWeights: Buffer
    /// `bias_ih`, `bias_hh` [4H] each; nil when the model has no bias.
    public var inputBias: Buffer?
    public var recurrentBias: Buffer?
    /// `weight_hr` [P, H] when projecting.
    public var projectionWeights: Buffer?
    /// With peepholes: `weight_ci`, `weight_cf`, `weight_co` [H] (the first nil with CIFG);
    /// empty without.
    public var peepholes: [Buffer?] = []
    /// With layer norm: `layer_norm_weight_i`, `_f`, `_g`, `_o` [H] (the first nil with CIFG);
    /// empty without.
    public var layerNormWeights: [Buffer?] = []
    /// In a reduced precision (inference only, on a backend whose `precisions` has it): the
    /// three matrices in that precision; `inputWeights`, `recurrentWeights` and
    /// `projectionWeights` are then empty buffers the backend must not read. nil in float32.
    public var reduced: ReducedDirectionMatrices? = nil
}

/// The sizes of one direction's problem.
@_spi(Backend) public struct DirectionShape: Equatable, Sendable {
    public var sequenceLength: Int  // T
    public var batch: Int  // B
    /// In: the layer's input width (I for layer 0, D·Hout above; not the model's `inputSize`).
    public var layerInputSize: Int
    public var hiddenSize: Int  // H
    public var outputSize: Int  // Hout
    /// The cell variant; plain (PyTorch's) runs the fused fast paths.
    public var cell = LSTMCellOptions()
    public var projects: Bool { outputSize != hiddenSize }
    /// G·H: the width of a row of gates (i, f, g, o; f, g, o with CIFG).
    public var gateWidth: Int { cell.gateCount * hiddenSize }
    /// T·B: the rows of the whole-sequence matrices (input, gates, output).
    public var rows: Int { sequenceLength * batch }
    /// The time step the forward processes k-th: k, or T−1−k in the reverse direction
    /// (which then starts every sequence at its own last valid step: padded steps are skipped).
    public func forwardStep(_ k: Int, reverse: Bool) -> Int { reverse ? sequenceLength - 1 - k : k }
    /// The time step the backward processes k-th: the forward's order, reversed.
    public func backwardStep(_ k: Int, reverse: Bool) -> Int { reverse ? k : sequenceLength - 1 - k }
}

/// What the forward keeps for the backward, indexed by time step t (not processing
/// order), each [T, B, ·]: post-activation gates [T, B, 4H] (in the backend's own column
/// order: PyTorch's [i | f | g | o] on OpenCL, blocks of 8 units [i f g o] on the CPU path,
/// see `GateLayout`; only the same backend's backward reads them), the cell after
/// the step c(t) [T, B, H], the states before it h(prev) [T, B, Hout] and c(prev) [T, B, H],
/// and with projection the unprojected o·tanh(c) [T, B, H]. A cell with options also keeps
/// `options`.
@_spi(Backend) public final class DirectionActivations<Buffer: AnyObject> {
    public let gates: Buffer
    public let cell: Buffer
    public let previousHidden: Buffer
    public let previousCell: Buffer
    public let unprojected: Buffer?
    public let options: OptionActivations<Buffer>?

    init<B: LSTMBackend>(backend: B, shape s: DirectionShape) throws where B.Buffer == Buffer {
        // Every element a backward reads is written by the forward first: no zero-fill needed.
        let rows = s.rows
        gates = try backend.makeScratchBuffer(count: rows * s.gateWidth)
        cell = try backend.makeScratchBuffer(count: rows * s.hiddenSize)
        previousHidden = try backend.makeScratchBuffer(count: rows * s.outputSize)
        previousCell = try backend.makeScratchBuffer(count: rows * s.hiddenSize)
        unprojected = s.projects ? try backend.makeScratchBuffer(count: rows * s.hiddenSize) : nil
        options = s.cell.isPlain ? nil : try OptionActivations(backend: backend, shape: s)
    }
}

/// What the options path keeps beside `DirectionActivations`, each [T, B, ·] by time step:
/// the gate pre-activations z before the activation clip [T, B, G·H]; with layer norm the
/// normalised sums x̂ [T, B, G·H] and 1/√(var + ε) per gate [T, B, G]; with a cell clip the
/// cell before it [T, B, H]; with a projection clip the projected h before it [T, B, Hout].
/// Gate columns are in the order of the weight rows (i, f, g, o; f, g, o with CIFG).
@_spi(Backend) public final class OptionActivations<Buffer: AnyObject> {
    public let preActivations: Buffer
    public let normalized: Buffer?
    public let inverseDeviation: Buffer?
    public let unclippedCell: Buffer?
    public let unclippedHidden: Buffer?

    init<B: LSTMBackend>(backend: B, shape s: DirectionShape) throws where B.Buffer == Buffer {
        let rows = s.rows
        preActivations = try backend.makeScratchBuffer(count: rows * s.gateWidth)
        normalized = s.cell.layerNorm ? try backend.makeScratchBuffer(count: rows * s.gateWidth) : nil
        inverseDeviation = s.cell.layerNorm ? try backend.makeScratchBuffer(count: rows * s.cell.gateCount) : nil
        unclippedCell = s.cell.cellClip > 0 ? try backend.makeScratchBuffer(count: rows * s.hiddenSize) : nil
        unclippedHidden = s.cell.projectionClip > 0 ? try backend.makeScratchBuffer(count: rows * s.outputSize) : nil
    }
}

/// Forward of one direction over the sequence. Steps t ≥ length[b] leave sequence b's
/// state untouched and write 0 to its output; the reverse direction walks t from T-1
/// down to 0, so each sequence starts at its own last valid step.
@_spi(Backend) public struct DirectionForward<Backend: LSTMBackend> {
    public var shape: DirectionShape
    public var reverse: Bool
    public var weights: DirectionWeights<Backend.Buffer>
    /// [T·B, In] rows of the input.
    public var input: MatrixView<Backend.Buffer>
    /// [T·B, Hout] rows of the output (a column slice when bidirectional).
    public var output: MatrixView<Backend.Buffer>
    /// [B, Hout] and [B, H] initial states; nil means zeros.
    public var initialHidden: MatrixView<Backend.Buffer>?
    public var initialCell: MatrixView<Backend.Buffer>?
    /// [B, Hout] and [B, H] destinations of the final states.
    public var finalHidden: MatrixView<Backend.Buffer>
    public var finalCell: MatrixView<Backend.Buffer>
    public var lengths: Backend.Lengths
    /// Where to keep what the backward needs; nil for inference.
    public var activations: DirectionActivations<Backend.Buffer>?
}

/// Gradients of one direction's weights (same shapes as `DirectionWeights`); the two
/// bias gradients are equal, so one buffer serves both.
@_spi(Backend) public struct DirectionWeightGradients<Buffer: AnyObject> {
    public var inputWeights: Buffer
    public var recurrentWeights: Buffer
    public var bias: Buffer?
    public var projectionWeights: Buffer?
    /// Like `DirectionWeights.peepholes` and `.layerNormWeights`.
    public var peepholes: [Buffer?] = []
    public var layerNormWeights: [Buffer?] = []
}

/// Backward of one direction: consumes the activations of its forward.
@_spi(Backend) public struct DirectionBackward<Backend: LSTMBackend> {
    public var shape: DirectionShape
    public var reverse: Bool
    public var weights: DirectionWeights<Backend.Buffer>
    public var activations: DirectionActivations<Backend.Buffer>
    /// [T·B, In]: the forward's input (for the input-weight gradient).
    public var input: MatrixView<Backend.Buffer>
    /// [T·B, Hout]: upstream gradient of the output; rows of padded steps are ignored.
    public var outputGradient: MatrixView<Backend.Buffer>?
    /// [B, Hout], [B, H]: upstream gradients of hn, cn; nil means zeros.
    public var finalHiddenGradient: MatrixView<Backend.Buffer>?
    public var finalCellGradient: MatrixView<Backend.Buffer>?
    /// [T·B, In]: receives the input gradient (added to what is there when `accumulateInputGradient`).
    public var inputGradient: MatrixView<Backend.Buffer>?
    public var accumulateInputGradient: Bool
    /// [B, Hout], [B, H]: receive the gradients of h0, c0.
    public var initialHiddenGradient: MatrixView<Backend.Buffer>
    public var initialCellGradient: MatrixView<Backend.Buffer>
    public var lengths: Backend.Lengths
    /// [T·B, 4H], uninitialised scratch: the pre-activation gate gradients dG of every step (in
    /// the backend's own gate column order), the one large scratch buffer of a backward. The
    /// backward writes every element (zeros on padded steps) before reading any.
    public var gateGradients: Backend.Buffer
    /// Receive the weight gradients (overwritten).
    public var weightGradients: DirectionWeightGradients<Backend.Buffer>
}
