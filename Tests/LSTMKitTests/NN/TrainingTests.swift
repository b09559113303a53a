import Foundation
import XCTest

@testable import LSTMCPU
@testable import LSTMCore
@testable import LSTMData
@testable import LSTMKit
@testable import LSTMNN
@testable import LSTMOpenCL
@testable import LSTMReference

/// Optimisers against PyTorch's, training on both backends, checkpoints and resume.
final class OptimizerTests: XCTestCase {
    func check<Backend: ModelOps>(_ backend: Backend, label: String) throws {
        let file = try SafeTensorsFile(contentsOf: fixtureFolder + "/training/optimizers.safetensors")
        let cases = try JSONSerialization.jsonObject(with: Data(file.metadata["cases"]!.utf8)) as! [[Any]]
        let p0 = try file.floatTensor("p0")
        XCTAssertEqual(cases.count, 6)
        for entry in cases {
            let name = entry[0] as! String, args = entry[1] as! [String: Any]
            func number(_ key: String, _ fallback: Float) -> Float { (args[key] as? NSNumber)?.floatValue ?? fallback }
            let betas = (args["betas"] as? [NSNumber])?.map(\.floatValue) ?? [0.9, 0.999]
            let kind: OptimizerKind =
                switch name.split(separator: "-")[0] {
                case "sgd":
                    .sgd(
                        momentum: number("momentum", 0), nesterov: args["nesterov"] as? Bool ?? false,
                        weightDecay: number("weight_decay", 0))
                case "adamw":
                    .adamW(
                        beta1: betas[0], beta2: betas[1], epsilon: number("eps", 1e-8),
                        weightDecay: number("weight_decay", 0.01))
                default:
                    .adam(
                        beta1: betas[0], beta2: betas[1], epsilon: number("eps", 1e-8),
                        weightDecay: number("weight_decay", 0))
                }
            let optimizer = Optimizer(backend: backend, kind: kind)
            let value = try backend.makeBuffer(count: p0.count)
            try backend.write(p0.scalars, to: value, offset: 0)
            let parameter = Parameter(name: "p", shape: p0.shape, value: value)
            for step in 0..<5 {
                let gradient = try backend.makeBuffer(count: p0.count)
                try backend.write(try file.floatTensor("grad\(step)").scalars, to: gradient, offset: 0)
                parameter.gradient = gradient
                try optimizer.update([parameter], learningRate: number("lr", 0.1))
                let ours = try Tensor(shape: p0.shape, scalars: backend.read(value, offset: 0, count: p0.count))
                assertClose(
                    ours, try file.floatTensor("\(name).step\(step)"), "\(label) \(name) step \(step + 1)",
                    tolerance: Tolerance(absolute: 1e-6, relative: 1e-5))
            }
        }
        // Clipping by global norm over two tensors.
        for limit in [1, 100] {
            let a = try file.floatTensor("clip.a"), b = try file.floatTensor("clip.b")
            let pa = Parameter(name: "a", shape: a.shape, value: try backend.makeBuffer(count: a.count))
            let pb = Parameter(name: "b", shape: b.shape, value: try backend.makeBuffer(count: b.count))
            pa.gradient = try backend.makeBuffer(count: a.count)
            pb.gradient = try backend.makeBuffer(count: b.count)
            try backend.write(a.scalars, to: pa.gradient!, offset: 0)
            try backend.write(b.scalars, to: pb.gradient!, offset: 0)
            try Optimizer(backend: backend, kind: .sgd()).clipGradients([pa, pb], maxNorm: Float(limit))
            assertClose(
                try Tensor(shape: a.shape, scalars: backend.read(pa.gradient!, offset: 0, count: a.count)),
                try file.floatTensor("clip\(limit).a"), "\(label) clip \(limit) a",
                tolerance: Tolerance(absolute: 1e-6, relative: 1e-5))
            assertClose(
                try Tensor(shape: b.shape, scalars: backend.read(pb.gradient!, offset: 0, count: b.count)),
                try file.floatTensor("clip\(limit).b"), "\(label) clip \(limit) b",
                tolerance: Tolerance(absolute: 1e-6, relative: 1e-5))
        }
    }

