/// The layer stack over any backend: the logic every backend shares (layers,
/// directions, batch-first, lengths, checking the caller's shapes) written once on top
/// of `LSTMBackend`'s per-direction forward and backward. Tensors here are backend
/// buffers, so a caller can keep everything device-resident across calls.
///
/// Shapes: input [T, B, I] ([B, T, I] when batch-first), output [T, B, D·Hout]
/// (likewise), h0/hn [L·D, B, Hout], c0/cn [L·D, B, H].
public final class LSTMStack<Backend: LSTMBackend> {
    public let configuration: LSTMConfiguration
    public let backend: Backend
    /// The weights, by `state_dict` name.
    public private(set) var parameters: [String: Backend.Buffer] = [:]

    /// A stack on `backend` holding `weights`.
    ///
    /// - Parameters:
    ///   - weights: exactly the configuration's tensors by `state_dict` name, with their shapes.
    /// - Throws: `LSTMError` for an invalid configuration, a missing, extra or misshaped
    ///   tensor, or weights the backend cannot hold.
    ///   - precision: the weight matrices' precision for inference (`Precision`; fp32 by
    ///     default). A reduced one quantizes `weight_ih`, `weight_hh`, `weight_hr` and holds only
    ///     those forms (the stack is then inference-only); the backend must list it in `precisions`.
    public init(
        configuration: LSTMConfiguration, backend: Backend, weights: [String: Tensor], precision: Precision = .fp32
    ) throws {
        try configuration.validate()
        self.configuration = configuration
        self.backend = backend
        self.precision = precision
        try Self.requirePrecision(precision, on: backend)
        try setParameters(weights)
    }

    /// A stack in a reduced precision holding matrices already in it (e.g. read from a quantized
    /// file, so nothing is quantized twice): `reducedMatrices` the configuration's `weight_ih`,
    /// `weight_hh`, `weight_hr` tensors in `precision`, `otherWeights` its other tensors (biases,
    /// peepholes, layer-norm scales) in float32. Names, shapes and precisions are checked.
    public init(
        configuration: LSTMConfiguration, backend: Backend, reducedMatrices: [String: ReducedMatrix],
        otherWeights: [String: Tensor], precision: Precision, source: String
    ) throws {
        try configuration.validate()
        self.configuration = configuration
        self.backend = backend
        self.precision = precision
        guard precision.isReduced else {
            throw LSTMError.invalidArgument("reduced matrices need a reduced precision (bf16, fp16, int8), not fp32")
        }
        try Self.requirePrecision(precision, on: backend)
        var uploaded: [String: Backend.Buffer] = [:]
        var reduced: [String: ReducedMatrix] = [:]
        let known = Set(configuration.parameterSpecs.map(\.name))
        if let extra = (Array(reducedMatrices.keys) + Array(otherWeights.keys)).sorted().first(where: {
            !known.contains($0)
        }) {
            throw LSTMError.unexpectedTensor(name: extra, file: source)
        }
        for (name, shape) in configuration.parameterSpecs {
            if isReducedMatrixName(name) {
                guard let matrix = reducedMatrices[name] else {
                    throw LSTMError.missingTensor(name: name, file: source)
                }
                guard matrix.shape == shape else {
                    throw LSTMError.shapeMismatch(what: "\(source): '\(name)'", expected: shape, got: matrix.shape)
                }
                guard matrix.precision == precision else {
                    throw LSTMError.invalidArgument(
                        "\(source): '\(name)' is \(matrix.precision) but the model is \(precision)")
                }
                reduced[name] = matrix
                uploaded[name] = try backend.makeBuffer(count: 0)
            } else {
                guard let tensor = otherWeights[name] else { throw LSTMError.missingTensor(name: name, file: source) }
                try checkShape(tensor, shape, "\(source): '\(name)'")
                uploaded[name] = try upload(tensor)
            }
        }
        (parameters, self.reducedMatrices) = (uploaded, reduced)
    }

    /// Refuses a precision `backend` does not compute in.
    static func requirePrecision(_ precision: Precision, on backend: Backend) throws {
        guard backend.precisions.contains(precision) else {
            throw LSTMError.invalidArgument(
                "\(backend.name) computes in \(backend.precisions.map(\.rawValue).joined(separator: ", ")) only, "
                    + "not \(precision): run \(precision) models on the CPU backend")
        }
    }

