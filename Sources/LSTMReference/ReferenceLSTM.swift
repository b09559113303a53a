import Foundation
import LSTMCore

// Shape letters as in ReferenceDirection.swift: T steps, B batch, I input, H hidden,
// P projection, Hout = P or H, L layers, D directions, In a layer's input width.

/// The whole LSTM in plain Swift: layers, directions, batch-first, lengths, h0/c0 and dropout
/// between layers, forward and backward, on host tensors. `BackendKind.reference` runs it.
///
/// It is the oracle, not a product path: `lstm-gpu check --backend reference` holds it
/// against PyTorch's fixtures, and the randomised parity tests hold every fast path (the
/// CPU backend with each kernel body, OpenCL) against it element by element.
///
/// It implements `HostEngine` directly instead of being an `LSTMBackend` under `LSTMStack`:
/// the stack's logic (directions side by side in one buffer, dropout, batch-first swaps) is
/// part of what is being checked, so the reference writes it out again in its own plain terms
/// rather than sharing it. What it does share is what must be identical for the results to be
/// comparable at all: the argument checks (`checkRun`, `checkWeights`, so both refuse the
/// same calls with the same errors) and the dropout mask generator (`dropoutLayerSeed`,
/// `dropoutMaskValue`, so a training forward with a seed drops the same elements).
package final class ReferenceLSTM: HostEngine {
    let configuration: LSTMConfiguration
    /// The weights as given, by `state_dict` name (returned by `weightTensors`).
    private var weights: [String: Tensor]
    /// [L][D]: the same weights widened to Double, per layer and direction.
    private var layers: [[Reference.Weights]]

    /// The weight matrices' precision: in a reduced one the weights are quantized or rounded by
    /// the same rules as the fast path's (`ReducedMatrix`) and every product follows
    /// `Reference.product`; inference only.
    package let precision: Precision
    /// Matrices already in `precision` (a quantized file's) that the first `setWeightTensors`
    /// takes as they are instead of quantizing their widened values again.
    private var storedMatrices: [String: ReducedMatrix]
    /// In a reduced precision, the matrices in it by `state_dict` name.
    package private(set) var reducedMatrices: [String: ReducedMatrix] = [:]

    package init(
        configuration: LSTMConfiguration, weights: [String: Tensor], precision: Precision = .fp32,
        storedMatrices: [String: ReducedMatrix] = [:]
    ) throws {
        try configuration.validate()
        self.configuration = configuration
        self.precision = precision
        self.storedMatrices = storedMatrices
        self.weights = [:]
        self.layers = []
        try setWeightTensors(weights, source: "weights")
        self.storedMatrices = [:]
    }

    package var backendName: String { "reference" }

    package func weightTensors() throws -> [String: Tensor] { weights }

    package func setWeightTensors(_ weights: [String: Tensor], source: String) throws {
        try checkWeights(weights, for: configuration, source: source)
        let c = configuration
        // In a reduced precision: the matrices in it, and the weights as their values.
        var reduced: [String: ReducedMatrix] = [:]
        var weights = weights
        if precision.isReduced {
            for (name, tensor) in weights where isReducedMatrixName(name) {
                reduced[name] = try storedMatrices[name] ?? ReducedMatrix(quantizing: tensor, to: precision, name: name)
                weights[name] = reduced[name]!.dequantized()
            }
        }
        self.weights = weights
        reducedMatrices = reduced
        layers = (0..<c.numLayers).map { layer in
            (0..<c.numDirections).map { direction in
                let suffix = c.suffix(layer: layer, direction: direction)
                func vector(_ name: String) -> Vector? { weights[name].map { $0.scalars.map(Double.init) } }
                let gateVectors: (_ prefix: String) -> [Reference.Gate: Vector] = { prefix in
                    var found: [Reference.Gate: Vector] = [:]
                    for q in Reference.Gate.allCases { found[q] = vector("\(prefix)\(q)" + suffix) }
                    return found
                }
                return Reference.Weights(
                    inputWeights: matrix(weights["weight_ih" + suffix]!),
                    recurrentWeights: matrix(weights["weight_hh" + suffix]!),
                    inputBias: vector("bias_ih" + suffix), recurrentBias: vector("bias_hh" + suffix),
                    projectionWeights: weights["weight_hr" + suffix].map(matrix),
                    peepholes: gateVectors("weight_c"), layerNormWeights: gateVectors("layer_norm_weight_"),
                    cell: c.cellOptions, precision: precision,
                    reduced: precision.isReduced
                        ? ReducedDirectionMatrices(
                            input: reduced["weight_ih" + suffix]!, recurrent: reduced["weight_hh" + suffix]!,
                            projection: reduced["weight_hr" + suffix]) : nil)
            }
        }
    }

    // MARK: forward

    /// Runs every layer, each direction over the layer's whole input, the directions'
    /// outputs side by side ([T, B, D·Hout], forward direction first), with dropout on the
    /// output of every layer but the last when `dropoutSeed` is given (`LSTM.forward` gives
    /// one only for training runs with `dropout` > 0 and L > 1).
    ///
    /// - Parameters: input [T, B, I] ([B, T, I] batch-first), h0 [L·D, B, Hout], c0 [L·D, B, H],
    ///   lengths [B]; nil states are zeros, nil lengths are all T.
    package func forward(
        _ input: Tensor, sequenceLength steps: Int, batch: Int, h0: Tensor?, c0: Tensor?, lengths: [Int]?,
        training: Bool, dropoutSeed: UInt64?
    ) throws -> LSTMOutput {
        let c = configuration
        let (T, B, H, Hout, D, L) = (steps, batch, c.hiddenSize, c.outputSize, c.numDirections, c.numLayers)
        if training, precision.isReduced { throw LSTMError.invalidArgument(Precision.trainingRefusal(precision)) }
        try checkRun(sequenceLength: T, batch: B, lengths: lengths)
        // Doubles, kept for every layer when training: twice the floats of the fast paths' working set.
        try SizeLimits.requireHostMemory(
            floats: SizeLimits.saturatingProduct([
                SizeLimits.saturatingSum([
                    c.workingSetFloats(sequenceLength: T, batch: B, training: true),
                    c.parameterCount,
                ]), 2,
            ]),
            for: "a reference forward over T = \(T), B = \(B)")
        let lengths = lengths ?? [Int](repeating: T, count: B)
        let initialHidden =
            h0.map(states) ?? [[Vector]](repeating: [Vector](repeating: zeros(Hout), count: B), count: L * D)
        let initialCell = c0.map(states) ?? [[Vector]](repeating: [Vector](repeating: zeros(H), count: B), count: L * D)

        var layerInput = sequence(input, sequenceLength: T, batch: B)  // [T, B, In]
        let record = ReferenceForward(engine: self, sequenceLength: T, batch: B, lengths: lengths, training: training)
        var hn: [[Vector]] = [], cn: [[Vector]] = []  // [L·D][B][·]
        for layer in 0..<L {
            var output = zeros(sequenceLength: T, batch: B, width: D * Hout)  // [T, B, D·Hout]
            var directions: [Reference.DirectionForward] = []
            for direction in 0..<D {
                let state = layer * D + direction
                let run = Reference.forward(
                    input: layerInput, lengths: lengths, weights: layers[layer][direction],
                    initialHidden: initialHidden[state], initialCell: initialCell[state],
                    reverse: direction == 1 || c.reverse)
                for t in 0..<T {
                    for b in 0..<B { for p in 0..<Hout { output[t][b][direction * Hout + p] = run.output[t][b][p] } }
                }
                hn.append(run.finalHidden)
                cn.append(run.finalCell)
                directions.append(run)
            }
            record.layerInputs.append(layerInput)
            record.directions.append(directions)
            var mask: StepRows? = nil
            if let seed = dropoutSeed, c.dropout > 0, layer + 1 < L {
                let drop = dropoutMask(
                    sequenceLength: T, batch: B, width: D * Hout, seed: dropoutLayerSeed(seed, layer: layer))
                for t in 0..<T { for b in 0..<B { for k in 0..<D * Hout { output[t][b][k] *= drop[t][b][k] } } }
                mask = drop
            }
            record.masks.append(mask)
            layerInput = output
        }
        if !training { record.layerInputs = []; record.directions = [] }  // nothing for a backward to read
        return LSTMOutput(output: sequenceTensor(layerInput), hn: stateTensor(hn), cn: stateTensor(cn), context: record)
    }

    /// The dropout mask of one layer's output [T, B, D·Hout]: each element 0 or 1/(1 − p),
    /// from the same generator and the same element numbering (the whole batch, sequence-major)
    /// as `LSTMStack` with the CPU backend's `dropoutMask`.
    private func dropoutMask(sequenceLength T: Int, batch B: Int, width W: Int, seed: UInt64) -> StepRows {
        let layout = DropoutLayout.whole(batch: B, width: W)
        var mask = zeros(sequenceLength: T, batch: B, width: W)
        for t in 0..<T {
            for b in 0..<B {
                for k in 0..<W {
                    let index = (t * B + b) * W + k
                    mask[t][b][k] = Double(
                        dropoutMaskValue(index: index, probability: configuration.dropout, seed: seed, layout: layout))
                }
            }
        }
        return mask
    }

    // MARK: backward

    /// Backpropagation through time, top layer first: each layer's upstream gradient is
    /// masked by its dropout mask, split by direction, and the directions' input gradients
    /// are summed into the gradient of the layer below. Nil upstream gradients are zeros.
    package func backward(
        _ result: LSTMOutput, outputGradient: Tensor?, hnGradient: Tensor?, cnGradient: Tensor?
    ) throws -> LSTMGradients {
        guard let record = result.context as? ReferenceForward else {
            throw LSTMError.invalidArgument("backward was given the forward result of another backend")
        }
        guard record.engine === self else {
            throw LSTMError.invalidArgument("backward was given the forward result of a different LSTM")
        }
        guard record.training else {
            throw LSTMError.invalidArgument("backward needs a forward run with saveActivations: true (training: true)")
        }
        let c = configuration
        let (T, B, H, Hout, D, L) = (
            record.sequenceLength, record.batch, c.hiddenSize, c.outputSize, c.numDirections, c.numLayers
        )
        var upstream =
            outputGradient.map { sequence($0, sequenceLength: T, batch: B) }
            ?? zeros(sequenceLength: T, batch: B, width: D * Hout)
        let hnGradients =
            hnGradient.map(states) ?? [[Vector]](repeating: [Vector](repeating: zeros(Hout), count: B), count: L * D)
        let cnGradients =
            cnGradient.map(states) ?? [[Vector]](repeating: [Vector](repeating: zeros(H), count: B), count: L * D)
        var h0Gradients = [[Vector]](repeating: [], count: L * D), c0Gradients = h0Gradients
        var weightGradients: [String: Tensor] = [:]
        for layer in (0..<L).reversed() {
            if let mask = record.masks[layer] {
                for t in 0..<T { for b in 0..<B { for k in 0..<D * Hout { upstream[t][b][k] *= mask[t][b][k] } } }
            }
            let input = record.layerInputs[layer]
            var inputGradient = zeros(sequenceLength: T, batch: B, width: c.layerInputSize(layer))
            for direction in 0..<D {
                let state = layer * D + direction
                let directionGradient = upstream.map { $0.map { Array($0[direction * Hout..<(direction + 1) * Hout]) } }
                let g = Reference.backward(
                    record.directions[layer][direction], input: input, lengths: record.lengths,
                    weights: layers[layer][direction], outputGradient: directionGradient,
                    finalHiddenGradient: hnGradients[state], finalCellGradient: cnGradients[state],
                    reverse: direction == 1 || c.reverse)
                for t in 0..<T {
                    for b in 0..<B {
                        for k in 0..<c.layerInputSize(layer) { inputGradient[t][b][k] += g.input[t][b][k] }
                    }
                }
                h0Gradients[state] = g.initialHidden
                c0Gradients[state] = g.initialCell
                let suffix = c.suffix(layer: layer, direction: direction)
                weightGradients["weight_ih" + suffix] = tensor(g.weights.inputWeights)
                weightGradients["weight_hh" + suffix] = tensor(g.weights.recurrentWeights)
                if c.bias {
                    weightGradients["bias_ih" + suffix] = tensor(g.weights.bias)
                    weightGradients["bias_hh" + suffix] = tensor(g.weights.bias)
                }
                if let projection = g.weights.projectionWeights {
                    weightGradients["weight_hr" + suffix] = tensor(projection)
                }
                for (q, gradient) in g.weights.peepholes { weightGradients["weight_c\(q)" + suffix] = tensor(gradient) }
                for (q, gradient) in g.weights.layerNormWeights {
                    weightGradients["layer_norm_weight_\(q)" + suffix] = tensor(gradient)
                }
            }
            upstream = inputGradient
        }
        return LSTMGradients(
            input: sequenceTensor(upstream), h0: stateTensor(h0Gradients), c0: stateTensor(c0Gradients),
            weights: weightGradients)
    }

    // MARK: between Tensor (Float, flat) and the reference's Double arrays

    /// An input or output tensor [T, B, W] ([B, T, W] when batch-first) as `s[t][b]`.
    private func sequence(_ tensor: Tensor, sequenceLength T: Int, batch B: Int) -> StepRows {
        let W = tensor.shape[2]
        return (0..<T).map { t in
            (0..<B).map { b in
                let start = configuration.batchFirst ? (b * T + t) * W : (t * B + b) * W
                return tensor.scalars[start..<start + W].map(Double.init)
            }
        }
    }

    /// `s[t][b]` back to a tensor [T, B, W] ([B, T, W] when batch-first).
    private func sequenceTensor(_ s: StepRows) -> Tensor {
        let (T, B, W) = (s.count, s.first?.count ?? 0, s.first?.first?.count ?? 0)
        var scalars: [Float] = []
        scalars.reserveCapacity(T * B * W)
        if configuration.batchFirst {
            for b in 0..<B { for t in 0..<T { scalars += s[t][b].map(Float.init) } }
            return try! Tensor(shape: [B, T, W], scalars: scalars)
        }
        for t in 0..<T { for b in 0..<B { scalars += s[t][b].map(Float.init) } }
        return try! Tensor(shape: [T, B, W], scalars: scalars)
    }

    /// States [L·D, B, W] as `s[state][b]` (states are never batch-first).
    private func states(_ tensor: Tensor) -> [[Vector]] {
        let (S, B, W) = (tensor.shape[0], tensor.shape[1], tensor.shape[2])
        return (0..<S).map { s in
            (0..<B).map { b in tensor.scalars[(s * B + b) * W..<(s * B + b + 1) * W].map(Double.init) }
        }
    }

    /// `s[state][b]` back to a tensor [L·D, B, W].
    private func stateTensor(_ s: [[Vector]]) -> Tensor {
        let (S, B, W) = (s.count, s.first?.count ?? 0, s.first?.first?.count ?? 0)
        return try! Tensor(shape: [S, B, W], scalars: s.flatMap { $0.flatMap { $0.map(Float.init) } })
    }

    /// A weight [R, C] as rows.
    private func matrix(_ tensor: Tensor) -> Matrix {
        let (R, C) = (tensor.shape[0], tensor.shape[1])
        return (0..<R).map { r in tensor.scalars[r * C..<(r + 1) * C].map(Double.init) }
    }

    private func tensor(_ m: Matrix) -> Tensor {
        try! Tensor(shape: [m.count, m.first?.count ?? 0], scalars: m.flatMap { $0.map(Float.init) })
    }

    private func tensor(_ v: Vector) -> Tensor { try! Tensor(shape: [v.count], scalars: v.map(Float.init)) }

    private func zeros(_ count: Int) -> Vector { Reference.zeros(count) }
    private func zeros(sequenceLength steps: Int, batch: Int, width: Int) -> StepRows {
        Reference.zeros(sequenceLength: steps, batch: batch, width: width)
    }
    typealias Vector = Reference.Vector
    typealias Matrix = Reference.Matrix
    typealias StepRows = Reference.StepRows
}

/// What a reference forward keeps for its backward (the `context` of its `LSTMOutput`).
final class ReferenceForward {
    let engine: ReferenceLSTM
    let sequenceLength: Int, batch: Int
    let lengths: [Int]
    /// Whether this was a training forward (only those can be backpropagated).
    let training: Bool
    /// Per layer: its input [T, B, In] (after the layer below's dropout) and its directions' forwards.
    var layerInputs: [Reference.StepRows] = []
    var directions: [[Reference.DirectionForward]] = []
    /// Per layer: the dropout mask applied to its output [T, B, D·Hout], nil where none was.
    var masks: [Reference.StepRows?] = []

    init(engine: ReferenceLSTM, sequenceLength steps: Int, batch: Int, lengths: [Int], training: Bool) {
        (self.engine, self.sequenceLength, self.batch, self.lengths, self.training) = (
            engine, steps, batch, lengths, training
        )
    }
}
