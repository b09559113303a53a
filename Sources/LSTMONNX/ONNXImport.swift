import Foundation
import LSTMKit
import SwiftProtobuf

/// An LSTM read from an ONNX model: the configuration and the weights under lstm-gpu's
/// (PyTorch's) names, ready for `LSTM(_:weights:)`.
///
/// What is read: the graph's `LSTM` nodes (opset 7 and later). One node is a one-layer LSTM; a
/// chain of them, as `torch.onnx.export` writes a stacked `nn.LSTM` (each layer's X made from
/// the previous layer's Y by Squeeze, Unsqueeze, Reshape, Transpose, Flatten or Identity
/// nodes), is one multi-layer LSTM. Converted: W [D, 4H, I], R [D, 4H, H] and B [D, 8H] from
/// ONNX's gate order i, o, f, c into i, f, g, o (`weight_ih`, `weight_hh`, `bias_ih`,
/// `bias_hh`); P [D, 3H] (i, o, f) into `weight_ci`, `weight_cf`, `weight_co`; `clip` into
/// `activationClip`; `input_forget` into `coupledInputForget`; `direction` forward, reverse
/// or bidirectional; `layout` 1 or a Transpose [1, 0, 2] of the graph input into
/// `batchFirst`; `hidden_size`. Initializers (and `Constant` nodes) in float_data, raw_data
/// or external data files beside the model.
///
/// `input_forget` = 1 follows onnxruntime: f = 1 − i, computed from the i rows (and p_i); the
/// f rows and p_f are unused. lstm-gpu's CIFG computes i = 1 − f from f rows, so the imported
/// f rows are the ONNX i rows negated (σ(−z) = 1 − σ(z); clipping is symmetric).
///
/// Refused with an error naming the node and attribute: activations other than Sigmoid,
/// Tanh, Tanh; `activation_alpha`/`activation_beta`; unknown attributes; weights that are not
/// constants or have the wrong shape or a type other than float32; LSTM nodes that are not
/// one chain; layers that differ in hidden size, direction, layout or options; constant
/// `sequence_lens` or non-zero constant initial states. Initial states and `sequence_lens`
/// computed from graph inputs are run-time inputs (`LSTM.forward`'s h0, c0, lengths). Every
/// other operator of the graph is listed in `warnings`.
public struct ONNXImport {
    /// Largest model file read (the protobuf limit); larger weights belong in external data.
    public static let maximumFileBytes = Int(Int32.max)

    /// The LSTM's configuration.
    public let configuration: LSTMConfiguration
    /// The weights by `state_dict` name (`configuration.parameterSpecs`).
    public let weights: [String: Tensor]
    /// The LSTM nodes' names, layer 0 first.
    public let layerNodes: [String]
    /// The default domain's opset version of the model.
    public let opsetVersion: Int
    /// What the import did not take: the graph's other operators (by type, with counts and
    /// names) and anything else a user should know. Empty when the graph is the LSTM alone.
    public let warnings: [String]

    /// Reads the ONNX model at `url` (external data relative to its folder).
    /// - Throws: `LSTMError.io` when the file cannot be read; `ONNXError` saying what in the
    ///   model is malformed or unsupported, and where.
    public init(contentsOf url: URL) throws {
        let data = try readModelFile(url, maximumBytes: Self.maximumFileBytes)
        try self.init(data: data, folder: url.deletingLastPathComponent(), source: url.path)
    }

    /// Reads a serialised ONNX `ModelProto`. `folder` is where external data files are looked
    /// up (nil: external data is refused); `source` names the model in errors.
    public init(data: Data, folder: URL? = nil, source: String = "<memory>") throws {
        let model: Onnx_ModelProto
        do {
            var options = BinaryDecodingOptions()
            options.messageDepthLimit = 64
            model = try Onnx_ModelProto(serializedBytes: data, options: options)
        } catch {
            throw ONNXError.invalidModel(source: source, reason: "the file is not an ONNX protobuf model (\(error))")
        }
        var reader = GraphReader(source: source, decoder: TensorDecoder(source: source, folder: folder))
        let result = try reader.read(model)
        configuration = result.configuration
        weights = result.weights
        layerNodes = result.layerNodes
        opsetVersion = result.opset
        warnings = result.warnings
    }
}

