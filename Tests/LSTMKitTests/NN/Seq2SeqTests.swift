import Foundation
import XCTest

@testable import LSTMCPU
@testable import LSTMCore
@testable import LSTMData
@testable import LSTMKit
@testable import LSTMNN
@testable import LSTMOpenCL
@testable import LSTMReference

/// The `Seq2Seq` encoder-decoder: gradients against finite differences, CPU and OpenCL
/// agreement in training, greedy and beam decoding, save and load (and corrupt files), input
/// refusals and a small learning task.
final class Seq2SeqTests: XCTestCase {
    /// A tiny model: Vs = 7, Vt = 8 (0 pad, 2 bos, 3 eos), E = 3, H = 4, L = 2.
    static func tiny(dropout: Float = 0, embeddingDropout: Float = 0, attention: Bool = false) -> Seq2SeqConfiguration {
        Seq2SeqConfiguration(
            sourceVocabularySize: 7, targetVocabularySize: 8, embeddingSize: 3, hiddenSize: 4, numLayers: 2,
            dropout: dropout, embeddingDropout: embeddingDropout, attention: attention)
    }
    static let sources = [[1, 4, 5, 6], [6, 1], [5], [2, 3, 4]]
    static let targets = [[4, 5, 6], [], [7, 1, 1, 5], [6]]

    /// Every parameter's gradient from `backward` against central differences of the loss.
    func checkGradients<B: ModelOps>(_ b: B, _ name: String, attention: Bool = false) throws {
        let configuration = Self.tiny(attention: attention)
        let model = try Seq2Seq(configuration, backend: b, seed: 11)
        XCTAssertEqual(model.parameters.map(\.name), configuration.parameterSpecs.map(\.name))
        XCTAssertEqual(model.parameters.map(\.shape), configuration.parameterSpecs.map(\.shape))
        XCTAssertEqual(model.parameters.contains { $0.name == "attention.weight" }, attention)
        let value = try model.loss(sources: Self.sources, targets: Self.targets, training: true)
        XCTAssertEqual(value.tokens, 3 + 1 + 0 + 1 + 4 + 1 + 1 + 1)
        try model.backward()
        let probes = try model.parameters.map {
            GradientProbe(name: $0.name, value: $0.value, count: $0.count, analytic: try XCTUnwrap($0.gradient))
        }
        // More samples with attention: the encoder's recurrent weights get small gradients there
        // (max ~1e-4), and the check wants a sampled one above its 5e-5 noise floor.
        try checkFiniteDifferences(b, "\(name) seq2seq", probes: probes, samples: attention ? 17 : 7) {
            Double(try model.loss(sources: Self.sources, targets: Self.targets, training: false).loss)
        }
        // A second backward without a new training loss is refused.
        assertThrows(["Seq2Seq.backward needs a loss"]) { try model.backward() }
    }

    func testGradientsOnTheCPU() throws { try checkGradients(CPUBackend(), "cpu") }
    func testGradientsOnOpenCL() throws { try checkGradients(requireOpenCL(), "opencl") }
    func testAttentionGradientsOnTheCPU() throws { try checkGradients(CPUBackend(), "cpu", attention: true) }
    func testAttentionGradientsOnOpenCL() throws { try checkGradients(requireOpenCL(), "opencl", attention: true) }

    /// Same seed, same weights and the same dropout masks: Adam steps give the same losses.
    func testCPUAndOpenCLTrainAlike() throws {
        let gpu = try requireOpenCL(), cpu = CPUBackend()
        for attention in [false, true] {
            try checkTrainAlike(cpu, gpu, Self.tiny(dropout: 0.2, embeddingDropout: 0.1, attention: attention))
        }
    }

