import Foundation
import LSTMKit

/// Every failure of ONNX import and export. `description` is the sentence a user sees: it
/// names the file, and the node and attribute or tensor where that applies.
public enum ONNXError: Error, CustomStringConvertible, Equatable, LocalizedError {
    /// The file is not a usable ONNX model: not protobuf, no graph, a missing or malformed
    /// tensor, external data out of bounds, LSTM nodes that do not form one chain...
    case invalidModel(source: String, reason: String)
    /// The model is valid ONNX but uses something lstm-gpu does not run; `node` names the
    /// node ("'name' (LSTM)"), `reason` the attribute or input and why.
    case unsupported(source: String, node: String, reason: String)
    /// The LSTM has something ONNX's LSTM operator cannot express (projection, layer norm, a
    /// cell or projection clip).
    case notExportable(String)

    public var description: String {
        switch self {
        case let .invalidModel(source, reason): return "\(source): not a usable ONNX model: \(reason)"
        case let .unsupported(source, node, reason): return "\(source): node \(node): unsupported: \(reason)"
        case let .notExportable(reason): return "cannot export to ONNX: \(reason)"
        }
    }

    public var errorDescription: String? { description }
}

/// `text` (a name read from a file) as messages show it: quoted, control characters and
/// quotes escaped, at most 120 characters.
func quoted(_ text: String) -> String {
    var out = ""
    for scalar in text.unicodeScalars.prefix(120) {
        if scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) || scalar == "'" || scalar == "\\" {
            out += "\\u{" + String(scalar.value, radix: 16) + "}"
        } else {
            out.unicodeScalars.append(scalar)
        }
    }
    return "'" + out + (text.unicodeScalars.count > 120 ? "…" : "") + "'"
}
