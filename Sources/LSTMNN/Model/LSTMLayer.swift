import LSTMCore

/// An LSTM as a model layer: a sequence [T, B, I] with lengths → [T, B, D·Hout] with the same
/// lengths, over `LSTMStack` with any `LSTMConfiguration` (layers, directions, projection,
/// dropout between layers, cell options) except batch-first: inside a model sequences are
/// [T, B, ·]. Lengths go to the engine, so padded steps are never computed (their outputs are 0).
/// Parameters carry `torch.nn.LSTM`'s names ("weight_ih_l0", "bias_hh_l0_reverse", …).
///
/// For seq2seq, `forward(_:initialState:training:)` takes (h0, c0) and returns (hn, cn) as an
/// `LSTMState`, and `backward(_:finalStateGradient:)` takes dL/d(hn, cn) and returns dL/d(h0, c0),
/// so an encoder's final state can initialise a decoder with gradients flowing back through it.
/// They are overloads beside the `Layer` requirements rather than a change to `Layer`: a value
/// flowing through `Sequential` stays one tensor, and the `Layer` forms (used by `Sequential`)
/// are exactly these with nil states.
public final class LSTMLayer<Backend: ModelOps>: Layer {
    public let stack: LSTMStack<Backend>
    public let parameters: [Parameter<Backend.Buffer>]
    /// The `state_dict` name of each parameter (a container renames `parameters`).
    private let weightNames: [String]
    /// Draws each training forward's dropout seed (the same on every backend for one seed).
    var dropoutSeeds: SeededGenerator
    private var saved: LSTMStackForward<Backend>?

    public var configuration: LSTMConfiguration { stack.configuration }

    /// A layer with PyTorch's initialisation U(−1/√H, 1/√H) drawn from `seed`.
    /// - Throws: `LSTMError` for an invalid or batch-first configuration.
    public convenience init(_ configuration: LSTMConfiguration, backend: Backend, seed: UInt64) throws {
        guard !configuration.batchFirst else {
            throw LSTMError.invalidConfiguration("inside a model sequences are [T, B, ·]: use batchFirst: false")
        }
        try configuration.validate()
        try SizeLimits.requireHostMemory(
            floats: SizeLimits.saturatingProduct([configuration.parameterCount, 2]),
            for: "an LSTM layer of \(configuration.parameterCount) parameters, its initial weights and their copy")
        try self.init(
            stack: LSTMStack(
                configuration: configuration, backend: backend,
                weights: configuration.initialWeights(seed: seed)),
            seed: seed)
    }

