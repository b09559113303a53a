import ArgumentParser
import Foundation
import LSTMCommandLine
import LSTMKit

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Say what a safetensors file holds: a parity fixture, a train checkpoint or an LSTM state_dict.",
        discussion: """
            Reads and validates the whole file the way check, sample and the library would (a \
            state_dict through LSTM(contentsOf:)), then prints its kind and configuration. Exits 2 \
            when the file cannot be used.
            """)

    @Argument(help: "A .safetensors file.") var file: String
    @Option(help: "Tensor name prefix of the LSTM in a state_dict (e.g. lstm.).") var prefix = ""

    func run() throws {
        let contents = try SafeTensorsFile(contentsOf: file)
        switch contents.metadata["format"] {
        case Fixture.format?:
            let fixture = try Fixture(contentsOf: file)
            print(
                "\(file): parity fixture, \(describeModel(fixture.configuration)), input \(fixture.input.shape)"
                    + (fixture.hasGradients ? ", with gradients" : ", forward only"))
        case Checkpoint.format?:
            let checkpoint = try CheckpointFile(contentsOf: file)
            print(
                "\(file): train checkpoint at step \(checkpoint.counters.step), \(checkpoint.model.summary), "
                    + "\(checkpoint.optimizer), batch \(checkpoint.batch) × \(checkpoint.sequenceLength)")
        default:
            let lstm = try LSTM(contentsOf: file, prefix: prefix)
            print(
                "\(file): LSTM state_dict, \(describeModel(lstm.configuration))"
                    + (lstm.configuration.dropout > 0 ? " dropout \(lstm.configuration.dropout)" : ""))
        }
    }
}