    /// The weight matrices' precision (fp32 unless the stack was made with another).
    public let precision: Precision
    /// In a reduced precision: `weight_ih_*`, `weight_hh_*`, `weight_hr_*` in it, by
    /// `state_dict` name (their `parameters` buffers are then empty). Empty in fp32.
    public private(set) var reducedMatrices: [String: ReducedMatrix] = [:]

    /// Replaces every weight; `weights` must hold exactly the configuration's tensors (float32;
    /// a reduced-precision stack quantizes its matrices again).
    public func setParameters(_ weights: [String: Tensor], source: String = "weights") throws {
        try backend.requireCapacity(
            SizeLimits.saturatingProduct([configuration.parameterCount, 4]),
            for: "the weights of \(configuration.parameterCount) parameters")
        try checkWeights(weights, for: configuration, source: source)
        var uploaded: [String: Backend.Buffer] = [:]
        var reduced: [String: ReducedMatrix] = [:]
        for (name, _) in configuration.parameterSpecs {
            let tensor = weights[name]!
            if precision.isReduced, isReducedMatrixName(name) {
                reduced[name] = try ReducedMatrix(quantizing: tensor, to: precision, name: name)
                uploaded[name] = try backend.makeBuffer(count: 0)
                continue
            }
            uploaded[name] = try upload(tensor)
        }
        (parameters, reducedMatrices) = (uploaded, reduced)
    }

    /// D·Hout: features per step of the stack's output.
    public var outputWidth: Int { configuration.numDirections * configuration.outputSize }

    /// Shape of h0/hn for `batch` sequences: [L·D, B, Hout].
    public func hiddenStateShape(batch: Int) -> [Int] {
        [configuration.numLayers * configuration.numDirections, batch, configuration.outputSize]
    }

    /// Shape of c0/cn for `batch` sequences: [L·D, B, H].
    public func cellStateShape(batch: Int) -> [Int] {
        [configuration.numLayers * configuration.numDirections, batch, configuration.hiddenSize]
    }

    /// The weights as optimiser `Parameter`s named `prefix` + their `state_dict` name, in
    /// `state_dict` order, sharing the stack's buffers (an update changes the stack).
    public func namedParameters(prefix: String) -> [Parameter<Backend.Buffer>] {
        configuration.parameterSpecs.map {
            Parameter(name: prefix + $0.name, shape: $0.shape, value: parameters[$0.name]!)
        }
    }

