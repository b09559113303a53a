import Foundation
import LSTMCore

/// What kind of lstm-gpu file a safetensors file is, from its metadata alone (the file's
/// contents are checked by the reader of that kind): `inspect` names every file the project
/// writes, and commands given the wrong kind say what they were given.
public enum ProjectFileKind: String, Sendable, CaseIterable {
    /// `lstm-fixture/1`: a parity fixture (`lstm-gpu check`).
    case fixture
    /// `lstm-gpu-checkpoint/1`: a char-LM training checkpoint (`lstm-gpu train`, `sample`).
    case checkpoint
    /// A `Sequential` model file: an application's best model (`train --task`, the examples).
    case sequentialModel
    /// A `Seq2Seq` model file: the translator's model.
    case seq2seqModel
    /// A fit state (`FILE.fitstate`): what `--resume` continues from.
    case fitState
    /// Anything else: an LSTM `state_dict` (PyTorch's or ours), or not a project file.
    case stateDict

    /// The kind `file`'s metadata says it is.
    public init(_ file: SafeTensorsFile) {
        let metadata = file.metadata
        if metadata["format"] == "lstm-fixture/1" {
            self = .fixture
        } else if metadata["format"] == Checkpoint.format {
            self = .checkpoint
        } else if metadata[FitState.metadataKey] != nil {
            self = .fitState
        } else if metadata[ModelArchitecture.metadataKey] != nil {
            self = .sequentialModel
        } else if metadata[Seq2SeqArchitecture.metadataKey] != nil {
            self = .seq2seqModel
        } else {
            self = .stateDict
        }
    }

    /// What the kind is, for people: "an lstm-gpu Sequential model file".
    public var name: String {
        switch self {
        case .fixture: "a parity fixture"
        case .checkpoint: "an lstm-gpu train checkpoint (the character language model)"
        case .sequentialModel: "an lstm-gpu model file (a Sequential model)"
        case .seq2seqModel: "an lstm-gpu seq2seq model file (the translator's model)"
        case .fitState: "an lstm-gpu fit state file (what --resume continues from)"
        case .stateDict: "an LSTM state_dict"
        }
    }

    /// Which command or call uses a file of this kind.
    public var usedBy: String {
        switch self {
        case .fixture: "lstm-gpu check"
        case .checkpoint: "lstm-gpu sample --checkpoint, lstm-gpu train --resume --checkpoint"
        case .sequentialModel: "Sequential(contentsOf:backend:); the LSTM inside: --prefix N. (its position)"
        case .seq2seqModel: "Seq2Seq(contentsOf:backend:)"
        case .fitState: "lstm-gpu train --task … --checkpoint MODEL --resume (beside MODEL), fit(…) with resume"
        case .stateDict: "lstm-gpu run, export, LSTM(contentsOf:)"
        }
    }
}

extension ProjectFileKind {
    /// Refuses `file` when it is a project file of another kind than an LSTM state_dict, for a
    /// reader of state_dicts (`LSTM(contentsOf:)`, `run`, `export`): names what the file is,
    /// and for a model file where its LSTM layers are (`--prefix`).
    public static func requireStateDict(_ file: SafeTensorsFile) throws {
        let kind = ProjectFileKind(file)
        guard kind != .stateDict else { return }
        var found = "it is \(kind.name), used by \(kind.usedBy)"
        if kind == .sequentialModel, let architecture = try? ModelArchitecture.read(from: file) {
            let positions = architecture.layers.indices.filter { architecture.layers[$0].kind == "lstm" }
            if !positions.isEmpty {
                found +=
                    "; its LSTM layer\(positions.count == 1 ? " is" : "s are") read with "
                    + positions.map { "--prefix \($0)." }.joined(separator: " or ")
            }
        }
        if kind == .seq2seqModel { found += "; its LSTMs are read with --prefix encoder. or --prefix decoder." }
        throw LSTMError.unknownFormat(path: file.path, expected: "an LSTM state_dict", found: found)
    }
}

/// What a fit state file says of its fit, read without the model (for `inspect`).
public struct FitStateSummary: Sendable {
    public var version: Int
    public var epochsDone: Int
    public var stoppedBy: String?
    public var tensors: Int

    /// Reads the summary of the fit state file `file`.
    /// - Throws: `LSTMError.corruptFile` when its fit-state JSON cannot be read.
    public init(_ file: SafeTensorsFile) throws {
        guard let json = file.metadata[FitState.metadataKey],
            let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
            let version = object["version"] as? Int, let epochs = object["epochsDone"] as? Int
        else {
            throw LSTMError.corruptFile(
                path: file.path, reason: "fit state metadata '\(FitState.metadataKey)' is malformed")
        }
        self.version = version
        epochsDone = epochs
        stoppedBy = object["stoppedBy"] as? String
        tensors = file.entries.count
    }
}