    func checkTrainAlike(_ cpu: CPUBackend, _ gpu: OpenCLBackend, _ configuration: Seq2SeqConfiguration) throws {
        func losses<B: ModelOps>(_ b: B) throws -> [Float] {
            let model = try Seq2Seq(configuration, backend: b, seed: 5)
            let optimizer = Optimizer(backend: b, kind: .adam())
            return try (0..<4).map { _ in
                let value = try model.loss(sources: Self.sources, targets: Self.targets, training: true)
                try model.backward()
                try optimizer.clipGradients(model.parameters, maxNorm: 1)
                try optimizer.update(model.parameters, learningRate: 0.05)
                return value.loss
            } + [model.loss(sources: Self.sources, targets: Self.targets, training: false).loss]
        }
        let (a, g) = (try losses(cpu), try losses(gpu))
        for (x, y) in zip(a, g) { XCTAssertEqual(x, y, accuracy: 1e-4 * max(1, abs(x)), "\(a) vs \(g)") }
        XCTAssertLessThan(a.last!, a.first!)
    }

    /// Greedy decoding is beam search of width 1, and scores as the teacher-forced loss says.
    func testGreedyIsBeamOfWidthOne() throws {
        try checkGreedyIsBeamOfWidthOne(attention: false)
        try checkGreedyIsBeamOfWidthOne(attention: true)
    }

    func checkGreedyIsBeamOfWidthOne(attention: Bool) throws {
        let model = try Seq2Seq(Self.tiny(attention: attention), backend: CPUBackend(), seed: 3)
        // Favour <eos> a little so that some sentences finish.
        try model.backend.write(
            [0, 0, 0, 1.5, 0, 0, 0, 0], to: model.output.bias.value, offset: 0)
        let greedy = try model.translations(Self.sources, maxLength: 6)
        XCTAssertTrue(greedy.contains { $0.finished })
        for (source, translation) in zip(Self.sources, greedy) {
            let beam = try model.beamSearch(source, maxLength: 6, beamWidth: 1, lengthPenalty: 1)
            XCTAssertEqual(beam.tokens, translation.tokens)
            XCTAssertEqual(beam.finished, translation.finished)
            XCTAssertEqual(beam.logProbability, translation.logProbability, accuracy: 1e-5)
            XCTAssertLessThanOrEqual(translation.tokens.count, 6)
            if translation.finished {
                let loss = try model.loss(sources: [source], targets: [translation.tokens], training: false)
                XCTAssertEqual(-translation.score, loss.loss, accuracy: 1e-4)
                XCTAssertEqual(translation.scoredSteps, loss.tokens)
            }
        }
        XCTAssertEqual(try model.translate(Self.sources, maxLength: 6), greedy.map(\.tokens))
    }

    /// Beam search finds translations that score at least as well as greedy decoding's here,
    /// with and without length normalisation.
    func testBeamSearchScoresAtLeastGreedy() throws {
        let model = try Seq2Seq(Self.tiny(attention: true), backend: CPUBackend(), seed: 4)
        try model.backend.write([0, 0, 0, 1, 0, 0, 0, 0], to: model.output.bias.value, offset: 0)
        for lengthPenalty: Float in [0, 1] {
            let greedy = try model.translations(Self.sources, maxLength: 5, lengthPenalty: lengthPenalty)
            let beam = try model.translations(Self.sources, maxLength: 5, beamWidth: 4, lengthPenalty: lengthPenalty)
            for (g, s) in zip(greedy, beam) { XCTAssertGreaterThanOrEqual(s.score, g.score - 1e-6) }
        }
    }

    /// save → load gives the same weights, loss, translations and metadata, on both backends.
    func testSaveAndLoad() throws {
        try checkSaveAndLoad(attention: false)
        try checkSaveAndLoad(attention: true)
    }

