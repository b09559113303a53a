import Foundation
import LSTMKit
import SwiftProtobuf

// Following values through the shape-only glue between LSTM nodes, and checking what each
// link does: the layout a layer's X has (followed symbolically through Transpose, Reshape,
// Squeeze, Unsqueeze and Flatten), and where each layer's initial states come from.

/// One factor of a dimension: T, B, D, H or one of a graph value's dimensions; `size` when
/// it is known (D and H are, T and B are not).
struct Factor: Equatable {
    var name: String
    var size: Int?
}

/// A tensor's layout as the glue leaves it: each dimension the row-major product of its
/// factors (factors of size 1 are left out, so an empty dimension has size 1).
struct SymbolicShape: Equatable, CustomStringConvertible {
    var dims: [[Factor]]

    init(_ dims: [[Factor]]) { self.dims = dims.map { $0.filter { $0.size != 1 } } }

    var description: String {
        "[" + dims.map { $0.isEmpty ? "1" : $0.map(\.name).joined(separator: "·") }.joined(separator: ", ") + "]"
    }
}

/// Where a layer's initial state comes from.
enum StateSource: Equatable {
    /// Zeros: no input, a zero constant, or zeros made by ConstantOfShape (through any glue).
    case zero
    /// A graph input, used whole or as rows `rows` of axis 0 (run-time h0 or c0).
    case runtime(input: String, rows: Range<Int>?)
}

