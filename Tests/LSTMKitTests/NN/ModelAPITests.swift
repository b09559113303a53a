import Foundation
import XCTest

@testable import LSTMCPU
@testable import LSTMCore
@testable import LSTMData
@testable import LSTMKit
@testable import LSTMNN
@testable import LSTMOpenCL
@testable import LSTMReference

/// The layer of `Layer`'s documentation example, written as a user would (public API only).
final class Scale<Backend: ModelOps>: Layer {
    let backend: Backend
    let factor: Float
    private var kept: (factors: Backend.Buffer, count: Int)?
    var parameters: [Parameter<Backend.Buffer>] { [] }
    init(backend: Backend, factor: Float) {
        self.backend = backend
        self.factor = factor
    }

    func forward(_ input: LayerValue<Backend>, training: Bool) throws -> LayerValue<Backend> {
        guard let x = input.buffer else {
            throw LSTMError.invalidArgument("Scale expects a sequence or rows, got \(input.summary)")
        }
        let n = input.elementCount
        let factors = try backend.makeBuffer(count: n), y = try backend.makeBuffer(count: n)
        try backend.write(Array(repeating: factor, count: n), to: factors, offset: 0)
        try backend.multiply(x, factors, into: y, count: n)
        kept = training ? (factors, n) : nil
        return input.replacing(y, features: input.shape.last!)
    }

    func backward(_ outputGradient: Backend.Buffer) throws -> Backend.Buffer? {
        guard let (factors, n) = kept else { throw LSTMError.invalidArgument("Scale: no training forward") }
        let dx = try backend.makeBuffer(count: n)
        try backend.multiply(outputGradient, factors, into: dx, count: n)
        return dx
    }
}

/// What a finite-difference check perturbs: a buffer and the gradient the backward gave for it.
struct GradientProbe<Buffer: AnyObject> {
    var name: String
    var value: Buffer
    var count: Int
    var analytic: Buffer
}

/// Finite differences through every layer, a user-written one and whole models, on both backends.
final class ModelGradientTests: XCTestCase {
    /// One layer: analytic gradients of Σ w·layer(x) for every parameter and (when it has one)
    /// the input, against finite differences. `makeLayer` builds the layer under test; the
    /// same instance serves both passes unless `fresh` (dropout: same seed, same mask).
    func checkLayer<Backend: ModelOps>(
        _ backend: Backend, _ label: String, input: LayerValue<Backend>, fresh: Bool = false, samples: Int = 7,
        _ makeLayer: () throws -> any Layer<Backend>
    ) throws -> Double {
        let layer = try makeLayer()
        let output = try layer.forward(input, training: true)
        let weights = randomTensor([output.elementCount], seed: 99).scalars
        let inputGradient = try layer.backward(upload(weights, backend))
        var probes = try layer.parameters.map {
            GradientProbe(name: $0.name, value: $0.value, count: $0.count, analytic: try XCTUnwrap($0.gradient))
        }
        if let x = input.buffer, let gradient = inputGradient {
            probes.append(GradientProbe(name: "input", value: x, count: input.elementCount, analytic: gradient))
        }
        return try checkFiniteDifferences(backend, label, probes: probes, samples: samples) {
            let evaluated = fresh ? try makeLayer() : layer
            return try weightedSum(evaluated.forward(input, training: fresh), weights, backend)
        }
    }

