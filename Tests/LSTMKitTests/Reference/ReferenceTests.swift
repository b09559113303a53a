import Foundation
import XCTest

@testable import LSTMCPU
@testable import LSTMCore
@testable import LSTMData
@testable import LSTMKit
@testable import LSTMNN
@testable import LSTMOpenCL
@testable import LSTMReference

/// The `Reference` model (the plain-loop oracle) against PyTorch and against finite
/// differences, and every fast path against it, element by element: the CPU backend with the
/// kernel body CPUID picks, the CPU backend with the portable bodies forced, and OpenCL.
///
/// Shape letters: T steps, B batch, I input, H hidden, P projection, L layers, D directions.
final class ReferenceTests: XCTestCase {
    // MARK: - against PyTorch

    func testEveryFixturePassesOnTheReference() throws {
        let paths = try fixturePaths()
        XCTAssertGreaterThanOrEqual(paths.count, 15)
        var worst: Float = 0
        for path in paths {
            let rows = try Fixture(contentsOf: path).check(backend: .reference)
            let diff = rows.map(\.maxAbsolute).max() ?? .nan
            worst = max(worst, diff)
            print("\(URL(fileURLWithPath: path).lastPathComponent) [reference]: max abs diff \(diff)")
            for row in rows where !row.passed {
                XCTFail(
                    "\(path): \(row.name) fails on the reference: \(row.failures) of \(row.count) elements, max "
                        + "abs \(row.maxAbsolute)"
                )
            }
        }
        print("reference vs PyTorch over \(paths.count) fixtures: max abs diff \(worst)")
    }

    // MARK: - every fast path against the reference

    typealias Case = ParityCase

    /// Every combination of layers (1–3), directions and projection, each with a rotating
    /// choice of batch-first, bias, lengths (unsorted, holding 0 and T) and given states, odd
    /// sizes drawn per case; then the edges: T = 1, B = 1 (also of length 0), H = 40 (five
    /// full 8-unit blocks of the AVX2 body) and 45 (plus a partial block), a batch and a
    /// projection wider than the micro-kernel's 6 rows and 16-column panels, and dropout
    /// between layers (the masks must be the same on every engine).
    static var cases: [Case] {
        var generator = SeededGenerator(seed: 77)
        func draw(_ range: ClosedRange<Int>) -> Int { range.lowerBound + Int(generator.next() % UInt64(range.count)) }
        /// B lengths in 0...T with at least one 0 and one T (B ≥ 2), in no particular order.
        func lengths(sequenceLength steps: Int, batch: Int) -> [Int] {
            var values = (0..<batch).map { _ in draw(0...steps) }
            if batch >= 2 { values[batch - 1] = 0; values[batch / 2 - 1] = steps }
            return values
        }
        var cases: [Case] = []
        var variant = 0
        for layers in 1...3 {
            for bidirectional in [false, true] {
                for projects in [false, true] {
                    for _ in 0..<3 {
                        let (batchFirst, bias, useLengths, givenState) = (
                            variant % 2 == 1, variant % 3 != 2, variant % 3 != 0, variant % 4 != 3
                        )
                        variant += 1
                        let hidden = draw(2...19), steps = draw(2...6), batch = draw(2...5)
                        let config = LSTMConfiguration(
                            inputSize: draw(1...13), hiddenSize: hidden, numLayers: layers, bias: bias,
                            batchFirst: batchFirst, bidirectional: bidirectional,
                            projectionSize: projects ? draw(1...(hidden - 1)) : 0)
                        cases.append(
                            Case(
                                configuration: config, sequenceLength: steps, batch: batch,
                                lengths: useLengths ? lengths(sequenceLength: steps, batch: batch) : nil,
                                givenState: givenState)
                        )
                    }
                }
            }
        }
        cases += [
            Case(
                configuration: .init(inputSize: 5, hiddenSize: 6), sequenceLength: 1, batch: 3, lengths: [1, 0, 1],
                givenState: true),
            Case(
                configuration: .init(inputSize: 7, hiddenSize: 9, numLayers: 2, bidirectional: true), sequenceLength: 1,
                batch: 1,
                lengths: nil, givenState: true),
            Case(
                configuration: .init(inputSize: 4, hiddenSize: 5, bidirectional: true, projectionSize: 3),
                sequenceLength: 4,
                batch: 1,
                lengths: [0], givenState: true),
            Case(
                configuration: .init(inputSize: 6, hiddenSize: 8, batchFirst: true), sequenceLength: 5, batch: 1,
                lengths: [3],
                givenState: false),
            Case(
                configuration: .init(inputSize: 11, hiddenSize: 40), sequenceLength: 5, batch: 4, lengths: nil,
                givenState: true),
            Case(
                configuration: .init(inputSize: 9, hiddenSize: 40, numLayers: 2, bidirectional: true),
                sequenceLength: 4,
                batch: 3,
                lengths: [2, 4, 0], givenState: true),
            Case(
                configuration: .init(inputSize: 10, hiddenSize: 45, bias: false, projectionSize: 17), sequenceLength: 4,
                batch: 5,
                lengths: [4, 1, 3, 0, 2], givenState: true),
            Case(
                configuration: .init(inputSize: 23, hiddenSize: 45, batchFirst: true, bidirectional: true),
                sequenceLength: 3,
                batch: 13, lengths: (0..<13).map { $0 % 4 }, givenState: true),
            Case(
                configuration: .init(
                    inputSize: 6, hiddenSize: 10, numLayers: 3, bidirectional: true, projectionSize: 4,
                    dropout: 0.4), sequenceLength: 4, batch: 3, lengths: [4, 0, 2], givenState: true),
            Case(
                configuration: .init(inputSize: 5, hiddenSize: 12, numLayers: 2, batchFirst: true, dropout: 0.25),
                sequenceLength: 5, batch: 4, lengths: nil, givenState: false),
        ]
        return cases
    }

