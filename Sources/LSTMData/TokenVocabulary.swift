import Foundation
import LSTMCore

/// A token vocabulary for embedding models (words or characters; see `Tokenization`), with
/// four reserved ids: 0 `<pad>`, 1 `<unk>`, 2 `<bos>`, 3 `<eos>`. Build it from the training
/// split only, so validation and test text meets unknown tokens as new text would.
///
/// Codable as `{"tokenization": "words", "tokens": ["<pad>", "<unk>", "<bos>", "<eos>", …]}`
/// (token i has id i), so a model file's metadata can keep it (`json()` / `init(json:)`).
/// Decoding validates: the four specials first and in order, no duplicate, no empty token,
/// at most `SizeLimits.maxWidth` tokens; anything else throws.
public struct TokenVocabulary: Codable, Sendable, Equatable {
    /// Id of `<pad>` (padding after a sequence's end).
    public static let padding = 0
    /// Id of `<unk>` (a token not in the vocabulary).
    public static let unknown = 1
    /// Id of `<bos>` (beginning of a sequence).
    public static let beginning = 2
    /// Id of `<eos>` (end of a sequence).
    public static let end = 3
    /// The reserved tokens, by id.
    public static let specialTokens = ["<pad>", "<unk>", "<bos>", "<eos>"]

    /// How text is cut into tokens.
    public let tokenization: Tokenization
    /// Token i has id i; the first four are `specialTokens`.
    public let tokens: [String]
    private let index: [String: Int]

    /// Counts the tokens of `texts` and keeps those seen at least `minimumCount` times, most
    /// frequent first (ties in code-point order of the token), until the vocabulary holds
    /// `maximumSize` tokens, the four specials included (without `maximumSize`, more than
    /// `SizeLimits.maxWidth` tokens throws). A text token equal to a special token is not added
    /// again. Throws for `minimumCount` below 1 or `maximumSize` below 4.
    public init(
        training texts: some Sequence<String>, tokenization: Tokenization, minimumCount: Int = 1,
        maximumSize: Int? = nil
    ) throws {
        try SizeLimits.requireSize(minimumCount, "the minimum count", limit: .max)
        if let maximumSize {
            try SizeLimits.requireSize(maximumSize, "the maximum vocabulary size", minimum: Self.specialTokens.count)
        }
        var counts: [String: Int] = [:]
        for text in texts {
            for token in tokenization.tokens(text) { counts[token, default: 0] += 1 }
        }
        let specials = Set(Self.specialTokens)
        let kept = counts.filter { $0.value >= minimumCount && !specials.contains($0.key) }
            .sorted {
                $0.value != $1.value
                    ? $0.value > $1.value : $0.key.unicodeScalars.lexicographicallyPrecedes($1.key.unicodeScalars)
            }
            .map(\.key)
        let room = (maximumSize ?? SizeLimits.maxWidth) - Self.specialTokens.count
        guard kept.count <= room || maximumSize != nil else {
            throw LSTMError.invalidArgument(
                "\(kept.count) distinct tokens exceed the vocabulary limit of \(SizeLimits.maxWidth); give a maximum size"
            )
        }
        try self.init(tokens: Self.specialTokens + kept.prefix(room), tokenization: tokenization)
    }

    /// A vocabulary with exactly these tokens (token i has id i); throws unless the first four
    /// are `specialTokens` in order, no token is empty or repeated, and there are at most
    /// `SizeLimits.maxWidth`.
    public init(tokens: [String], tokenization: Tokenization) throws {
        guard tokens.count <= SizeLimits.maxWidth else {
            throw LSTMError.invalidArgument(
                "a vocabulary of \(tokens.count) tokens is above the limit of \(SizeLimits.maxWidth)")
        }
        guard Array(tokens.prefix(Self.specialTokens.count)) == Self.specialTokens else {
            throw LSTMError.invalidArgument(
                "a vocabulary must begin with the tokens \(Self.specialTokens.joined(separator: " ")) (ids 0-3), got "
                    + tokens.prefix(Self.specialTokens.count).map(displayedValue).joined(separator: " "))
        }
        var index: [String: Int] = [:]
        for (id, token) in tokens.enumerated() {
            guard !token.isEmpty else { throw LSTMError.invalidArgument("vocabulary token \(id) is empty") }
            if let earlier = index.updateValue(id, forKey: token) {
                throw LSTMError.invalidArgument(
                    "vocabulary token \(displayedValue(token)) appears twice (ids \(earlier) and \(id))")
            }
        }
        self.tokens = tokens
        self.tokenization = tokenization
        self.index = index
    }

