import Foundation
import LSTMKit
import SwiftProtobuf

// Reading an ONNX graph: the chain of LSTM nodes and the glue between them (ONNXImport's work).

/// Operators that only rearrange or reshape their first input (the glue between layers).
let shapeOnlyOperators: Set<String> = ["Squeeze", "Unsqueeze", "Reshape", "Transpose", "Identity", "Flatten"]

/// One LSTM node's settings and constant inputs.
struct LayerNode {
    var index: Int
    var name: String
    var hiddenSize: Int
    var direction: String
    var layout: Int
    var clip: Float
    var inputForget: Bool
    var w: FloatArray
    var r: FloatArray
    var b: FloatArray?
    var p: FloatArray?
    var sequenceLens: String
    var directions: Int { direction == "bidirectional" ? 2 : 1 }
}

/// Where a value comes from, following shape-only operators upwards.
struct Trace {
    /// The LSTM node (index into the graph's nodes) and output it reaches, if any.
    var lstm: (node: Int, output: Int)?
    /// The shape-only nodes passed (graph indices), nearest first.
    var nodes: [Int] = []
}

struct GraphReader {
    let source: String
    let decoder: TensorDecoder
    var nodes: [Onnx_NodeProto] = []
    var constants: [String: Onnx_TensorProto] = [:]
    var producers: [String: (node: Int, output: Int)] = [:]
    /// The graph's inputs that are not initializers (values given at run time).
    var graphInputs: Set<String> = []

    init(source: String, decoder: TensorDecoder) {
        self.source = source
        self.decoder = decoder
    }

    func invalid(_ reason: String) -> ONNXError { .invalidModel(source: source, reason: reason) }

    func label(_ index: Int) -> String {
        let node = nodes[index]
        return (node.name.isEmpty ? "#\(index)" : quoted(node.name)) + " (\(operatorName(node.opType)))"
    }

    func unsupported(_ index: Int, _ reason: String) -> ONNXError {
        .unsupported(source: source, node: label(index), reason: reason)
    }

    func isLSTM(_ node: Onnx_NodeProto) -> Bool {
        node.opType == "LSTM" && isDefaultDomain(node.domain)
    }