    /// A layer over an existing stack (sharing its weights); `seed` seeds its dropout.
    public init(stack: LSTMStack<Backend>, seed: UInt64 = 0) throws {
        guard !stack.configuration.batchFirst else {
            throw LSTMError.invalidConfiguration("inside a model sequences are [T, B, ·]: use batchFirst: false")
        }
        self.stack = stack
        parameters = stack.namedParameters(prefix: "")
        weightNames = parameters.map(\.name)
        dropoutSeeds = SeededGenerator(seed: seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    /// A sequence [T, B, I] → [T, B, D·Hout]; with `training` and dropout > 0 the layers but the
    /// last are dropped out with a fresh seed from the layer's generator. Starts from zero states
    /// (`forward(_:initialState:training:)` with nil).
    /// - Throws: `LSTMError` for anything but a sequence of width I.
    public func forward(_ input: LayerValue<Backend>, training: Bool) throws -> LayerValue<Backend> {
        try forward(input, initialState: nil, training: training).output
    }

    /// The seq2seq form: a sequence [T, B, I] from `initialState` (h0, c0; nil: zeros) →
    /// the output [T, B, D·Hout] and the final state (hn, cn). A sequence of length 0 has
    /// output 0 and hn, cn equal to its h0, c0 (packed-sequence semantics).
    /// - Throws: `LSTMError` for anything but a sequence of width I, or a state whose shape is
    ///   not [L·D, B, Hout] / [L·D, B, H] for this layer and the input's batch.
    public func forward(
        _ input: LayerValue<Backend>, initialState: LSTMState<Backend>?, training: Bool
    ) throws -> (output: LayerValue<Backend>, finalState: LSTMState<Backend>) {
        let x = try input.sequenceParts(for: "LSTM", features: configuration.inputSize)
        if let initialState { try initialState.check(against: configuration, batch: x.batch, what: "initial state") }
        let allValid = x.lengths.allSatisfy { $0 == x.steps }
        let result = try stack.forward(
            input: x.buffer, sequenceLength: x.steps, batch: x.batch, initialHidden: initialState?.hidden,
            initialCell: initialState?.cell, lengths: allValid ? nil : x.lengths,
            saveActivations: training,
            dropoutSeed: training && configuration.dropout > 0 ? dropoutSeeds.next() : nil)
        saved = training ? result : nil
        return (
            input.replacing(result.output, features: stack.outputWidth),
            LSTMState(
                hidden: result.finalHidden, cell: result.finalCell, configuration: configuration, batch: x.batch)
        )
    }

    /// Sets every weight's gradient from dL/d(output) [T, B, D·Hout]; returns dL/d(input) [T, B, I].
    public func backward(_ outputGradient: Backend.Buffer) throws -> Backend.Buffer? {
        try backward(outputGradient, finalStateGradient: nil).input
    }

    /// The seq2seq backward: from dL/d(output) (nil: zeros, e.g. an encoder whose outputs are
    /// unused) and dL/d(hn, cn) (nil: zeros), sets every weight's gradient and returns
    /// dL/d(input) and dL/d(h0, c0) (zeros when the forward started from zero states).
    /// - Throws: `LSTMError` without a training forward, or for a state gradient whose shape
    ///   is not that of the last forward's final state.
    public func backward(
        _ outputGradient: Backend.Buffer?, finalStateGradient: LSTMState<Backend>?
    ) throws -> (input: Backend.Buffer?, initialStateGradient: LSTMState<Backend>) {
        guard let saved else { throw backwardBeforeForward("LSTM") }
        if let finalStateGradient {
            try finalStateGradient.check(against: configuration, batch: saved.batch, what: "final state gradient")
        }
        let gradients = try stack.backward(
            saved, outputGradient: outputGradient, finalHiddenGradient: finalStateGradient?.hidden,
            finalCellGradient: finalStateGradient?.cell)
        for (parameter, name) in zip(parameters, weightNames) { parameter.gradient = gradients.weights[name] }
        return (
            gradients.input,
            LSTMState(
                hidden: gradients.initialHidden, cell: gradients.initialCell, configuration: configuration,
                batch: saved.batch)
        )
    }
}

/// An LSTM's states as backend buffers, as `torch.nn.LSTM` takes and returns them: h
/// [L·D, B, Hout] and c [L·D, B, H] (L layers, D directions, Hout = projection size or H).
/// `LSTMLayer.forward(_:initialState:training:)` takes and returns one, and its backward
/// takes and returns their gradients in the same shape, so an encoder's final state can
/// initialise a decoder and the decoder's state gradient flows back into the encoder.
public struct LSTMState<Backend: ModelOps> {
    /// h [L·D, B, Hout].
    public let hidden: Backend.Buffer
    /// c [L·D, B, H].
    public let cell: Backend.Buffer
    public let hiddenShape: [Int]
    public let cellShape: [Int]

    /// States with explicit shapes; `LSTMLayer` checks them against its configuration.
    public init(hidden: Backend.Buffer, hiddenShape: [Int], cell: Backend.Buffer, cellShape: [Int]) {
        self.hidden = hidden
        self.cell = cell
        self.hiddenShape = hiddenShape
        self.cellShape = cellShape
    }

    /// States shaped for `configuration` and `batch`.
    public init(hidden: Backend.Buffer, cell: Backend.Buffer, configuration: LSTMConfiguration, batch: Int) {
        let shapes = Self.shapes(configuration, batch: batch)
        self.init(hidden: hidden, hiddenShape: shapes.hidden, cell: cell, cellShape: shapes.cell)
    }

    /// States copied from the host: `hidden` [L·D, B, Hout] and `cell` [L·D, B, H] in that order.
    /// - Throws: `LSTMError` when a count does not match its shape.
    public static func upload(
        hidden: [Float], cell: [Float], configuration: LSTMConfiguration, batch: Int, on backend: Backend
    ) throws -> LSTMState {
        let shapes = shapes(configuration, batch: batch)
        for (values, shape, what) in [(hidden, shapes.hidden, "h0"), (cell, shapes.cell, "c0")]
        where values.count != shape.reduce(1, *) {
            throw LSTMError.shapeMismatch(what: what, expected: shape, got: [values.count])
        }
        let h = try backend.makeBuffer(count: hidden.count), c = try backend.makeBuffer(count: cell.count)
        try backend.write(hidden, to: h, offset: 0)
        try backend.write(cell, to: c, offset: 0)
        return LSTMState(hidden: h, hiddenShape: shapes.hidden, cell: c, cellShape: shapes.cell)
    }

    static func shapes(_ c: LSTMConfiguration, batch: Int) -> (hidden: [Int], cell: [Int]) {
        ([c.numLayers * c.numDirections, batch, c.outputSize], [c.numLayers * c.numDirections, batch, c.hiddenSize])
    }

    func check(against configuration: LSTMConfiguration, batch: Int, what: String) throws {
        let shapes = Self.shapes(configuration, batch: batch)
        guard hiddenShape == shapes.hidden else {
            throw LSTMError.shapeMismatch(what: "LSTM \(what) h", expected: shapes.hidden, got: hiddenShape)
        }
        guard cellShape == shapes.cell else {
            throw LSTMError.shapeMismatch(what: "LSTM \(what) c", expected: shapes.cell, got: cellShape)
        }
    }
}