    /// The weights copied back to the host, by `state_dict` name.
    public func parameterTensors() throws -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for (name, shape) in configuration.parameterSpecs {
            if let matrix = reducedMatrices[name] {
                out[name] = matrix.dequantized()
                continue
            }
            let values = try backend.read(parameters[name]!, offset: 0, count: shape.reduce(1, *))
            out[name] = try Tensor(shape: shape, scalars: values)
        }
        return out
    }

    func directionWeights(layer: Int, direction: Int) -> DirectionWeights<Backend.Buffer> {
        let c = configuration
        let suffix = c.suffix(layer: layer, direction: direction)
        return DirectionWeights(
            inputWeights: parameters["weight_ih" + suffix]!, recurrentWeights: parameters["weight_hh" + suffix]!,
            inputBias: parameters["bias_ih" + suffix], recurrentBias: parameters["bias_hh" + suffix],
            projectionWeights: parameters["weight_hr" + suffix],
            peepholes: c.peepholes ? peepholeNames(suffix).map { parameters[$0] } : [],
            layerNormWeights: c.layerNorm ? layerNormNames(suffix).map { parameters[$0] } : [],
            reduced: precision.isReduced
                ? ReducedDirectionMatrices(
                    input: reducedMatrices["weight_ih" + suffix]!, recurrent: reducedMatrices["weight_hh" + suffix]!,
                    projection: reducedMatrices["weight_hr" + suffix]) : nil)
    }

    func directionShape(layer: Int, sequenceLength steps: Int, batch: Int) -> DirectionShape {
        DirectionShape(
            sequenceLength: steps, batch: batch, layerInputSize: configuration.layerInputSize(layer),
            hiddenSize: configuration.hiddenSize, outputSize: configuration.outputSize,
            cell: configuration.cellOptions)
    }

    /// Runs the whole stack.
    ///
    /// - Parameters:
    ///   - input: [T, B, I] ([B, T, I] when batch-first), a buffer of this backend.
    ///   - sequenceLength: T. `batch`: B.
    ///   - initialHidden: h0 [L·D, B, Hout]; nil means zeros. `initialCell`: c0 [L·D, B, H].
    ///   - lengths: [B], each in 0...T, any order: packed-sequence semantics.
    ///   - saveActivations: keep what `backward` needs (training).
    ///   - dropoutSeed: with `configuration.dropout` > 0, drop out every layer's output but the
    ///     last's with masks drawn from this seed (the same on every backend); nil: no dropout.
    ///   - dropoutBatch: under data parallelism, where this replica's rows sit in the global batch.
    /// - Returns: output [T, B, D·Hout] (batch-first likewise), hn, cn and the saved state.
    /// - Throws: `LSTMError` for T or B < 1, bad lengths, or a working set the backend cannot hold.
    public func forward(
        input: Backend.Buffer, sequenceLength steps: Int, batch: Int, initialHidden: Backend.Buffer? = nil,
        initialCell: Backend.Buffer? = nil, lengths: [Int]? = nil,
        saveActivations: Bool = false, dropoutSeed: UInt64? = nil,
        dropoutBatch: (offset: Int, global: Int)? = nil
    ) throws -> LSTMStackForward<Backend> {
        let c = configuration
        if saveActivations, precision.isReduced {
            throw LSTMError.invalidArgument(Precision.trainingRefusal(precision))
        }
        try checkRun(sequenceLength: steps, batch: batch, lengths: lengths)
        let (d, hout, h) = (c.numDirections, c.outputSize, c.hiddenSize)
        try backend.requireCapacity(
            SizeLimits.saturatingProduct([
                SizeLimits.saturatingSum([
                    c.workingSetFloats(
                        sequenceLength: steps, batch: batch,
                        training: saveActivations),
                    c.parameterCount,
                ]), 4,
            ]),
            for: "a forward over T = \(steps), B = \(batch)\(saveActivations ? " with saved activations" : "")")
        let kernelLengths = try backend.makeLengths(lengths, batch: batch, sequenceLength: steps)
        var layerInput = input
        if c.batchFirst {
            layerInput = try backend.makeBuffer(count: steps * batch * c.inputSize)
            try backend.swapOuterDimensions(input, into: layerInput, a: batch, c: steps, inner: c.inputSize)
        }
        let finalHidden = try backend.makeBuffer(count: c.numLayers * d * batch * hout)
        let finalCell = try backend.makeBuffer(count: c.numLayers * d * batch * h)
        var layerInputs: [Backend.Buffer] = []
        var dropoutMasks: [Backend.Buffer?] = []
        var activations: [[DirectionActivations<Backend.Buffer>]] = []
        for layer in 0..<c.numLayers {
            let shape = directionShape(layer: layer, sequenceLength: steps, batch: batch)
            let output = try backend.makeBuffer(count: steps * batch * d * hout)
            var saved: [DirectionActivations<Backend.Buffer>] = []
            var jobs: [DirectionForward<Backend>] = []
            for direction in 0..<d {
                let state = layer * d + direction
                let activation = saveActivations ? try DirectionActivations(backend: backend, shape: shape) : nil
                jobs.append(
                    DirectionForward(
                        shape: shape, reverse: direction == 1 || c.reverse,
                        weights: directionWeights(layer: layer, direction: direction),
                        input: MatrixView(layerInput, rowStride: shape.layerInputSize),
                        output: MatrixView(output, offset: direction * hout, rowStride: d * hout),
                        initialHidden: initialHidden.map {
                            MatrixView($0, offset: state * batch * hout, rowStride: hout)
                        },
                        initialCell: initialCell.map { MatrixView($0, offset: state * batch * h, rowStride: h) },
                        finalHidden: MatrixView(finalHidden, offset: state * batch * hout, rowStride: hout),
                        finalCell: MatrixView(finalCell, offset: state * batch * h, rowStride: h),
                        lengths: kernelLengths, activations: activation))
                activation.map { saved.append($0) }
            }
            try backend.forward(jobs)
            layerInputs.append(layerInput)
            activations.append(saved)
            layerInput = output
            if let seed = dropoutSeed, c.dropout > 0, layer + 1 < c.numLayers {
                let count = steps * batch * d * hout
                let mask = try backend.makeScratchBuffer(count: count)
                let layout = DropoutLayout(
                    localBatch: batch, globalBatch: dropoutBatch?.global ?? batch,
                    offset: dropoutBatch?.offset ?? 0, width: d * hout)
                try backend.dropoutMask(
                    count: count, probability: c.dropout, seed: dropoutLayerSeed(seed, layer: layer),
                    layout: layout, into: mask)
                let dropped = try backend.makeScratchBuffer(count: count)
                try backend.multiply(output, mask, into: dropped, count: count)
                layerInput = dropped
                dropoutMasks.append(mask)
            } else {
                dropoutMasks.append(nil)
            }
        }
        var output = layerInput
        if c.batchFirst {
            output = try backend.makeBuffer(count: steps * batch * d * hout)
            try backend.swapOuterDimensions(layerInput, into: output, a: steps, c: batch, inner: d * hout)
        }
        return LSTMStackForward(
            stack: self, sequenceLength: steps, batch: batch, output: output, finalHidden: finalHidden,
            finalCell: finalCell, lengths: kernelLengths,
            layerInputs: saveActivations ? layerInputs : [],
            activations: saveActivations ? activations : nil, dropoutMasks: dropoutMasks)
    }

    /// Backpropagation through time over the whole stack. The forward's activations are left
    /// intact, so `backward` may be called again on the same forward.
    ///
    /// - Parameters:
    ///   - forward: a result of `forward(…, saveActivations: true)` of this stack.
    ///   - outputGradient: dL/d(output), like the output; nil means zeros.
    ///   - finalHiddenGradient: dL/d(hn) [L·D, B, Hout]; `finalCellGradient`: dL/d(cn) [L·D, B, H].
    /// - Returns: the gradients of the input, h0, c0 and every weight (by `state_dict` name).
    /// - Throws: `LSTMError` when `forward` is another stack's or kept no activations.
    public func backward(
        _ forward: LSTMStackForward<Backend>, outputGradient: Backend.Buffer?,
        finalHiddenGradient: Backend.Buffer? = nil,
        finalCellGradient: Backend.Buffer? = nil
    ) throws -> LSTMStackGradients<Backend> {
        guard forward.stack === self else {
            throw LSTMError.invalidArgument("backward was given the forward result of a different LSTM")
        }
        guard let activations = forward.activations else {
            throw LSTMError.invalidArgument("backward needs a forward run with saveActivations: true (training: true)")
        }
        let c = configuration
        let (steps, batch, d, hout, h) = (
            forward.sequenceLength, forward.batch, c.numDirections, c.outputSize, c.hiddenSize
        )
        var upstream = outputGradient
        if c.batchFirst, let gradient = outputGradient {
            let swapped = try backend.makeBuffer(count: steps * batch * d * hout)
            try backend.swapOuterDimensions(gradient, into: swapped, a: batch, c: steps, inner: d * hout)
            upstream = swapped
        }
        let initialHiddenGradient = try backend.makeBuffer(count: c.numLayers * d * batch * hout)
        let initialCellGradient = try backend.makeBuffer(count: c.numLayers * d * batch * h)
        var weightGradients: [String: Backend.Buffer] = [:]
        for layer in (0..<c.numLayers).reversed() {
            let shape = directionShape(layer: layer, sequenceLength: steps, batch: batch)
            if let mask = forward.dropoutMasks[layer], let gradient = upstream {
                let count = steps * batch * d * hout
                let masked = try backend.makeScratchBuffer(count: count)
                try backend.multiply(gradient, mask, into: masked, count: count)
                upstream = masked
            }
            let inputGradient = try backend.makeBuffer(count: steps * batch * shape.layerInputSize)
            var jobs: [DirectionBackward<Backend>] = []
            for direction in 0..<d {
                let state = layer * d + direction
                let specs = c.parameterSpecs(layer: layer, direction: direction)
                var buffers: [String: Backend.Buffer] = [:]
                for (name, shape) in specs where !name.hasPrefix("bias_hh") {
                    buffers[name] = try backend.makeBuffer(count: shape.reduce(1, *))
                }
                let suffix = c.suffix(layer: layer, direction: direction)
                jobs.append(
                    DirectionBackward(
                        shape: shape, reverse: direction == 1 || c.reverse,
                        weights: directionWeights(layer: layer, direction: direction),
                        activations: activations[layer][direction],
                        input: MatrixView(forward.layerInputs[layer], rowStride: shape.layerInputSize),
                        outputGradient: upstream.map { MatrixView($0, offset: direction * hout, rowStride: d * hout) },
                        finalHiddenGradient: finalHiddenGradient.map {
                            MatrixView($0, offset: state * batch * hout, rowStride: hout)
                        },
                        finalCellGradient: finalCellGradient.map {
                            MatrixView($0, offset: state * batch * h, rowStride: h)
                        },
                        inputGradient: MatrixView(inputGradient, rowStride: shape.layerInputSize),
                        accumulateInputGradient: direction == 1,
                        initialHiddenGradient: MatrixView(
                            initialHiddenGradient, offset: state * batch * hout, rowStride: hout),
                        initialCellGradient: MatrixView(initialCellGradient, offset: state * batch * h, rowStride: h),
                        lengths: forward.lengths,
                        gateGradients: try backend.makeScratchBuffer(count: shape.rows * shape.gateWidth),
                        weightGradients: DirectionWeightGradients(
                            inputWeights: buffers["weight_ih" + suffix]!,
                            recurrentWeights: buffers["weight_hh" + suffix]!,
                            bias: buffers["bias_ih" + suffix], projectionWeights: buffers["weight_hr" + suffix],
                            peepholes: c.peepholes ? peepholeNames(suffix).map { buffers[$0] } : [],
                            layerNormWeights: c.layerNorm ? layerNormNames(suffix).map { buffers[$0] } : [])))
                for (name, buffer) in buffers { weightGradients[name] = buffer }
                if c.bias { weightGradients["bias_hh" + suffix] = buffers["bias_ih" + suffix] }
            }
            try backend.backward(jobs)
            upstream = inputGradient
        }
        var inputGradient = upstream!
        if c.batchFirst {
            inputGradient = try backend.makeBuffer(count: steps * batch * c.inputSize)
            try backend.swapOuterDimensions(upstream!, into: inputGradient, a: steps, c: batch, inner: c.inputSize)
        }
        return LSTMStackGradients(
            input: inputGradient, initialHidden: initialHiddenGradient,
            initialCell: initialCellGradient, weights: weightGradients)
    }
}

