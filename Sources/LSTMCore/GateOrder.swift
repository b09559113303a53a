/// The order in which a framework stacks an LSTM's four gate blocks in its weight matrices
/// and bias vectors. Every framework keeps each gate's H rows together; they differ only in
/// the order of the four blocks:
///
/// | order      | block 0 | block 1 | block 2 | block 3 | used by                                  |
/// |------------|---------|---------|---------|---------|------------------------------------------|
/// | `.pytorch` | i       | f       | g       | o       | PyTorch, cuDNN, lstm-gpu                  |
/// | `.onnx`    | i       | o       | f       | c (= g) | ONNX `LSTM` (W, R, B)                     |
/// | `.keras`   | i       | f       | c (= g) | o       | Keras, TensorFlow (`LSTMCell`, TF Lite)   |
/// | `.miopen`  | i       | f       | o       | g       | MIOpen (AMD)                             |
///
/// i input gate, f forget gate, g (ONNX and Keras: c) the cell candidate, o output gate.
/// ONNX's peephole tensor P has its own order of three blocks, i, o, f.
///
/// ```swift
/// // ONNX W [4H, I] (i o f c) to PyTorch's weight_ih [4H, I] (i f g o):
/// let weightIH = try GateOrder.onnx.convert(w, to: .pytorch)
/// ```
public enum GateOrder: String, CaseIterable, Sendable {
    /// i, f, g, o: PyTorch, cuDNN and lstm-gpu.
    case pytorch
    /// i, o, f, c: ONNX.
    case onnx
    /// i, f, c, o: Keras and TensorFlow.
    case keras
    /// i, f, o, g: MIOpen.
    case miopen

    /// The gate a block holds.
    public enum Gate: Int, CaseIterable, Sendable {
        /// Input gate i.
        case input
        /// Forget gate f.
        case forget
        /// Cell candidate g (ONNX and Keras call it c).
        case cell
        /// Output gate o.
        case output
    }

    /// The gates of blocks 0, 1, 2, 3 in this order.
    public var gates: [Gate] {
        switch self {
        case .pytorch: return [.input, .forget, .cell, .output]
        case .onnx: return [.input, .output, .forget, .cell]
        case .keras: return [.input, .forget, .cell, .output]
        case .miopen: return [.input, .forget, .output, .cell]
        }
    }

    /// The block (0...3) that holds `gate` in this order.
    public func block(of gate: Gate) -> Int { gates.firstIndex(of: gate)! }

    /// For each block of `target`, the block of this order that holds the same gate: block b
    /// of the converted tensor is block `permutation(to: target)[b]` of the original.
    public func permutation(to target: GateOrder) -> [Int] {
        target.gates.map { block(of: $0) }
    }

    /// `tensor` with its gate blocks reordered from this order into `target`. The first
    /// dimension is 4·H (a [4H, ·] matrix or a [4H] vector; more dimensions are allowed, each
    /// block being H rows of the first dimension).
    /// - Throws: `LSTMError.invalidArgument` when the tensor has no dimensions or its first
    ///   dimension is not a multiple of 4.
    public func convert(_ tensor: Tensor, to target: GateOrder) throws -> Tensor {
        guard let rows = tensor.shape.first else {
            throw LSTMError.invalidArgument("gate reordering needs a [4H, ...] tensor, got a scalar")
        }
        guard rows % 4 == 0 else {
            throw LSTMError.invalidArgument(
                "gate reordering needs a first dimension of 4·H, got \(rows) (shape \(tensor.shape))")
        }
        return try Tensor(shape: tensor.shape, scalars: convert(tensor.scalars, to: target))
    }

    /// `values` (4 blocks of equal length, one per gate) reordered from this order into `target`.
    /// - Throws: `LSTMError.invalidArgument` when the count is not a multiple of 4.
    public func convert(_ values: [Float], to target: GateOrder) throws -> [Float] {
        guard values.count % 4 == 0 else {
            throw LSTMError.invalidArgument("gate reordering needs 4 equal blocks, got \(values.count) values")
        }
        let size = values.count / 4
        var out: [Float] = []
        out.reserveCapacity(values.count)
        for source in permutation(to: target) { out += values[(source * size)..<((source + 1) * size)] }
        return out
    }
}
