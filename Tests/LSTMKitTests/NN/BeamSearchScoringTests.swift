import Foundation
import XCTest

@testable import LSTMCore
@testable import LSTMNN

/// Beam search's bookkeeping over a decoder of fixed output probabilities (`searchBeams`, the
/// search `Seq2Seq.translations` runs): the hypothesis chosen by the documented
/// length-normalised score, with the `<eos>` step counted.
final class BeamSearchScoringTests: XCTestCase {
    /// Ids: 0 <pad>, 1 <bos>, 2 <eos>, 3 "a", 4 "b". The next id's probabilities depend on the last id only:
    /// after <bos>: <eos> 0.5, a 0.5; after a: <eos> 0.6, b 0.4; after b: <eos> 0.3, a 0.35, b 0.35.
    let table: [Int: [Int: Double]] = [1: [2: 0.5, 3: 0.5], 3: [2: 0.6, 4: 0.4], 4: [2: 0.3, 3: 0.35, 4: 0.35]]

    func search(lengthPenalty: Float, calls: inout [([Int], [Int])]) throws -> Seq2SeqTranslation {
        var seen: [([Int], [Int])] = []
        let result = try searchBeams(maxLength: 3, beamWidth: 2, lengthPenalty: lengthPenalty, bos: 1, eos: 2) {
            ids, parents in
            seen.append((ids, parents))
            return ids.map { id in (0..<5).map { Foundation.log(self.table[id]![$0] ?? 1e-6) } }
        }
        calls = seen
        return result
    }

    func testBeamSearchChoosesByTheLengthNormalisedScoreCountingEOS() throws {
        // Hypotheses: "" (<eos> at once): log 0.5 over 1 step = −0.693; "a" then <eos>:
        // log 0.5 + log 0.6 = −1.204 over 2 steps = −0.602; "a b a" and "a b b" unfinished
        // after 3 steps: (log 0.5 + log 0.4 + log 0.35) / 3 = −0.886. By the mean per step
        // (α = 1) "a" wins; by the plain sum (α = 0) the empty one; had the <eos> step not
        // been counted, "a" would score −1.204 and lose.
        var calls: [([Int], [Int])] = []
        let best = try search(lengthPenalty: 1, calls: &calls)
        XCTAssertEqual(best.tokens, [3])
        XCTAssertTrue(best.finished)
        XCTAssertEqual(best.scoredSteps, 2)
        XCTAssertEqual(best.logProbability, Float(Foundation.log(0.5) + Foundation.log(0.6)))
        XCTAssertEqual(best.score, Float((Foundation.log(0.5) + Foundation.log(0.6)) / 2))
        // Each step fed the live beams' last ids and the rows they extend.
        XCTAssertEqual(calls.map(\.0), [[1], [3], [4]])
        XCTAssertEqual(calls.map(\.1), [[0], [0], [0]])

        let summed = try search(lengthPenalty: 0, calls: &calls)
        XCTAssertEqual(summed.tokens, [])
        XCTAssertTrue(summed.finished)
        XCTAssertEqual(summed.score, Float(Foundation.log(0.5)))
    }
}
