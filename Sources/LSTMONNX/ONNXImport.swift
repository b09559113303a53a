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
/// `sequence_lens` or non-zero constant initial states; initial states computed in the graph
/// (another layer's `Y_h`/`Y_c`, any operator); glue between layers that does not provably
/// make Y [T, D, B, H] into [T, B, D·H] (followed symbolically through Transpose, Reshape,
/// Squeeze, Unsqueeze, Flatten); graphs with a cycle (the nodes on it named). Initial states
/// and `sequence_lens` that are graph inputs (states whole or sliced per layer) are run-time
/// inputs (`LSTM.forward`'s h0, c0, lengths). Every other operator of the graph is listed in
/// `warnings`. Files are checked against the protobuf limit and the host's memory before
/// they are read; external data reads only the bytes used.
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