/// The result of `LSTMStack.forward`: output [T, B, D·Hout] (batch-first when configured),
/// hn [L·D, B, Hout], cn [L·D, B, H], and, for training, what the backward consumes.
public final class LSTMStackForward<Backend: LSTMBackend> {
    let stack: LSTMStack<Backend>
    public let sequenceLength: Int
    public let batch: Int
    public let output: Backend.Buffer
    public let finalHidden: Backend.Buffer
    public let finalCell: Backend.Buffer
    let lengths: Backend.Lengths
    /// Each layer's input, sequence-major [T, B, In] (kept for the input-weight gradients).
    let layerInputs: [Backend.Buffer]
    /// [layer][direction]; nil for an inference-only run.
    let activations: [[DirectionActivations<Backend.Buffer>]]?
    /// Per layer, the dropout mask applied to its output (nil where none was).
    let dropoutMasks: [Backend.Buffer?]

    init(
        stack: LSTMStack<Backend>, sequenceLength steps: Int, batch: Int, output: Backend.Buffer,
        finalHidden: Backend.Buffer,
        finalCell: Backend.Buffer, lengths: Backend.Lengths, layerInputs: [Backend.Buffer],
        activations: [[DirectionActivations<Backend.Buffer>]]?, dropoutMasks: [Backend.Buffer?]
    ) {
        self.dropoutMasks = dropoutMasks
        self.stack = stack
        self.sequenceLength = steps
        self.batch = batch
        self.output = output
        self.finalHidden = finalHidden
        self.finalCell = finalCell
        self.lengths = lengths
        self.layerInputs = layerInputs
        self.activations = activations
    }
}

