import CLSTMKernels
import Foundation
import XCTest

@testable import LSTMCPU
@testable import LSTMCore
@testable import LSTMData
@testable import LSTMKit
@testable import LSTMNN
@testable import LSTMOpenCL
@testable import LSTMReference

/// The CPU path's kernel variants (portable, AVX2, AVX-512; `CPUKernelVariant`): every one
/// this machine supports passes the PyTorch fixtures and agrees with a float64 reference and
/// with the portable bodies on random shapes; `LSTM_GPU_CPU_ISA` selects one or is refused.
///
/// Shapes: T steps, B batch, I input, H hidden, P projection, L layers, D directions.
final class CPUKernelVariantTests: XCTestCase {
    // MARK: - selection

    func testSupportedVariantsAndNames() {
        let supported = CPUKernelVariant.supported
        print(
            "CPU kernel variants supported here: \(supported.map(\.name)), best \(CPUKernelVariant.best.name), "
                + "current \(CPUKernelVariant.current.name)")
        XCTAssertEqual(supported.first, .portable)
        XCTAssertEqual(supported.last, CPUKernelVariant.best)
        XCTAssertTrue(supported.contains(CPUKernelVariant.current))
        XCTAssertEqual(
            CPUKernelVariant.allCases.map(\.name),
            ["portable", "avx2", "avx2-vnni", "avx512", "avx512-vnni", "avx512-amx"])
        for variant in CPUKernelVariant.allCases { XCTAssertEqual(CPUKernelVariant(name: variant.name), variant) }
        XCTAssertNil(CPUKernelVariant(name: "AVX2"))
        // AVX-512 here implies AVX2 (every AVX-512 CPU has AVX2 + FMA).
        if supported.contains(.avx512) { XCTAssertTrue(supported.contains(.avx2)) }
        if supported.contains(.avx512VNNI) { XCTAssertTrue(supported.contains(.avx512)) }
        if supported.contains(.avx512AMX) { XCTAssertTrue(supported.contains(.avx512VNNI)) }
        if supported.contains(.avx2VNNI) { XCTAssertTrue(supported.contains(.avx2)) }
    }

    func testEnvironmentValuesResolve() throws {
        XCTAssertEqual(try CPUKernelVariant.resolve(nil).get(), CPUKernelVariant.best)
        XCTAssertEqual(try CPUKernelVariant.resolve("").get(), CPUKernelVariant.best)
        for variant in CPUKernelVariant.supported {
            XCTAssertEqual(try CPUKernelVariant.resolve(variant.name).get(), variant)
        }
        for (value, supported, fragments) in [
            (
                "bogus", CPUKernelVariant.supported,
                ["LSTM_GPU_CPU_ISA=bogus", "portable, avx2, avx2-vnni, avx512, avx512-vnni, avx512-amx"]
            ),
            ("AVX512", CPUKernelVariant.supported, ["LSTM_GPU_CPU_ISA=AVX512"]),
            (
                "avx512", [.portable, .avx2],
                ["LSTM_GPU_CPU_ISA=avx512", "does not support", "it supports portable, avx2"]
            ),
            ("avx2", [.portable], ["LSTM_GPU_CPU_ISA=avx2", "it supports portable"]),
        ] as [(String, [CPUKernelVariant], [String])] {
            switch CPUKernelVariant.resolve(value, supported: supported) {
            case .success(let variant): XCTFail("\(value) on \(supported) resolved to \(variant)")
            case .failure(let error):
                for fragment in fragments {
                    XCTAssertTrue(error.description.contains(fragment), "'\(error)' lacks '\(fragment)'")
                }
            }
        }
    }

