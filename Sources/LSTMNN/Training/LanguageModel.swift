import Foundation
import LSTMCore

/// The hyper-parameters of a token-level language model: Embedding(V, E) → LSTM(E, H, L,
/// dropout, proj_size P) → Linear(Hout, V) → softmax cross-entropy, where Hout = P when
/// projecting (an LSTMP language model) and H otherwise.
public struct LanguageModelConfiguration: Codable, Equatable, Sendable {
    public var vocabularySize: Int
    public var embeddingSize: Int
    public var hiddenSize: Int
    /// L: stacked LSTM layers.
    public var numLayers: Int
    public var dropout: Float
    /// P: the LSTM's `proj_size` (0: none).
    public var projectionSize: Int
    /// The LSTM's cell options (peepholes, CIFG, layer norm, clips; plain by default).
    public var cell: LSTMCellOptions

    public init(
        vocabularySize: Int, embeddingSize: Int = 64, hiddenSize: Int = 512, numLayers: Int = 1, dropout: Float = 0,
        projectionSize: Int = 0, cell: LSTMCellOptions = LSTMCellOptions()
    ) {
        self.cell = cell
        self.vocabularySize = vocabularySize
        self.embeddingSize = embeddingSize
        self.hiddenSize = hiddenSize
        self.numLayers = numLayers
        self.dropout = dropout
        self.projectionSize = projectionSize
    }

    /// JSON keys; `numLayers` is stored as "layers" (the checkpoints' format, which
    /// scripts/checkpoint-in-torch reads).
    enum CodingKeys: String, CodingKey {
        case vocabularySize, embeddingSize, hiddenSize, numLayers = "layers", dropout, projectionSize, cell
    }

    /// Decodes checkpoints written before projection or the cell options existed (no
    /// `projectionSize`: 0; no `cell`: PyTorch's plain cell).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            vocabularySize: try c.decode(Int.self, forKey: .vocabularySize),
            embeddingSize: try c.decode(Int.self, forKey: .embeddingSize),
            hiddenSize: try c.decode(Int.self, forKey: .hiddenSize),
            numLayers: try c.decode(Int.self, forKey: .numLayers),
            dropout: try c.decode(Float.self, forKey: .dropout),
            projectionSize: try c.decodeIfPresent(Int.self, forKey: .projectionSize) ?? 0,
            cell: try c.decodeIfPresent(LSTMCellOptions.self, forKey: .cell) ?? LSTMCellOptions())
    }

    public var lstm: LSTMConfiguration {
        LSTMConfiguration(
            inputSize: embeddingSize, hiddenSize: hiddenSize, numLayers: numLayers, projectionSize: projectionSize,
            dropout: dropout, cell: cell)
    }

    /// Hout: the width of the LSTM's output and of the carried h state.
    public var outputSize: Int { lstm.outputSize }

    func validate() throws {
        try SizeLimits.requireSize(vocabularySize, "vocabularySize")
        try SizeLimits.requireSize(embeddingSize, "embeddingSize")
        try lstm.validate()
    }

    /// Number of parameters (embedding, LSTM, head), clamped to `Int.max` on overflow.
    public var parameterCount: Int {
        SizeLimits.saturatingSum([
            SizeLimits.saturatingProduct([vocabularySize, embeddingSize]), lstm.parameterCount,
            SizeLimits.saturatingProduct([outputSize + 1, vocabularySize]),
        ])
    }

    /// "V=65 E=64 H=512 L=1 dropout 0.0": for messages.
    public var summary: String {
        "vocabulary \(vocabularySize), embedding \(embeddingSize), \(numLayers)×\(hiddenSize) LSTM"
            + (projectionSize > 0 ? " projected to \(projectionSize)" : "") + ", dropout \(dropout)"
            + (cell.isPlain ? "" : ", cell options: \(cell.summary)")
    }
}