/// Gradients from `LSTMStack.backward`: input like the input, h0/c0 like h0/c0, and one
/// buffer per weight, by `state_dict` name (`bias_ih` and `bias_hh` share one buffer:
/// their gradients are equal).
public struct LSTMStackGradients<Backend: LSTMBackend> {
    public let input: Backend.Buffer
    public let initialHidden: Backend.Buffer
    public let initialCell: Backend.Buffer
    public let weights: [String: Backend.Buffer]

    /// Sets the gradient of every parameter named `prefix` + a weight name (as made by
    /// `LSTMStack.namedParameters(prefix:)`); other parameters are left alone.
    public func assign(to parameters: [Parameter<Backend.Buffer>], prefix: String) {
        for p in parameters where p.name.hasPrefix(prefix) {
            if let gradient = weights[String(p.name.dropFirst(prefix.count))] { p.gradient = gradient }
        }
    }
}

/// The peephole tensors' names in kernel order i, f, o (with CIFG `weight_ci` does not exist:
/// looking it up gives nil).
func peepholeNames(_ suffix: String) -> [String] { ["i", "f", "o"].map { "weight_c\($0)" + suffix } }

/// The layer-norm weights' names in kernel order i, f, g, o (no `_i` with CIFG).
func layerNormNames(_ suffix: String) -> [String] {
    ["i", "f", "g", "o"].map { "layer_norm_weight_\($0)" + suffix }
}