    func testOptimizersMatchPyTorchOnTheCPU() throws { try check(CPUBackend(), label: "cpu") }
    func testOptimizersMatchPyTorchOnOpenCL() throws { try check(requireOpenCL(), label: "opencl") }

    func testSchedules() {
        XCTAssertEqual(LearningRateSchedule.constant.rate(base: 0.1, step: 50, warmup: 0), 0.1)
        XCTAssertEqual(LearningRateSchedule.constant.rate(base: 0.1, step: 5, warmup: 10), 0.05, accuracy: 1e-7)
        XCTAssertEqual(LearningRateSchedule.step(every: 10, gamma: 0.5).rate(base: 1, step: 21, warmup: 0), 0.25)
        let cosine = LearningRateSchedule.cosine(totalSteps: 110, minimum: 0.01)
        XCTAssertEqual(cosine.rate(base: 1, step: 10, warmup: 10), 1)
        XCTAssertEqual(cosine.rate(base: 1, step: 60, warmup: 10), 0.505, accuracy: 1e-5)
        XCTAssertEqual(cosine.rate(base: 1, step: 110, warmup: 10), 0.01, accuracy: 1e-6)
    }
}

final class LanguageModelTrainingTests: XCTestCase {
    let text = String(
        repeating: "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n", count: 12)

    func makeTrainer<Backend: ModelOps>(
        _ backend: Backend, dropout: Float = 0.2, layers: Int = 2,
        batch: Int = 4, projection: Int = 0, cell: LSTMCellOptions = LSTMCellOptions()
    ) throws -> LanguageModelTrainer<Backend> {
        let vocabulary = Vocabulary(text: text)
        let model = try LanguageModel(
            LanguageModelConfiguration(
                vocabularySize: vocabulary.count, embeddingSize: 8, hiddenSize: 24,
                numLayers: layers, dropout: dropout, projectionSize: projection, cell: cell),
            backend: backend, seed: 7)
        var options = TrainingOptions()
        options.batch = batch
        options.sequenceLength = 12
        options.learningRate = 1e-2
        options.clipNorm = 1
        return try LanguageModelTrainer(
            model: model, vocabulary: vocabulary, ids: try vocabulary.encode(text), options: options)
    }

    func testLossFallsOnTheCPU() throws {
        let trainer = try makeTrainer(CPUBackend())
        let first = try trainer.evaluate()
        var losses: [Float] = []
        for _ in 0..<60 { losses.append(try trainer.trainStep().loss) }
        let last = try trainer.evaluate()
        print("held-out loss \(first) -> \(last); train loss \(losses.first!) -> \(losses.last!)")
        XCTAssertLessThan(last, first - 0.3)
        XCTAssertLessThan(losses.suffix(10).reduce(0, +) / 10, losses.prefix(10).reduce(0, +) / 10 - 0.5)
        // Chunks of an epoch come in order; a new epoch starts after the last one.
        XCTAssertEqual(trainer.epoch, (60 - 1) / trainer.data.chunksPerEpoch)
        XCTAssertEqual(trainer.chunk, (60 - 1) % trainer.data.chunksPerEpoch + 1)
    }

    /// Same seed, same data: OpenCL's losses follow the CPU path's (dropout masks included).
    func testOpenCLTrainsLikeTheCPUPath() throws {
        let gpu = try makeTrainer(requireOpenCL())
        let cpu = try makeTrainer(CPUBackend())
        var worst: Float = 0
        for step in 1...20 {
            let a = try cpu.trainStep().loss, b = try gpu.trainStep().loss
            worst = max(worst, abs(a - b) / abs(a))
            XCTAssertLessThan(abs(a - b) / abs(a), 1e-3, "step \(step): cpu \(a), opencl \(b)")
        }
        print("first 20 losses: max relative difference OpenCL vs CPU \(worst)")
    }

