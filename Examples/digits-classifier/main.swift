// digits-classifier: image classification with an LSTM over rows. Each 8×8 digit of
// scikit-learn's bundled set (1,797 images) is a sequence of 8 rows of 8 pixels; an LSTM reads
// the rows, its last state goes to a Linear over the 10 digits, trained by `fit`. The work is
// `RowSequenceClassification.run`.
//
//   scripts/fetch-digits                 # data/digits.csv (64 pixel columns, then label)
//   swift run -c release digits-classifier data/digits.csv [--epochs 30] [--backend opencl]
import LSTMApplications
import LSTMKit

let usage = """
    usage: digits-classifier FILE.csv [--label-column label] [--steps 8]
    \(ExampleArguments.sharedUsage)
    """
let arguments = ExampleArguments(
    Array(CommandLine.arguments.dropFirst()), program: "digits-classifier", options: ["label-column", "steps"],
    unused: ["embedding"],
    usage: usage)
guard arguments.positional.count == 1 else {
    arguments.fail("give one data file (scripts/fetch-digits writes data/digits.csv)")
}
var defaults = ApplicationSettings()
defaults.epochs = 30
defaults.learningRate = 5e-3
defaults.patience = 5
var network = NetworkShape()
network.hidden = 64
network.pooling = .last
arguments.onBackend { backend in
    _ = try RowSequenceClassification.run(
        DelimitedTable(contentsOf: arguments.positional[0]), labelColumn: arguments.string("label-column") ?? "label",
        steps: arguments.value("steps", 8), shape: arguments.shape(network), settings: arguments.settings(defaults),
        backend: backend)
}