    func checkEveryLayer<Backend: ModelOps>(_ b: Backend, _ name: String) throws {
        let (steps, batch) = (4, 3), lengths = [4, 2, 1]
        let ids = try LayerValue.tokens(
            ids: [1, 4, 6, 0, 2, 2, 5, 3, 3, 1, 0, 6], steps: steps, batch: batch, lengths: lengths, on: b)
        let sequence = { (features: Int, seed: UInt64) in
            try LayerValue.sequence(
                values: randomTensor([steps * batch * features], seed: seed).scalars, steps: steps, batch: batch,
                features: features, lengths: lengths, on: b)
        }
        var worst: [String: Double] = [:]
        worst["Embedding"] = try checkLayer(b, "\(name) Embedding", input: ids) {
            try Embedding(backend: b, vocabularySize: 7, dimension: 3, seed: 1)
        }
        let configurations = [
            LSTMConfiguration(inputSize: 3, hiddenSize: 4, numLayers: 2, bidirectional: true),
            LSTMConfiguration(
                inputSize: 3, hiddenSize: 5, projectionSize: 3,
                cell: LSTMCellOptions(peepholes: true, layerNorm: true, cellClip: 5)),
        ]
        for (k, configuration) in configurations.enumerated() {
            worst["LSTM \(k)"] = try checkLayer(b, "\(name) LSTM \(k)", input: sequence(3, 5)) {
                try LSTMLayer(configuration, backend: b, seed: 2)
            }
        }
        worst["Linear rows"] = try checkLayer(
            b, "\(name) Linear rows",
            input: .rows(values: randomTensor([10], seed: 6).scalars, count: 2, features: 5, on: b)
        ) { try Linear(backend: b, inputSize: 5, outputSize: 3, seed: 3) }
        worst["Linear per step"] = try checkLayer(b, "\(name) Linear per step", input: sequence(5, 7)) {
            try Linear(backend: b, inputSize: 5, outputSize: 3, seed: 3)
        }
        worst["Dropout"] = try checkLayer(b, "\(name) Dropout", input: sequence(5, 8), fresh: true) {
            try Dropout(backend: b, probability: 0.4, seed: 11)
        }
        for mode in PoolingMode.allCases {
            // Every element: max pooling's gradient reaches one step in four.
            worst["pooling \(mode)"] = try checkLayer(
                b, "\(name) pooling \(mode)", input: sequence(5, 9), samples: steps * batch * 5
            ) {
                SequencePooling(backend: b, mode: mode)
            }
        }
        worst["user-written Scale"] = try checkLayer(b, "\(name) Scale", input: sequence(2, 10)) {
            Scale(backend: b, factor: -0.5)
        }
        print("\(name) per layer:", worst.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" })
    }

    func testEveryLayerOnTheCPU() throws { try checkEveryLayer(CPUBackend(), "cpu") }
    func testEveryLayerOnOpenCL() throws { try checkEveryLayer(requireOpenCL(), "opencl") }

    /// A whole model: analytic gradients of every parameter from `Sequential.backward`
    /// against finite differences of the inference loss.
    func checkModel<Backend: ModelOps>(
        _ b: Backend, _ label: String, model: Sequential<Backend>, input: LayerValue<Backend>,
        loss: (LayerValue<Backend>) throws -> LossValue<Backend.Buffer>
    ) throws {
        try model.backward(loss(model.forward(input, training: true)).gradient)
        let probes = try model.parameters.map {
            GradientProbe(name: $0.name, value: $0.value, count: $0.count, analytic: try XCTUnwrap($0.gradient))
        }
        try checkFiniteDifferences(b, label, probes: probes) {
            Double(try loss(model.forward(input, training: false)).loss)
        }
    }

    func checkClassifier<Backend: ModelOps>(_ b: Backend, _ name: String) throws {
        let model = try Sequential<Backend>([
            Embedding(backend: b, vocabularySize: 7, dimension: 3, seed: 1),
            LSTMLayer(
                LSTMConfiguration(inputSize: 3, hiddenSize: 4, numLayers: 2, bidirectional: true), backend: b,
                seed: 2),
            SequencePooling(backend: b, mode: .mean),
            Linear(backend: b, inputSize: 8, outputSize: 3, seed: 3),
        ])
        let x = try LayerValue.tokens(
            ids: [1, 4, 6, 0, 2, 2, 5, 3, 3, 1, 0, 6], steps: 4, batch: 3, lengths: [4, 3, 1], on: b)
        try checkModel(b, "\(name) classifier", model: model, input: x) {
            try CrossEntropyLoss(backend: b)($0, targets: [2, 0, 1])
        }
    }

    func checkTagger<Backend: ModelOps>(_ b: Backend, _ name: String) throws {
        let model = try Sequential<Backend>([
            Embedding(backend: b, vocabularySize: 7, dimension: 3, seed: 1),
            LSTMLayer(
                LSTMConfiguration(inputSize: 3, hiddenSize: 4, cell: LSTMCellOptions(coupledInputForget: true)),
                backend: b, seed: 2),
            Linear(backend: b, inputSize: 4, outputSize: 5, seed: 3),
        ])
        let x = try LayerValue.tokens(
            ids: [1, 4, 6, 0, 2, 2, 5, 3, 3, 1, 0, 6], steps: 4, batch: 3, lengths: [4, 2, 3], on: b)
        // Targets on padded steps are deliberately valid classes: the lengths must mask them.
        let targets = [1, 0, 4, 2, -100, 3, 4, 1, 0, 2, 3, 1]
        try checkModel(b, "\(name) tagger", model: model, input: x) {
            try CrossEntropyLoss(backend: b)($0, targets: targets)
        }
        // The mask matters: the same logits with the padded targets counted give another loss.
        let logits = try model.forward(x, training: false)
        let masked = try CrossEntropyLoss(backend: b)(logits, targets: targets).loss
        let rows = LayerValue<Backend>.rows(logits.buffer!, count: 12, features: 5)
        let unmasked = try CrossEntropyLoss(backend: b)(rows, targets: targets).loss
        XCTAssertGreaterThan(abs(masked - unmasked), 1e-3)
    }

    func checkDenseLosses<Backend: ModelOps>(_ b: Backend, _ name: String) throws {
        let x = try LayerValue.rows(values: randomTensor([12], seed: 4, scale: 3).scalars, count: 4, features: 3, on: b)
        let targets = randomTensor([8], seed: 5).scalars
        for (loss, lossName) in [
            ({ try BinaryCrossEntropyWithLogitsLoss(backend: b)($0, targets: targets.map { $0 > 0 ? 1 : 0 }) }, "bce"),
            ({ try MeanSquaredErrorLoss(backend: b)($0, targets: targets) }, "mse"),
        ] as [((LayerValue<Backend>) throws -> LossValue<Backend.Buffer>, String)] {
            try checkModel(
                b, "\(name) \(lossName)", model: Sequential([Linear(backend: b, inputSize: 3, outputSize: 2, seed: 6)]),
                input: x, loss: loss)
        }
    }

    func testModelsOnTheCPU() throws {
        let cpu = CPUBackend()
        try checkClassifier(cpu, "cpu")
        try checkTagger(cpu, "cpu")
        try checkDenseLosses(cpu, "cpu")
    }

    func testModelsOnOpenCL() throws {
        let gpu = try requireOpenCL()
        try checkClassifier(gpu, "opencl")
        try checkTagger(gpu, "opencl")
        try checkDenseLosses(gpu, "opencl")
    }
}

/// Training parity, names, pooling edge cases, refusals and metrics.
final class ModelAPITests: XCTestCase {
    func classifier<Backend: ModelOps>(_ b: Backend) throws -> Sequential<Backend> { try testClassifier(b) }

