import Foundation
import LSTMKit
import SwiftProtobuf

/// Writes an LSTM as an ONNX model (opset 14) that onnxruntime runs and that gives
/// `LSTM.forward`'s results.
///
/// The graph, as `torch.onnx.export` writes a stacked `nn.LSTM`:
/// - inputs `input` [T, B, I] ([B, T, I] when batch-first: a Transpose [1, 0, 2] feeds layer 0,
///   since onnxruntime refuses layout = 1), `h0` [L·D, B, Hout], `c0` [L·D, B, H] and
///   `lengths` (int32 [B], ONNX's sequence_lens; all T for full sequences);
/// - one `LSTM` node per layer (`lstm_l0`, `lstm_l1`, ...), each fed its slice of h0 and c0;
///   between layers Y [T, D, B, H] is made [T, B, D·H] by a Transpose [0, 2, 1, 3] and a
///   Reshape [0, 0, −1];
/// - outputs `output` [T, B, D·H] ([B, T, D·H] batch-first), `hn` and `cn` [L·D, B, H].
///
/// Weights: W, R, B in ONNX's gate order i, o, f, c; peepholes as P (i, o, f); `activationClip`
/// as `clip`; `reverse` as direction="reverse". A CIFG LSTM (i = 1 − f) is written with
/// input_forget = 1, its f rows as ONNX's f rows and their negation as the i rows (and
/// p_i = −p_f), so the model gives the same result whether a runtime computes f = 1 − i
/// (onnxruntime), i = 1 − f, or ignores input_forget (σ(−z) = 1 − σ(z)).
///
/// Refused (ONNX's LSTM has no such thing): projection, layer normalisation, cell clip,
/// projection clip. Dropout only acts in training and is not written.
public enum ONNXExport {
    /// The opset the exported models import.
    public static let opsetVersion = 14

    /// The serialised `ModelProto` of an LSTM with `configuration` and `weights` (by
    /// `state_dict` name, exactly `configuration.parameterSpecs`).
    /// - Throws: `ONNXError.notExportable` for an option ONNX cannot express or a missing or
    ///   misshaped weight.
    public static func data(configuration: LSTMConfiguration, weights: [String: Tensor]) throws -> Data {
        let model = try self.model(configuration: configuration, weights: weights)
        do { return try model.serializedBytes() } catch {
            throw ONNXError.notExportable("the model could not be serialised: \(error)")
        }
    }

    /// Writes the model to `url` atomically (a temporary file renamed over it: no half-written file).
    /// - Throws: `ONNXError.notExportable` as `data`; `LSTMError.io` when the file cannot be written.
    public static func write(configuration: LSTMConfiguration, weights: [String: Tensor], to url: URL) throws {
        try writeAtomically(data(configuration: configuration, weights: weights), to: url.path)
    }

