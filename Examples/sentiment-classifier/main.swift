// sentiment-classifier: an LSTM sequence classifier built with the model API (a Sequential
// of Embedding → LSTM with per-sequence lengths → the last valid state → Linear, softmax
// cross-entropy, Adam with clipping; the backward runs itself), trained on labelled text
// from a TSV or CSV file, reporting accuracy on a held-out split beside the majority-class
// baseline.
//
//   scripts/fetch-movie-reviews                  # data/movie-reviews.tsv (id, sentiment, text)
//   swift run -c release sentiment-classifier data/movie-reviews.tsv [--epochs 4] [--backend opencl]
//
// Labels: a numeric label column becomes its sign (> 0 positive, < 0 negative, 0 dropped);
// any other label column is used as class names.
import Foundation
import LSTMKit

struct Options {
    var path = ""
    var textColumn = "text"
    var labelColumn = "sentiment"
    var epochs = 4
    var batch = 32
    var hidden = 128
    var embedding = 64
    var maxTokens = 64
    var learningRate: Float = 2e-3
    var heldOut = 0.1
    var seed: UInt64 = 1
    var backend = "cpu"

    static func parse(_ arguments: [String]) -> Options {
        var o = Options()
        var i = 0
        func value() -> String {
            i += 1
            guard i < arguments.count else { fail("\(arguments[i - 1]) needs a value") }
            return arguments[i]
        }
        while i < arguments.count {
            switch arguments[i] {
            case "--text-column": o.textColumn = value()
            case "--label-column": o.labelColumn = value()
            case "--epochs": o.epochs = Int(value()) ?? o.epochs
            case "--batch": o.batch = Int(value()) ?? o.batch
            case "--hidden": o.hidden = Int(value()) ?? o.hidden
            case "--embedding": o.embedding = Int(value()) ?? o.embedding
            case "--max-tokens": o.maxTokens = Int(value()) ?? o.maxTokens
            case "--lr": o.learningRate = Float(value()) ?? o.learningRate
            case "--held-out": o.heldOut = Double(value()) ?? o.heldOut
            case "--seed": o.seed = UInt64(value()) ?? o.seed
            case "--backend": o.backend = value()
            case "-h", "--help":
                print(
                    "usage: sentiment-classifier FILE.tsv|FILE.csv [--text-column text] [--label-column "
                        + "sentiment] [--epochs 4] "
                        + "[--batch 32] [--hidden 128] [--embedding 64] [--max-tokens 64] [--lr 0.002] "
                        + "[--held-out 0.1] [--seed 1] [--backend cpu|opencl]"
                )
                exit(0)
            default:
                if arguments[i].hasPrefix("-") { fail("unknown option \(arguments[i])") }
                o.path = arguments[i]
            }
            i += 1
        }
        if o.path.isEmpty { fail("give the data file (scripts/fetch-movie-reviews writes data/movie-reviews.tsv)") }
        return o
    }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("sentiment-classifier: \(message)\n".utf8))
    exit(2)
}

func tokens(_ text: String) -> [String] {
    text.lowercased().split { !($0.isLetter || $0 == "'") }.map(String.init)
}