    /// 20 Adam steps with clipping on one batch: the losses, and that they fall.
    func trainingLosses<Backend: ModelOps>(_ b: Backend) throws -> [Float] {
        let model = try classifier(b)
        let optimizer = Optimizer(backend: b, kind: .adam())
        var generator = SeededGenerator(seed: 7)
        let ids = (0..<(6 * 5)).map { _ in Int(generator.next() % 11) }
        let x = try LayerValue.tokens(ids: ids, steps: 6, batch: 5, lengths: [6, 3, 5, 1, 4], on: b)
        let loss = CrossEntropyLoss(backend: b)
        var losses: [Float] = []
        for _ in 0..<20 {
            let result = try loss(model.forward(x, training: true), targets: [0, 2, 1, 1, 0])
            try model.backward(result.gradient)
            try model.step(optimizer, learningRate: 0.02, maxGradientNorm: 1)
            losses.append(result.loss)
        }
        return losses
    }

    func testCPUAndOpenCLFollowTheSameLosses() throws {
        let gpu = try requireOpenCL()
        let cpu = try trainingLosses(CPUBackend()), opencl = try trainingLosses(gpu)
        var worst: Float = 0
        for (step, (a, c)) in zip(cpu, opencl).enumerated() {
            let relative = abs(a - c) / max(abs(a), 1e-6)
            worst = max(worst, relative)
            XCTAssertLessThan(relative, 1e-3, "step \(step + 1): cpu \(a), opencl \(c)")
        }
        print("model training cpu \(cpu.first!) → \(cpu.last!), max relative cpu/opencl difference \(worst)")
        XCTAssertLessThan(cpu.last!, 0.5 * cpu.first!, "the loss falls")
    }