    /// One engine's forward and backward on a case (training, a fixed dropout seed).
    struct Run {
        var output: LSTMOutput
        var gradients: LSTMGradients
    }

    func run(_ c: Case, index: Int, backend: BackendKind, device: String? = nil) throws -> Run {
        let config = c.configuration
        let lstm = try LSTM(
            config, weights: LSTM.initialWeights(config, seed: UInt64(index)), backend: backend, device: device)
        let states = config.numLayers * config.numDirections
        let x = randomTensor(
            config.batchFirst
                ? [c.batch, c.sequenceLength, config.inputSize] : [c.sequenceLength, c.batch, config.inputSize],
            seed: UInt64(1000 + index))
        let h0 = c.givenState ? randomTensor([states, c.batch, config.outputSize], seed: UInt64(2000 + index)) : nil
        let c0 = c.givenState ? randomTensor([states, c.batch, config.hiddenSize], seed: UInt64(3000 + index)) : nil
        let result = try lstm.forward(
            x, h0: h0, c0: c0, lengths: c.lengths, training: true, dropoutSeed: UInt64(7000 + index))
        let dy = randomTensor(result.output.shape, seed: UInt64(4000 + index))
        let dhn = index % 4 == 1 ? nil : randomTensor(result.hn.shape, seed: UInt64(5000 + index))
        let dcn = index % 3 == 0 ? nil : randomTensor(result.cn.shape, seed: UInt64(6000 + index))
        let gradients = try lstm.backward(result, outputGradient: dy, hnGradient: dhn, cnGradient: dcn)
        return Run(output: result, gradients: gradients)
    }

    /// Compares every output and gradient of `fast` with the reference's; returns the worst
    /// max abs diff of the outputs and of the gradients.
    func compareWithReference(_ fast: Run, _ reference: Run, label: String, case c: Case, index: Int) -> (Float, Float)
    {
        var pairs: [(String, Tensor, Tensor, Tolerance)] = [
            ("output", fast.output.output, reference.output.output, .outputs),
            ("hn", fast.output.hn, reference.output.hn, .outputs),
            ("cn", fast.output.cn, reference.output.cn, .outputs),
            ("grad_input", fast.gradients.input, reference.gradients.input, .gradients),
            ("grad_h0", fast.gradients.h0, reference.gradients.h0, .gradients),
            ("grad_c0", fast.gradients.c0, reference.gradients.c0, .gradients),
        ]
        XCTAssertEqual(
            Set(fast.gradients.weights.keys), Set(reference.gradients.weights.keys),
            "\(label) case \(index): weight names")
        for name in reference.gradients.weights.keys.sorted() {
            guard let mine = fast.gradients.weights[name] else { continue }
            pairs.append(("grad." + name, mine, reference.gradients.weights[name]!, .gradients))
        }
        var worstOutput: Float = 0, worstGradient: Float = 0
        for (name, ours, expected, tolerance) in pairs {
            let row = compare(name, ours: ours, reference: expected, tolerance: tolerance)
            if name.hasPrefix("grad") {
                worstGradient = max(worstGradient, row.maxAbsolute)
            } else {
                worstOutput = max(worstOutput, row.maxAbsolute)
            }
            XCTAssertTrue(
                row.passed,
                "\(label) case \(index) (\(c)): \(name) differs from the reference: "
                    + "\(row.failures) of \(row.count) elements, max abs \(row.maxAbsolute)")
        }
        return (worstOutput, worstGradient)
    }

