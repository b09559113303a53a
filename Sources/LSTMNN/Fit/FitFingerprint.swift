import Foundation
import LSTMCore

/// A model `fit` can describe in its state file's fingerprint beyond its parameters' shapes,
/// and stamp with the fit's run id when it saves itself (`SupervisedModel`, `Seq2Seq`).
protocol FitIdentifiable {
    /// Named parts in the user's terms ("layer 3 (pooling) mode": "max", "loss":
    /// "cross-entropy", "metadata lstm_gpu_classes": …).
    var fitIdentity: [String: String] { get throws }
    /// The model file with `extra` entries added to its metadata (the run id).
    func save(to path: String, adding extra: [String: String]) throws
}

/// The model's part of a fit state's fingerprint: what `FitIdentifiable` gives, and every
/// parameter's name and shape.
func fitIdentity<Model: Trainable>(of model: Model) throws -> [String: String] {
    var parts = try (model as? any FitIdentifiable)?.fitIdentity ?? [:]
    for p in model.parameters { parts["parameter \(p.name) shape"] = "\(p.shape)" }
    return parts
}

/// `value`'s stored properties as "prefix name.sub": "text" entries (Mirror; optionals that
/// are nil are left out, enums and collections as their description).
func flatten(_ value: Any, _ prefix: String, into parts: inout [String: String]) {
    let mirror = Mirror(reflecting: value)
    if mirror.displayStyle == .optional {
        if let some = mirror.children.first { flatten(some.value, prefix, into: &parts) }
    } else if mirror.displayStyle == .struct || mirror.displayStyle == .class, !mirror.children.isEmpty {
        for child in mirror.children {
            flatten(child.value, prefix + (prefix.hasSuffix(" ") ? "" : ".") + (child.label ?? "?"), into: &parts)
        }
    } else {
        parts[prefix.trimmingCharacters(in: .whitespaces)] = "\(value)"
    }
}

/// A metadata value as a fingerprint part: itself when short and printable, else its length
/// and hash (a vocabulary).
func metadataPart(_ value: String) -> String {
    if value.count <= 120, !value.unicodeScalars.contains(where: isControlOrFormat) { return value }
    return "\(hashedPrefix)\(String(FNV1a.hash(value), radix: 16)) of \(value.utf8.count) bytes"
}

/// The metadata entries as fingerprint parts ("metadata <key>"), but for a run id a model
/// loaded from a saved file carries (the fit stamps its own).
func metadataParts(_ metadata: [String: String]) -> [String: String] {
    Dictionary(
        uniqueKeysWithValues: metadata.filter { $0.key != FitHistory.runIDMetadataKey }.map {
            ("metadata \($0.key)", metadataPart($0.value))
        })
}

/// FNV-1a of the examples' content, in order: token ids or feature values (their bits) and
/// targets for `LabelledSequence`, both sides' ids for `TranslationPair`, the description of
/// anything else. The same data in the same order gives the same hash.
func contentHash<Example>(_ examples: [Example]) -> UInt64 {
    var hasher = FNV1a()
    hasher.combine(UInt64(examples.count))
    func words(_ tag: UInt64, _ values: some Collection<UInt64>) {
        hasher.combine(tag)
        hasher.combine(UInt64(values.count))
        for value in values { hasher.combine(value) }
    }
    func ints(_ tag: UInt64, _ values: [Int]) { words(tag, values.lazy.map { UInt64(bitPattern: Int64($0)) }) }
    func floats(_ tag: UInt64, _ values: [Float]) { words(tag, values.lazy.map { UInt64($0.bitPattern) }) }
    if let sequences = examples as? [LabelledSequence] {
        for example in sequences {
            switch example.input {
            case let .tokens(ids): ints(1, ids)
            case let .steps(values, width):
                ints(2, [width])
                floats(3, values)
            }
            switch example.target {
            case let .label(c): ints(4, [c])
            case let .labels(labels): ints(5, labels)
            case let .values(values): floats(6, values)
            }
        }
    } else if let pairs = examples as? [TranslationPair] {
        for pair in pairs {
            ints(7, pair.source)
            ints(8, pair.target)
        }
    } else {
        for example in examples { words(9, String(reflecting: example).utf8.lazy.map { UInt64($0) }) }
    }
    return hasher.value
}

extension SupervisedModel: FitIdentifiable {
    /// The layers (kinds, then each layer's settings), the loss and the metadata.
    var fitIdentity: [String: String] {
        get throws {
            var parts = metadataParts(metadata)
            parts["loss"] = "\(loss)"
            guard let layers = try? model.architecture().layers else {
                parts["architecture"] = model.layers.map { "\(type(of: $0))" }.joined(separator: ", ")
                return parts
            }
            parts["architecture"] = layers.map(\.kind).joined(separator: ", ")
            for (position, layer) in layers.enumerated() {
                let prefix = "layer \(position) (\(layer.kind)) "
                if let lstm = layer.lstm {
                    flatten(lstm, prefix, into: &parts)
                } else {
                    var settings = layer
                    settings.kind = ""
                    flatten(settings, prefix, into: &parts)
                    parts[prefix + "kind"] = nil
                    parts[prefix.trimmingCharacters(in: .whitespaces) + " kind"] = nil
                }
            }
            return parts
        }
    }

    func save(to path: String, adding extra: [String: String]) throws {
        try model.save(to: path, metadata: metadata.merging(extra) { $1 })
    }
}

extension Seq2Seq: FitIdentifiable {
    /// The configuration (attention, sizes, dropout, special ids) and the metadata (the vocabularies).
    var fitIdentity: [String: String] {
        var parts = metadataParts(metadata)
        parts["architecture"] = "seq2seq"
        flatten(configuration, "configuration ", into: &parts)
        return parts
    }

    func save(to path: String, adding extra: [String: String]) throws {
        try save(to: path, extraMetadata: metadata.merging(extra) { $1 })
    }
}