    /// `step` clips by the global norm of every parameter's gradient and follows a schedule.
    func testStepClipsAndFollowsTheSchedule() throws {
        let b = CPUBackend()
        let x = try LayerValue.rows(values: randomTensor([8], seed: 1).scalars, count: 4, features: 2, on: b)
        let targets = randomTensor([12], seed: 2).scalars
        func model() throws -> Sequential<CPUBackend> {
            try Sequential([Linear(backend: b, inputSize: 2, outputSize: 3, seed: 3)])
        }
        func values(_ m: Sequential<CPUBackend>) throws -> [Float] {
            try m.parameters.flatMap { try b.read($0.value, offset: 0, count: $0.count) }
        }
        let scheduled = try model(), explicit = try model()
        let (a, c) = (Optimizer(backend: b, kind: .sgd()), Optimizer(backend: b, kind: .sgd()))
        for rate: Float in [0.1, 0.05] {
            for (m, optimizer) in [(scheduled, a), (explicit, c)] {
                let before = try values(m)
                try m.backward(
                    MeanSquaredErrorLoss(backend: b)(m.forward(x, training: true), targets: targets).gradient)
                let gradients = try m.parameters.flatMap { try b.read($0.gradient!, offset: 0, count: $0.count) }
                let norm = gradients.reduce(0) { $0 + $1 * $1 }.squareRoot()
                let returned =
                    m === scheduled
                    ? try m.step(
                        optimizer, baseLearningRate: 0.1, schedule: .step(every: 1, gamma: 0.5), maxGradientNorm: 0.01)
                    : try m.step(optimizer, learningRate: rate, maxGradientNorm: 0.01)
                XCTAssertEqual(try XCTUnwrap(returned), norm, accuracy: 1e-5 * norm)
                XCTAssertGreaterThan(norm, 0.1, "the limit binds")
                let moved = zip(try values(m), before).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot()
                XCTAssertEqual(moved, rate * 0.01, accuracy: 1e-3 * rate * 0.01, "SGD moves lr·maxNorm")
            }
        }
        XCTAssertEqual(try values(scheduled), try values(explicit))
    }

    func testParametersAreNamedByPosition() throws {
        let names = try classifier(CPUBackend()).parameters.map(\.name)
        XCTAssertEqual(names.first, "0.weight")
        XCTAssertTrue(names.contains("1.weight_ih_l0"))
        XCTAssertTrue(names.contains("1.bias_hh_l1_reverse"))
        XCTAssertEqual(Array(names.suffix(2)), ["4.weight", "4.bias"])
        XCTAssertEqual(Set(names).count, names.count)
    }

    func checkLengthZeroPooling<Backend: ModelOps>(_ b: Backend) throws {
        let values = randomTensor([3 * 2 * 2], seed: 1).scalars.map { $0 + 2 }  // all positive
        let x = try LayerValue.sequence(values: values, steps: 3, batch: 2, features: 2, lengths: [0, 2], on: b)
        for mode in PoolingMode.allCases {
            let pool = SequencePooling(backend: b, mode: mode)
            let y = try pool.forward(x, training: true)
            XCTAssertEqual(y.shape, [2, 2])
            let out = try b.read(y.buffer!, offset: 0, count: 4)
            XCTAssertEqual(Array(out[0..<2]), [0, 0], "\(mode): a length-0 sequence pools to zeros")
            XCTAssertTrue(out[2...].allSatisfy { $0 > 1 }, "\(mode): the valid sequence pools its values")
            let dx = try b.read(try XCTUnwrap(pool.backward(upload([1, 1, 1, 1], b))), offset: 0, count: 12)
            for t in 0..<3 {
                XCTAssertEqual(Array(dx[(t * 4)..<(t * 4 + 2)]), [0, 0], "\(mode): no gradient to length 0")
                if t == 2 { XCTAssertEqual(Array(dx[10..<12]), [0, 0], "\(mode): no gradient to padding") }
            }
            XCTAssertEqual(dx.reduce(0, +), 2, accuracy: 1e-6, "\(mode): the gradient of the valid sequence sums to 1")
        }
    }

    func testLengthZeroPoolingOnTheCPU() throws { try checkLengthZeroPooling(CPUBackend()) }
    func testLengthZeroPoolingOnOpenCL() throws { try checkLengthZeroPooling(requireOpenCL()) }

