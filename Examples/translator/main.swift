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
import ArgumentParser
import LSTMApplications
import LSTMCommandLine
import LSTMKit

struct Translator: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "translator", abstract: "Translate with an LSTM encoder-decoder (scripts/fetch-bible).",
        discussion: "Defaults: " + defaultsHelp(defaults, network, pooling: false)
            + ". Not taken: --pooling, --bidirectional, the cell options, --proj-size, --proj-clip, --backend reference."
    )

    @Argument(help: "The source-language file, one sentence per line.") var source: String
    @Argument(help: "The target-language file, line-aligned with the source.") var target: String
    @Option(parsing: .unconditional, help: "Longest sentence kept, in tokens.") var maxLength = 30
    @Option(parsing: .unconditional, help: "Keep tokens seen at least N times in training.") var minCount = 2
    @Option(parsing: .unconditional, help: "At most this many tokens per vocabulary.") var vocabulary = 16_000
    @Option(parsing: .unconditional, help: "Beam width of the test translations (1: greedy).") var beam = 1
    @Flag(help: "No attention (by default the decoder has Luong dot attention over the encoder's outputs).")
    var noAttention = false
    @Option(parsing: .unconditional, help: "Translate at most this many test sentences.") var testSentences = 500
    @Option(help: "Write the test translations to PREFIX.hyp (references PREFIX.ref, sources PREFIX.src).")
    var translations: String?
    @Option(help: "words or characters.") var tokens: Tokenization = .words
    @OptionGroup var options: ApplicationProgramOptions

    static var defaults: ApplicationSettings {
        var s = ApplicationSettings()
        (s.epochs, s.batchSize, s.validationFraction, s.testFraction) = (10, 64, 0.02, 0.02)
        return s
    }

    static var network: NetworkShape {
        var n = NetworkShape()
        (n.embedding, n.hidden) = (128, 256)
        return n
    }

    func validate() throws {
        try CommandEntry.validating {
            for (value, name) in [(maxLength, "--max-length"), (minCount, "--min-count")] {
                try SettingBounds.count(value, name, minimum: 1)
            }
            for (value, name) in [(vocabulary, "--vocabulary"), (beam, "--beam"), (testSentences, "--test-sentences")] {
                try SettingBounds.count(value, name, minimum: 1, maximum: SizeLimits.maxWidth)
            }
        }
        if options.cell.given != nil {
            throw ValidationError("the cell options are not options of translator: its model has plain LSTM cells")
        }
        try options.validate(
            program: "translator", settings: Self.defaults, unused: ["--pooling", "--bidirectional"],
            reason: " (the encoder reads forwards; the decoder's steps are not pooled)")
    }

    func run() throws {
        let lock = try options.output.prepareApplicationOutputs(
            inputs: [("SOURCE", source), ("TARGET", target)], translations: translations)
        defer { withExtendedLifetime(lock) {} }
        var decoding = Translation.Decoding()
        decoding.beamWidth = beam
        decoding.sentences = testSentences
        decoding.outputPrefix = translations
        let pairs = try ParallelText(source: source, target: target, maximumLength: maxLength, lengthUnit: tokens)
        try options.engine.withModelBackend("translator") { backend in
            let report = try Translation.run(
                pairs, tokenization: tokens, minimumCount: minCount, maximumVocabulary: vocabulary,
                attention: !noAttention, decoding: decoding, shape: options.shape(Self.network),
                settings: options.settings(Self.defaults), backend: backend)
            try report.requireConverged(program: "translator")
        }
    }
}

CommandEntry.main(Translator.self)