    /// `lstm-gpu check` under each value of LSTM_GPU_CPU_ISA: each supported variant passes;
    /// a value that names no variant, or one this CPU lacks, exits 2 naming the variable.
    func testTheCommandHonoursOrRefusesTheVariable() throws {
        let executable = lstmGPUExecutable
        try requireLSTMGPU()
        let fixture = fixtureFolder + "/odd-sizes.safetensors"
        for variant in CPUKernelVariant.supported {
            let result = try runProcess(
                executable.path, ["check", fixture], environment: ["LSTM_GPU_CPU_ISA": variant.name])
            XCTAssertEqual(result.status, 0, "\(variant.name): \(result.output)")
            XCTAssertTrue(result.output.contains("check: 1 passed, 0 failed"), "\(variant.name): \(result.output)")
        }
        let unsupported = CPUKernelVariant.allCases.filter { !CPUKernelVariant.supported.contains($0) }.map(\.name)
        if unsupported.isEmpty {
            print("every CPU kernel variant runs here; the unsupported-variant refusal is tested through resolve")
        }
        for value in ["bogus"] + unsupported {
            let result = try runProcess(executable.path, ["check", fixture], environment: ["LSTM_GPU_CPU_ISA": value])
            XCTAssertEqual(result.status, 2, "\(value): \(result.output)")
            XCTAssertTrue(result.output.contains("LSTM_GPU_CPU_ISA=\(value)"), "\(value): \(result.output)")
            XCTAssertFalse(result.output.contains("passed"), "\(value): \(result.output)")
        }
    }

    // MARK: - parity

    /// Every PyTorch fixture (outputs, states and every gradient) under every variant.
    /// The backward's weights are packed straight from W [K, N] (`lstm_pack_columns`): the
    /// same panels as packing the transpose row by row, zero padding included.
    func testPackingColumnsEqualsPackingTheTranspose() {
        for (k, n, ldw) in [(5, 37, 37), (16, 16, 20), (3, 1, 4), (40, 48, 48)] {
            let w = (0..<(k * ldw)).map { Float($0 % 97) - 48.5 }
            var transposed = [Float](repeating: 0, count: n * k)
            for kk in 0..<k { for c in 0..<n { transposed[c * k + kk] = w[kk * ldw + c] } }
            let size = lstm_packed_size(Int32(n), Int32(k))
            var viaRows = [Float](repeating: .nan, count: size), viaColumns = [Float](repeating: .nan, count: size)
            lstm_pack_rows(transposed, Int32(n), Int32(k), Int32(k), &viaRows)
            lstm_pack_columns(w, Int32(k), Int32(n), Int32(ldw), &viaColumns)
            XCTAssertEqual(viaColumns, viaRows, "K=\(k) N=\(n) ldw=\(ldw)")
        }
    }

    func testEveryFixturePassesUnderEveryVariant() throws {
        let paths = try fixturePaths()
        XCTAssertGreaterThanOrEqual(paths.count, 15, "fixtures missing from \(fixtureFolder)")
        for variant in CPUKernelVariant.supported where variant.hasOwnFloatBodies {
            var worst: Float = 0, worstGradient: Float = 0
            try CPUKernelVariant.withVariant(variant) {
                for path in paths {
                    let rows = try Fixture(contentsOf: path).check(backend: .cpu)
                    for row in rows {
                        if row.name.hasPrefix("grad") {
                            worstGradient = max(worstGradient, row.maxAbsolute)
                        } else {
                            worst = max(worst, row.maxAbsolute)
                        }
                    }
                    for row in rows where !row.passed {
                        XCTFail(
                            "\(path) [\(variant.name)]: \(row.name) fails: \(row.failures) of \(row.count) "
                                + "elements, max abs \(row.maxAbsolute)"
                        )
                    }
                }
            }
            print(
                "fixtures [cpu/\(variant.name)]: \(paths.count) files, max abs diff outputs \(worst), gradients "
                    + "\(worstGradient)"
            )
        }
    }