    mutating func read(
        _ model: Onnx_ModelProto
    ) throws -> (
        configuration: LSTMConfiguration, weights: [String: Tensor], layerNodes: [String], opset: Int,
        warnings: [String]
    ) {
        let defaultOpsets = model.opsetImport.filter { isDefaultDomain($0.domain) }
        guard let opset = defaultOpsets.map(\.version).max() else {
            throw invalid("it imports no opset of the default domain (opset_import has no \"\" or ai.onnx entry)")
        }
        guard opset >= 7 else {
            throw invalid("its default-domain opset is \(opset); lstm-gpu reads opset 7 and later")
        }
        guard model.hasGraph else { throw invalid("it has no graph") }
        let graph = model.graph
        nodes = graph.node
        for tensor in graph.initializer {
            guard constants[tensor.name] == nil else {
                throw invalid("initializer \(quoted(tensor.name)) appears twice")
            }
            constants[tensor.name] = tensor
        }
        for (index, node) in nodes.enumerated() {
            for (slot, name) in node.output.enumerated() where !name.isEmpty {
                guard producers[name] == nil, constants[name] == nil else {
                    throw invalid("the value \(quoted(name)) is produced twice (node \(label(index)))")
                }
                producers[name] = (index, slot)
            }
            if node.opType == "Constant", isDefaultDomain(node.domain),
                let value = node.attribute.first(where: { $0.name == "value" }),
                value.hasT, let output = node.output.first
            {
                constants[output] = value.t
            }
        }
        graphInputs = Set(graph.input.map(\.name).filter { !$0.isEmpty && constants[$0] == nil })
        try checkAcyclic()
        let lstmIndices = nodes.indices.filter { isLSTM(nodes[$0]) }
        guard !lstmIndices.isEmpty else {
            let types = Set(nodes.map(\.opType)).sorted().prefix(20).map { quoted($0) }.joined(separator: ", ")
            throw invalid("its graph has no LSTM node (operators: \(types.isEmpty ? "none" : types))")
        }
        guard lstmIndices.count <= SizeLimits.maxLayers else {
            throw invalid(
                "its graph has \(lstmIndices.count) LSTM nodes, above the limit of \(SizeLimits.maxLayers) layers")
        }

        // The chain: each LSTM's X traced up through shape-only operators.
        var traces: [Int: Trace] = [:]
        var predecessor: [Int: Int] = [:]
        var heads: [Int] = []
        for index in lstmIndices {
            let node = nodes[index]
            guard let x = node.input.first, !x.isEmpty else { throw unsupported(index, "input X is missing") }
            let trace = self.trace(x)
            traces[index] = trace
            if let link = trace.lstm {
                let from = link.node
                guard link.output == 0 else {
                    let which = link.output == 1 ? "Y_h" : "Y_c"
                    throw unsupported(
                        index,
                        "input X comes from output \(which) of LSTM node \(label(from)); a stacked LSTM's next layer "
                            + "reads the previous layer's Y")
                }
                if let other = predecessor.first(where: { $0.value == from })?.key {
                    throw invalid(
                        "the LSTM nodes are not one chain: \(label(other)) and \(label(index)) both read the Y of "
                            + "\(label(from))")
                }
                predecessor[index] = from
            } else {
                heads.append(index)
            }
        }
        guard !heads.isEmpty else {
            // Not reached for an acyclic graph (checkAcyclic), kept so a message never lists nothing.
            throw invalid(
                "the LSTM nodes are not one chain: every one of \(lstmIndices.map(label).joined(separator: ", ")) reads "
                    + "another's Y")
        }
        guard heads.count == 1 else {
            throw invalid(
                "the LSTM nodes are not one chain: \(heads.map(label).joined(separator: ", ")) each read an input that "
                    + "is not another LSTM's Y (lstm-gpu imports one LSTM or one stack of LSTM layers)")
        }
        var chain = [heads[0]]
        while let next = predecessor.first(where: { $0.value == chain.last! })?.key {
            guard !chain.contains(next) else { break }
            chain.append(next)
        }
        guard chain.count == lstmIndices.count else {
            let outside = lstmIndices.filter { !chain.contains($0) }.map(label).joined(separator: ", ")
            throw invalid("the LSTM nodes are not one chain: \(outside) not reached from \(label(heads[0]))")
        }

        // Each layer's attributes and weights, then what they must share.
        let layers = try chain.map { try layerNode($0) }
        let first = layers[0]
        let h = first.hiddenSize, d = first.directions
        for (l, layer) in layers.enumerated() {
            func differs(_ what: String, _ a: String, _ b: String) -> ONNXError {
                unsupported(
                    layer.index,
                    "attribute \(what) is \(b), but layer 0 (\(label(first.index))) has \(a); every layer of the "
                        + "stack must share hidden_size, direction, layout, clip, input_forget and sequence_lens")
            }
            if layer.hiddenSize != h { throw differs("hidden_size", "\(h)", "\(layer.hiddenSize)") }
            if layer.direction != first.direction { throw differs("direction", first.direction, layer.direction) }
            if layer.layout != first.layout { throw differs("layout", "\(first.layout)", "\(layer.layout)") }
            if layer.clip != first.clip { throw differs("clip", "\(first.clip)", "\(layer.clip)") }
            if layer.inputForget != first.inputForget {
                throw differs("input_forget", "\(first.inputForget ? 1 : 0)", "\(layer.inputForget ? 1 : 0)")
            }
            if layer.sequenceLens != first.sequenceLens {
                throw differs("input sequence_lens", quoted(first.sequenceLens), quoted(layer.sequenceLens))
            }
            if l > 0 {
                guard layer.w.shape[2] == d * h else {
                    throw unsupported(
                        layer.index,
                        "input W has shape \(layer.w.shape); as layer \(l) of the stack its input size must be "
                            + "D·H = \(d * h)")
                }
                try checkLink(traces[layer.index]!, to: layer, directions: d)
            }
        }
        let batchFirst = try inputLayout(traces[first.index]!, first)
        for slot in [5, 6] {
            var wholeInputs: [String: Int] = [:]
            for (l, layer) in layers.enumerated() {
                let source = try stateSource(layer, slot: slot, position: l, of: layers.count)
                guard layers.count > 1, case let .runtime(input, nil) = source else { continue }
                if let other = wholeInputs[input] {
                    throw unsupported(
                        layer.index,
                        "input \(slot == 5 ? "initial_h" : "initial_c") is graph input \(quoted(input)) whole, as for "
                            + "layer \(other) (\(label(layers[other].index))); lstm-gpu gives each layer its own rows "
                            + "of h0, c0 [L·D, B, H] (a Slice of axis 0 per layer, as torch.onnx.export writes)")
                }
                wholeInputs[input] = l
            }
        }

        var cell = LSTMCellOptions()
        cell.peepholes = layers.contains { $0.p != nil }
        cell.coupledInputForget = first.inputForget
        cell.activationClip = first.clip
        let configuration = LSTMConfiguration(
            inputSize: first.w.shape[2], hiddenSize: h, numLayers: layers.count, bias: layers.contains { $0.b != nil },
            batchFirst: batchFirst, bidirectional: d == 2, cell: cell, reverse: first.direction == "reverse")
        do { try configuration.validate() } catch {
            throw unsupported(first.index, "the LSTM it describes is not valid: \(error)")
        }
        var weights: [String: Tensor] = [:]
        for (l, layer) in layers.enumerated() {
            for direction in 0..<d {
                try convert(
                    layer, direction: direction, suffix: configuration.suffix(layer: l, direction: direction),
                    configuration, into: &weights)
            }
        }
        return (
            configuration, weights, layers.map { nodes[$0.index].name }, Int(opset),
            warnings(chain: chain, traces: traces, layers: layers)
        )
    }
}

/// ONNX's default operator domain, "" or its name "ai.onnx".
func isDefaultDomain(_ domain: String) -> Bool { domain.isEmpty || domain == "ai.onnx" }

/// An operator type as messages show it (quoted only when it is not a plain word).
func operatorName(_ type: String) -> String {
    let plain =
        !type.isEmpty && type.count <= 60
        && type.unicodeScalars.allSatisfy {
            $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "_")
        }
    return plain ? type : quoted(type)
}