    /// Every cell option trains: the loss falls over 40 steps on the CPU path, and OpenCL's
    /// losses follow the CPU path's step for step (same seed, data and dropout masks).
    func testEveryCellOptionTrainsAndOpenCLFollowsTheCPUPath() throws {
        let gpuBackend = try requireOpenCL()
        let options: [(String, LSTMCellOptions, Int)] = [
            ("peepholes", LSTMCellOptions(peepholes: true), 0), ("CIFG", LSTMCellOptions(coupledInputForget: true), 0),
            ("layer norm", LSTMCellOptions(layerNorm: true), 0),
            ("activation clip", LSTMCellOptions(activationClip: 1), 0),
            ("cell clip", LSTMCellOptions(cellClip: 0.5), 0),
            ("projection clip", LSTMCellOptions(projectionClip: 0.5), 7),
        ]
        for (name, cell, projection) in options {
            let cpu = try makeTrainer(CPUBackend(), projection: projection, cell: cell)
            let gpu = try makeTrainer(gpuBackend, projection: projection, cell: cell)
            var losses: [Float] = [], worst: Float = 0
            for step in 1...40 {
                let a = try cpu.trainStep().loss, b = try gpu.trainStep().loss
                losses.append(a)
                worst = max(worst, abs(a - b) / abs(a))
                XCTAssertLessThan(abs(a - b) / abs(a), 1e-3, "\(name), step \(step): cpu \(a), opencl \(b)")
            }
            let (first, last) = (losses.prefix(5).reduce(0, +) / 5, losses.suffix(5).reduce(0, +) / 5)
            print("\(name): train loss \(first) -> \(last); OpenCL vs CPU max relative difference \(worst)")
            XCTAssertLessThan(last, first - 0.3, name)
        }
    }

    /// An LSTMP language model (proj_size P: the head and the carried h are P wide) learns on
    /// the CPU path, OpenCL follows it, and a checkpoint resumes it exactly.
    func testProjectedModelTrainsOnBothBackendsAndResumes() throws {
        let cpu = try makeTrainer(CPUBackend(), projection: 7)
        XCTAssertEqual(cpu.model.head.inputSize, 7)
        let first = try cpu.evaluate()
        var losses: [Float] = []
        for _ in 0..<40 { losses.append(try cpu.trainStep().loss) }
        let last = try cpu.evaluate()
        print("LSTMP held-out loss \(first) -> \(last)")
        XCTAssertLessThan(last, first - 0.3)
        if let gpu = try? makeTrainer(requireOpenCL(), projection: 7) {
            let reference = try makeTrainer(CPUBackend(), projection: 7)
            for step in 1...8 {
                let a = try reference.trainStep().loss, b = try gpu.trainStep().loss
                XCTAssertLessThan(abs(a - b) / abs(a), 1e-3, "step \(step): cpu \(a), opencl \(b)")
            }
        }
        let folder = try temporaryFolder()
        try cpu.saveCheckpoint(to: folder + "/lstmp.safetensors")
        let file = try SafeTensorsFile(contentsOf: folder + "/lstmp.safetensors")
        XCTAssertEqual(file.entries["train.state.hidden"]?.shape, [2, 4, 7])
        XCTAssertEqual(file.entries["train.state.cell"]?.shape, [2, 4, 24])
        let resumed = try makeTrainer(CPUBackend(), projection: 7)
        try resumed.resume(from: folder + "/lstmp.safetensors")
        XCTAssertEqual(try resumed.trainStep().loss, try cpu.trainStep().loss)
        XCTAssertThrowsError(try makeTrainer(CPUBackend()).resume(from: folder + "/lstmp.safetensors")) { error in
            XCTAssertTrue("\(error)".contains("projected to 7"), "\(error)")
        }
    }

    /// A run stopped at a checkpoint and resumed gives bitwise the same losses and weights.
    func testResumeContinuesExactly() throws {
        let folder = try temporaryFolder()
        let straight = try makeTrainer(CPUBackend())
        var expected: [Float] = []
        for _ in 0..<10 { expected.append(try straight.trainStep().loss) }

        let first = try makeTrainer(CPUBackend())
        var losses: [Float] = []
        for _ in 0..<4 { losses.append(try first.trainStep().loss) }
        try first.saveCheckpoint(to: folder + "/run.safetensors")
        let second = try makeTrainer(CPUBackend())
        try second.resume(from: folder + "/run.safetensors")
        XCTAssertEqual(second.step, 4)
        for _ in 0..<6 { losses.append(try second.trainStep().loss) }
        XCTAssertEqual(losses, expected)
        XCTAssertEqual(try second.model.parameterTensors(), try straight.model.parameterTensors())
    }