    /// Random shapes (H with partial blocks and odd block counts, B across every row-tile size,
    /// projections, two layers, both directions, lengths): outputs against a float64
    /// reference, and outputs and every gradient against the portable bodies.
    func testRandomShapesAgreeUnderEveryVariant() throws {
        var generator = SeededGenerator(seed: 2024)
        var cases: [(LSTMConfiguration, sequenceLength: Int, batch: Int, lengths: [Int]?)] = [
            (LSTMConfiguration(inputSize: 7, hiddenSize: 72), 3, 29, nil),  // 9 blocks, 18 panels
            // 5 blocks, P a partial panel
            (LSTMConfiguration(inputSize: 5, hiddenSize: 40, projectionSize: 13), 4, 13, nil),
            (LSTMConfiguration(inputSize: 3, hiddenSize: 8), 5, 1, nil),
        ]
        for _ in 0..<7 {
            let h = [5, 8, 12, 16, 24, 37, 48, 56].randomElement(using: &generator)!
            let layers = Int.random(in: 1...2, using: &generator)
            let projection = Bool.random(using: &generator) ? Int.random(in: 1..<max(2, h), using: &generator) : 0
            let configuration = LSTMConfiguration(
                inputSize: Int.random(in: 1...20, using: &generator), hiddenSize: h,
                numLayers: layers, bias: Bool.random(using: &generator),
                bidirectional: Bool.random(using: &generator), projectionSize: projection)
            let steps = Int.random(in: 1...6, using: &generator), batch = Int.random(in: 1...30, using: &generator)
            let lengths =
                Bool.random(using: &generator)
                ? (0..<batch).map { _ in Int.random(in: 0...steps, using: &generator) } : nil
            cases.append((configuration, steps, batch, lengths))
        }
        var worst: [CPUKernelVariant: (reference: Float, portable: Float)] = [:]
        for (index, (configuration, steps, batch, lengths)) in cases.enumerated() {
            let seed = UInt64(100 * index)
            var weights: [String: Tensor] = [:]
            for (k, spec) in configuration.parameterSpecs.enumerated() {
                weights[spec.name] = randomTensor(spec.shape, seed: seed + UInt64(k), scale: 0.5)
            }
            let ld = configuration.numLayers * configuration.numDirections
            let input = randomTensor([steps, batch, configuration.inputSize], seed: seed + 50)
            let h0 = randomTensor([ld, batch, configuration.outputSize], seed: seed + 51, scale: 0.5)
            let c0 = randomTensor([ld, batch, configuration.hiddenSize], seed: seed + 52, scale: 0.5)
            let dy = randomTensor(
                [steps, batch, configuration.numDirections * configuration.outputSize], seed: seed + 53)
            let reference = referenceForward(
                configuration, weights: weights, input: input, h0: h0, c0: c0, lengths: lengths)
            let label =
                "case \(index): I=\(configuration.inputSize) H=\(configuration.hiddenSize) "
                + "P=\(configuration.projectionSize) "
                + "L=\(configuration.numLayers) D=\(configuration.numDirections) T=\(steps) B=\(batch) "
                + "lengths=\(lengths.map { "\($0)" } ?? "none")"
            func run() throws -> [String: Tensor] {
                let lstm = try LSTM(configuration, weights: weights)
                let result = try lstm.forward(input, h0: h0, c0: c0, lengths: lengths, training: true)
                let grads = try lstm.backward(result, outputGradient: dy)
                var all = [
                    "output": result.output, "hn": result.hn, "cn": result.cn,
                    "grad_input": grads.input, "grad_h0": grads.h0, "grad_c0": grads.c0,
                ]
                for (name, tensor) in grads.weights { all["grad." + name] = tensor }
                return all
            }
            let portable = try CPUKernelVariant.withVariant(.portable, run)
            for variant in CPUKernelVariant.supported where variant.hasOwnFloatBodies {
                let ours = try CPUKernelVariant.withVariant(variant, run)
                for name in ["output", "hn", "cn"] {
                    let row = compare(name, ours: ours[name]!, reference: reference[name]!, tolerance: .outputs)
                    worst[variant, default: (0, 0)].reference = max(
                        worst[variant, default: (0, 0)].reference, row.maxAbsolute)
                    XCTAssertTrue(
                        row.passed,
                        "\(label) [\(variant.name)] \(name) vs float64: \(row.failures) of \(row.count) off, "
                            + "max abs \(row.maxAbsolute)"
                    )
                }
                for name in portable.keys.sorted() {
                    let tolerance = name.hasPrefix("grad") ? Tolerance.gradients : .outputs
                    let row = compare(name, ours: ours[name]!, reference: portable[name]!, tolerance: tolerance)
                    worst[variant, default: (0, 0)].portable = max(
                        worst[variant, default: (0, 0)].portable, row.maxAbsolute)
                    XCTAssertTrue(
                        row.passed,
                        "\(label) [\(variant.name)] \(name) vs portable: \(row.failures) of \(row.count) off, "
                            + "max abs \(row.maxAbsolute)"
                    )
                }
            }
        }
        for variant in CPUKernelVariant.supported where variant.hasOwnFloatBodies {
            print(
                "random shapes [cpu/\(variant.name)]: \(cases.count) cases, max abs diff vs float64 "
                    + "\(worst[variant]!.reference), "
                    + "vs portable (gradients included) \(worst[variant]!.portable)")
        }
    }

