/// chrF (Popović 2015) as sacrebleu computes it by default (`CHRF()`: character n-grams of
/// orders 1…6, no word n-grams, β = 2, whitespace removed), over a whole corpus: the n-gram
/// matches and counts of every sentence are summed per order, each order gives a precision and
/// a recall, their means over the orders give F_β, reported ×100. A score to watch during
/// training and in tests; `scripts/translation-score` gives sacrebleu's own BLEU and chrF
/// for reports.
/// `order` below 1 gives 0.
public func characterF(hypotheses: [String], references: [String], order: Int = 6, beta: Double = 2) -> Double {
    guard order >= 1 else { return 0 }
    var matches = [Double](repeating: 0, count: order), hypothesisCounts = matches, referenceCounts = matches
    for (hypothesis, reference) in zip(hypotheses, references) {
        let h = Array(hypothesis.filter { !$0.isWhitespace }), r = Array(reference.filter { !$0.isWhitespace })
        for n in 1...order {
            let hn = nGrams(h, n), rn = nGrams(r, n)
            hypothesisCounts[n - 1] += Double(hn.values.reduce(0, +))
            referenceCounts[n - 1] += Double(rn.values.reduce(0, +))
            matches[n - 1] += Double(hn.reduce(0) { $0 + min($1.value, rn[$1.key] ?? 0) })
        }
    }
    // sacrebleu averages precision and recall over the orders that have n-grams, then takes F.
    var precision = 0.0, recall = 0.0, orders = 0.0
    for n in 0..<order where hypothesisCounts[n] > 0 && referenceCounts[n] > 0 {
        precision += matches[n] / hypothesisCounts[n]
        recall += matches[n] / referenceCounts[n]
        orders += 1
    }
    guard orders > 0 else { return 0 }
    precision /= orders
    recall /= orders
    let b2 = beta * beta
    guard precision + recall > 0 else { return 0 }
    return 100 * (1 + b2) * precision * recall / (b2 * precision + recall)
}

private func nGrams(_ characters: [Character], _ n: Int) -> [String: Int] {
    var counts: [String: Int] = [:]
    guard characters.count >= n else { return counts }
    for start in 0...(characters.count - n) { counts[String(characters[start..<(start + n)]), default: 0] += 1 }
    return counts
}