/// Operators that only rearrange or reshape their first input (the glue between layers).
private let shapeOnlyOperators: Set<String> = ["Squeeze", "Unsqueeze", "Reshape", "Transpose", "Identity", "Flatten"]

/// One LSTM node's settings and constant inputs.
private struct LayerNode {
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
private struct Trace {
    /// The LSTM node (index into the graph's nodes) and output it reaches, if any.
    var lstm: (node: Int, output: Int)?
    /// The shape-only nodes passed (graph indices), nearest first.
    var nodes: [Int] = []
    /// The perms of the Transposes passed (nil: a Transpose without perm).
    var transposes: [(node: Int, perm: [Int]?)] = []
}

private struct GraphReader {
    let source: String
    let decoder: TensorDecoder
    var nodes: [Onnx_NodeProto] = []
    var constants: [String: Onnx_TensorProto] = [:]
    var producers: [String: (node: Int, output: Int)] = [:]

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

    /// Follows `name` up through shape-only operators to the LSTM output it comes from, if any.
    func trace(_ name: String) -> Trace {
        var trace = Trace()
        var current = name
        while let producer = producers[current] {
            let index = producer.node
            let node = nodes[index]
            if isLSTM(node) {
                trace.lstm = (index, producer.output)
                return trace
            }
            guard isDefaultDomain(node.domain), shapeOnlyOperators.contains(node.opType), let next = node.input.first,
                !next.isEmpty, trace.nodes.count < nodes.count
            else { return trace }
            trace.nodes.append(index)
            if node.opType == "Transpose" {
                let perm = node.attribute.first { $0.name == "perm" }.map { $0.ints.map(Int.init) }
                trace.transposes.append((index, perm))
            }
            current = next
        }
        return trace
    }

    /// Checks that a layer's X is the previous layer's Y made [T, B, D·H] ([B, T, D·H] with
    /// layout 1): Y [T, D, B, H] needs a Transpose [0, 2, 1, 3] when D = 2 (optional for D = 1);
    /// with layout 1 Y is [B, T, D, H] already in order.
    func checkLink(_ trace: Trace, to layer: LayerNode, directions: Int) throws {
        let glue = [0, 2, 1, 3]
        let ok: Bool
        if layer.layout == 1 {
            ok = trace.transposes.isEmpty
        } else {
            ok =
                trace.transposes.allSatisfy { $0.perm == glue } && trace.transposes.count <= 1
                && (directions == 1 || trace.transposes.count == 1)
        }
        guard ok else {
            let found =
                trace.transposes.isEmpty
                ? "no Transpose"
                : trace.transposes.map { "Transpose \(label($0.node)) perm \($0.perm.map { "\($0)" } ?? "(none)")" }
                    .joined(separator: ", ")
            let wanted =
                layer.layout == 1
                ? "no Transpose (layout 1: Y is [B, T, D, H])"
                : (directions == 2 ? "one Transpose perm [0, 2, 1, 3]" : "no Transpose or one with perm [0, 2, 1, 3]")
            throw unsupported(
                layer.index,
                "input X is the previous layer's Y rearranged by \(found); a stacked layer's input [T, B, D·H] needs "
                    + wanted)
        }
    }

    /// Whether the model reads batch-first input: layout 1, or a Transpose [1, 0, 2] of the
    /// input before layer 0 (how torch.onnx.export writes a batch_first LSTM).
    func inputLayout(_ trace: Trace, _ layer: LayerNode) throws -> Bool {
        if trace.transposes.isEmpty { return layer.layout == 1 }
        if layer.layout == 0, trace.transposes.count == 1, trace.transposes[0].perm == [1, 0, 2] { return true }
        let found = trace.transposes.map { "Transpose \(label($0.node)) perm \($0.perm.map { "\($0)" } ?? "(none)")" }
            .joined(separator: ", ")
        throw unsupported(
            layer.index,
            "input X is rearranged by \(found); lstm-gpu reads X as it is, or batch-first through one Transpose "
                + "perm [1, 0, 2] (with layout 0)")
    }

