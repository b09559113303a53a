import Foundation

/// A stateful stream over a unidirectional LSTM: feed a sequence in chunks of any length (one
/// step included) and get each chunk's output, with (h, c) carried from one chunk to the next
/// inside the stream. The outputs equal the whole sequence's, in every precision and on every
/// backend: bit for bit on the CPU path in int8 (activations are quantized per sequence and
/// step, so chunking changes no number) and wherever the chunks take the same products as the
/// whole; to float rounding where they do not (a whole sequence of 256 rows or more runs its
/// bf16 and fp16 input projection through OpenBLAS, a short chunk through the kernels; OpenBLAS
/// itself may sum a few rows in another order than many).
///
/// ```swift
/// let stream = try model.makeStream(batch: 1)
/// for chunk in chunks { let y = try stream.feed(chunk) }   // chunk: [T, 1, I], y: [T, 1, Hout]
/// ```
/// Shapes: a chunk [T, B, I] ([B, T, I] when batch-first), its output [T, B, Hout] (likewise),
/// the carried state h [L, B, Hout], c [L, B, H].
///
/// A bidirectional model (or one with `reverse`) is refused: its backward direction reads each
/// sequence from its end, which a stream has not seen yet.
public final class LSTMStream {
    public let model: LSTM
    /// B: the sequences fed side by side.
    public let batch: Int
    /// The state after the steps fed so far: h [L, B, Hout], c [L, B, H].
    public private(set) var hidden: Tensor
    public private(set) var cell: Tensor
    /// Steps fed so far, per sequence (a sequence shorter than a chunk advances by its length).
    public private(set) var steps: [Int]
    private let initial: (hidden: Tensor, cell: Tensor)

    init(model: LSTM, batch: Int, h0: Tensor?, c0: Tensor?) throws {
        let c = model.configuration
        guard !c.bidirectional, !c.reverse else {
            throw LSTMError.invalidArgument(
                "a stream needs a unidirectional model: a \(c.bidirectional ? "bidirectional" : "reversed") "
                    + "LSTM reads each sequence from its end, which a stream has not seen yet; run whole sequences "
                    + "with forward instead")
        }
        guard batch >= 1 else { throw LSTMError.invalidArgument("a stream needs a batch of at least 1, got \(batch)") }
        let hiddenShape = [c.numLayers, batch, c.outputSize], cellShape = [c.numLayers, batch, c.hiddenSize]
        if let h0 { try checkShape(h0, hiddenShape, "the stream's h0 ([L, B, Hout])") }
        if let c0 { try checkShape(c0, cellShape, "the stream's c0 ([L, B, H])") }
        (self.model, self.batch) = (model, batch)
        initial = (h0 ?? Tensor(zeros: hiddenShape), c0 ?? Tensor(zeros: cellShape))
        (hidden, cell, steps) = (initial.hidden, initial.cell, [Int](repeating: 0, count: batch))
    }

    /// Runs the next chunk of every sequence from the carried state and carries the new one.
    /// - Parameters:
    ///   - chunk: [T, B, I] ([B, T, I] when batch-first), T ≥ 1, B the stream's batch.
    ///   - lengths: [B], each in 0...T: how many of the chunk's steps each sequence has (a
    ///     sequence that ends inside the chunk keeps its state from there, its padded outputs are
    ///     0); nil: all T.
    /// - Returns: the chunk's output [T, B, Hout] (batch-first likewise).
    /// - Throws: `LSTMError` for a chunk of another batch or width, or bad lengths; the stream is
    ///   unchanged then.
    @discardableResult
    public func feed(_ chunk: Tensor, lengths: [Int]? = nil) throws -> Tensor {
        let c = model.configuration
        guard chunk.shape.count == 3 else {
            throw LSTMError.invalidArgument(
                "a chunk must be 3-D \(c.batchFirst ? "[B, T, I]" : "[T, B, I]"), got shape \(chunk.shape)")
        }
        let chunkBatch = c.batchFirst ? chunk.shape[0] : chunk.shape[1]
        guard chunkBatch == batch else {
            throw LSTMError.shapeMismatch(
                what: "chunk (the stream's batch is B = \(batch))",
                expected: c.batchFirst ? [batch, chunk.shape[1], c.inputSize] : [chunk.shape[0], batch, c.inputSize],
                got: chunk.shape)
        }
        let result = try model.forward(chunk, h0: hidden, c0: cell, lengths: lengths)
        (hidden, cell) = (result.hn, result.cn)
        let t = c.batchFirst ? chunk.shape[1] : chunk.shape[0]
        for b in 0..<batch { steps[b] += lengths?[b] ?? t }
        return result.output
    }

    /// Back to the state the stream started from (its h0, c0), as before the first chunk.
    public func reset() {
        (hidden, cell) = initial
        steps = [Int](repeating: 0, count: batch)
    }
}

extension LSTM {
    /// A stream over this model (see `LSTMStream`) for `batch` sequences, starting from h0
    /// [L, B, Hout] and c0 [L, B, H] (nil: zeros).
    /// - Throws: `LSTMError` for a bidirectional or reversed model, or misshaped states.
    public func makeStream(batch: Int = 1, h0: Tensor? = nil, c0: Tensor? = nil) throws -> LSTMStream {
        try LSTMStream(model: self, batch: batch, h0: h0, c0: c0)
    }
}