    static func model(configuration c: LSTMConfiguration, weights: [String: Tensor]) throws -> Onnx_ModelProto {
        do { try c.validate() } catch { throw ONNXError.notExportable("\(error)") }
        var refused: [String] = []
        if c.projectionSize > 0 { refused.append("projection (proj_size \(c.projectionSize))") }
        if c.layerNorm { refused.append("layer normalisation") }
        if c.cellClip > 0 { refused.append("cell clip (\(c.cellClip))") }
        if c.projectionClip > 0 { refused.append("projection clip (\(c.projectionClip))") }
        guard refused.isEmpty else {
            throw ONNXError.notExportable(
                "ONNX's LSTM operator has no \(refused.joined(separator: ", ")); it has peepholes, input_forget "
                    + "(CIFG), clip (the activation clip) and the reverse direction")
        }
        guard c.parameterCount <= 400_000_000 else {
            throw ONNXError.notExportable(
                "\(c.parameterCount) weights do not fit a 2 GB protobuf file (external data is not written)")
        }
        for (name, shape) in c.parameterSpecs {
            guard let tensor = weights[name] else { throw ONNXError.notExportable("the weight '\(name)' is missing") }
            guard tensor.shape == shape else {
                throw ONNXError.notExportable("the weight '\(name)' has shape \(tensor.shape), expected \(shape)")
            }
        }
        let h = c.hiddenSize, d = c.numDirections, layers = c.numLayers
        var graph = Onnx_GraphProto()
        graph.name = "lstm-gpu"
        let (t, b) = (dimension("T"), dimension("B"))
        graph.input = [
            valueInfo(
                "input", .float, c.batchFirst ? [b, t, dimension(c.inputSize)] : [t, b, dimension(c.inputSize)]),
            valueInfo("h0", .float, [dimension(layers * d), b, dimension(h)]),
            valueInfo("c0", .float, [dimension(layers * d), b, dimension(h)]),
            valueInfo("lengths", .int32, [b]),
        ]
        graph.output = [
            valueInfo("output", .float, c.batchFirst ? [b, t, dimension(d * h)] : [t, b, dimension(d * h)]),
            valueInfo("hn", .float, [dimension(layers * d), b, dimension(h)]),
            valueInfo("cn", .float, [dimension(layers * d), b, dimension(h)]),
        ]
        graph.initializer.append(int64Tensor("reshape_tb", [0, 0, -1]))
        var x = "input"
        if c.batchFirst {
            graph.node.append(
                node("Transpose", "input_to_time_major", ["input"], ["input_tb"], [ints("perm", [1, 0, 2])]))
            x = "input_tb"
        }
        var hn: [String] = [], cn: [String] = []
        for l in 0..<layers {
            var w: [Float] = [], r: [Float] = [], bias: [Float] = [], p: [Float] = []
            for direction in 0..<d {
                let s = c.suffix(layer: l, direction: direction)
                w += try onnxGates(weights["weight_ih" + s]!.scalars, c)
                r += try onnxGates(weights["weight_hh" + s]!.scalars, c)
                if c.bias {
                    bias += try onnxGates(weights["bias_ih" + s]!.scalars, c)
                    bias += try onnxGates(weights["bias_hh" + s]!.scalars, c)
                }
                if c.peepholes {
                    let cf = weights["weight_cf" + s]!.scalars, co = weights["weight_co" + s]!.scalars
                    p += (c.coupledInputForget ? cf.map { -$0 } : weights["weight_ci" + s]!.scalars) + co + cf
                }
            }
            let inputs = c.layerInputSize(l)
            graph.initializer.append(floatTensor("W_l\(l)", [d, 4 * h, inputs], w))
            graph.initializer.append(floatTensor("R_l\(l)", [d, 4 * h, h], r))
            if c.bias { graph.initializer.append(floatTensor("B_l\(l)", [d, 8 * h], bias)) }
            if c.peepholes { graph.initializer.append(floatTensor("P_l\(l)", [d, 3 * h], p)) }
            var states = ["h0", "c0"]
            if layers > 1 {
                graph.initializer.append(int64Tensor("state_start_l\(l)", [l * d]))
                graph.initializer.append(int64Tensor("state_end_l\(l)", [(l + 1) * d]))
                graph.initializer.append(int64Tensor("state_axis_l\(l)", [0]))
                states = ["h0", "c0"].map { state in
                    graph.node.append(
                        node(
                            "Slice", "\(state)_slice_l\(l)",
                            [state, "state_start_l\(l)", "state_end_l\(l)", "state_axis_l\(l)"], ["\(state)_l\(l)"]))
                    return "\(state)_l\(l)"
                }
            }
            var attributes = [int("hidden_size", h)]
            if c.bidirectional { attributes.append(string("direction", "bidirectional")) }
            if c.reverse { attributes.append(string("direction", "reverse")) }
            if c.activationClip > 0 { attributes.append(float("clip", c.activationClip)) }
            if c.coupledInputForget { attributes.append(int("input_forget", 1)) }
            graph.node.append(
                node(
                    "LSTM", "lstm_l\(l)",
                    [
                        x, "W_l\(l)", "R_l\(l)", c.bias ? "B_l\(l)" : "", "lengths", states[0], states[1],
                        c.peepholes ? "P_l\(l)" : "",
                    ], ["Y_l\(l)", "Y_h_l\(l)", "Y_c_l\(l)"], attributes))
            hn.append("Y_h_l\(l)")
            cn.append("Y_c_l\(l)")
            // Y [T, D, B, H] → [T, B, D, H] → [T, B, D·H].
            graph.node.append(
                node("Transpose", "y_transpose_l\(l)", ["Y_l\(l)"], ["Y_tbdh_l\(l)"], [ints("perm", [0, 2, 1, 3])]))
            let last = l == layers - 1
            let next = last ? (c.batchFirst ? "output_tb" : "output") : "X_l\(l + 1)"
            graph.node.append(node("Reshape", "y_reshape_l\(l)", ["Y_tbdh_l\(l)", "reshape_tb"], [next]))
            x = next
        }
        if c.batchFirst {
            graph.node.append(
                node("Transpose", "output_to_batch_first", ["output_tb"], ["output"], [ints("perm", [1, 0, 2])]))
        }
        for (name, parts) in [("hn", hn), ("cn", cn)] {
            graph.node.append(
                parts.count == 1
                    ? node("Identity", "\(name)_identity", parts, [name])
                    : node("Concat", "\(name)_concat", parts, [name], [int("axis", 0)]))
        }
        var model = Onnx_ModelProto()
        model.irVersion = 8
        model.producerName = "lstm-gpu"
        model.docString =
            "LSTM exported by lstm-gpu: I=\(c.inputSize) H=\(h) L=\(layers) D=\(d)"
            + (c.batchFirst ? " batch-first" : "") + (c.reverse ? " reverse" : "") + (c.peepholes ? " peepholes" : "")
            + (c.coupledInputForget ? " cifg" : "")
            + (c.activationClip > 0 ? " activation_clip=\(c.activationClip)" : "")
        var opset = Onnx_OperatorSetIdProto()
        opset.domain = ""
        opset.version = Int64(opsetVersion)
        model.opsetImport = [opset]
        model.graph = graph
        return model
    }