    func testEveryFastPathMatchesTheReferenceOnRandomisedConfigurations() throws {
        let cases = Self.cases
        XCTAssertGreaterThanOrEqual(cases.count, 40)
        var start = Date()
        let references = try cases.enumerated().map { index, c in try run(c, index: index, backend: .reference) }
        print("reference: \(cases.count) configurations in \(fixed(Date().timeIntervalSince(start))) s")
        func check(_ label: String, _ body: (Int, Case) throws -> Run) rethrows {
            start = Date()
            var worstOutput: Float = 0, worstGradient: Float = 0
            for (index, c) in cases.enumerated() {
                let (output, gradient) = compareWithReference(
                    try body(index, c), references[index], label: label, case: c, index: index)
                worstOutput = max(worstOutput, output)
                worstGradient = max(worstGradient, gradient)
            }
            print(
                "\(label) vs reference over \(cases.count) configurations: max abs diff outputs \(worstOutput), "
                    + "gradients \(worstGradient)"
                    + " (\(fixed(Date().timeIntervalSince(start))) s)")
        }
        // Every kernel variant this CPU supports, each compared with the reference.
        let chosen = CPUKernelVariant.current
        for variant in CPUKernelVariant.supported {
            try CPUKernelVariant.withVariant(variant) {
                XCTAssertEqual(CPUKernelVariant.current, variant, "forcing \(variant.name) did not take")
                try check("cpu/\(variant.name)") { index, c in try run(c, index: index, backend: .cpu) }
            }
        }
        XCTAssertEqual(CPUKernelVariant.current, chosen, "the chosen variant was not restored")
        let backend = try requireOpenCL()
        try check("opencl") { index, c in try run(c, index: index, backend: .opencl, device: "\(backend.device.index)")
        }
    }

    func fixed(_ seconds: TimeInterval) -> String { String(format: "%.1f", seconds) }

    // MARK: - against finite differences

    /// The reference's backward against central differences of its own forward, for every
    /// element of the input, h0, c0 and each weight of a small model with every feature
    /// (2 layers, both directions, projection, unsorted lengths with 0 and T, batch-first,
    /// dropout with a fixed seed so the masks stay put). The reference computes in Double, so
    /// only the float32 rounding of the stored results limits the agreement.
    func testReferenceBackwardMatchesFiniteDifferences() throws {
        let config = LSTMConfiguration(
            inputSize: 3, hiddenSize: 4, numLayers: 2, batchFirst: true, bidirectional: true,
            projectionSize: 2, dropout: 0.3)
        let (T, B) = (3, 3), lengths = [2, 3, 0], seed: UInt64 = 5
        let states = config.numLayers * config.numDirections
        var weights = LSTM.initialWeights(config, seed: 1)
        for (k, key) in weights.keys.sorted().enumerated() {
            weights[key] = randomTensor(weights[key]!.shape, seed: UInt64(100 + k))
        }
        let lstm = try LSTM(config, weights: weights, backend: .reference)
        let x = randomTensor([B, T, config.inputSize], seed: 11)
        let h0 = randomTensor([states, B, config.outputSize], seed: 12, scale: 0.5)
        let c0 = randomTensor([states, B, config.hiddenSize], seed: 13, scale: 0.5)
        let dy = randomTensor([B, T, config.numDirections * config.outputSize], seed: 14)
        let dhn = randomTensor([states, B, config.outputSize], seed: 15)
        let dcn = randomTensor([states, B, config.hiddenSize], seed: 16)

        /// L = Σ output·dY + Σ hn·dHn + Σ cn·dCn.
        func loss(_ x: Tensor, _ h0: Tensor, _ c0: Tensor) throws -> Double {
            let r = try lstm.forward(x, h0: h0, c0: c0, lengths: lengths, training: true, dropoutSeed: seed)
            var total = 0.0
            for (a, b) in zip(r.output.scalars + r.hn.scalars + r.cn.scalars, dy.scalars + dhn.scalars + dcn.scalars) {
                total += Double(a) * Double(b)
            }
            return total
        }
        let result = try lstm.forward(x, h0: h0, c0: c0, lengths: lengths, training: true, dropoutSeed: seed)
        XCTAssertTrue(result.output.scalars.contains(0), "dropout with p = 0.3 dropped nothing")
        let grads = try lstm.backward(result, outputGradient: dy, hnGradient: dhn, cnGradient: dcn)
        let eps: Float = 1e-2
        var worst: Double = 0, checked = 0
        func check(_ name: String, _ tensor: Tensor, _ analytic: Tensor, _ loss: (Tensor) throws -> Double) rethrows {
            for i in 0..<tensor.count {
                var plus = tensor, minus = tensor
                plus.scalars[i] += eps
                minus.scalars[i] -= eps
                let numeric = (try loss(plus) - loss(minus)) / Double(plus.scalars[i] - minus.scalars[i])
                let error = abs(Double(analytic.scalars[i]) - numeric)
                worst = max(worst, error)
                checked += 1
                XCTAssertLessThanOrEqual(
                    error, 2e-4 + 2e-3 * abs(numeric),
                    "\(name)[\(i)]: backward \(analytic.scalars[i]), finite difference \(numeric)")
            }
        }
        try check("input", x, grads.input) { try loss($0, h0, c0) }
        try check("h0", h0, grads.h0) { try loss(x, $0, c0) }
        try check("c0", c0, grads.c0) { try loss(x, h0, $0) }
        for name in weights.keys.sorted() {
            try check(name, weights[name]!, grads.weights[name]!) { perturbed in
                try lstm.setWeights(weights.merging([name: perturbed]) { $1 })
                defer { try? lstm.setWeights(weights) }
                return try loss(x, h0, c0)
            }
        }
        print("reference vs finite differences: \(checked) elements, max abs error \(worst)")
    }