    /// Reads and checks one LSTM node's attributes and constant inputs.
    func layerNode(_ index: Int) throws -> LayerNode {
        let node = nodes[index]
        func refuse(_ reason: String) -> ONNXError { unsupported(index, reason) }
        var seen: Set<String> = []
        var hiddenSize: Int?
        var direction = "forward", layout = 0, clip: Float = 0, inputForget = false
        for attribute in node.attribute {
            guard seen.insert(attribute.name).inserted else {
                throw refuse("attribute \(quoted(attribute.name)) is given twice")
            }
            guard !attribute.hasRefAttrName else {
                throw refuse("attribute \(quoted(attribute.name)) refers to a function attribute (not supported)")
            }
            func int() throws -> Int64 {
                guard attribute.type == .int || (attribute.type == .undefined && attribute.hasI) else {
                    throw refuse("attribute \(attribute.name) must be an INT, it is \(attribute.type)")
                }
                return attribute.i
            }
            switch attribute.name {
            case "hidden_size":
                let value = try int()
                guard value >= 1, value <= Int64(SizeLimits.maxWidth) else {
                    throw refuse("attribute hidden_size = \(value) is not in 1...\(SizeLimits.maxWidth)")
                }
                hiddenSize = Int(value)
            case "direction":
                guard attribute.type == .string || (attribute.type == .undefined && attribute.hasS) else {
                    throw refuse("attribute direction must be a STRING, it is \(attribute.type)")
                }
                let text = String(decoding: attribute.s, as: UTF8.self)
                guard ["forward", "reverse", "bidirectional"].contains(text) else {
                    throw refuse("attribute direction = \(quoted(text)); ONNX allows forward, reverse or bidirectional")
                }
                direction = text
            case "layout":
                let value = try int()
                guard value == 0 || value == 1 else { throw refuse("attribute layout = \(value); ONNX allows 0 or 1") }
                layout = Int(value)
            case "input_forget":
                let value = try int()
                guard value == 0 || value == 1 else {
                    throw refuse("attribute input_forget = \(value); ONNX allows 0 or 1")
                }
                inputForget = value == 1
            case "clip":
                guard attribute.type == .float || (attribute.type == .undefined && attribute.hasF) else {
                    throw refuse("attribute clip must be a FLOAT, it is \(attribute.type)")
                }
                guard attribute.f.isFinite, attribute.f > 0 else {
                    throw refuse("attribute clip = \(attribute.f); it must be a positive finite number")
                }
                clip = attribute.f
            case "activations":
                guard attribute.type == .strings || (attribute.type == .undefined && !attribute.strings.isEmpty) else {
                    throw refuse("attribute activations must be STRINGS, it is \(attribute.type)")
                }
                let names = attribute.strings.map { String(decoding: $0, as: UTF8.self) }
                let defaults = ["sigmoid", "tanh", "tanh"]
                let perDirection = names.count == 6 ? 2 : 1
                guard names.count == 3 || names.count == 6,
                    names.map({ $0.lowercased() }) == Array(repeating: defaults, count: perDirection).flatMap({ $0 })
                else {
                    throw refuse(
                        "attribute activations = [\(names.map(quoted).joined(separator: ", "))]; lstm-gpu runs only "
                            + "the default Sigmoid, Tanh, Tanh (per direction)")
                }
            case "activation_alpha", "activation_beta":
                throw refuse(
                    "attribute \(attribute.name) (parameters of non-default activations) is not supported; lstm-gpu "
                        + "runs Sigmoid, Tanh, Tanh")
            default:
                throw refuse("unknown attribute \(quoted(attribute.name))")
            }
        }
        let activations = node.attribute.first { $0.name == "activations" }
        let d = direction == "bidirectional" ? 2 : 1
        if let activations, activations.strings.count != 3 * d {
            throw refuse(
                "attribute activations has \(activations.strings.count) entries; direction \(direction) needs \(3 * d)")
        }
        guard node.input.count >= 3, node.input.count <= 8 else {
            throw refuse(
                "has \(node.input.count) inputs; LSTM takes 3 to 8 (X, W, R, B, sequence_lens, initial_h, initial_c, P)"
            )
        }
        guard node.output.count <= 3 else { throw refuse("has \(node.output.count) outputs; LSTM has at most 3") }
        func input(_ slot: Int) -> String? {
            slot < node.input.count && !node.input[slot].isEmpty ? node.input[slot] : nil
        }
        let inputNames = ["X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P"]
        func constant(_ slot: Int) throws -> FloatArray? {
            guard let name = input(slot) else { return nil }
            guard let tensor = constants[name] else {
                throw refuse(
                    "input \(inputNames[slot]) (\(quoted(name))) is not a constant of the file (an initializer or "
                        + "Constant node): lstm-gpu imports weights stored in the model")
            }
            return try decoder.floats(tensor, "node \(label(index)) input \(inputNames[slot]) (\(quoted(name)))")
        }
        guard let w = try constant(1) else { throw refuse("input W (the input weights) is missing") }
        guard let r = try constant(2) else { throw refuse("input R (the recurrent weights) is missing") }
        guard r.shape.count == 3, r.shape[0] == d, r.shape[1] % 4 == 0, r.shape[1] == 4 * r.shape[2], r.shape[2] >= 1
        else {
            throw refuse("input R has shape \(r.shape); it must be [D, 4H, H] with D = \(d) (direction \(direction))")
        }
        let h = r.shape[2]
        if let hiddenSize, hiddenSize != h {
            throw refuse("attribute hidden_size = \(hiddenSize) but input R has shape \(r.shape) (H = \(h))")
        }
        guard w.shape.count == 3, w.shape[0] == d, w.shape[1] == 4 * h, w.shape[2] >= 1,
            w.shape[2] <= SizeLimits.maxWidth
        else { throw refuse("input W has shape \(w.shape); it must be [\(d), \(4 * h), I]") }
        let b = try constant(3)
        if let b, b.shape != [d, 8 * h] { throw refuse("input B has shape \(b.shape); it must be [\(d), \(8 * h)]") }
        let p = try constant(7)
        if let p, p.shape != [d, 3 * h] { throw refuse("input P has shape \(p.shape); it must be [\(d), \(3 * h)]") }
        if let lengths = input(4), constants[lengths] != nil {
            throw refuse(
                "input sequence_lens (\(quoted(lengths))) is a constant; lstm-gpu takes lengths at run time only")
        }
        for slot in [5, 6] where input(slot).map({ constants[$0] != nil }) ?? false {
            if let state = try constant(slot), state.values.contains(where: { $0 != 0 }) {
                throw refuse(
                    "input \(inputNames[slot]) is a non-zero constant; lstm-gpu takes initial states at run time (h0, c0)"
                )
            }
        }
        return LayerNode(
            index: index, name: node.name, hiddenSize: h, direction: direction, layout: layout, clip: clip,
            inputForget: inputForget, w: w, r: r, b: b, p: p, sequenceLens: input(4) ?? "")
    }