    func testResumeRefusesAnotherConfiguration() throws {
        let folder = try temporaryFolder()
        let trainer = try makeTrainer(CPUBackend())
        try trainer.trainStep()
        try trainer.saveCheckpoint(to: folder + "/run.safetensors")
        XCTAssertThrowsError(try makeTrainer(CPUBackend(), batch: 3).resume(from: folder + "/run.safetensors")) {
            error in
            XCTAssertTrue("\(error)".contains("batch 4"), "\(error)")
        }
        XCTAssertThrowsError(try makeTrainer(CPUBackend(), layers: 1).resume(from: folder + "/run.safetensors")) {
            error in
            XCTAssertTrue("\(error)".contains("holds a model"), "\(error)")
        }
    }

    func testDivergenceStopsWithoutUpdating() throws {
        let trainer = try makeTrainer(CPUBackend())
        try trainer.trainStep()
        // Poison one weight: the next loss is NaN, and the step must not update anything.
        let head = trainer.model.head.weight
        var values = try trainer.model.backend.read(head.value, offset: 0, count: head.count)
        values[0] = .nan
        try trainer.model.backend.write(values, to: head.value, offset: 0)
        let before = try trainer.model.parameterTensors()
        XCTAssertThrowsError(try trainer.trainStep()) { error in
            guard case TrainingError.diverged(let step, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(step, 2)
            XCTAssertTrue("\(error)".contains("last checkpoint on disk is intact"))
        }
        let after = try trainer.model.parameterTensors()
        for (name, tensor) in before where name != "head.weight" { XCTAssertEqual(tensor, after[name], name) }
        XCTAssertEqual(trainer.step, 1)
    }

    /// Dropout masks come from a counter-based hash: the same on both backends.
    func testDropoutMasksAgreeAcrossBackends() throws {
        let gpu = try requireOpenCL()
        let cpu = CPUBackend()
        let a = try cpu.makeBuffer(count: 1000), b = try gpu.makeBuffer(count: 1000)
        try cpu.dropoutMask(
            count: 1000, probability: 0.3, seed: 0x1234_5678_9ABC, layout: .whole(batch: 10, width: 20), into: a)
        try gpu.dropoutMask(
            count: 1000, probability: 0.3, seed: 0x1234_5678_9ABC, layout: .whole(batch: 10, width: 20), into: b)
        let ma = try cpu.read(a, offset: 0, count: 1000), mb = try gpu.read(b, offset: 0, count: 1000)
        XCTAssertEqual(ma, mb)
        let kept = ma.filter { $0 > 0 }.count
        XCTAssertTrue((600...800).contains(kept), "kept \(kept) of 1000 at p = 0.3")
        XCTAssertTrue(ma.allSatisfy { $0 == 0 || abs($0 - 1 / 0.7) < 1e-6 })
        // A slice of a global batch whose element indices pass 2^32: both wrap the same way.
        let huge = DropoutLayout(localBatch: 2, globalBatch: 1 << 30, offset: (1 << 30) - 2, width: 4)
        let c = try cpu.makeBuffer(count: 24), d = try gpu.makeBuffer(count: 24)
        try cpu.dropoutMask(count: 24, probability: 0.5, seed: 77, layout: huge, into: c)
        try gpu.dropoutMask(count: 24, probability: 0.5, seed: 77, layout: huge, into: d)
        XCTAssertGreaterThan(huge.globalIndex(23), Int(UInt32.max), "the test reaches past 32 bits")
        XCTAssertEqual(try cpu.read(c, offset: 0, count: 24), try gpu.read(d, offset: 0, count: 24))
    }
}

/// Finite differences through the whole language model: embedding gather/scatter, LSTM,
/// linear head and softmax cross-entropy (with an ignored target).
final class LanguageModelGradientTests: XCTestCase {
    func testModelGradientsMatchFiniteDifferences() throws {
        try checkFiniteDifferences(projection: 0)
        try checkFiniteDifferences(projection: 2)
    }

