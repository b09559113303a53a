// translator: machine translation with an LSTM encoder-decoder (`Seq2Seq`): the encoder's final
// state initialises the decoder, teacher forcing in training (`fit`), greedy or beam decoding
// of the test split, chrF, with Luong attention over the encoder's outputs (`--no-attention`
// for none). The work is `Translation.run`, the same code as `lstm-gpu train --task translate`.
//
//   scripts/fetch-bible                  # data/bible.en, data/bible.es: 31,077 verse pairs (public domain)
//   swift run -c release translator data/bible.en data/bible.es --translations runs/bible
//   swift run -c release translator data/bible.en data/bible.es --checkpoint runs/bible.safetensors --resume \
//       --beam 4 --translations runs/bible-beam4    # a finished fit resumed: decoding only
//   scripts/translation-score runs/bible       # sacrebleu's BLEU and chrF
import LSTMApplications
import LSTMKit

let usage = """
    usage: translator SOURCE.txt TARGET.txt [--max-length 30] [--min-count 2] [--vocabulary 16000]
          [--beam 1] [--no-attention] [--test-sentences 500] [--translations PREFIX] [--tokens words|characters]
    \(ExampleArguments.sharedUsage)
    """
let arguments = ExampleArguments(
    Array(CommandLine.arguments.dropFirst()), program: "translator",
    options: ["max-length", "min-count", "vocabulary", "beam", "test-sentences", "translations", "tokens"],
    flags: ["no-attention"], unused: ["pooling", "bidirectional"], usage: usage)
guard arguments.positional.count == 2 else {
    arguments.fail("give the two line-aligned files (scripts/fetch-bible writes data/bible.en and data/bible.es)")
}
var defaults = ApplicationSettings()
defaults.epochs = 10
defaults.batchSize = 64
defaults.validationFraction = 0.02
defaults.testFraction = 0.02
var network = NetworkShape()
network.embedding = 128
network.hidden = 256
arguments.onBackend { backend in
    guard let tokenization = Tokenization(rawValue: arguments.string("tokens") ?? "words") else {
        arguments.fail("--tokens must be words or characters")
    }
    var decoding = Translation.Decoding()
    decoding.beamWidth = arguments.value("beam", 1)
    decoding.sentences = arguments.value("test-sentences", 500)
    decoding.outputPrefix = arguments.string("translations")
    _ = try Translation.run(
        ParallelText(
            source: arguments.positional[0], target: arguments.positional[1],
            maximumLength: arguments.value("max-length", 30), lengthUnit: tokenization),
        tokenization: tokenization, minimumCount: arguments.value("min-count", 2),
        maximumVocabulary: arguments.value("vocabulary", 16_000), attention: !arguments.flag("no-attention"),
        decoding: decoding, shape: arguments.shape(network), settings: arguments.settings(defaults), backend: backend)
}