    func testWrongKindsAreRefusedSayingWhatWasExpected() throws {
        let b = CPUBackend()
        let ids = try LayerValue.tokens(ids: [1, 2, 3, 4, 5, 6], steps: 3, batch: 2, on: b)
        let rows = try LayerValue.rows(values: [1, 2, 3, 4], count: 2, features: 2, on: b)
        assertThrows(["Linear expects rows [N, 4] or a sequence [T, B, 4], got token ids [T=3, B=2]"]) {
            _ = try Linear(backend: b, inputSize: 4, outputSize: 2, seed: 1).forward(ids, training: true)
        }
        assertThrows(["Linear expects rows [N, 4]", "got rows [N=2, F=2]"]) {
            _ = try Linear(backend: b, inputSize: 4, outputSize: 2, seed: 1).forward(rows, training: true)
        }
        assertThrows(["LSTM expects a sequence [T, B, 2], got rows [N=2, F=2]"]) {
            _ = try LSTMLayer(LSTMConfiguration(inputSize: 2, hiddenSize: 3), backend: b, seed: 1)
                .forward(rows, training: true)
        }
        assertThrows(["Embedding expects token ids [T, B], got rows [N=2, F=2]"]) {
            _ = try Embedding(backend: b, vocabularySize: 9, dimension: 2, seed: 1).forward(rows, training: true)
        }
        assertThrows(["Embedding: token id 6 at t = 2, b = 1 is outside 0..<6 (V = 6)"]) {
            _ = try Embedding(backend: b, vocabularySize: 6, dimension: 2, seed: 1).forward(ids, training: true)
        }
        assertThrows(["SequencePooling(mean) expects a sequence", "got token ids"]) {
            _ = try SequencePooling(backend: b, mode: .mean).forward(ids, training: true)
        }
        assertThrows(["Dropout expects a sequence [T, B, F] or rows [N, F], got token ids"]) {
            _ = try Dropout(backend: b, probability: 0.1, seed: 1).forward(ids, training: true)
        }
        assertThrows(["CrossEntropyLoss: target 3 is outside 0..<2"]) {
            _ = try CrossEntropyLoss(backend: b)(rows, targets: [0, 3])
        }
        assertThrows(["token ids", "[3, 2]"]) { _ = try LayerValue.tokens(ids: [1], steps: 3, batch: 2, on: b) }
        assertThrows(["batchFirst"]) {
            _ = try LSTMLayer(LSTMConfiguration(inputSize: 2, hiddenSize: 3, batchFirst: true), backend: b, seed: 1)
        }
    }

    func testBackwardWithoutATrainingForwardIsRefused() throws {
        let b = CPUBackend()
        let model = try classifier(b)
        let gradient = try b.makeBuffer(count: 6)
        assertThrows(["Linear.backward needs a forward with training: true first"]) { try model.backward(gradient) }
        let x = try LayerValue.tokens(ids: Array(0..<6), steps: 3, batch: 2, on: b)
        _ = try model.forward(x, training: true)
        try model.backward(gradient)
        // An inference forward drops what the training one kept.
        _ = try model.forward(x, training: false)
        assertThrows(["Linear.backward needs a forward with training: true first"]) { try model.backward(gradient) }
        for layer in model.layers.dropLast() {
            assertThrows(["backward needs a forward with training: true first"]) { _ = try layer.backward(gradient) }
        }
        assertThrows(["one layer twice"]) {
            let linear = try Linear(backend: b, inputSize: 2, outputSize: 2, seed: 1)
            _ = try Sequential<CPUBackend>([linear, linear])
        }
    }

    func testMetrics() throws {
        let b = CPUBackend()
        // Rows: argmax 1, 0, 2 (a tie goes to the first), targets 1, 2, 2 → 2/3.
        let logits = try LayerValue.rows(values: [0, 3, 1, 5, 5, 1, 0, 0, 9], count: 3, features: 3, on: b)
        XCTAssertEqual(try Metrics.accuracy(logits, targets: [1, 2, 2], backend: b), 2 / 3, accuracy: 1e-6)
        XCTAssertEqual(try Metrics.accuracy(logits, targets: [1, -100, 2], backend: b), 1)
        // A sequence [T=2, B=2, C=2] with lengths [2, 1]: the padded step (t=1, b=1) is not counted.
        let steps = try LayerValue.sequence(
            values: [1, 0, 0, 1, 1, 0, 0, 1], steps: 2, batch: 2, features: 2, lengths: [2, 1], on: b)
        XCTAssertEqual(try Metrics.accuracy(steps, targets: [0, 1, 1, 0], backend: b), 2 / 3, accuracy: 1e-6)
        let binary = try LayerValue.rows(values: [2, -1, 0.5, -3], count: 4, features: 1, on: b)
        XCTAssertEqual(try Metrics.accuracy(binary, targets: [1, 0, 0, 0], backend: b), 0.75)
        XCTAssertEqual(Metrics.perplexity(crossEntropy: Float(log(7.0))), 7, accuracy: 1e-4)
        let prediction = try LayerValue.rows(values: [1, 2, 3, 4], count: 2, features: 2, on: b)
        XCTAssertEqual(try Metrics.meanAbsoluteError(prediction, targets: [0, 2, 5, 4], backend: b), 0.75)
        assertThrows(["padded steps"]) {
            _ = try Metrics.meanAbsoluteError(steps, targets: Array(repeating: 0, count: 8), backend: b)
        }
    }
}
