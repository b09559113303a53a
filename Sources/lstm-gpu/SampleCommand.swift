import ArgumentParser
import Foundation
import LSTMKit

struct SampleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "Generate text from a checkpoint written by `lstm-gpu train`.")

    @Option(help: "Checkpoint file.") var checkpoint: String
    @Option(help: "Text to start from (every character must be in the model's vocabulary).") var prompt = "\n"
    @Option(parsing: .unconditional, help: "Characters to generate.") var length = 500
    @Option(parsing: .unconditional, help: "Softmax temperature (> 0; lower is more conservative).") var temperature: Float = 0.8
    @Option(name: .customLong("top-k"), parsing: .unconditional, help: "Sample only among the K most likely characters.")
    var topK: Int?
    @Option(parsing: .unconditional, help: "Random seed.") var seed: UInt64 = 1
    @Option(help: "cpu or opencl.") var backend: BackendKind = .cpu
    @Option(help: "OpenCL device.") var device: String?
    @Flag(help: "Print the prompt's mean cross-entropy (nats per predicted character) and the logits after it as JSON, instead of generating.")
    var score = false

    func validate() throws {
        guard length >= 0 else { throw ValidationError("--length must be at least 0, got \(length)") }
        guard length <= SizeLimits.maxCount else { throw ValidationError("--length must be at most \(SizeLimits.maxCount), got \(length)") }
        guard temperature.isFinite else { throw ValidationError("--temperature must be a finite number, got \(temperature)") }
        guard temperature > 0 else { throw ValidationError("--temperature must be > 0, got \(temperature)") }
        if let topK, topK <= 0 { throw ValidationError("--top-k must be at least 1, got \(topK)") }
        guard !prompt.isEmpty else { throw ValidationError("--prompt must not be empty") }
    }

    func run() throws {
        switch backend {
        case .cpu: try sample(CPUBackend())
        case .opencl: try sample(OpenCLBackend.shared(device: device))
        }
    }

    func sample<Backend: ModelOps>(_ backend: Backend) throws {
        let (model, vocabulary) = try Checkpoint.loadModel(checkpoint, backend: backend)
        let promptIds = try vocabulary.encode(prompt)
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
            let mean = promptIds.count > 1 ? crossEntropy / Double(promptIds.count - 1) : 0
            print("{\"cross_entropy\": \(mean), \"characters\": \(promptIds.count), \"last_logits\": [\(logits.map { "\($0)" }.joined(separator: ", "))]}")
            return
        }
        var output = prompt
        for _ in 0..<length {
            let next = draw(logits, generator: &generator)
            output.append(vocabulary.characters[next])
            (logits, state) = try model.nextLogits([next], state: state)
        }
        print(output)
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