    func checkSaveAndLoad(attention: Bool) throws {
        let cpu = CPUBackend()
        let model = try Seq2Seq(Self.tiny(dropout: 0.1, attention: attention), backend: cpu, seed: 8)
        let path = try temporaryFolder() + "/seq2seq.safetensors"
        let vocabularies = ["source_vocabulary": "<pad>\n<unk>\na", "target_vocabulary": "x\ny"]
        try model.save(to: path, extraMetadata: vocabularies)
        XCTAssertEqual(Set(try SafeTensorsFile(contentsOf: path).names), Set(model.parameters.map(\.name)))
        let loaded = try Seq2Seq(contentsOf: path, backend: cpu)
        XCTAssertEqual(loaded.configuration, model.configuration)
        // JSON without "attention" (written before it existed) reads as no attention.
        let object = try JSONSerialization.jsonObject(with: JSONEncoder().encode(Self.tiny(attention: true)))
        var fields = try XCTUnwrap(object as? [String: Any])
        fields["attention"] = nil
        XCTAssertEqual(
            try JSONDecoder().decode(Seq2SeqConfiguration.self, from: JSONSerialization.data(withJSONObject: fields)),
            Self.tiny())
        XCTAssertEqual(loaded.metadata, vocabularies)
        func loss<B: ModelOps>(_ m: Seq2Seq<B>) throws -> Float {
            try m.loss(sources: Self.sources, targets: Self.targets, training: false).loss
        }
        XCTAssertEqual(try loss(loaded), try loss(model))
        XCTAssertEqual(
            try loaded.translate(Self.sources, maxLength: 5, beamWidth: 3),
            try model.translate(Self.sources, maxLength: 5, beamWidth: 3))
        // Saving a loaded model keeps its metadata; reserved keys are refused.
        let again = try temporaryFolder() + "/again.safetensors"
        try loaded.save(to: again)
        XCTAssertEqual(try Seq2Seq(contentsOf: again, backend: cpu).metadata, vocabularies)
        assertThrows(["'format' is reserved"]) { try model.save(to: again, extraMetadata: ["format": "x"]) }
        if let folder = ProcessInfo.processInfo.environment["LSTM_GPU_MODEL_EXPORT"] {
            try exportForTorch(model, to: folder + (attention ? "/seq2seq-attention" : "/seq2seq"))
        }
        if let gpu = try? requireOpenCL() {
            let onGPU = try Seq2Seq(contentsOf: path, backend: gpu)
            XCTAssertEqual(try loss(onGPU), try loss(model), accuracy: 1e-5)
            XCTAssertEqual(
                try onGPU.translate(Self.sources, maxLength: 5), try model.translate(Self.sources, maxLength: 5))
        }
    }

    /// Writes `model` to `<base>.safetensors` and, for `scripts/seq2seq-in-torch`, the test
    /// batch to `<base>.inputs.safetensors`: "source" I64 [S, B], "source_lengths" I64 [B],
    /// "decoder_input" I64 [T, B] (<bos> + target), "target_lengths" I64 [B] and "logits" F32
    /// [T, B, Vt], the teacher-forced logits (inference).
    func exportForTorch<B: ModelOps>(_ model: Seq2Seq<B>, to base: String) throws {
        try model.save(to: base + ".safetensors")
        let (sources, targets, batch) = (Self.sources, Self.targets, Self.sources.count)
        func padded(_ rows: [[Int]]) -> (ids: [Int], steps: Int) {
            let steps = rows.map(\.count).max()!
            var ids = Array(repeating: model.configuration.padId, count: steps * batch)
            for (b, row) in rows.enumerated() { for (t, id) in row.enumerated() { ids[t * batch + b] = id } }
            return (ids, steps)
        }
        let source = padded(sources), input = padded(targets.map { [model.configuration.bosId] + $0 })
        let state = try model.encode(sources)
        let (decoded, _) = try model.decoder.forward(
            model.targetEmbedding.forward(
                LayerValue.tokens(
                    ids: input.ids, steps: input.steps, batch: batch, lengths: targets.map { $0.count + 1 },
                    on: model.backend), training: false), initialState: state, training: false)
        let logits = try model.output.forward(
            model.attend(decoded, model.encodeAll(sources, training: false), training: false), training: false)
        try SafeTensorsFile.write(
            [
                ("source", .int64(shape: [source.steps, batch], values: source.ids)),
                ("source_lengths", .int64(shape: [batch], values: sources.map(\.count))),
                ("decoder_input", .int64(shape: [input.steps, batch], values: input.ids)),
                ("target_lengths", .int64(shape: [batch], values: targets.map { $0.count + 1 })),
                (
                    "logits",
                    .float32(
                        try Tensor(
                            shape: logits.shape,
                            scalars: model.backend.read(logits.buffer!, offset: 0, count: logits.elementCount)))
                ),
            ], to: base + ".inputs.safetensors")
    }

