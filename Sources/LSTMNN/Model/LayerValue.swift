import LSTMCore

/// What flows between the layers of a model, with its shape and, for sequences, the
/// per-sequence lengths (steps t ≥ lengths[b] are padding: the LSTM never computes them,
/// pooling and the losses skip them).
///
/// - `tokens`: ids [T, B] (element t·B + b), each in 0..<V, lengths [B].
/// - `sequence`: features [T, B, F], lengths [B].
/// - `rows`: features [N, F] (one row per example: pooled sequences, tabular input).
public enum LayerValue<Backend: ModelOps> {
    case tokens(Backend.Indices, steps: Int, batch: Int, lengths: [Int])
    case sequence(Backend.Buffer, steps: Int, batch: Int, features: Int, lengths: [Int])
    case rows(Backend.Buffer, count: Int, features: Int)

    /// Token ids [T, B] (element t·B + b) uploaded to `backend`; `lengths` [B] (nil: all T).
    /// - Throws: `LSTMError` when `ids` is not T·B long or a length is outside 0...T.
    public static func tokens(
        ids: [Int], steps: Int, batch: Int, lengths: [Int]? = nil, on backend: Backend
    ) throws -> LayerValue {
        guard ids.count == steps * batch else {
            throw LSTMError.shapeMismatch(what: "token ids", expected: [steps, batch], got: [ids.count])
        }
        try checkRun(sequenceLength: steps, batch: batch, lengths: lengths)
        return .tokens(
            try backend.makeIndices(ids), steps: steps, batch: batch,
            lengths: lengths ?? Array(repeating: steps, count: batch))
    }

    /// A sequence [T, B, F] copied from the host (`values` in that order); `lengths` [B] (nil: all T).
    public static func sequence(
        values: [Float], steps: Int, batch: Int, features: Int, lengths: [Int]? = nil, on backend: Backend
    ) throws -> LayerValue {
        guard values.count == steps * batch * features else {
            throw LSTMError.shapeMismatch(what: "sequence", expected: [steps, batch, features], got: [values.count])
        }
        try checkRun(sequenceLength: steps, batch: batch, lengths: lengths)
        let buffer = try backend.makeBuffer(count: values.count)
        try backend.write(values, to: buffer, offset: 0)
        return .sequence(
            buffer, steps: steps, batch: batch, features: features,
            lengths: lengths ?? Array(repeating: steps, count: batch))
    }

    /// Rows [N, F] copied from the host (`values` row-major).
    public static func rows(values: [Float], count: Int, features: Int, on backend: Backend) throws -> LayerValue {
        guard values.count == count * features else {
            throw LSTMError.shapeMismatch(what: "rows", expected: [count, features], got: [values.count])
        }
        let buffer = try backend.makeBuffer(count: values.count)
        try backend.write(values, to: buffer, offset: 0)
        return .rows(buffer, count: count, features: features)
    }

    /// The float buffer of a sequence or rows (nil for token ids).
    public var buffer: Backend.Buffer? {
        switch self {
        case .tokens: nil
        case let .sequence(buffer, _, _, _, _), let .rows(buffer, _, _): buffer
        }
    }

    /// [T, B], [T, B, F] or [N, F].
    public var shape: [Int] {
        switch self {
        case let .tokens(_, steps, batch, _): [steps, batch]
        case let .sequence(_, steps, batch, features, _): [steps, batch, features]
        case let .rows(_, count, features): [count, features]
        }
    }

    /// Floats in the buffer (T·B·F or N·F; T·B ids for tokens).
    public var elementCount: Int { shape.reduce(1, *) }

    /// "token ids [T=4, B=2]", "a sequence [T=4, B=2, F=8]", "rows [N=2, F=8]": for messages.
    public var summary: String {
        switch self {
        case let .tokens(_, steps, batch, _): "token ids [T=\(steps), B=\(batch)]"
        case let .sequence(_, steps, batch, features, _): "a sequence [T=\(steps), B=\(batch), F=\(features)]"
        case let .rows(_, count, features): "rows [N=\(count), F=\(features)]"
        }
    }

    /// The fields of a sequence, or an error saying that `layer` expected one and got `self`.
    func sequenceParts(
        for layer: String, features expected: Int? = nil
    ) throws -> (buffer: Backend.Buffer, steps: Int, batch: Int, features: Int, lengths: [Int]) {
        guard case let .sequence(buffer, steps, batch, features, lengths) = self else {
            throw LSTMError.invalidArgument(
                "\(layer) expects a sequence [T, B, \(expected.map(String.init) ?? "F")], got \(summary)")
        }
        if let expected, expected != features {
            throw LSTMError.invalidArgument("\(layer) expects a sequence [T, B, \(expected)], got \(summary)")
        }
        return (buffer, steps, batch, features, lengths)
    }

    /// The same value with `buffer` [T, B, features] or [N, features] in place of its data: a
    /// layer's output keeps its input's steps, batch and lengths (token ids become a sequence).
    public func replacing(_ buffer: Backend.Buffer, features: Int) -> LayerValue {
        switch self {
        case let .tokens(_, steps, batch, lengths), let .sequence(_, steps, batch, _, lengths):
            .sequence(buffer, steps: steps, batch: batch, features: features, lengths: lengths)
        case let .rows(_, count, _): .rows(buffer, count: count, features: features)
        }
    }

    /// Rows of features the way a per-row operation sees them: T·B rows for a sequence, N for
    /// rows; `layer` and `expected` (F) name the error for token ids or a wrong width.
    func featureRows(for layer: String, features expected: Int) throws -> (buffer: Backend.Buffer, rows: Int) {
        switch self {
        case let .sequence(buffer, steps, batch, features, _) where features == expected:
            return (buffer, steps * batch)
        case let .rows(buffer, count, features) where features == expected: return (buffer, count)
        default:
            throw LSTMError.invalidArgument(
                "\(layer) expects rows [N, \(expected)] or a sequence [T, B, \(expected)], got \(summary)")
        }
    }
}

/// The error of a backward called without a training forward before it.
func backwardBeforeForward(_ layer: String) -> LSTMError {
    LSTMError.invalidArgument("\(layer).backward needs a forward with training: true first (none was kept)")
}
