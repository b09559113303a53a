import Foundation
import XCTest

@testable import LSTMCPU
@testable import LSTMCore
@testable import LSTMData
@testable import LSTMKit
@testable import LSTMNN
@testable import LSTMOpenCL
@testable import LSTMReference

/// NaN, ±Inf and saturated gates behave as in PyTorch on every path: the CPU path's kernel
/// variants (portable, AVX2, AVX-512: each one this machine supports), and OpenCL.
///
/// Shapes: T steps, B batch, I input, H hidden. On the CPU path the cell math runs in blocks
/// of 8 units (SIMD body) and one partial block of H mod 8 units (scalar code), so H = 4
/// runs only the partial block, H = 32 only full blocks, H = 12 both; H = 24 an odd count of
/// full blocks (the AVX-512 body takes blocks in pairs, and a last one alone).
final class NumericsTests: XCTestCase {
    static let hiddenSizes = [4, 12, 24, 32]

    // MARK: - NaN

    /// A NaN in W_hh at row (g gate, unit u), column 0: at step 0 the gate of unit u is
    /// NaN·h0[0] + … = NaN, so unit u's output is NaN and every other unit is finite; from
    /// step 1 on, h(t−1)[u] = NaN reaches every gate through W_hh[:, u], so everything is
    /// NaN, hn and cn included (PyTorch computes h0·W_hhᵀ at step 0 too).
    func nanInRecurrentWeight(hidden H: Int, unit: Int, backend: BackendKind, device: String?, label: String) throws {
        let (I, T, B) = (3, 4, 2)
        let configuration = LSTMConfiguration(inputSize: I, hiddenSize: H)
        var weights = randomWeights(configuration, seed: 7)
        weights["weight_hh_l0"]!.scalars[(2 * H + unit) * H + 0] = .nan
        let result = try LSTM(configuration, weights: weights, backend: backend, device: device)
            .forward(
                randomTensor([T, B, I], seed: 8), h0: randomTensor([1, B, H], seed: 9, scale: 0.5),
                c0: randomTensor([1, B, H], seed: 10, scale: 0.5))
        var wrong: [String] = []
        for t in 0..<T {
            for b in 0..<B {
                for j in 0..<H {
                    let value = result.output.scalars[(t * B + b) * H + j]
                    let expectNaN = t >= 1 || j == unit
                    if value.isNaN != expectNaN || (!expectNaN && !value.isFinite) {
                        wrong.append("output[\(t), \(b), \(j)] = \(value)")
                    }
                }
            }
        }
        for (name, tensor) in [("hn", result.hn), ("cn", result.cn)] {
            for (k, value) in tensor.scalars.enumerated() where !value.isNaN {
                wrong.append("\(name)[\(k)] = \(value)")
            }
        }
        XCTAssertTrue(
            wrong.isEmpty,
            "\(label) H=\(H) NaN in W_hh[g, unit \(unit)]: \(wrong.count) elements off the NaN pattern, first "
                + "\(wrong.prefix(4))"
        )
    }

    /// A NaN in input[1, 0, 0]: sequence 0 is NaN from step 1 on (all units: W_ih is dense),
    /// sequence 1 stays finite everywhere, and so do both at step 0.
    func nanInInput(hidden H: Int, backend: BackendKind, device: String?, label: String) throws {
        let (I, T, B) = (3, 4, 2)
        let configuration = LSTMConfiguration(inputSize: I, hiddenSize: H)
        var input = randomTensor([T, B, I], seed: 11)
        input.scalars[(1 * B + 0) * I + 0] = .nan
        let result = try LSTM(
            configuration, weights: randomWeights(configuration, seed: 12), backend: backend, device: device
        )
        .forward(
            input, h0: randomTensor([1, B, H], seed: 13, scale: 0.5), c0: randomTensor([1, B, H], seed: 14, scale: 0.5))
        var wrong: [String] = []
        for t in 0..<T {
            for b in 0..<B {
                for j in 0..<H {
                    let value = result.output.scalars[(t * B + b) * H + j]
                    let expectNaN = b == 0 && t >= 1
                    if value.isNaN != expectNaN || (!expectNaN && !value.isFinite) {
                        wrong.append("output[\(t), \(b), \(j)] = \(value)")
                    }
                }
            }
        }
        for (name, tensor) in [("hn", result.hn), ("cn", result.cn)] {
            for b in 0..<B {
                for j in 0..<H {
                    let value = tensor.scalars[b * H + j]
                    if value.isNaN != (b == 0) { wrong.append("\(name)[0, \(b), \(j)] = \(value)") }
                }
            }
        }
        XCTAssertTrue(
            wrong.isEmpty,
            "\(label) H=\(H) NaN in input[1, 0, 0]: \(wrong.count) elements off the NaN pattern, first "
                + "\(wrong.prefix(4))"
        )
    }

