import Foundation
import LSTMCore

/// The text of a UTF-8 file for training. A folder, FIFO or device, a file that is not valid
/// UTF-8, or one with NUL bytes (a binary file) is refused, naming the file and the offset;
/// so is a file longer than `maximumBytes` (no limit when nil), saying "more than the
/// `maximumBytes` `limitReason`".
public func readTextFile(
    _ path: String, maximumBytes: Int? = nil, limitReason: String = "bytes such a file may have"
) throws -> String {
    let data = try readRegularFile(path, maximumBytes: maximumBytes, limitReason: limitReason)
    if let zero = data.firstIndex(of: 0) {
        throw LSTMError.io(
            path: path, reason: "holds a NUL byte at offset \(zero - data.startIndex): a binary file, not text")
    }
    guard let text = String(validating: data, as: UTF8.self) else {
        var bytes = data.makeIterator()
        var parser = Unicode.UTF8.ForwardParser()
        var offset = 0
        decoding: while true {
            switch parser.parseScalar(from: &bytes) {
            case let .valid(encoded): offset += encoded.count
            case .error: break decoding
            case .emptyInput: break decoding
            }
        }
        throw LSTMError.io(path: path, reason: "is not UTF-8 text (invalid byte at offset \(offset))")
    }
    return text
}

/// A character vocabulary: the sorted distinct characters of a text.
public struct Vocabulary: Equatable, Sendable {
    public let characters: [Character]
    private let index: [Character: Int]

    public init(text: String) {
        self.init(characters: Array(Set(text)).sorted())
    }

    public init(characters: [Character]) {
        self.characters = characters
        var index: [Character: Int] = [:]
        for (i, c) in characters.enumerated() { index[c] = i }
        self.index = index
    }

    public var count: Int { characters.count }

    /// Ids of `text`; characters outside the vocabulary throw, naming the first.
    public func encode(_ text: String) throws -> [Int] {
        try text.map { c in
            guard let i = index[c] else {
                throw LSTMError.invalidArgument(
                    "character \(c.debugDescription) is not in the model's vocabulary of \(count)")
            }
            return i
        }
    }

    public func decode(_ ids: [Int]) -> String { String(ids.map { characters[$0] }) }
}

/// Training and held-out token streams for truncated BPTT. The training ids are cut into B
/// contiguous streams (stream b starts at b·⌊N/B⌋); chunk k of an epoch covers positions
/// [k·T, k·T + T] of every stream, so the LSTM state carried from one chunk to the next
/// continues the same text. The last `heldOutFraction` of the text is the held-out split.
public struct TokenStreams: Sendable {
    public let training: [Int]
    public let heldOut: [Int]
    public let batch: Int  // B
    public let sequenceLength: Int  // T

    public init(ids: [Int], heldOutFraction: Double, batch: Int, sequenceLength: Int) throws {
        guard batch > 0, sequenceLength > 0 else {
            throw LSTMError.invalidArgument("batch and sequence length must be positive")
        }
        let cut = ids.count - Int(Double(ids.count) * heldOutFraction)
        training = Array(ids[..<cut])
        heldOut = Array(ids[cut...])
        self.batch = batch
        self.sequenceLength = sequenceLength
        guard chunksPerEpoch > 0 else {
            throw LSTMError.invalidArgument(
                "the training text (\(training.count) characters) is too short for \(batch) streams of "
                    + "\(sequenceLength + 1) characters"
            )
        }
    }

    /// Characters per stream.
    public var streamLength: Int { training.count / batch }
    /// Chunks in one pass over the streams.
    public var chunksPerEpoch: Int { (streamLength - 1) / sequenceLength }

    /// Inputs and targets of chunk `chunk` (0-based within the epoch) for the streams
    /// `streams` (all by default; a data-parallel replica takes its slice), sequence-major [T·b].
    public func chunk(_ chunk: Int, streams: Range<Int>? = nil) -> (inputs: [Int], targets: [Int]) {
        let streams = streams ?? 0..<batch
        let width = streams.count
        var inputs = [Int](repeating: 0, count: sequenceLength * width), targets = inputs
        for (column, b) in streams.enumerated() {
            let start = b * streamLength + chunk * sequenceLength
            for t in 0..<sequenceLength {
                inputs[t * width + column] = training[start + t]
                targets[t * width + column] = training[start + t + 1]
            }
        }
        return (inputs, targets)
    }

    /// The held-out split as `streams` contiguous streams, in chunks of `sequenceLength`:
    /// [(inputs, targets)] sequence-major, covering every held-out prediction once.
    /// `limit` caps the held-out characters used (the first `limit`).
    public func heldOutChunks(streams: Int, limit: Int? = nil) -> [(inputs: [Int], targets: [Int], length: Int)] {
        let available = min(heldOut.count, max(limit ?? heldOut.count, 0))
        let length = (available - 1) / max(streams, 1)
        guard length > 0 else { return [] }
        var chunks: [(inputs: [Int], targets: [Int], length: Int)] = []
        var position = 0
        while position < length {
            let t = min(sequenceLength, length - position)
            var inputs = [Int](repeating: 0, count: t * streams), targets = inputs
            for b in 0..<streams {
                for s in 0..<t {
                    inputs[s * streams + b] = heldOut[b * length + position + s]
                    targets[s * streams + b] = heldOut[b * length + position + s + 1]
                }
            }
            chunks.append((inputs, targets, t))
            position += t
        }
        return chunks
    }
}
