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
import LSTMApplications
import LSTMKit

let usage = """
    usage: sentiment-classifier FILE.tsv|FILE.csv [--text-column text] [--label-column sentiment]
          [--max-tokens 64] [--min-count 2] [--tokens words|characters]
    \(ExampleArguments.sharedUsage)
    """
let arguments = ExampleArguments(
    Array(CommandLine.arguments.dropFirst()), program: "sentiment-classifier",
    options: ["text-column", "label-column", "max-tokens", "min-count", "tokens"], usage: usage)
guard arguments.positional.count == 1 else {
    arguments.fail("give one data file (scripts/fetch-movie-reviews writes data/movie-reviews.tsv)")
}
var defaults = ApplicationSettings()
defaults.epochs = 8
var network = NetworkShape()
network.bidirectional = true
network.pooling = .max
arguments.onBackend { backend in
    let table = try DelimitedTable(contentsOf: arguments.positional[0])
    let labelColumn = arguments.string("label-column") ?? (table.header.contains("sentiment") ? "sentiment" : nil)
    let data = try LabelledText(
        table: table, labelColumn: labelColumn, textColumn: arguments.string("text-column"),
        labels: .automatic)
    guard let tokenization = Tokenization(rawValue: arguments.string("tokens") ?? "words") else {
        arguments.fail("--tokens must be words or characters")
    }
    _ = try TextClassification.run(
        data, tokenization: tokenization, maxTokens: arguments.value("max-tokens", 64),
        minimumCount: arguments.value("min-count", 2), shape: arguments.shape(network),
        settings: arguments.settings(defaults), backend: backend)
}