    /// One layer and direction's weights under lstm-gpu's names. ONNX blocks i, o, f, c
    /// become i, f, g, o; with input_forget the f rows are the i rows negated (see `ONNXImport`).
    func convert(
        _ layer: LayerNode, direction: Int, suffix: String, _ c: LSTMConfiguration, into weights: inout [String: Tensor]
    ) throws {
        let h = c.hiddenSize
        func gates(_ values: ArraySlice<Float>, columns: Int) throws -> [Float] {
            let all = Array(values)
            guard layer.inputForget else { return try GateOrder.onnx.convert(all, to: .pytorch) }
            let size = h * columns
            func block(_ b: Int) -> ArraySlice<Float> { all[(b * size)..<((b + 1) * size)] }
            return block(0).map { -$0 } + block(3) + block(1)
        }
        func slice(_ array: FloatArray, width: Int) -> ArraySlice<Float> {
            array.values[(direction * width)..<((direction + 1) * width)]
        }
        let rows = c.gateCount * h
        let inputs = layer.w.shape[2]
        weights["weight_ih" + suffix] = try Tensor(
            shape: [rows, inputs], scalars: gates(slice(layer.w, width: 4 * h * inputs), columns: inputs))
        weights["weight_hh" + suffix] = try Tensor(
            shape: [rows, h], scalars: gates(slice(layer.r, width: 4 * h * h), columns: h))
        if c.bias {
            let both = layer.b.map { Array(slice($0, width: 8 * h)) } ?? [Float](repeating: 0, count: 8 * h)
            weights["bias_ih" + suffix] = try Tensor(shape: [rows], scalars: gates(both[0..<(4 * h)], columns: 1))
            weights["bias_hh" + suffix] = try Tensor(shape: [rows], scalars: gates(both[(4 * h)...], columns: 1))
        }
        if c.peepholes {
            let p = layer.p.map { Array(slice($0, width: 3 * h)) } ?? [Float](repeating: 0, count: 3 * h)
            let (pi, po, pf) = (Array(p[0..<h]), Array(p[h..<(2 * h)]), Array(p[(2 * h)...]))
            if layer.inputForget {
                weights["weight_cf" + suffix] = try Tensor(shape: [h], scalars: pi.map { -$0 })
            } else {
                weights["weight_ci" + suffix] = try Tensor(shape: [h], scalars: pi)
                weights["weight_cf" + suffix] = try Tensor(shape: [h], scalars: pf)
            }
            weights["weight_co" + suffix] = try Tensor(shape: [h], scalars: po)
        }
    }

