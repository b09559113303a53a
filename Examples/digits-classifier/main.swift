// digits-classifier: image classification with an LSTM over rows. Each 8×8 digit of
// scikit-learn's bundled set (1,797 images) is a sequence of 8 rows of 8 pixels; an LSTM reads
// the rows, its last state goes to a Linear over the 10 digits, trained by `fit`. The work is
// `RowSequenceClassification.run`; the options and exit codes are `lstm-gpu train --task`'s.
//
//   scripts/fetch-digits                 # data/digits.csv (64 pixel columns, then label)
//   swift run -c release digits-classifier data/digits.csv [--epochs 30] [--backend opencl]
import ArgumentParser
import LSTMApplications
import LSTMCommandLine
import LSTMKit

struct DigitsClassifier: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "digits-classifier", abstract: "Classify rows of numbers (8×8 digits) with an LSTM over the rows.",
        discussion: "Defaults: " + defaultsHelp(defaults, network, tokens: false)
            + ". Not taken: --embedding, --proj-size, --proj-clip, --backend reference.")

    @Argument(help: "A CSV file of pixel columns and a label (scripts/fetch-digits writes data/digits.csv).")
    var file: String
    @Option(help: "The label column.") var labelColumn = "label"
    @Option(
        name: .customLong("rows"), parsing: .unconditional, help: "Steps (rows) per example: the columns split evenly.")
    var steps = 8
    @OptionGroup var options: ApplicationProgramOptions

    static var defaults: ApplicationSettings {
        var s = ApplicationSettings()
        (s.epochs, s.learningRate, s.patience) = (30, 5e-3, 5)
        return s
    }

    static var network: NetworkShape {
        var n = NetworkShape()
        (n.hidden, n.pooling) = (64, .last)
        return n
    }

    func validate() throws {
        try CommandEntry.validating {
            try SettingBounds.count(steps, "--rows", minimum: 1, maximum: SizeLimits.maxWidth)
        }
        try options.validate(
            program: "digits-classifier", settings: Self.defaults, unused: ["--embedding"],
            reason: " (the rows are numbers)")
    }

    func run() throws {
        let lock = try options.output.prepareApplicationOutputs(inputs: [("FILE", file)])
        defer { withExtendedLifetime(lock) {} }
        let table = try DelimitedTable(contentsOf: file)
        try options.engine.withModelBackend("digits-classifier") { backend in
            let report = try RowSequenceClassification.run(
                table, labelColumn: labelColumn, steps: steps, shape: options.shape(Self.network),
                settings: options.settings(Self.defaults), backend: backend)
            try report.requireConverged(program: "digits-classifier")
        }
    }
}

CommandEntry.main(DigitsClassifier.self)