/// A language model on one backend. Its parameters are named as the PyTorch module
/// `embedding` / `lstm` / `head` would name them ("embedding.weight", "lstm.weight_ih_l0",
/// "head.weight", "head.bias"), so the LSTM part loads into `torch.nn.LSTM` as is.
/// Inputs are sequence-major: ids [T·B] with row t·B + b.
public final class LanguageModel<Backend: ModelOps> {
    public let configuration: LanguageModelConfiguration
    public let backend: Backend
    public let embedding: Embedding<Backend>
    public private(set) var lstm: LSTMStack<Backend>
    public let head: Linear<Backend>
    /// Every parameter, in checkpoint order.
    public private(set) var parameters: [Parameter<Backend.Buffer>] = []

    public init(_ configuration: LanguageModelConfiguration, backend: Backend, seed: UInt64) throws {
        try configuration.validate()
        try SizeLimits.requireHostMemory(
            floats: configuration.parameterCount,
            for: "a language model of \(configuration.parameterCount) parameters")
        try backend.requireCapacity(
            SizeLimits.saturatingProduct([configuration.parameterCount, 4]),
            for: "a language model of \(configuration.parameterCount) parameters")
        self.configuration = configuration
        self.backend = backend
        var generator = SeededGenerator(seed: seed)
        embedding = try Embedding(
            backend: backend, vocabularySize: configuration.vocabularySize,
            dimension: configuration.embeddingSize, generator: &generator)
        lstm = try LSTMStack(
            configuration: configuration.lstm, backend: backend,
            weights: configuration.lstm.initialWeights(seed: generator.next()))
        head = try Linear(
            backend: backend, inputSize: configuration.outputSize, outputSize: configuration.vocabularySize,
            name: "head", generator: &generator)
        parameters = [embedding.weight] + lstm.namedParameters(prefix: "lstm.") + [head.weight, head.bias]
    }

    /// Makes the model run its LSTM in `precision` (`Precision`) for inference (`sample`): the
    /// LSTM's weight matrices quantized or rounded, the embedding and the head left float32.
    /// Training it afterwards is refused; the backend must compute in `precision` (the CPU).
    public func quantize(to precision: Precision) throws {
        guard precision != lstm.precision else { return }
        guard !lstm.precision.isReduced else {
            throw LSTMError.invalidArgument(
                "the language model is already \(lstm.precision); load its float32 checkpoint again")
        }
        lstm = try LSTMStack(
            configuration: lstm.configuration, backend: backend, weights: lstm.parameterTensors(), precision: precision)
        parameters = [embedding.weight] + lstm.namedParameters(prefix: "lstm.") + [head.weight, head.bias]
    }

    /// The carried LSTM state between chunks: h [L, B, Hout], c [L, B, H].
    public struct State {
        public var hidden: Backend.Buffer
        public var cell: Backend.Buffer
    }

    /// A zero state for `batch` streams.
    public func zeroState(batch: Int) throws -> State {
        return State(
            hidden: try backend.makeBuffer(count: lstm.hiddenStateShape(batch: batch).reduce(1, *)),
            cell: try backend.makeBuffer(count: lstm.cellStateShape(batch: batch).reduce(1, *)))
    }