    /// A model file rewritten with `tensors` (name → tensor) and `metadata`.
    func rewrite(
        _ path: String, _ name: String, dropping: String? = nil, adding: (String, Tensor)? = nil,
        metadata change: (inout [String: String]) -> Void = { _ in }
    ) throws -> String {
        let file = try SafeTensorsFile(contentsOf: path)
        var tensors: [(name: String, value: SafeTensorsValue)] = try file.names.filter { $0 != dropping }.map {
            ($0, .float32(try file.floatTensor($0)))
        }
        if let adding { tensors.append((adding.0, .float32(adding.1))) }
        var metadata = file.metadata
        change(&metadata)
        let out = try temporaryFolder() + "/\(name).safetensors"
        try SafeTensorsFile.write(tensors, metadata: metadata, to: out)
        return out
    }

    func testCorruptFilesAreRefused() throws {
        let cpu = CPUBackend()
        let path = try temporaryFolder() + "/model.safetensors"
        try Seq2Seq(Self.tiny(), backend: cpu, seed: 1).save(to: path)
        func refuses(_ fragments: [String], _ file: String, line: UInt = #line) {
            assertThrows(fragments, line: line) { _ = try Seq2Seq(contentsOf: file, backend: cpu) }
        }
        let key = Seq2SeqArchitecture.metadataKey
        let json = try SafeTensorsFile(contentsOf: path).metadata[key]!
        refuses(["missing tensor 'decoder.bias_hh_l1'"], try rewrite(path, "missing", dropping: "decoder.bias_hh_l1"))
        refuses(
            ["tensor 'decoder.weight_ih_l2'", "not one of its parameters"],
            try rewrite(path, "extra", adding: ("decoder.weight_ih_l2", try Tensor(shape: [1], scalars: [0]))))
        refuses(
            ["output.bias"],
            try rewrite(
                path, "shape", dropping: "output.bias",
                adding: ("output.bias", try Tensor(shape: [7], scalars: Array(repeating: 0, count: 7)))))
        refuses(["not valid seq2seq model JSON"], try rewrite(path, "json") { $0[key] = "{\"format\": 1" })
        for (fragments, old, new) in [
            (["not 'lstm-gpu-seq2seq'"], "lstm-gpu-seq2seq", "lstm-gpu-sequential"),
            (["version 2 is not supported"], "\"version\":1", "\"version\":2"),
            (["configuration", "eosId 30"], "\"eosId\":3", "\"eosId\":30"),
            (["configuration", "hiddenSize"], "\"hiddenSize\":4", "\"hiddenSize\":-4"),
        ] {
            refuses(fragments, try rewrite(path, "changed") { $0[key] = json.replacingOccurrences(of: old, with: new) })
        }
        refuses(["an lstm-gpu seq2seq model file"], try rewrite(path, "none") { $0[key] = nil })
        refuses(["no such file", "/nonexistent"], "/nonexistent/model.safetensors")
    }