    // MARK: - ±Inf

    /// I = 1, W_ih = ±1 (unit u's four gates take the signs of the bits of u mod 16, so every
    /// combination of saturated i, f, g, o occurs), W_hh = 0, finite biases, c0 = 0.5, and the
    /// input +inf then −inf: every pre-activation is ±inf, so as in PyTorch σ(+inf) = 1,
    /// σ(−inf) = 0, tanh(±inf) = ±1 exactly. Then c = f·c_prev + i·g is exact (small dyadic
    /// values), and h = o·tanh(c) is exactly 0 wherever o = 0.
    func infiniteInputs(hidden H: Int, backend: BackendKind, device: String?, label: String) throws {
        let (T, B) = (2, 1)
        let configuration = LSTMConfiguration(inputSize: 1, hiddenSize: H)
        var weights = randomWeights(configuration, seed: 15)
        func sign(_ gate: Int, _ unit: Int) -> Float { ((unit % 16) >> gate) & 1 == 1 ? -1 : 1 }
        weights["weight_ih_l0"]!.scalars = (0..<4 * H).map { row in sign(row / H, row % H) }
        weights["weight_hh_l0"] = Tensor(zeros: [4 * H, H])
        let input = try Tensor(shape: [T, B, 1], scalars: [.infinity, -.infinity])
        let c0 = try Tensor(shape: [1, B, H], scalars: Array(repeating: 0.5, count: H))
        let result = try LSTM(configuration, weights: weights, backend: backend, device: device)
            .forward(input, h0: randomTensor([1, B, H], seed: 16), c0: c0)

        var cell = [Float](repeating: 0.5, count: H)
        var wrong: [String] = []
        for t in 0..<T {
            let x: Float = t == 0 ? .infinity : -.infinity
            for u in 0..<H {
                let pre = (0..<4).map { sign($0, u) * x }  // ±inf
                let i: Float = pre[0] > 0 ? 1 : 0, f: Float = pre[1] > 0 ? 1 : 0
                let g: Float = pre[2] > 0 ? 1 : -1, o: Float = pre[3] > 0 ? 1 : 0
                cell[u] = f * cell[u] + i * g
                let expected = o * Float(tanh(Double(cell[u])))
                let ours = result.output.scalars[t * H + u]
                let close = expected == 0 ? ours == 0 : abs(ours - expected) <= 1e-6
                if !close { wrong.append("output[\(t), 0, \(u)] = \(ours), expected \(expected)") }
                if t == T - 1 {
                    if result.cn.scalars[u] != cell[u] {
                        wrong.append("cn[0, 0, \(u)] = \(result.cn.scalars[u]), expected exactly \(cell[u])")
                    }
                    if result.hn.scalars[u] != ours {
                        wrong.append("hn[0, 0, \(u)] = \(result.hn.scalars[u]) is not the last output \(ours)")
                    }
                }
            }
        }
        XCTAssertTrue(
            wrong.isEmpty,
            "\(label) H=\(H) ±inf inputs: \(wrong.count) values differ from PyTorch's, first \(wrong.prefix(4))")
    }

    // MARK: - the paths

    /// Runs `check` on the CPU path once under every kernel variant this CPU supports, then
    /// checks that the configured variant is back.
    func onEveryCPUVariant(_ check: (BackendKind, String?, String) throws -> Void) throws {
        let configured = CPUKernelVariant.current
        XCTAssertTrue(CPUKernelVariant.supported.contains(.portable))
        for variant in CPUKernelVariant.supported {
            try CPUKernelVariant.withVariant(variant) {
                XCTAssertEqual(CPUKernelVariant.current, variant, "forcing the \(variant) kernels did not take")
                try check(.cpu, nil, "cpu/\(variant.name)")
            }
        }
        XCTAssertEqual(CPUKernelVariant.current, configured, "the configured variant was not restored")
    }