    /// One training step's forward and backward over a chunk: sets every parameter's gradient,
    /// returns the loss buffer (mean cross-entropy in slot 0, still on the device) and the state
    /// to carry into the next chunk (the gradient is cut there: truncated BPTT).
    public func forwardBackward(
        inputs: Backend.Indices, targets: Backend.Indices, sequenceLength steps: Int, batch: Int,
        state: State?, dropoutSeed: UInt64?, dropoutBatch: (offset: Int, global: Int)? = nil,
        ignoreIndex: Int = -1
    ) throws -> (loss: Backend.Buffer, state: State) {
        let rows = steps * batch, c = configuration
        let x = try embedding.forward(inputs, count: rows)
        let f = try lstm.forward(
            input: x, sequenceLength: steps, batch: batch, initialHidden: state?.hidden, initialCell: state?.cell,
            saveActivations: true, dropoutSeed: c.dropout > 0 ? dropoutSeed : nil, dropoutBatch: dropoutBatch)
        let out = MatrixView(f.output, rowStride: lstm.outputWidth)
        let logits = try head.forward(out, rows: rows)
        let loss = try backend.makeBuffer(count: 1)
        let dLogits = try backend.makeScratchBuffer(count: rows * c.vocabularySize)
        try backend.softmaxCrossEntropy(
            logits: logits, rows: rows, classes: c.vocabularySize, targets: targets,
            ignoreIndex: ignoreIndex, gradient: dLogits, loss: loss, lossSlot: 0)
        let dOut = try head.backward(out, rows: rows, outputGradient: dLogits)!
        let g = try lstm.backward(f, outputGradient: dOut)
        g.assign(to: parameters, prefix: "lstm.")
        try embedding.backward(inputs, count: rows, outputGradient: g.input)
        return (loss, State(hidden: f.finalHidden, cell: f.finalCell))
    }

    /// Forward only: the mean cross-entropy of a chunk (slot 0 of the returned buffer) and the carried state.
    public func loss(
        inputs: Backend.Indices, targets: Backend.Indices, sequenceLength steps: Int, batch: Int,
        state: State?, ignoreIndex: Int = -1
    ) throws -> (loss: Backend.Buffer, state: State) {
        let rows = steps * batch, c = configuration
        let f = try lstm.forward(
            input: embedding.forward(inputs, count: rows), sequenceLength: steps, batch: batch,
            initialHidden: state?.hidden, initialCell: state?.cell)
        let logits = try head.forward(MatrixView(f.output, rowStride: lstm.outputWidth), rows: rows)
        let loss = try backend.makeBuffer(count: 1)
        let scratch = try backend.makeScratchBuffer(count: rows * c.vocabularySize)
        try backend.softmaxCrossEntropy(
            logits: logits, rows: rows, classes: c.vocabularySize, targets: targets,
            ignoreIndex: ignoreIndex, gradient: scratch, loss: loss, lossSlot: 0)
        return (loss, State(hidden: f.finalHidden, cell: f.finalCell))
    }

    /// Logits [B, V] for one step of ids [B] from `state`, and the next state (for sampling).
    public func nextLogits(_ ids: [Int], state: State?) throws -> (logits: [Float], state: State) {
        let batch = ids.count, c = configuration
        let f = try lstm.forward(
            input: embedding.forward(backend.makeIndices(ids), count: batch), sequenceLength: 1, batch: batch,
            initialHidden: state?.hidden, initialCell: state?.cell)
        let logits = try head.forward(MatrixView(f.output, rowStride: lstm.outputWidth), rows: batch)
        return (
            try backend.read(logits, offset: 0, count: batch * c.vocabularySize),
            State(hidden: f.finalHidden, cell: f.finalCell)
        )
    }

    /// Every parameter as host tensors, by name (a quantized LSTM's matrices widened to float32).
    public func parameterTensors() throws -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        let lstmTensors = try lstm.parameterTensors()
        for p in parameters {
            if p.name.hasPrefix("lstm."), let tensor = lstmTensors[String(p.name.dropFirst("lstm.".count))] {
                out[p.name] = tensor
                continue
            }
            out[p.name] = try Tensor(shape: p.shape, scalars: backend.read(p.value, offset: 0, count: p.count))
        }
        return out
    }

    /// Overwrites every parameter from `tensors` (names and shapes checked); refused once the
    /// LSTM is quantized (`quantize(to:)`: inference only).
    public func load(_ tensors: [String: Tensor], source: String) throws {
        if lstm.precision.isReduced { throw LSTMError.invalidArgument(Precision.trainingRefusal(lstm.precision)) }
        for p in parameters {
            guard let t = tensors[p.name] else { throw LSTMError.missingTensor(name: p.name, file: source) }
            try checkShape(t, p.shape, "\(source): '\(p.name)'")
            try backend.write(t.scalars, to: p.value, offset: 0)
        }
    }
}
