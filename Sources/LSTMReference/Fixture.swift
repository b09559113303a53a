import Foundation
import LSTMCore

/// A parity fixture in the `lstm-fixture/1` format (README, "Parity fixtures"): an LSTM's
/// weights, inputs, PyTorch's float64 reference outputs and, optionally, gradients.
public struct Fixture {
    public static let format = "lstm-fixture/1"
    public let path: String
    public let configuration: LSTMConfiguration
    public let weights: [String: Tensor]
    public let input: Tensor
    public let h0: Tensor?
    public let c0: Tensor?
    public let lengths: [Int]?
    /// Reference tensors by fixture name ("output", "hn", "grad_input", "grad.weight_ih_l0", ...).
    public let references: [String: Tensor]
    /// Upstream gradients; nil for a forward-only fixture.
    public let outputGradient: Tensor?
    public let hnGradient: Tensor?
    public let cnGradient: Tensor?
    public var hasGradients: Bool { outputGradient != nil }

    /// Reads and validates `path`.
    public init(contentsOf path: String) throws {
        let file = try SafeTensorsFile(contentsOf: path)
        self.path = path
        guard file.metadata["format"] == Fixture.format else {
            throw LSTMError.unknownFormat(
                path: path, expected: "an \(Fixture.format) parity fixture",
                found: describeFormat(file))
        }
        func integer(_ key: String, default value: Int? = nil) throws -> Int {
            guard let s = file.metadata[key] else {
                if let value { return value }
                throw LSTMError.corruptFile(path: path, reason: "metadata '\(key)' is missing")
            }
            guard let v = Int(s) else {
                throw LSTMError.corruptFile(path: path, reason: "metadata '\(key)' is '\(s)', not an integer")
            }
            return v
        }
        func flag(_ key: String) throws -> Bool {
            guard let text = file.metadata[key] else { return false }
            guard let value = parseFlag(text) else {
                throw LSTMError.corruptFile(path: path, reason: "metadata '\(key)' is '\(text)', not true/false")
            }
            return value
        }
        func number(_ key: String, default value: Float) throws -> Float {
            guard let text = file.metadata[key] else { return value }
            guard let number = Float(text) else {
                throw LSTMError.corruptFile(path: path, reason: "metadata '\(key)' is '\(text)', not a number")
            }
            return number
        }
        let reverse = try flag("reverse")
        let cell = LSTMCellOptions(
            peepholes: try flag("peephole"), coupledInputForget: try flag("cifg"), layerNorm: try flag("layer_norm"),
            layerNormEpsilon: try number("layer_norm_eps", default: 1e-5),
            activationClip: try number("activation_clip", default: 0), cellClip: try number("cell_clip", default: 0),
            projectionClip: try number("proj_clip", default: 0))
        let configuration = LSTMConfiguration(
            inputSize: try integer("input_size"), hiddenSize: try integer("hidden_size"),
            numLayers: try integer("num_layers"), bias: file.contains(reverse ? "bias_ih_l0_reverse" : "bias_ih_l0"),
            batchFirst: try flag("batch_first"), bidirectional: try flag("bidirectional"),
            projectionSize: try integer("proj_size", default: 0), cell: cell, reverse: reverse)
        do { try configuration.validate() } catch let LSTMError.invalidConfiguration(reason) {
            throw LSTMError.corruptFile(path: path, reason: "fixture metadata: \(reason)")
        }
        self.configuration = configuration
        weights = try configuration.weights(
            in: file, prefix: "",
            ignoring: { !$0.hasPrefix("weight_") && !$0.hasPrefix("bias_") && !$0.hasPrefix("layer_norm_weight_") })
        input = try file.floatTensor("input")
        h0 = file.contains("h0") ? try file.floatTensor("h0") : nil
        c0 = file.contains("c0") ? try file.floatTensor("c0") : nil
        if file.contains("lengths") {
            let (shape, values) = try file.intTensor("lengths")
            guard shape.count == 1 else {
                throw LSTMError.shapeMismatch(what: "\(path): lengths", expected: [values.count], got: shape)
            }
            lengths = values
        } else {
            lengths = nil
        }
        var references: [String: Tensor] = [:]
        for name in file.names
        where ["output", "hn", "cn"].contains(name) || name.hasPrefix("grad_input")
            || name == "grad_h0" || name == "grad_c0" || name.hasPrefix("grad.")
        {
            references[name] = try file.floatTensor(name)
        }
        for required in ["output", "hn", "cn"] where references[required] == nil {
            throw LSTMError.missingTensor(name: required, file: path)
        }
        self.references = references
        outputGradient = file.contains("grad_output") ? try file.floatTensor("grad_output") : nil
        hnGradient = file.contains("grad_hn") ? try file.floatTensor("grad_hn") : nil
        cnGradient = file.contains("grad_cn") ? try file.floatTensor("grad_cn") : nil
    }
}

/// The pass rule for one tensor: |ours − ref| ≤ absolute + relative·|ref| per element.
public struct Tolerance: Sendable {
    public var absolute: Float
    public var relative: Float
    public init(absolute: Float, relative: Float) { self.absolute = absolute; self.relative = relative }
    /// Outputs and states: 1e-5 + 1e-4·|ref|.
    public static let outputs = Tolerance(absolute: 1e-5, relative: 1e-4)
    /// Gradients: 1e-4 + 1e-3·|ref|.
    public static let gradients = Tolerance(absolute: 1e-4, relative: 1e-3)
}

/// One compared tensor.
public struct ParityRow: Sendable {
    public var name: String
    public var count: Int
    public var maxAbsolute: Float
    /// Largest |ours − ref| / |ref| over elements with ref ≠ 0.
    public var maxRelative: Float
    /// Elements outside the tolerance.
    public var failures: Int
    public var passed: Bool { failures == 0 }
}

/// Compares `ours` with `reference` element by element.
public func compare(_ name: String, ours: Tensor, reference: Tensor, tolerance: Tolerance) -> ParityRow {
    guard ours.shape == reference.shape else {
        return ParityRow(
            name: name + " (shape \(ours.shape) vs \(reference.shape))", count: reference.count,
            maxAbsolute: .infinity, maxRelative: .infinity, failures: max(reference.count, 1))
    }
    var row = ParityRow(name: name, count: ours.count, maxAbsolute: 0, maxRelative: 0, failures: 0)
    for (a, r) in zip(ours.scalars, reference.scalars) {
        // NaN where the reference has NaN, and the same infinity, agree (as PyTorch's
        // assert_close with equal_nan); a NaN difference anywhere else is a failure and
        // makes the maxima NaN, so a report never shows a small difference for it.
        if a == r || (a.isNaN && r.isNaN) { continue }
        let d = abs(a - r)
        if !(d <= tolerance.absolute + tolerance.relative * abs(r)) { row.failures += 1 }
        if d.isNaN || row.maxAbsolute.isNaN {
            row.maxAbsolute = .nan
        } else {
            row.maxAbsolute = max(row.maxAbsolute, d)
        }
        if r != 0 {
            let relative = d / abs(r)
            if relative.isNaN || row.maxRelative.isNaN {
                row.maxRelative = .nan
            } else {
                row.maxRelative = max(row.maxRelative, relative)
            }
        }
    }
    return row
}
