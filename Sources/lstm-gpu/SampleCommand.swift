import ArgumentParser
import Foundation
import LSTMCommandLine
import LSTMKit

struct SampleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "Generate text from a checkpoint written by `lstm-gpu train`.")

    @Option(help: "Checkpoint file.") var checkpoint: String
    @Option(
        help: ArgumentHelp(
            "Text to start from (every character must be in the model's vocabulary; default: a newline, or the "
                + "vocabulary's first character when it has no newline).", valueName: "prompt"))
    var prompt: TextArgument?
    @Option(parsing: .unconditional, help: "Characters to generate.") var length = 500
    @Option(parsing: .unconditional, help: "Softmax temperature (> 0; lower is more conservative).") var temperature:
        Float = 0.8
    @Option(
        name: .customLong("top-k"), parsing: .unconditional, help: "Sample only among the K most likely characters.")
    var topK: Int?
    @Option(parsing: .unconditional, help: "Random seed.") var seed: UInt64 = 1
    @OptionGroup var engine: BackendOptions
    @OptionGroup var precisionOption: PrecisionOption
    var backend: BackendKind { engine.backend }
    var device: String? { engine.device }
    @Flag(
        help: """
            Print as JSON, instead of generating: the prompt's mean cross-entropy in nats per predicted \
            character (null when the prompt has a single character, so nothing to predict, or when it is \
            not finite), the logits after the prompt (non-finite ones as null) and the vocabulary, whose \
            i-th character is the one logit i scores.
            """)
    var score = false

    func validate() throws {
        try engine.requireModelBackend("sample")
        try precisionOption.validate(backend: backend)
        guard length >= 0 else { throw ValidationError("--length must be at least 0, got \(length)") }
        guard length <= SizeLimits.maxCount else {
            throw ValidationError("--length must be at most \(SizeLimits.maxCount), got \(length)")
        }
        guard temperature.isFinite else {
            throw ValidationError("--temperature must be a finite number, got \(temperature)")
        }
        guard temperature > 0 else { throw ValidationError("--temperature must be > 0, got \(temperature)") }
        if let topK, topK <= 0 { throw ValidationError("--top-k must be at least 1, got \(topK)") }
        if let prompt, prompt.text.isEmpty { throw ValidationError("--prompt must not be empty") }
    }

    func run() throws {
        try engine.withModelBackend("sample") { try sample($0) }
    }

    func sample<Backend: ModelOps>(_ backend: Backend) throws {
        let (model, vocabulary) = try Checkpoint.loadModel(checkpoint, backend: backend)
        if let precision = precisionOption.precision { try model.quantize(to: precision) }
        // Without --prompt: a newline (the start of a line), or what the vocabulary has first.
        let start =
            prompt?.text
            ?? (vocabulary.characters.contains("\n") ? "\n" : vocabulary.characters.first.map(String.init) ?? "\n")
        let promptIds = try vocabulary.encode(start)
        var generator = SeededGenerator(seed: seed)
        var state: LanguageModel<Backend>.State? = nil
        var logits: [Float] = []
        var crossEntropy = 0.0
        for (position, id) in promptIds.enumerated() {
            if position > 0 {
                let top = Double(logits.max() ?? 0)
                let logSum = Foundation.log(logits.reduce(0.0) { $0 + Foundation.exp(Double($1) - top) }) + top
                crossEntropy += logSum - Double(logits[id])
            }
            (logits, state) = try model.nextLogits([id], state: state)
        }
        if score {
            let mean: Double? = promptIds.count > 1 ? crossEntropy / Double(promptIds.count - 1) : nil
            print(
                Self.scoreJSON(
                    crossEntropy: mean, characters: promptIds.count, logits: logits,
                    vocabulary: vocabulary.characters))
            return
        }
        var output = start
        for _ in 0..<length {
            let next = draw(logits, generator: &generator)
            output.append(vocabulary.characters[next])
            (logits, state) = try model.nextLogits([next], state: state)
        }
        print(output)
    }

    /// The `--score` line: `{"cross_entropy": X|null, "characters": N, "last_logits": [...], "vocabulary": [...]}`.
    /// Always valid JSON: a missing or non-finite number is `null`; characters are JSON-escaped.
    static func scoreJSON(crossEntropy: Double?, characters: Int, logits: [Float], vocabulary: [Character]) -> String {
        func number(_ value: Double?) -> String {
            guard let value, value.isFinite else { return "null" }
            return "\(value)"
        }
        let logitList = logits.map { number(Double($0)) }.joined(separator: ", ")
        let characterList = vocabulary.map { jsonStringLiteral(String($0)) }.joined(separator: ", ")
        return "{\"cross_entropy\": \(number(crossEntropy)), \"characters\": \(characters), "
            + "\"last_logits\": [\(logitList)], \"vocabulary\": [\(characterList)]}"
    }

    /// A draw from softmax(logits / temperature), restricted to the top K when given.
    func draw(_ logits: [Float], generator: inout SeededGenerator) -> Int {
        var order = Array(logits.indices)
        if let topK, topK < logits.count {
            order.sort { logits[$0] > logits[$1] }
            order = Array(order.prefix(topK))
        }
        let top = order.map { logits[$0] }.max() ?? 0
        let weights = order.map { Foundation.exp(Double(logits[$0] - top) / Double(temperature)) }
        var u = Double(generator.nextFloat(in: 0..<1)) * weights.reduce(0, +)
        for (i, w) in zip(order, weights) {
            u -= w
            if u <= 0 { return i }
        }
        return order.last!
    }
}

/// A text option whose default `--help` shows escaped and quoted (`"\n"`, not a raw line
/// break): argument-parser prints a default through `defaultValueDescription`.
struct TextArgument: ExpressibleByArgument {
    var text: String
    init(_ text: String) { self.text = text }
    init?(argument: String) { text = argument }
    var defaultValueDescription: String { text.debugDescription }
}
