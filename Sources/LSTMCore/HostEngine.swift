import Foundation

/// What `LSTM.forward` returns: output [T, B, D·Hout] (batch-first when configured),
/// hn [L·D, B, Hout], cn [L·D, B, H].
public struct LSTMOutput {
    public let output: Tensor
    public let hn: Tensor
    public let cn: Tensor
    /// The device-side forward (with activations when training), for `backward`.
    package let context: AnyObject

    package init(output: Tensor, hn: Tensor, cn: Tensor, context: AnyObject) {
        (self.output, self.hn, self.cn, self.context) = (output, hn, cn, context)
    }
}

/// What `LSTM.backward` returns: gradients shaped like the input, h0, c0 and each weight
/// (by `state_dict` name).
public struct LSTMGradients {
    public let input: Tensor
    public let h0: Tensor
    public let c0: Tensor
    public let weights: [String: Tensor]

    package init(input: Tensor, h0: Tensor, c0: Tensor, weights: [String: Tensor]) {
        (self.input, self.h0, self.c0, self.weights) = (input, h0, c0, weights)
    }
}

extension LSTMStack {
    /// Copies a host tensor into a new backend buffer (for device-resident use of the stack).
    public func upload(_ tensor: Tensor) throws -> Backend.Buffer {
        let buffer = try backend.makeBuffer(count: tensor.count)
        try backend.write(tensor.scalars, to: buffer, offset: 0)
        return buffer
    }

    /// Copies the first `shape.product` values of a backend buffer back as a host tensor.
    public func download(_ buffer: Backend.Buffer, shape: [Int]) throws -> Tensor {
        try Tensor(shape: shape, scalars: backend.read(buffer, offset: 0, count: shape.reduce(1, *)))
    }
}

/// The host-tensor face of an `LSTMStack`, whatever its backend.
package protocol HostEngine: AnyObject {
    var backendName: String { get }
    /// The weight matrices' precision, and in a reduced one the matrices by `state_dict` name.
    var precision: Precision { get }
    var reducedMatrices: [String: ReducedMatrix] { get }
    func weightTensors() throws -> [String: Tensor]
    func setWeightTensors(_ weights: [String: Tensor], source: String) throws
    func forward(
        _ input: Tensor, sequenceLength steps: Int, batch: Int, h0: Tensor?, c0: Tensor?, lengths: [Int]?,
        training: Bool, dropoutSeed: UInt64?
    ) throws -> LSTMOutput
    func backward(
        _ result: LSTMOutput, outputGradient: Tensor?, hnGradient: Tensor?, cnGradient: Tensor?
    ) throws -> LSTMGradients
}

extension LSTMStack: HostEngine {
    package var backendName: String { backend.name }
    package func weightTensors() throws -> [String: Tensor] { try parameterTensors() }
    package func setWeightTensors(_ weights: [String: Tensor], source: String) throws {
        try setParameters(weights, source: source)
    }

    package func forward(
        _ input: Tensor, sequenceLength steps: Int, batch: Int, h0: Tensor?, c0: Tensor?, lengths: [Int]?,
        training: Bool, dropoutSeed: UInt64?
    ) throws -> LSTMOutput {
        let c = configuration
        let result = try forward(
            input: upload(input), sequenceLength: steps, batch: batch, initialHidden: h0.map(upload),
            initialCell: c0.map(upload), lengths: lengths, saveActivations: training,
            dropoutSeed: dropoutSeed)
        let width = c.numDirections * c.outputSize
        let states = c.numLayers * c.numDirections
        return LSTMOutput(
            output: try download(result.output, shape: c.batchFirst ? [batch, steps, width] : [steps, batch, width]),
            hn: try download(result.finalHidden, shape: [states, batch, c.outputSize]),
            cn: try download(result.finalCell, shape: [states, batch, c.hiddenSize]),
            context: result)
    }

    package func backward(
        _ result: LSTMOutput, outputGradient: Tensor?, hnGradient: Tensor?, cnGradient: Tensor?
    ) throws -> LSTMGradients {
        guard let forward = result.context as? LSTMStackForward<Backend> else {
            throw LSTMError.invalidArgument("backward was given the forward result of another backend")
        }
        let g = try backward(
            forward, outputGradient: outputGradient.map(upload), finalHiddenGradient: hnGradient.map(upload),
            finalCellGradient: cnGradient.map(upload))
        let c = configuration
        let batch = forward.batch, steps = forward.sequenceLength
        var weights: [String: Tensor] = [:]
        for (name, shape) in c.parameterSpecs { weights[name] = try download(g.weights[name]!, shape: shape) }
        return LSTMGradients(
            input: try download(
                g.input, shape: c.batchFirst ? [batch, steps, c.inputSize] : [steps, batch, c.inputSize]),
            h0: try download(g.initialHidden, shape: result.hn.shape),
            c0: try download(g.initialCell, shape: result.cn.shape),
            weights: weights)
    }
}
