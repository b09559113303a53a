import LSTMCore

/// Pools a sequence over each sequence's valid steps: [T, B, F] with lengths [B] → rows [B, F].
/// `.last` takes the output at t = length − 1 (for a bidirectional LSTM the reverse half there
/// has seen one step: mean or max often suit it better), `.mean` averages the valid steps,
/// `.max` takes their element-wise maximum (the gradient goes to the first maximum). A
/// length-0 sequence pools to zeros and passes zero gradient back. Padded steps never count.
public final class SequencePooling<Backend: ModelOps>: Layer {
    public let backend: Backend
    public let mode: PoolingMode
    private var saved: (argmax: Backend.Buffer, lengths: Backend.Indices, steps: Int, batch: Int, width: Int)?

    public init(backend: Backend, mode: PoolingMode) {
        self.backend = backend
        self.mode = mode
    }

    /// None.
    public var parameters: [Parameter<Backend.Buffer>] { [] }

    /// A sequence [T, B, F] → rows [B, F].
    /// - Throws: `LSTMError` for anything but a sequence.
    public func forward(_ input: LayerValue<Backend>, training: Bool) throws -> LayerValue<Backend> {
        let x = try input.sequenceParts(for: "SequencePooling(\(mode))")
        let lengths = try backend.makeIndices(x.lengths)
        let out = try backend.makeScratchBuffer(count: x.batch * x.features)
        let argmax = try backend.makeScratchBuffer(count: x.batch * x.features)
        try backend.poolSteps(
            x.buffer, steps: x.steps, batch: x.batch, width: x.features, lengths: lengths, mode: mode, into: out,
            argmax: argmax)
        saved = training ? (argmax, lengths, x.steps, x.batch, x.features) : nil
        return .rows(out, count: x.batch, features: x.features)
    }

    /// dL/d(input) [T, B, F] from dL/d(output) [B, F]: 0 on padded steps and length-0 sequences.
    public func backward(_ outputGradient: Backend.Buffer) throws -> Backend.Buffer? {
        guard let s = saved else { throw backwardBeforeForward("SequencePooling(\(mode))") }
        let dx = try backend.makeScratchBuffer(count: s.steps * s.batch * s.width)
        try backend.poolStepsBackward(
            outputGradient, steps: s.steps, batch: s.batch, width: s.width, lengths: s.lengths, mode: mode,
            argmax: s.argmax, into: dx)
        return dx
    }
}
