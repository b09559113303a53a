// sentiment-classifier: text classification with the model API: Embedding → bidirectional
// LSTM over each text's own length → max pooling → Linear, trained by `fit` (bucketed batches,
// early stopping and the best model on the validation accuracy) on a TSV or CSV of labelled text;
// reports test accuracy beside the majority class. The work is `TextClassification.run`, the
// same code as `lstm-gpu train --task classify`.
//
//   scripts/fetch-movie-reviews          # data/movie-reviews.tsv (id, sentiment, text)
//   swift run -c release sentiment-classifier data/movie-reviews.tsv [--epochs 8] [--backend opencl]
//
// Labels: a label column of numbers becomes its sign (> 0 positive, < 0 negative, 0 dropped);
// any other label column is used as class names.
import ArgumentParser
import LSTMApplications
import LSTMCommandLine
import LSTMKit

struct SentimentClassifier: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sentiment-classifier",
        abstract: "Classify texts (movie reviews by default) with a bidirectional LSTM.",
        discussion: "Defaults: " + defaultsHelp(defaults, network)
            + ". Not taken: --proj-size, --proj-clip, --backend reference.")

    @Argument(help: "A TSV or CSV file (scripts/fetch-movie-reviews writes data/movie-reviews.tsv).") var file: String
    @Option(help: "The text column (default: text, or the second of two columns).") var textColumn: String?
    @Option(help: "The label column (default: sentiment when there is one, else label).") var labelColumn: String?
    @Option(parsing: .unconditional, help: "Tokens kept from the start of each text.") var maxTokens = 64
    @Option(parsing: .unconditional, help: "Keep tokens seen at least N times in training.") var minCount = 2
    @Option(help: "words or characters.") var tokens: Tokenization = .words
    @OptionGroup var options: ApplicationProgramOptions

    static var defaults: ApplicationSettings {
        var s = ApplicationSettings()
        s.epochs = 8
        return s
    }

    static var network: NetworkShape {
        var n = NetworkShape()
        (n.bidirectional, n.pooling) = (true, .max)
        return n
    }

    func validate() throws {
        try CommandEntry.validating {
            try SettingBounds.count(maxTokens, "--max-tokens", minimum: 1, maximum: SizeLimits.maxWidth)
            try SettingBounds.count(minCount, "--min-count", minimum: 1)
        }
        try options.validate(program: "sentiment-classifier", settings: Self.defaults)
    }

    func run() throws {
        let lock = try options.output.prepareApplicationOutputs(inputs: [("FILE", file)])
        defer { withExtendedLifetime(lock) {} }
        let table = try DelimitedTable(contentsOf: file)
        let data = try LabelledText(
            table: table, labelColumn: labelColumn ?? (table.header.contains("sentiment") ? "sentiment" : nil),
            textColumn: textColumn, labels: .automatic)
        try options.engine.withModelBackend("sentiment-classifier") { backend in
            let report = try TextClassification.run(
                data, tokenization: tokens, maxTokens: maxTokens, minimumCount: minCount,
                shape: options.shape(Self.network), settings: options.settings(Self.defaults), backend: backend)
            try report.requireConverged(program: "sentiment-classifier")
        }
    }
}

CommandEntry.main(SentimentClassifier.self)