    /// Number of tokens, the four specials included (the embedding's row count).
    public var count: Int { tokens.count }

    /// The id of `token`, or `TokenVocabulary.unknown` (1) when it is not in the vocabulary.
    public func id(of token: String) -> Int { index[token] ?? Self.unknown }

    /// The ids of `text`'s tokens (unknown tokens → 1); with `addBoundaries`, `<bos>` first and
    /// `<eos>` last.
    public func encode(_ text: String, addBoundaries: Bool = false) -> [Int] {
        let ids = tokenization.tokens(text).map { id(of: $0) }
        return addBoundaries ? [Self.beginning] + ids + [Self.end] : ids
    }

    /// The text of `ids`: word tokens joined with single spaces, character tokens concatenated.
    /// `<pad>`, `<bos>` and `<eos>` are skipped; `<unk>` is written as "<unk>". Throws for an id
    /// outside 0..<count.
    public func decode(_ ids: [Int]) throws -> String {
        var pieces: [String] = []
        for id in ids {
            guard tokens.indices.contains(id) else {
                throw LSTMError.invalidArgument("token id \(id) is outside the vocabulary of \(count)")
            }
            if id != Self.padding, id != Self.beginning, id != Self.end { pieces.append(tokens[id]) }
        }
        return pieces.joined(separator: tokenization == .words ? " " : "")
    }

    /// The vocabulary as compact JSON (sorted keys), for a model file's metadata.
    public func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try! encoder.encode(self), as: UTF8.self)
    }

    /// The vocabulary `json()` wrote; throws `LSTMError.invalidArgument` saying what is wrong.
    public init(json: String) throws {
        do {
            self = try JSONDecoder().decode(Self.self, from: Data(json.utf8))
        } catch let error as LSTMError {
            throw error
        } catch {
            throw LSTMError.invalidArgument("not a token vocabulary in JSON: \(Self.describe(error))")
        }
    }

    private enum CodingKeys: String, CodingKey { case tokenization, tokens }

    /// Decodes `{"tokenization", "tokens"}`, validated as `init(tokens:tokenization:)`.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        try self.init(
            tokens: container.decode([String].self, forKey: .tokens),
            tokenization: container.decode(Tokenization.self, forKey: .tokenization))
    }

    /// Encodes `{"tokenization", "tokens"}`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(tokenization, forKey: .tokenization)
        try container.encode(tokens, forKey: .tokens)
    }

    /// Same tokenization and the same tokens in the same order.
    public static func == (a: Self, b: Self) -> Bool { a.tokenization == b.tokenization && a.tokens == b.tokens }

    /// A `DecodingError` in a sentence: what was wrong and at which key.
    private static func describe(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return error.localizedDescription }
        func path(_ context: DecodingError.Context) -> String {
            context.codingPath.isEmpty ? "" : " at " + context.codingPath.map(\.stringValue).joined(separator: ".")
        }
        switch error {
        case let .keyNotFound(key, _): return "missing key \(displayedValue(key.stringValue))"
        case let .typeMismatch(_, context), let .valueNotFound(_, context), let .dataCorrupted(context):
            return terminalSafe(context.debugDescription) + path(context)
        @unknown default: return terminalSafe(String(describing: error))
        }
    }
}