    func testBadInputIsRefused() throws {
        let model = try Seq2Seq(Self.tiny(), backend: CPUBackend(), seed: 1)
        assertThrows(["source 1 is empty"]) {
            _ = try model.loss(sources: [[1], [], [2]], targets: [[1], [1], [1]], training: true)
        }
        assertThrows(["source 0", "id 7", "position 1", "0..<7"]) {
            _ = try model.translate([[1, 7]], maxLength: 3)
        }
        assertThrows(["target 1", "id 8", "position 2"]) {
            _ = try model.loss(sources: [[1], [2]], targets: [[1], [1, 2, 8]], training: false)
        }
        assertThrows(["2 sources but 1 targets"]) {
            _ = try model.loss(sources: [[1], [2]], targets: [[1]], training: false)
        }
        assertThrows(["no sentences"]) { _ = try model.translate([], maxLength: 3) }
        assertThrows(["maxLength ≥ 1"]) { _ = try model.translate([[1]], maxLength: 0) }
        assertThrows(["beamWidth ≥ 1"]) { _ = try model.translate([[1]], maxLength: 3, beamWidth: 0) }
        assertThrows(["backward needs a loss"]) { try model.backward() }
        // An inference pass between a training loss and backward drops what backward needed.
        _ = try model.loss(sources: [[1]], targets: [[1]], training: true)
        _ = try model.translate([[1]], maxLength: 2)
        assertThrows(["backward needs a loss"]) { try model.backward() }
        for (configuration, fragment) in [
            (
                Seq2SeqConfiguration(sourceVocabularySize: 5, targetVocabularySize: 3, embeddingSize: 2, hiddenSize: 2),
                "eosId 3 is outside the target vocabulary 0..<3"
            ),
            (
                Seq2SeqConfiguration(
                    sourceVocabularySize: 5, targetVocabularySize: 5, embeddingSize: 2, hiddenSize: 2, bosId: 3),
                "must all be different"
            ),
            (
                Seq2SeqConfiguration(sourceVocabularySize: 5, targetVocabularySize: 5, embeddingSize: 0, hiddenSize: 2),
                "embeddingSize must be at least 1"
            ),
            (
                Seq2SeqConfiguration(
                    sourceVocabularySize: 5, targetVocabularySize: 5, embeddingSize: 2, hiddenSize: 2, dropout: 1),
                "dropout must be in [0, 1)"
            ),
        ] {
            assertThrows([fragment]) { _ = try Seq2Seq(configuration, backend: CPUBackend(), seed: 1) }
        }
    }

    /// Learns to reverse random digit strings of length 1...5 (ids 4...13) on the CPU: high
    /// teacher-forced token accuracy and mostly exact greedy reversals on unseen strings.
    func testLearnsToReverseDigits() throws { try checkLearnsToReverseDigits(attention: false) }
    func testLearnsToReverseDigitsWithAttention() throws { try checkLearnsToReverseDigits(attention: true) }

    func checkLearnsToReverseDigits(attention: Bool) throws {
        let cpu = CPUBackend()
        let model = try Seq2Seq(
            Seq2SeqConfiguration(
                sourceVocabularySize: 14, targetVocabularySize: 14, embeddingSize: 16, hiddenSize: 64,
                attention: attention),
            backend: cpu, seed: 1)
        var generator = SeededGenerator(seed: 9)
        func batch(_ count: Int) -> [[Int]] {
            (0..<count).map { _ in
                (0..<Int.random(in: 1...5, using: &generator)).map { _ in Int.random(in: 4...13, using: &generator) }
            }
        }
        let optimizer = Optimizer(backend: cpu, kind: .adam())
        let start = Date()
        for _ in 0..<250 {
            let sources = batch(32)
            _ = try model.loss(
                sources: sources, targets: sources.map { $0.reversed() }, training: true, countCorrect: false)
            try model.backward()
            try optimizer.clipGradients(model.parameters, maxNorm: 5)
            try optimizer.update(model.parameters, learningRate: 0.01)
        }
        let test = batch(100)
        let value = try model.loss(sources: test, targets: test.map { $0.reversed() }, training: false)
        let exact = zip(try model.translate(test, maxLength: 8), test).filter { $0.0 == $0.1.reversed() }.count
        let greedy = try model.translations(Array(test.prefix(30)), maxLength: 8)
        let beam = try model.translations(Array(test.prefix(30)), maxLength: 8, beamWidth: 3)
        for (g, s) in zip(greedy, beam) { XCTAssertGreaterThanOrEqual(s.score, g.score - 1e-6) }
        XCTAssertGreaterThan(zip(beam, test).filter { $0.0.tokens == $0.1.reversed() }.count, 20)
        print(
            "seq2seq reversal (attention: \(attention)): loss \(value.loss), token accuracy \(value.accuracy!), exact \(exact)/100 in"
                + " \(Date().timeIntervalSince(start)) s")
        XCTAssertGreaterThan(value.accuracy!, 0.9)
        XCTAssertGreaterThan(exact, 70)
    }
}