/// The dropout seed of one layer, derived from the step's seed.
package func dropoutLayerSeed(_ seed: UInt64, layer: Int) -> UInt64 {
    var generator = SeededGenerator(seed: seed ^ (UInt64(layer + 1) &* 0xD1B5_4A32_D192_ED03))
    return generator.next()
}

/// Requires `weights` to hold exactly `configuration`'s tensors with their shapes: an extra
/// name, a missing one or a wrong shape is an error naming it and `source`. Shared by every
/// engine (`LSTMStack`, `ReferenceLSTM`), so they refuse the same weights the same way.
package func checkWeights(_ weights: [String: Tensor], for configuration: LSTMConfiguration, source: String) throws {
    let specs = configuration.parameterSpecs
    let known = Set(specs.map(\.name))
    if let extra = weights.keys.sorted().first(where: { !known.contains($0) }) {
        throw LSTMError.unexpectedTensor(name: extra, file: source)
    }
    for (name, shape) in specs {
        guard let tensor = weights[name] else { throw LSTMError.missingTensor(name: name, file: source) }
        try checkShape(tensor, shape, "\(source): '\(name)'")
    }
}

/// Requires T ≥ 1, B ≥ 1 and, when given, `lengths` [B] with each in 0...T. Shared by every
/// engine, so a bad run is refused with the same error whichever runs it.
package func checkRun(sequenceLength steps: Int, batch: Int, lengths: [Int]?) throws {
    guard steps > 0 else { throw LSTMError.invalidArgument("the sequence must have at least one step (T = \(steps))") }
    guard batch > 0 else { throw LSTMError.invalidArgument("the batch must hold at least one sequence (B = \(batch))") }
    // The BLAS interface and the kernels take 32-bit row counts: T·B rows at most 2³¹ − 1.
    let rows = steps.multipliedReportingOverflow(by: batch)
    guard !rows.overflow, rows.partialValue <= Int(Int32.max) else {
        throw LSTMError.invalidArgument(
            "T·B = \(steps)·\(batch) rows exceed 2^31 − 1, the most one run can take: split the sequence or the batch")
    }
    if let lengths {
        guard lengths.count == batch else {
            throw LSTMError.shapeMismatch(what: "lengths", expected: [batch], got: [lengths.count])
        }
        if let (b, n) = lengths.enumerated().first(where: { $0.element < 0 || $0.element > steps }) {
            throw LSTMError.invalidArgument("lengths[\(b)] = \(n) is outside 0...\(steps) (T = \(steps))")
        }
    }
}
