import Foundation
import LSTMKit
import SwiftProtobuf

// One LSTM node: its attributes and constant inputs, and their conversion to PyTorch's names and layouts.

extension GraphReader {
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