    // MARK: - the host API's contract

    /// The reference refuses what the other engines refuse, with the same errors.
    func testReferenceRefusesBadCallsLikeTheOtherEngines() throws {
        let config = LSTMConfiguration(inputSize: 3, hiddenSize: 4, numLayers: 2)
        let weights = LSTM.initialWeights(config, seed: 3)
        let reference = try LSTM(config, weights: weights, backend: .reference)
        let cpu = try LSTM(config, weights: weights, backend: .cpu)
        XCTAssertEqual(reference.backendName, "reference")
        let x = randomTensor([4, 2, 3], seed: 1)
        for lstm in [reference, cpu] {
            assertThrows(["lengths[1] = 5", "0...4"]) { _ = try lstm.forward(x, lengths: [4, 5]) }
            assertThrows(["lengths"]) { _ = try lstm.forward(x, lengths: [4]) }
            assertThrows(["input"]) { _ = try lstm.forward(randomTensor([4, 2, 5], seed: 2)) }
            assertThrows(["h0"]) { _ = try lstm.forward(x, h0: Tensor(zeros: [2, 2, 5])) }
            assertThrows(["at least one step"]) { _ = try lstm.forward(Tensor(zeros: [0, 2, 3])) }
            assertThrows(["saveActivations"]) {
                let r = try lstm.forward(x)
                _ = try lstm.backward(r, outputGradient: nil)
            }
            assertThrows(["weight_hh_l1"]) { try lstm.setWeights(weights.filter { $0.key != "weight_hh_l1" }) }
            assertThrows(["bias_xx"]) { try lstm.setWeights(weights.merging(["bias_xx": Tensor(zeros: [1])]) { $1 }) }
        }
        assertThrows(["another backend"]) {
            _ = try reference.backward(try cpu.forward(x, training: true), outputGradient: nil)
        }
        assertThrows(["another backend"]) {
            _ = try cpu.backward(try reference.forward(x, training: true), outputGradient: nil)
        }
        let other = try LSTM(config, weights: weights, backend: .reference)
        assertThrows(["different LSTM"]) {
            _ = try other.backward(try reference.forward(x, training: true), outputGradient: nil)
        }
        // The weights go in and come out unchanged; a loaded state_dict runs on the reference.
        XCTAssertEqual(try reference.weights(), weights)
        let path = try temporaryFolder() + "/w.safetensors"
        try cpu.saveWeights(to: path)
        let loaded = try LSTM(contentsOf: path, backend: .reference)
        assertClose(
            try loaded.forward(x).output, try cpu.forward(x).output, "loaded reference vs cpu", tolerance: .outputs)
    }

    /// `lstm-gpu check --backend reference` runs the committed fixtures; the commands built on
    /// the ModelOps backends refuse the reference as a usage error.
    func testCommandLineRunsCheckOnTheReferenceAndRefusesItElsewhere() throws {
        let executable = lstmGPUExecutable.path
        try requireLSTMGPU()
        let check = try runProcess(executable, ["check", fixtureFolder, "--backend", "reference", "--quiet"])
        XCTAssertEqual(check.status, 0, check.output)
        XCTAssertTrue(check.output.contains("check: \(try fixturePaths().count) passed, 0 failed"), check.output)
        XCTAssertTrue(check.output.contains("[reference]"), check.output)
        for arguments in [["train", "--steps", "1"], ["sample", "--checkpoint", "x"], ["bench", "--repeat", "1"]] {
            let result = try runProcess(executable, arguments + ["--backend", "reference"])
            XCTAssertEqual(result.status, 64, "\(arguments): \(result.output)")
            XCTAssertTrue(
                result.output.contains("--backend reference is only for 'lstm-gpu check'"),
                "\(arguments): \(result.output)")
        }
    }
}