func train<Backend: ModelOps>(_ o: Options, backend: Backend) throws {
    // Examples: (tokens, label). A malformed file, a missing column or a bad label is a thrown
    // error naming the file and the line.
    let table = try DelimitedTable(contentsOf: o.path, separator: o.path.hasSuffix(".csv") ? "," : "\t")
    let numeric = try table.column(named: o.labelColumn).allSatisfy { Double($0) != nil }
    let labelled = try LabelledText(
        table: table, labelColumn: o.labelColumn, textColumn: o.textColumn, labels: numeric ? .numericSign : .names)
    var classNames = labelled.classNames
    var examples: [([String], Int)] = []
    for example in labelled.examples {
        let words = tokens(example.text)
        if !words.isEmpty { examples.append((Array(words.prefix(o.maxTokens)), example.label)) }
    }
    var generator = SeededGenerator(seed: o.seed)
    examples.shuffle(using: &generator)
    let cut = examples.count - Int(Double(examples.count) * o.heldOut)
    let trainSet = Array(examples[..<cut]), testSet = Array(examples[cut...])

    // Vocabulary from the training split: words seen at least twice; 0 = padding, 1 = unknown.
    var counts: [String: Int] = [:]
    for (words, _) in trainSet { for w in words { counts[w, default: 0] += 1 } }
    let words = counts.filter { $0.value >= 2 }.keys.sorted()
    var index: [String: Int] = [:]
    for (i, w) in words.enumerated() { index[w] = i + 2 }
    let vocabularySize = words.count + 2
    classNames = Array(classNames.prefix(max(2, classNames.count)))
    let classes = classNames.count

    let lstmConfig = LSTMConfiguration(inputSize: o.embedding, hiddenSize: o.hidden)
    // The same draws from `generator` as before the model API, so the same initial weights.
    let embedding = try Embedding(
        backend: backend, vocabularySize: vocabularySize, dimension: o.embedding, name: "weight",
        generator: &generator)
    let lstm = try LSTMLayer(
        stack: LSTMStack(
            configuration: lstmConfig, backend: backend,
            weights: LSTM.initialWeights(lstmConfig, seed: generator.next())))
    let head = try Linear(
        backend: backend, inputSize: lstmConfig.outputSize, outputSize: classes, name: "", generator: &generator)
    // The last valid step's output is hn: each sequence's state after its own length.
    let model = try Sequential<Backend>([embedding, lstm, SequencePooling(backend: backend, mode: .last), head])
    let optimizer = Optimizer(backend: backend, kind: .adam())
    let crossEntropy = CrossEntropyLoss(backend: backend)

    /// A batch as the model takes it: ids [T, B] with padding 0 and lengths [B], and the labels [B].
    func batchValue(_ batch: ArraySlice<([String], Int)>) throws -> (LayerValue<Backend>, labels: [Int]) {
        let steps = batch.map { $0.0.count }.max()!
        var ids = [Int](repeating: 0, count: steps * batch.count)
        for (b, (words, _)) in batch.enumerated() {
            for (t, w) in words.enumerated() { ids[t * batch.count + b] = index[w] ?? 1 }
        }
        let x = try LayerValue.tokens(
            ids: ids, steps: steps, batch: batch.count, lengths: batch.map { $0.0.count }, on: backend)
        return (x, batch.map { $0.1 })
    }

    func accuracy(_ set: [([String], Int)]) throws -> Double {
        var correct = 0.0
        for start in stride(from: 0, to: set.count, by: 256) {
            let (x, labels) = try batchValue(set[start..<min(start + 256, set.count)])
            let logits = try model.forward(x, training: false)
            correct += Double(try Metrics.accuracy(logits, targets: labels, backend: backend)) * Double(labels.count)
        }
        return correct / Double(max(set.count, 1))
    }

    let majority = (0..<classes).map { c in testSet.filter { $0.1 == c }.count }.max()!
    print(
        "\(examples.count) examples (\(trainSet.count) train, \(testSet.count) held out), \(vocabularySize) words, "
            + "classes \(classNames); \(backend.name)")
    print(
        "majority-class baseline on the held-out split: "
            + "\(String(format: "%.1f", 100 * Double(majority) / Double(testSet.count)))%"
    )
    var order = Array(trainSet.indices)
    for epoch in 1...o.epochs {
        order.shuffle(using: &generator)
        var total: Float = 0, batches = 0
        let started = Date()
        for start in stride(from: 0, to: order.count, by: o.batch) {
            let batch = order[start..<min(start + o.batch, order.count)].map { trainSet[$0] }[...]
            let (x, labels) = try batchValue(batch)
            let loss = try crossEntropy(model.forward(x, training: true), targets: labels)
            try model.backward(loss.gradient)
            try model.step(optimizer, learningRate: o.learningRate, maxGradientNorm: 5)
            total += loss.loss
            batches += 1
        }
        print(
            "epoch \(epoch): train loss \(String(format: "%.4f", total / Float(batches))), held-out accuracy "
                + "\(String(format: "%.1f", 100 * (try accuracy(testSet))))% "
                + "(\(String(format: "%.0f", Date().timeIntervalSince(started))) s)"
        )
    }
}

let options = Options.parse(Array(CommandLine.arguments.dropFirst()))
do {
    switch options.backend {
    case "cpu": try train(options, backend: CPUBackend())
    case "opencl": try train(options, backend: OpenCLBackend.shared())
    default: fail("--backend must be cpu or opencl")
    }
} catch {
    fail("\(error)")
}
