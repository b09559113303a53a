import ArgumentParser
import Foundation
import LSTMCommandLine
import LSTMKit

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Say what a safetensors file holds and which command uses it.",
        discussion: """
            Recognises every file the project writes (parity fixtures, train checkpoints, model \
            files of Sequential and Seq2Seq models, fit state files) and LSTM state_dicts; reads and \
            validates the whole file the way its reader would, then prints its kind, architecture, \
            parameter count and the command that uses it. Exits 2 when the file cannot be used.
            """)

    @Argument(help: "A .safetensors file.") var file: String
    @Option(help: "Tensor name prefix of the LSTM in a state_dict (e.g. lstm.).") var prefix = ""

    func run() throws {
        let contents = try SafeTensorsFile(contentsOf: file)
        let kind = ProjectFileKind(contents)
        let what: String
        switch kind {
        case .fixture:
            let fixture = try Fixture(contentsOf: file)
            what =
                "\(describeModel(fixture.configuration)), input \(fixture.input.shape)"
                + (fixture.hasGradients ? ", with gradients" : ", forward only")
        case .checkpoint:
            let checkpoint = try CheckpointFile(contentsOf: file)
            what =
                "step \(checkpoint.counters.step), \(checkpoint.model.summary), \(checkpoint.optimizer), batch "
                + "\(checkpoint.batch) × \(checkpoint.sequenceLength)"
        case .sequentialModel:
            let model = try Sequential(contentsOf: file, backend: CPUBackend())
            let layers = try model.architecture().layers.map(\.kind).joined(separator: " → ")
            what =
                "\(layers), \(model.parameters.reduce(0) { $0 + $1.count }) parameters"
                + precisionNote(model.precision) + metadataNote(contents.metadata)
        case .seq2seqModel:
            let model = try Seq2Seq(contentsOf: file, backend: CPUBackend())
            let c = model.configuration
            what =
                "vocabularies \(c.sourceVocabularySize) → \(c.targetVocabularySize), embedding \(c.embeddingSize), "
                + "\(c.numLayers)×\(c.hiddenSize) LSTM encoder and decoder"
                + (c.attention ? " with attention" : "")
                + ", \(model.parameters.reduce(0) { $0 + $1.count }) parameters" + precisionNote(model.precision)
        case .fitState:
            let state = try FitStateSummary(contents)
            what =
                "version \(state.version), \(state.epochsDone) epoch\(state.epochsDone == 1 ? "" : "s") done"
                + (state.stoppedBy.map { ", stopped by \(terminalSafe($0))" } ?? "") + ", \(state.tensors) tensors"
        case .stateDict:
            let lstm = try LSTM(contentsOf: file, prefix: prefix)
            what =
                describeModel(lstm.configuration)
                + (lstm.configuration.dropout > 0 ? " dropout \(lstm.configuration.dropout)" : "")
                + precisionNote(lstm.precision)
        }
        print("\(file): \(kind.name): \(what)")
        print("  used by: \(kind.usedBy)")
    }

    /// ", LSTM weights in int8 (inference only)" for a quantized model; nothing for float32.
    func precisionNote(_ precision: Precision) -> String {
        precision.isReduced ? ", LSTM weights in \(precision) (inference only)" : ""
    }

    /// The extra metadata keys a model file carries (task, vocabularies, class names), named.
    func metadataNote(_ metadata: [String: String]) -> String {
        let own = ["format", ModelArchitecture.metadataKey, ReducedStateDict.metadataKey]
        let keys = metadata.keys.filter { !own.contains($0) }.sorted()
        return keys.isEmpty ? "" : "; metadata: " + keys.map(terminalSafe).joined(separator: ", ")
    }
}