    /// A [G·H, ·] matrix or [G·H] vector of lstm-gpu's (i, f, g, o; CIFG f, g, o) in ONNX's
    /// i, o, f, c (CIFG: −f, o, f, g).
    static func onnxGates(_ values: [Float], _ c: LSTMConfiguration) throws -> [Float] {
        guard c.coupledInputForget else { return try GateOrder.pytorch.convert(values, to: .onnx) }
        let size = values.count / 3
        let (f, g, o) = (values[0..<size], values[size..<(2 * size)], values[(2 * size)...])
        return f.map { -$0 } + o + f + g
    }
}

private func dimension(_ name: String) -> Onnx_TensorShapeProto.Dimension {
    var dim = Onnx_TensorShapeProto.Dimension()
    dim.dimParam = name
    return dim
}

private func dimension(_ value: Int) -> Onnx_TensorShapeProto.Dimension {
    var dim = Onnx_TensorShapeProto.Dimension()
    dim.dimValue = Int64(value)
    return dim
}

private func valueInfo(
    _ name: String, _ type: Onnx_TensorProto.DataType, _ dims: [Onnx_TensorShapeProto.Dimension]
) -> Onnx_ValueInfoProto {
    var tensorType = Onnx_TypeProto.Tensor()
    tensorType.elemType = Int32(type.rawValue)
    tensorType.shape.dim = dims
    var info = Onnx_ValueInfoProto()
    info.name = name
    info.type.tensorType = tensorType
    return info
}

private func floatTensor(_ name: String, _ shape: [Int], _ values: [Float]) -> Onnx_TensorProto {
    var tensor = Onnx_TensorProto()
    tensor.name = name
    tensor.dims = shape.map(Int64.init)
    tensor.dataType = Int32(Onnx_TensorProto.DataType.float.rawValue)
    tensor.rawData = values.map { $0.bitPattern.littleEndian }.withUnsafeBytes { Data($0) }
    return tensor
}

/// An INT64 initializer holding `values` as a 1-D tensor (also what the hostile-graph tests build with).
func int64Tensor(_ name: String, _ values: [Int]) -> Onnx_TensorProto {
    var tensor = Onnx_TensorProto()
    tensor.name = name
    tensor.dims = [Int64(values.count)]
    tensor.dataType = Int32(Onnx_TensorProto.DataType.int64.rawValue)
    tensor.int64Data = values.map(Int64.init)
    return tensor
}

/// A graph node of operator `type` (also what the hostile-graph tests build with).
func node(
    _ type: String, _ name: String, _ inputs: [String], _ outputs: [String], _ attributes: [Onnx_AttributeProto] = []
) -> Onnx_NodeProto {
    var node = Onnx_NodeProto()
    node.opType = type
    node.name = name
    node.input = inputs
    node.output = outputs
    node.attribute = attributes
    return node
}

private func int(_ name: String, _ value: Int) -> Onnx_AttributeProto {
    var attribute = Onnx_AttributeProto()
    attribute.name = name
    attribute.type = .int
    attribute.i = Int64(value)
    return attribute
}

private func ints(_ name: String, _ values: [Int]) -> Onnx_AttributeProto {
    var attribute = Onnx_AttributeProto()
    attribute.name = name
    attribute.type = .ints
    attribute.ints = values.map(Int64.init)
    return attribute
}

private func float(_ name: String, _ value: Float) -> Onnx_AttributeProto {
    var attribute = Onnx_AttributeProto()
    attribute.name = name
    attribute.type = .float
    attribute.f = value
    return attribute
}

private func string(_ name: String, _ value: String) -> Onnx_AttributeProto {
    var attribute = Onnx_AttributeProto()
    attribute.name = name
    attribute.type = .string
    attribute.s = Data(value.utf8)
    return attribute
}