    func checkFiniteDifferences(projection: Int) throws {
        let backend = CPUBackend()
        let model = try LanguageModel(
            LanguageModelConfiguration(
                vocabularySize: 7, embeddingSize: 3, hiddenSize: 5, numLayers: 2,
                projectionSize: projection),
            backend: backend, seed: 3)
        let inputs = [1, 4, 6, 0, 2, 2, 5, 3], targets = [4, 6, -1, 2, 2, 5, 3, 1]  // T = 4, B = 2
        let (_, _) = try model.forwardBackward(
            inputs: backend.makeIndices(inputs), targets: backend.makeIndices(targets),
            sequenceLength: 4, batch: 2, state: nil, dropoutSeed: nil)
        func loss() throws -> Double {
            let (buffer, _) = try model.loss(
                inputs: backend.makeIndices(inputs), targets: backend.makeIndices(targets),
                sequenceLength: 4, batch: 2, state: nil)
            return Double(try backend.read(buffer, offset: 0, count: 1)[0])
        }
        let probes = try model.parameters.map {
            GradientProbe(name: $0.name, value: $0.value, count: $0.count, analytic: try XCTUnwrap($0.gradient))
        }
        // Embedding rows of unused ids have zero gradients, so some samples may all be 0.
        try LSTMKitTests.checkFiniteDifferences(
            backend, "language model P=\(projection)", probes: probes, samples: 5, expectNonZero: false, loss: loss)
    }
}

/// The losses on both backends: stable for large logits, padding ignored, MSE.
final class LossTests: XCTestCase {
    func check<Backend: ModelOps>(_ backend: Backend, label: String) throws {
        // Cross-entropy: 3 rows of 4 classes, one with huge logits, one ignored (-1).
        let logits: [Float] = [1, 2, 3, 4, 1e4, -1e4, 0, 5e3, 0.5, 0.5, 0.5, 0.5]
        let targets = [3, 0, -1]
        let x = try backend.makeBuffer(count: 12), g = try backend.makeBuffer(count: 12),
            loss = try backend.makeBuffer(count: 1)
        try backend.write(logits, to: x, offset: 0)
        try backend.softmaxCrossEntropy(
            logits: x, rows: 3, classes: 4, targets: backend.makeIndices(targets), ignoreIndex: -1,
            gradient: g, loss: loss, lossSlot: 0)
        // Reference in Double: mean over the 2 counted rows.
        func row(_ r: [Double], _ t: Int) -> (Double, [Double]) {
            let m = r.max()!, e = r.map { Foundation.exp($0 - m) }, s = e.reduce(0, +)
            return (Foundation.log(s) + m - r[t], e.enumerated().map { $0.element / s - ($0.offset == t ? 1 : 0) })
        }
        let (l0, g0) = row([1, 2, 3, 4], 3), (l1, g1) = row([1e4, -1e4, 0, 5e3], 0)
        let expectedLoss = (l0 + l1) / 2
        let ours = try backend.read(loss, offset: 0, count: 1)[0], gradient = try backend.read(g, offset: 0, count: 12)
        XCTAssertTrue(ours.isFinite, label)
        XCTAssertEqual(Double(ours), expectedLoss, accuracy: 1e-5, label)
        for (i, v) in (g0 + g1).enumerated() {
            XCTAssertEqual(Double(gradient[i]), v / 2, accuracy: 1e-6, "\(label) gradient \(i)")
        }
        XCTAssertEqual(Array(gradient[8...]), [0, 0, 0, 0], "\(label): the ignored row has no gradient")

        // MSE over 5 values.
        let p = try backend.makeBuffer(count: 5), t = try backend.makeBuffer(count: 5),
            d = try backend.makeBuffer(count: 5)
        try backend.write([1, 2, 3, 4, 5], to: p, offset: 0)
        try backend.write([1, 0, 3, 8, 2], to: t, offset: 0)
        try backend.meanSquaredError(prediction: p, target: t, count: 5, gradient: d, loss: loss, lossSlot: 0)
        XCTAssertEqual(try backend.read(loss, offset: 0, count: 1)[0], (0 + 4 + 0 + 16 + 9) / 5, accuracy: 1e-6, label)
        for (i, v) in try backend.read(d, offset: 0, count: 5).enumerated() {
            XCTAssertEqual(v, [0, 0.8, 0, -1.6, 1.2][i], accuracy: 1e-6, "\(label) MSE gradient \(i)")  // 2(p − t)/n
        }
    }

