import Foundation
import LSTMCore

/// How text is cut into tokens for a `TokenVocabulary`.
public enum Tokenization: String, Codable, Sendable, CaseIterable {
    /// Every Character (grapheme cluster) is a token, as it is: no lowercasing; spaces and line
    /// breaks are tokens too.
    case characters
    /// Words: the text is lowercased, then cut into tokens left to right: a maximal run of
    /// letters, digits (Unicode `isLetter` / `isNumber`) and apostrophes (`'` and `’`) is one
    /// token; whitespace separates tokens and is dropped; every other character (punctuation,
    /// symbols) is a token by itself. "Don't stop—now!" → ["don't", "stop", "—", "now", "!"].
    case words

    /// The tokens of `text` (see the cases).
    public func tokens<Text: StringProtocol>(_ text: Text) -> [String] {
        switch self {
        case .characters: return text.map(String.init)
        case .words:
            var tokens: [String] = []
            var word = ""
            for character in text.lowercased() {
                if character.isLetter || character.isNumber || character == "'" || character == "’" {
                    word.append(character)
                    continue
                }
                if !word.isEmpty {
                    tokens.append(word)
                    word = ""
                }
                if !character.isWhitespace { tokens.append(String(character)) }
            }
            if !word.isEmpty { tokens.append(word) }
            return tokens
        }
    }
}