    /// torch.nn.LSTM's forward in float64 with plain loops (sequence-major; packed-sequence
    /// lengths: a sequence's steps past its length give zero outputs and leave its state).
    func referenceForward(
        _ configuration: LSTMConfiguration, weights: [String: Tensor], input: Tensor, h0: Tensor, c0: Tensor,
        lengths: [Int]?
    ) -> [String: Tensor] {
        let (steps, batch) = (input.shape[0], input.shape[1])
        let (h, hout, directions) = (configuration.hiddenSize, configuration.outputSize, configuration.numDirections)
        let lengths = lengths ?? Array(repeating: steps, count: batch)
        var x: [Double] = input.scalars.map { Double($0) }, width = configuration.inputSize
        var hn = [Float](), cn = [Float]()
        func sigmoid(_ v: Double) -> Double { 1 / (1 + Foundation.exp(-v)) }
        for layer in 0..<configuration.numLayers {
            var y = [Double](repeating: 0, count: steps * batch * directions * hout)
            var layerHn = [[Float]](repeating: [], count: directions), layerCn = layerHn
            for d in 0..<directions {
                let suffix = "_l\(layer)" + (d == 1 ? "_reverse" : "")
                let wih: [Double] = weights["weight_ih" + suffix]!.scalars.map { Double($0) }
                let whh: [Double] = weights["weight_hh" + suffix]!.scalars.map { Double($0) }
                var bias = [Double](repeating: 0, count: 4 * h)
                if configuration.bias {
                    let bih = weights["bias_ih" + suffix]!.scalars, bhh = weights["bias_hh" + suffix]!.scalars
                    for j in 0..<4 * h { bias[j] = Double(bih[j]) + Double(bhh[j]) }
                }
                let whr: [Double]? =
                    configuration.projectionSize > 0 ? weights["weight_hr" + suffix]!.scalars.map { Double($0) } : nil
                let state = (layer * directions + d) * batch
                for b in 0..<batch {
                    var hidden = (0..<hout).map { Double(h0.scalars[(state + b) * hout + $0]) }
                    var cell = (0..<h).map { Double(c0.scalars[(state + b) * h + $0]) }
                    let order = d == 0 ? Array(0..<lengths[b]) : Array((0..<lengths[b]).reversed())
                    for t in order {
                        let xt = Array(x[((t * batch + b) * width)..<((t * batch + b + 1) * width)])
                        var gates = bias
                        for row in 0..<4 * h {
                            for k in 0..<width { gates[row] += wih[row * width + k] * xt[k] }
                            for k in 0..<hout { gates[row] += whh[row * hout + k] * hidden[k] }
                        }
                        var r = [Double](repeating: 0, count: h)
                        for j in 0..<h {
                            let i: Double = sigmoid(gates[j]), f: Double = sigmoid(gates[h + j])
                            let g: Double = Foundation.tanh(gates[2 * h + j]), o: Double = sigmoid(gates[3 * h + j])
                            cell[j] = f * cell[j] + i * g
                            r[j] = o * Foundation.tanh(cell[j])
                        }
                        if let whr {
                            var projected = [Double](repeating: 0, count: hout)
                            for p in 0..<hout { for j in 0..<h { projected[p] += whr[p * h + j] * r[j] } }
                            hidden = projected
                        } else {
                            hidden = r
                        }
                        for j in 0..<hout { y[((t * batch + b) * directions + d) * hout + j] = hidden[j] }
                    }
                    layerHn[d] += hidden.map(Float.init)
                    layerCn[d] += cell.map(Float.init)
                }
            }
            hn += layerHn.flatMap { $0 }
            cn += layerCn.flatMap { $0 }
            x = y
            width = directions * hout
        }
        let ld = configuration.numLayers * directions
        return [
            "output": try! Tensor(shape: [steps, batch, directions * hout], scalars: x.map(Float.init)),
            "hn": try! Tensor(shape: [ld, batch, hout], scalars: hn),
            "cn": try! Tensor(shape: [ld, batch, h], scalars: cn),
        ]
    }
}