    func testLossesOnTheCPU() throws { try check(CPUBackend(), label: "cpu") }
    func testLossesOnOpenCL() throws { try check(requireOpenCL(), label: "opencl") }

    /// Cross-entropy over wide rows (300 classes: OpenCL's work-group-per-row kernel), with a
    /// huge logit, an ignored row and a target in the last column, against float64.
    func checkWide<Backend: ModelOps>(_ backend: Backend, label: String) throws {
        let (rows, classes) = (4, 300)
        var generator = SeededGenerator(seed: 3)
        var logits = (0..<(rows * classes)).map { _ in Float.random(in: -4...4, using: &generator) }
        logits[classes + 17] = 1e4
        logits[classes + 250] = 9e3
        let targets = [5, 250, -1, classes - 1]
        let x = try backend.makeBuffer(count: logits.count), g = try backend.makeBuffer(count: logits.count)
        let loss = try backend.makeBuffer(count: 1)
        try backend.write(logits, to: x, offset: 0)
        try backend.softmaxCrossEntropy(
            logits: x, rows: rows, classes: classes, targets: backend.makeIndices(targets), ignoreIndex: -1,
            gradient: g, loss: loss, lossSlot: 0)
        let gradient = try backend.read(g, offset: 0, count: logits.count)
        var total = 0.0
        for r in 0..<rows {
            let row = logits[(r * classes)..<((r + 1) * classes)].map(Double.init)
            guard targets[r] >= 0 else {
                XCTAssertTrue(gradient[(r * classes)..<((r + 1) * classes)].allSatisfy { $0 == 0 }, label)
                continue
            }
            let top = row.max()!, e = row.map { Foundation.exp($0 - top) }, sum = e.reduce(0, +)
            total += Foundation.log(sum) + top - row[targets[r]]
            for j in 0..<classes {
                let expected = (e[j] / sum - (j == targets[r] ? 1 : 0)) / 3
                XCTAssertEqual(Double(gradient[r * classes + j]), expected, accuracy: 1e-6, "\(label) [\(r), \(j)]")
            }
        }
        XCTAssertEqual(Double(try backend.read(loss, offset: 0, count: 1)[0]), total / 3, accuracy: 1e-4, label)
    }

    func testWideRowsOnTheCPU() throws { try checkWide(CPUBackend(), label: "cpu") }
    func testWideRowsOnOpenCL() throws { try checkWide(requireOpenCL(), label: "opencl") }

    /// A slice of the batch draws the same dropout mask as that slice of the whole batch.
    func testDropoutMaskOfASliceIsTheSliceOfTheMask() throws {
        let backend = CPUBackend()
        let whole = try backend.makeBuffer(count: 3 * 6 * 4), part = try backend.makeBuffer(count: 3 * 2 * 4)
        try backend.dropoutMask(count: 72, probability: 0.5, seed: 9, layout: .whole(batch: 6, width: 4), into: whole)
        try backend.dropoutMask(
            count: 24, probability: 0.5, seed: 9,
            layout: DropoutLayout(localBatch: 2, globalBatch: 6, offset: 3, width: 4), into: part)
        let w = try backend.read(whole, offset: 0, count: 72), p = try backend.read(part, offset: 0, count: 24)
        for t in 0..<3 {
            for b in 0..<2 {
                for j in 0..<4 {
                    XCTAssertEqual(p[(t * 2 + b) * 4 + j], w[(t * 6 + 3 + b) * 4 + j])
                }
            }
        }
    }
}