    func onOpenCL(_ check: (BackendKind, String?, String) throws -> Void) throws {
        let backend = try requireOpenCL()
        try check(.opencl, "\(backend.device.index)", "opencl")
    }

    func testNaNWeightGivesNaNExactlyWherePyTorchDoesOnCPU() throws {
        try onEveryCPUVariant { backend, device, label in
            for H in Self.hiddenSizes {
                for unit in Set([0, H - 1]) {
                    try nanInRecurrentWeight(hidden: H, unit: unit, backend: backend, device: device, label: label)
                }
            }
        }
    }

    func testNaNWeightGivesNaNExactlyWherePyTorchDoesOnOpenCL() throws {
        try onOpenCL { backend, device, label in
            for H in Self.hiddenSizes {
                for unit in Set([0, H - 1]) {
                    try nanInRecurrentWeight(hidden: H, unit: unit, backend: backend, device: device, label: label)
                }
            }
        }
    }

    func testNaNInputGivesNaNExactlyWherePyTorchDoesOnCPU() throws {
        try onEveryCPUVariant { backend, device, label in
            for H in Self.hiddenSizes { try nanInInput(hidden: H, backend: backend, device: device, label: label) }
        }
    }

    func testNaNInputGivesNaNExactlyWherePyTorchDoesOnOpenCL() throws {
        try onOpenCL { backend, device, label in
            for H in Self.hiddenSizes { try nanInInput(hidden: H, backend: backend, device: device, label: label) }
        }
    }

    func testInfiniteInputsGivePyTorchsValuesOnCPU() throws {
        try onEveryCPUVariant { backend, device, label in
            for H in Self.hiddenSizes { try infiniteInputs(hidden: H, backend: backend, device: device, label: label) }
        }
    }

    func testInfiniteInputsGivePyTorchsValuesOnOpenCL() throws {
        try onOpenCL { backend, device, label in
            for H in Self.hiddenSizes { try infiniteInputs(hidden: H, backend: backend, device: device, label: label) }
        }
    }

    // MARK: - saturated gates

    /// The saturated fixtures (|pre-activation| about 1e2, 1e4, 1e30; references from float64
    /// PyTorch, gradients exactly 0 where the gates saturate) under every CPU kernel variant;
    /// OpenCLParityTests runs them on OpenCL.
    func testSaturatedFixturesPassOnEveryCPUVariant() throws {
        let paths = try fixturePaths().filter { URL(fileURLWithPath: $0).lastPathComponent.hasPrefix("saturated-") }
        XCTAssertGreaterThanOrEqual(paths.count, 5, "saturated fixtures missing from \(fixtureFolder)")
        for variant in CPUKernelVariant.supported {
            try CPUKernelVariant.withVariant(variant) {
                for path in paths {
                    let rows = try Fixture(contentsOf: path).check(backend: .cpu)
                    print(
                        "\(URL(fileURLWithPath: path).lastPathComponent) [cpu/\(variant.name)]: max abs diff "
                            + "\(rows.map(\.maxAbsolute).max() ?? .nan)"
                    )
                    for row in rows where !row.passed {
                        XCTFail(
                            "\(path): \(row.name) fails on the \(variant.name) kernels: \(row.failures) of "
                                + "\(row.count) elements, max abs \(row.maxAbsolute)"
                        )
                    }
                }
            }
        }
    }

    /// Every weight of `configuration`, uniform in [−0.5, 0.5].
    func randomWeights(_ configuration: LSTMConfiguration, seed: UInt64) -> [String: Tensor] {
        var weights: [String: Tensor] = [:]
        for (k, spec) in configuration.parameterSpecs.enumerated() {
            weights[spec.name] = randomTensor(spec.shape, seed: seed &* 100 &+ UInt64(k), scale: 0.5)
        }
        return weights
    }
}