extension GraphReader {
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
            current = next
        }
        return trace
    }

    /// Throws when the graph has a cycle, naming the nodes on it in the order values flow.
    func checkAcyclic() throws {
        var successors = [[Int]](repeating: [], count: nodes.count)
        for (index, node) in nodes.enumerated() {
            for name in Set(node.input) where !name.isEmpty {
                if let producer = producers[name] { successors[producer.node].append(index) }
            }
        }
        // Iterative depth-first search: 1 = on the current path, 2 = done.
        var state = [UInt8](repeating: 0, count: nodes.count)
        for root in nodes.indices where state[root] == 0 {
            var path: [(node: Int, next: Int)] = [(root, 0)]
            state[root] = 1
            while let top = path.last {
                if top.next < successors[top.node].count {
                    path[path.count - 1].next += 1
                    let child = successors[top.node][top.next]
                    if state[child] == 1 {
                        let start = path.firstIndex { $0.node == child }!
                        let cycle = path[start...].map(\.node) + [child]
                        let shown = cycle.count > 21 ? Array(cycle.prefix(20)) : cycle
                        throw invalid(
                            "its graph has a cycle (ONNX graphs are acyclic): "
                                + shown.map(label).joined(separator: " → ") + (cycle.count > 21 ? " → …" : ""))
                    }
                    if state[child] == 0 {
                        state[child] = 1
                        path.append((child, 0))
                    }
                } else {
                    state[top.node] = 2
                    path.removeLast()
                }
            }
        }
    }

    // MARK: layouts

    /// The integers of a small constant (int64 or int32, in the file or in external data),
    /// or nil when `name` is not one.
    func integers(_ name: String) throws -> [Int]? {
        guard let tensor = constants[name], tensor.dims.count <= 1, tensor.dims.allSatisfy({ (0...64).contains($0) })
        else { return nil }
        let width: Int
        switch Onnx_TensorProto.DataType(rawValue: Int(tensor.dataType)) {
        case .int64: width = 8
        case .int32: width = 4
        default: return nil
        }
        let raw: Data
        if tensor.hasDataLocation, tensor.dataLocation == .external {
            let count = tensor.dims.first.map(Int.init) ?? 1
            raw = try decoder.externalData(tensor, "constant \(quoted(name))", byteCount: count * width)
        } else if tensor.hasRawData {
            raw = tensor.rawData
        } else {
            let values = width == 8 ? tensor.int64Data.map(Int.init) : tensor.int32Data.map(Int.init)
            return values.count <= 64 ? values : nil
        }
        guard raw.count % width == 0, raw.count <= 64 * width else { return nil }
        return raw.withUnsafeBytes { bytes in
            stride(from: 0, to: raw.count, by: width).map { offset in
                width == 8
                    ? Int(Int64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: Int64.self)))
                    : Int(Int32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: Int32.self)))
            }
        }
    }

    /// An integer-list operand of node `index`: the attribute `attribute` (older opsets) or the
    /// constant input `slot` (newer ones). `.absent` when neither is given.
    func operand(_ index: Int, attribute: String, slot: Int) throws -> [Int]? {
        let node = nodes[index]
        if let value = node.attribute.first(where: { $0.name == attribute }) { return value.ints.map(Int.init) }
        guard slot >= 0, slot < node.input.count, !node.input[slot].isEmpty else { return nil }
        let name = node.input[slot]
        guard let values = try integers(name) else {
            throw unsupported(
                index,
                "its \(attribute) (\(quoted(name))) is not a constant integer list of the file; lstm-gpu follows only "
                    + "glue whose effect it can check")
        }
        return values
    }

    /// The layout glue node `index` makes of `shape`, or an error naming the node and saying
    /// what it does that cannot be shown to keep the layout lstm-gpu runs.
    func apply(_ index: Int, to shape: SymbolicShape) throws -> SymbolicShape {
        let node = nodes[index]
        let dims = shape.dims, rank = dims.count
        func refuse(_ reason: String) -> ONNXError { unsupported(index, "\(reason) (its input is \(shape))") }
        func axis(_ value: Int, rank: Int) throws -> Int {
            let normalised = value < 0 ? value + rank : value
            guard (0..<rank).contains(normalised) else { throw refuse("axis \(value) is outside rank \(rank)") }
            return normalised
        }
        switch node.opType {
        case "Identity": return shape
        case "Transpose":
            let perm =
                node.attribute.first { $0.name == "perm" }.map { $0.ints.map(Int.init) } ?? Array((0..<rank).reversed())
            guard perm.sorted() == Array(0..<rank) else {
                throw refuse("perm \(perm) is not a permutation of 0..<\(rank)")
            }
            return SymbolicShape(perm.map { dims[$0] })
        case "Squeeze":
            guard let axes = try operand(index, attribute: "axes", slot: 1) else {
                throw refuse("it has no axes: it would also drop T or B when they are 1")
            }
            let drop = try Set(axes.map { try axis($0, rank: rank) })
            for k in drop.sorted() where !dims[k].isEmpty {
                throw refuse(
                    "it squeezes axis \(k), which is \(dims[k].map(\.name).joined(separator: "·")), not provably 1")
            }
            return SymbolicShape(dims.indices.filter { !drop.contains($0) }.map { dims[$0] })
        case "Unsqueeze":
            guard let axes = try operand(index, attribute: "axes", slot: 1) else { throw refuse("it has no axes") }
            let outRank = rank + axes.count
            let added = try Set(axes.map { try axis($0, rank: outRank) })
            guard added.count == axes.count else { throw refuse("axes \(axes) repeat an axis") }
            var rest = dims.makeIterator()
            return SymbolicShape((0..<outRank).map { added.contains($0) ? [] : rest.next()! })
        case "Flatten":
            let value = node.attribute.first { $0.name == "axis" }.map { Int($0.i) } ?? 1
            let at = value < 0 ? value + rank : value
            guard (0...rank).contains(at) else { throw refuse("axis \(value) is outside rank \(rank)") }
            return SymbolicShape([Array(dims[..<at].joined()), Array(dims[at...].joined())])
        case "Reshape":
            let attributeShape = node.attribute.first { $0.name == "shape" }.map { $0.ints.map(Int.init) }
            guard let target = try attributeShape ?? operand(index, attribute: "shape", slot: 1) else {
                throw refuse("it has no shape")
            }
            let allowZero = node.attribute.first { $0.name == "allowzero" }.map { $0.i != 0 } ?? false
            return try reshape(shape, to: target, allowZero: allowZero) { refuse("shape \(target): \($0)") }
        default:
            throw refuse("\(operatorName(node.opType)) is not glue lstm-gpu follows")
        }
    }

    /// `shape` reshaped to `target` (0 copies the input's dimension unless `allowZero`, −1 is
    /// inferred), when the result's factors are provably those of `target`: reshaping keeps
    /// the row-major order of the factors and only regroups them.
    func reshape(
        _ shape: SymbolicShape, to target: [Int], allowZero: Bool, _ refuse: (String) -> ONNXError
    ) throws -> SymbolicShape {
        let factors = Array(shape.dims.joined())
        var starts: [Int] = [], total = 0
        for dim in shape.dims {
            starts.append(total)
            total += dim.count
        }
        let inferred = target.indices.filter { target[$0] == -1 }
        guard inferred.count <= 1 else { throw refuse("more than one −1") }
        if let bad = target.first(where: { $0 < -1 }) { throw refuse("the size \(bad) is invalid") }
        if allowZero, target.contains(0) { throw refuse("with allowzero = 1 a 0 is an empty dimension") }
        var out = [[Factor]](repeating: [], count: target.count)
        // Left of the −1 (or everything) from the front, right of it from the back.
        var front = 0, back = factors.count
        func take(_ k: Int, fromFront: Bool) throws {
            let value = target[k]
            if value == 0 {
                guard k < shape.dims.count else { throw refuse("0 at position \(k) copies no input dimension") }
                let (start, end) = (starts[k], starts[k] + shape.dims[k].count)
                guard fromFront ? front == start : back == end else {
                    throw refuse("0 at position \(k) cannot be shown to copy input dimension \(k) in place")
                }
                out[k] = shape.dims[k]
                if fromFront { front = end } else { back = start }
                return
            }
            var product = 1
            var taken: [Factor] = []
            while product < value {
                guard front < back else { throw refuse("the size \(value) is more than the input holds") }
                let factor = fromFront ? factors[front] : factors[back - 1]
                guard let size = factor.size else {
                    throw refuse(
                        "the literal size \(value) would have to contain \(factor.name), whose size is only known at "
                            + "run time (use 0 to copy a dimension, −1 for the rest)")
                }
                product *= size
                if fromFront {
                    taken.append(factor)
                    front += 1
                } else {
                    taken.insert(factor, at: 0)
                    back -= 1
                }
            }
            guard product == value else {
                throw refuse("the size \(value) does not divide the input's dimensions (it would split a factor)")
            }
            out[k] = taken
        }
        let split = inferred.first ?? target.count
        for k in 0..<split { try take(k, fromFront: true) }
        if let minus = inferred.first {
            for k in ((minus + 1)..<target.count).reversed() { try take(k, fromFront: false) }
            guard front <= back else { throw refuse("the sizes given are more than the input holds") }
            out[minus] = Array(factors[front..<back])
        } else if front != back {
            throw refuse("the sizes given cannot be shown to hold the whole input")
        }
        return SymbolicShape(out)
    }

    /// `start` through the glue of `trace` (nearest node last applied), with the steps shown
    /// in messages.
    func follow(_ trace: Trace, from start: SymbolicShape) throws -> (shape: SymbolicShape, steps: [String]) {
        var shape = start
        var steps: [String] = []
        for index in trace.nodes.reversed() {
            shape = try apply(index, to: shape)
            steps.append("\(label(index))\(parameters(index)) → \(shape)")
        }
        return (shape, steps)
    }

    /// What node `index` was given, as messages show it (" perm [0, 2, 1, 3]", " shape [0, 0, -1]").
    func parameters(_ index: Int) -> String {
        let node = nodes[index]
        let value: [Int]?
        switch node.opType {
        case "Transpose": return node.attribute.first { $0.name == "perm" }.map { " perm \($0.ints)" } ?? " (no perm)"
        case "Reshape":
            value =
                node.attribute.first { $0.name == "shape" }.map { $0.ints.map(Int.init) }
                ?? (try? operand(index, attribute: "shape", slot: 1)) ?? nil
            return value.map { " shape \($0)" } ?? ""
        case "Squeeze", "Unsqueeze":
            value = (try? operand(index, attribute: "axes", slot: 1)) ?? nil
            return value.map { " axes \($0)" } ?? ""
        case "Flatten": return " axis \(node.attribute.first { $0.name == "axis" }?.i ?? 1)"
        default: return ""
        }
    }

    /// Checks that a layer's X is the previous layer's Y made [T, B, D·H] ([B, T, D·H] with
    /// layout 1) by the glue between them: Y is [T, D, B, H] ([B, T, D, H] with layout 1).
    func checkLink(_ trace: Trace, to layer: LayerNode, directions: Int) throws {
        let t = Factor(name: "T", size: nil), b = Factor(name: "B", size: nil)
        let d = Factor(name: "D", size: directions), h = Factor(name: "H", size: layer.hiddenSize)
        let y = layer.layout == 1 ? SymbolicShape([[b], [t], [d], [h]]) : SymbolicShape([[t], [d], [b], [h]])
        let wanted = layer.layout == 1 ? SymbolicShape([[b], [t], [d, h]]) : SymbolicShape([[t], [b], [d, h]])
        let (x, steps) = try follow(trace, from: y)
        guard x == wanted else {
            throw unsupported(
                layer.index,
                "input X is the previous layer's Y \(y) made \(x) by "
                    + (steps.isEmpty ? "no glue" : steps.joined(separator: ", "))
                    + "; a stacked layer's input must be \(wanted) (D = \(directions), H = \(layer.hiddenSize))")
        }
    }

    /// Whether the model reads batch-first input: layout 1, or a Transpose [1, 0, 2] of the
    /// input before layer 0 (how torch.onnx.export writes a batch_first LSTM). Other glue
    /// before layer 0 must leave the value as it is.
    func inputLayout(_ trace: Trace, _ layer: LayerNode) throws -> Bool {
        let dims = (0..<3).map { [Factor(name: "d\($0)", size: nil)] }
        let (x, steps) = try follow(trace, from: SymbolicShape(dims))
        if x == SymbolicShape(dims) { return layer.layout == 1 }
        if layer.layout == 0, x == SymbolicShape([dims[1], dims[0], dims[2]]) { return true }
        throw unsupported(
            layer.index,
            "input X [d0, d1, d2] is made \(x) by \(steps.joined(separator: ", ")); lstm-gpu reads X as it is, or "
                + "batch-first through one Transpose perm [1, 0, 2] (with layout 0)")
    }

    // MARK: initial states

    /// Where input `slot` (5 initial_h, 6 initial_c) of layer `l` of `layers` comes from, or
    /// an error naming the node when it is computed in the graph (another layer's Y_h or
    /// Y_c, an operator), or is a graph input rearranged in a way lstm-gpu does not follow.
    func stateSource(_ layer: LayerNode, slot: Int, position l: Int, of layers: Int) throws -> StateSource {
        let node = nodes[layer.index]
        let what = slot == 5 ? "initial_h" : "initial_c"
        guard slot < node.input.count, !node.input[slot].isEmpty else { return .zero }
        var name = node.input[slot]
        var path: [Int] = []
        func refuse(_ reason: String) -> ONNXError {
            unsupported(
                layer.index,
                "input \(what) (\(quoted(node.input[slot]))) \(reason); lstm-gpu runs every layer from the initial "
                    + "states given at run time (h0, c0 [L·D, B, H]) or zeros")
        }
        while true {
            if let tensor = constants[name] {
                let value = try decoder.floats(tensor, "node \(label(layer.index)) input \(what) (\(quoted(name)))")
                guard value.values.allSatisfy({ $0 == 0 }) else {
                    throw refuse(
                        path.isEmpty ? "is a non-zero constant" : "comes from the non-zero constant \(quoted(name))")
                }
                return .zero
            }
            if graphInputs.contains(name) { return try runtimeState(name, path: path, layer, l, layers, refuse) }
            guard let producer = producers[name] else {
                throw refuse(
                    "comes from \(quoted(name)), which is neither a graph input, a constant nor any node's output")
            }
            let index = producer.node, source = nodes[index]
            if isLSTM(source) {
                let output = ["Y", "Y_h", "Y_c"][min(producer.output, 2)]
                throw refuse(
                    "comes from output \(output) of LSTM node \(label(index))"
                        + (path.isEmpty ? "" : " through \(path.map(label).joined(separator: ", "))")
                        + " (a state carried from another layer)")
            }
            if isDefaultDomain(source.domain), source.opType == "ConstantOfShape" {
                if let value = source.attribute.first(where: { $0.name == "value" }), !isZero(value.t) {
                    throw refuse("comes from \(label(index)), which fills it with a non-zero value")
                }
                return .zero
            }
            let passed: Set<String> = shapeOnlyOperators.union(["Slice", "Expand", "Tile", "Cast"])
            guard isDefaultDomain(source.domain), passed.contains(source.opType), let next = source.input.first,
                !next.isEmpty, path.count < nodes.count
            else {
                throw refuse("is computed by node \(label(index))")
            }
            path.append(index)
            name = next
        }
    }

    /// Whether every value of a (small, in-file) tensor is zero.
    func isZero(_ tensor: Onnx_TensorProto) -> Bool {
        guard !tensor.hasDataLocation || tensor.dataLocation != .external else { return false }
        return tensor.rawData.allSatisfy { $0 == 0 } && tensor.floatData.allSatisfy { $0 == 0 }
            && tensor.int32Data.allSatisfy { $0 == 0 } && tensor.int64Data.allSatisfy { $0 == 0 }
            && tensor.doubleData.allSatisfy { $0 == 0 } && tensor.uint64Data.allSatisfy { $0 == 0 }
    }

    /// A state read from graph input `input` through `path` (nearest node first): accepted
    /// through Identity, at most one Slice of axis 0 that takes this layer's rows l·D..<(l+1)·D,
    /// and, with layout 1, a Transpose [1, 0, 2] (states are [B, D, H] there).
    func runtimeState(
        _ input: String, path: [Int], _ layer: LayerNode, _ l: Int, _ layers: Int, _ refuse: (String) -> ONNXError
    ) throws -> StateSource {
        let d = layer.directions
        var rows: Range<Int>?
        for index in path {
            let node = nodes[index]
            switch node.opType {
            case "Identity": continue
            case "Transpose" where layer.layout == 1:
                let perm = node.attribute.first { $0.name == "perm" }.map { $0.ints.map(Int.init) } ?? [2, 1, 0]
                guard perm == [1, 0, 2] else {
                    throw refuse(
                        "is graph input \(quoted(input)) rearranged by \(label(index)) perm \(perm); with layout 1 "
                            + "only a Transpose [1, 0, 2] of [D, B, H] is followed")
                }
            case "Slice" where rows == nil:
                let opset10 = node.attribute.first { $0.name == "starts" } == nil
                let starts = try operand(index, attribute: "starts", slot: opset10 ? 1 : -1)
                let ends = try operand(index, attribute: "ends", slot: opset10 ? 2 : -1)
                let axes = try operand(index, attribute: "axes", slot: opset10 ? 3 : -1)
                let steps = opset10 ? try operand(index, attribute: "steps", slot: 4) : nil
                let wanted = (l * d)..<((l + 1) * d)
                guard let starts, let ends, starts.count == 1, ends.count == 1,
                    axes == nil || axes == [0] || axes == [-3],
                    steps == nil || steps == [1], starts[0] == wanted.lowerBound,
                    ends[0] == wanted.upperBound || (l == layers - 1 && ends[0] > wanted.upperBound)
                else {
                    throw refuse(
                        "is graph input \(quoted(input)) sliced by \(label(index)) (starts \(starts ?? []), ends "
                            + "\(ends ?? []), axes \(axes ?? [0]), steps \(steps ?? [1])); layer \(l) of \(layers) "
                            + "reads rows \(wanted.lowerBound)..<\(wanted.upperBound) of axis 0")
                }
                rows = wanted
            default:
                throw refuse(
                    "is graph input \(quoted(input)) passed through \(label(index)), which lstm-gpu does not follow "
                        + "for initial states (it follows Identity, one Slice of axis 0"
                        + (layer.layout == 1 ? " and a Transpose [1, 0, 2])" : ")"))
            }
        }
        return .runtime(input: input, rows: rows)
    }
}
