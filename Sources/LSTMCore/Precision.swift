/// The number format of an LSTM's weight matrices (`weight_ih`, `weight_hh`, `weight_hr`) and of
/// the products with them, for inference. Biases, peepholes, layer-norm scales, gates, the cell
/// and the states stay float32 in every precision; training is float32 only.
///
/// - `fp32`: float32 throughout (the reference precision and the default).
/// - `bf16`: weights rounded to bfloat16; each product's activations (x, h, o·tanh c) rounded
///   to bfloat16 too; products of bf16 pairs are exact in float32 and summed in float32
///   (`vdpbf16ps`'s arithmetic).
/// - `fp16`: weights stored as IEEE half (half the bytes) and widened on load; activations and
///   sums float32: the float32 computation on weights rounded to half.
/// - `int8`: dynamic quantization (PyTorch's `quantize_dynamic`, onnxruntime's
///   `DynamicQuantizeLSTM`): weights symmetric int8 per output row with a float scale;
///   activations quantized on the fly per row (one sequence's vector at one step, so a result
///   does not depend on how a sequence is cut into chunks or batched), int32 sums (exact),
///   dequantized to float32. The rules are `Int8Quantization`'s.
public enum Precision: String, CaseIterable, Sendable, Codable, CustomStringConvertible {
    case fp32, bf16, fp16, int8

    public var description: String { rawValue }

    /// The precision named `name` ("fp32", "bf16", "fp16", "int8"), or nil.
    public init?(name: String) { self.init(rawValue: name) }

    /// Whether the weight matrices are held in a reduced format (not float32).
    public var isReduced: Bool { self != .fp32 }

    /// The names the command line takes, for messages: "fp32, bf16, fp16, int8".
    public static var names: String { allCases.map(\.rawValue).joined(separator: ", ") }

    /// The message for training a model held in a reduced precision.
    public static func trainingRefusal(_ precision: Precision) -> String {
        "this model is held in \(precision), which is for inference only: train in fp32, then quantize the "
            + "trained model (model.quantized(.\(precision)) or `lstm-gpu quantize MODEL --to \(precision)`)"
    }
}

/// Whether `name` (a `state_dict` name without prefix) is one of the weight matrices a reduced
/// precision stores reduced: `weight_ih_*`, `weight_hh_*`, `weight_hr_*`.
public func isReducedMatrixName(_ name: String) -> Bool {
    name.hasPrefix("weight_ih_") || name.hasPrefix("weight_hh_") || name.hasPrefix("weight_hr_")
}