    /// The messages about what the import leaves out: the graph's other operators, those that
    /// compute first, then those that only move, slice or join tensors.
    func warnings(chain: [Int], traces: [Int: Trace], layers: [LayerNode]) -> [String] {
        var glue: Set<Int> = []
        for index in chain { glue.formUnion(traces[index]!.nodes) }
        let layoutOperators: Set<String> = shapeOnlyOperators.union(["Slice", "Concat", "Split", "Constant", "Shape"])
        var computing: [String: [Int]] = [:], moving: [String: [Int]] = [:]
        for index in nodes.indices where !chain.contains(index) && !glue.contains(index) {
            let node = nodes[index]
            if isDefaultDomain(node.domain), layoutOperators.contains(node.opType) {
                moving[node.opType, default: []].append(index)
            } else {
                computing[node.opType, default: []].append(index)
            }
        }
        func list(_ groups: [String: [Int]]) -> String {
            groups.keys.sorted().map { type -> String in
                let members = groups[type]!
                let names = members.prefix(3).map { nodes[$0].name.isEmpty ? "#\($0)" : quoted(nodes[$0].name) }
                return "\(operatorName(type)) ×\(members.count) (\(names.joined(separator: ", "))"
                    + (members.count > 3 ? ", …)" : ")")
            }.joined(separator: ", ")
        }
        var messages: [String] = []
        if !computing.isEmpty {
            messages.append(
                "operators of the graph that are not imported and not run (lstm-gpu runs the LSTM layers alone): "
                    + list(computing))
        }
        if !moving.isEmpty {
            messages.append(
                "layout operators of the graph not imported (lstm-gpu takes input, h0, c0, lengths and gives output, "
                    + "hn, cn in PyTorch's layout instead): " + list(moving))
        }
        return messages
    }
}

/// ONNX's default operator domain, "" or its name "ai.onnx".
private func isDefaultDomain(_ domain: String) -> Bool { domain.isEmpty || domain == "ai.onnx" }

/// An operator type as messages show it (quoted only when it is not a plain word).
private func operatorName(_ type: String) -> String {
    let plain =
        !type.isEmpty && type.count <= 60
        && type.unicodeScalars.allSatisfy {
            $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "_")
        }
    return plain ? type : quoted(type)
}
