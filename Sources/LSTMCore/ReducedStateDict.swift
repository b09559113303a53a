import Foundation

/// How a reduced-precision model's weights are stored in a safetensors file (a state dict, or the
/// LSTM part of a whole-model or Seq2Seq file). The metadata key `lstm_gpu_precision` says which
/// (`bf16`, `fp16`, `int8`; absent or `fp32` for float32 files); names are `state_dict` names:
///
/// | tensor | fp32 | bf16 | fp16 | int8 |
/// | --- | --- | --- | --- | --- |
/// | `weight_ih_*`, `weight_hh_*`, `weight_hr_*` | F32 | BF16, same shape | F16, same shape | I8, same shape (q) |
/// | `<that name>.scale` | — | — | — | F32 [rows]: value = q · scale, each > 0 and finite |
/// | biases, peepholes, layer-norm scales | F32 | F32 | F32 | F32 |
///
/// int8 rows are quantized symmetrically (`Int8Quantization`): q in [−127, 127]. A file's size is
/// about ½ (bf16, fp16) or ¼ (int8) of the float32 file's.
public enum ReducedStateDict {
    /// The metadata key naming the precision.
    public static let metadataKey = "lstm_gpu_precision"
    /// The suffix of an int8 matrix's scales.
    public static let scaleSuffix = ".scale"

    /// The precision `metadata` records: fp32 when it records none.
    /// - Throws: `LSTMError.corruptFile` for a value that names no precision.
    public static func precision(in metadata: [String: String], source: String) throws -> Precision {
        guard let value = metadata[metadataKey] else { return .fp32 }
        guard let precision = Precision(name: value) else {
            throw LSTMError.corruptFile(
                path: source,
                reason: "metadata '\(metadataKey)' is '\(value)', not one of \(Precision.names)")
        }
        return precision
    }

    /// Whether `name` (without prefix) is an int8 matrix's scale tensor.
    public static func isScale(_ name: String) -> Bool { name.hasSuffix(scaleSuffix) }

    /// The entries of a reduced model's weights: the matrices in `reduced` in their precision (with
    /// int8 scales), every other tensor of `configuration` from `floats`, names prefixed.
    public static func entries(
        configuration: LSTMConfiguration, reduced: [String: ReducedMatrix], floats: [String: Tensor], prefix: String
    ) -> [(name: String, value: SafeTensorsValue)] {
        var out: [(name: String, value: SafeTensorsValue)] = []
        for (name, shape) in configuration.parameterSpecs {
            guard let matrix = reduced[name] else {
                out.append((prefix + name, .float32(floats[name]!)))
                continue
            }
            switch matrix.precision {
            case .int8:
                out.append((prefix + name, .int8(shape: shape, values: matrix.int8Values)))
                out.append(
                    (prefix + name + scaleSuffix, .float32(try! Tensor(shape: [matrix.rows], scalars: matrix.scales))))
            case .bf16: out.append((prefix + name, .bfloat16(shape: shape, bits: matrix.halfBits)))
            case .fp16: out.append((prefix + name, .float16(shape: shape, bits: matrix.halfBits)))
            case .fp32: out.append((prefix + name, .float32(matrix.dequantized())))
            }
        }
        return out
    }

    /// Reads `configuration`'s weights stored in `precision` under `prefix`: the reduced matrices
    /// and the float32 rest, strictly (dtypes, shapes and scales checked; a tensor under the
    /// prefix that is not one of them is an error unless `ignoring` says so).
    public static func read(
        _ file: SafeTensorsFile, prefix: String, configuration: LSTMConfiguration, precision: Precision,
        ignoring: (String) -> Bool = { _ in false }
    ) throws -> (reduced: [String: ReducedMatrix], floats: [String: Tensor]) {
        let specs = configuration.parameterSpecs
        var expected = Set(specs.map { prefix + $0.name })
        if precision == .int8 {
            for (name, _) in specs where isReducedMatrixName(name) { expected.insert(prefix + name + scaleSuffix) }
        }
        for name in file.entries.keys.sorted() where name.hasPrefix(prefix) && !expected.contains(name) {
            if ignoring(String(name.dropFirst(prefix.count))) { continue }
            throw LSTMError.unexpectedTensor(name: name, file: file.path)
        }
        var reduced: [String: ReducedMatrix] = [:]
        var floats: [String: Tensor] = [:]
        for (name, shape) in specs {
            let stored = prefix + name
            guard isReducedMatrixName(name) else {
                let tensor = try file.floatTensor(stored)
                try checkShape(tensor, shape, "\(file.path): '\(stored)'")
                floats[name] = tensor
                continue
            }
            switch precision {
            case .int8:
                let (found, values) = try file.int8Tensor(stored)
                guard found == shape else {
                    throw LSTMError.shapeMismatch(what: "\(file.path): '\(stored)'", expected: shape, got: found)
                }
                guard file.contains(stored + scaleSuffix) else {
                    throw LSTMError.missingTensor(name: stored + scaleSuffix, file: file.path)
                }
                let scales = try file.floatTensor(stored + scaleSuffix)
                guard scales.shape == [shape[0]] else {
                    throw LSTMError.shapeMismatch(
                        what: "\(file.path): '\(stored + scaleSuffix)' (one scale per row)", expected: [shape[0]],
                        got: scales.shape)
                }
                reduced[name] = try ReducedMatrix(
                    int8: values, scales: scales.scalars, rows: shape[0], columns: shape[1], name: stored,
                    source: file.path)
            case .bf16, .fp16:
                let (found, bits) = try file.halfBits(stored, dtype: precision == .bf16 ? .bf16 : .f16)
                guard found == shape else {
                    throw LSTMError.shapeMismatch(what: "\(file.path): '\(stored)'", expected: shape, got: found)
                }
                reduced[name] = try ReducedMatrix(
                    halfBits: bits, precision: precision, rows: shape[0], columns: shape[1], name: stored,
                    source: file.path)
            case .fp32:
                floats[name] = try file.floatTensor(stored)
            }
        }
        return (reduced, floats)
    }

    /// The tensor shapes under `prefix` as a float32 file would have them (scales left out), for
    /// inferring the configuration of a reduced file.
    public static func shapes(in file: SafeTensorsFile, prefix: String) -> [String: [Int]] {
        var shapes: [String: [Int]] = [:]
        for (name, entry) in file.entries where name.hasPrefix(prefix) {
            let short = String(name.dropFirst(prefix.count))
            if isScale(short) { continue }
            shapes[short] = entry.shape
        }
        return shapes
    }
}
