import Foundation
import LSTMBenchmark
import XCTest

@testable import LSTMCPU
@testable import LSTMCore
@testable import LSTMData
@testable import LSTMKit
@testable import LSTMNN
@testable import LSTMOpenCL
@testable import LSTMReference

/// The BLAS library loaded at run time, the OpenBLAS core chosen from CPUID, and what
/// `lstm-gpu devices` and `bench` report about the CPU path. The child processes run with
/// OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE taken out of their environment, so these tests do
/// not depend on the settings of the session that runs them.
final class CPUInfoTests: XCTestCase {
    static let openBLASVariables = ["OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "LSTM_GPU_BLAS"]

    func testCoreChoiceFromFeatures() {
        let avx512: CPUFeatures = [.intel, .avx, .avx2, .fma, .avx512f, .avx512bw, .avx512dq, .avx512vl]
        XCTAssertEqual(CPUInfo.openBLASCore(for: avx512), "SkylakeX")
        XCTAssertEqual(CPUInfo.openBLASCore(for: [.avx512f, .avx512bw, .avx512dq, .avx512vl]), "SkylakeX")
        XCTAssertEqual(CPUInfo.openBLASCore(for: avx512.union(.amd).subtracting(.intel)), "SkylakeX")  // Zen 4
        // AVX-512 F alone (Knights Landing) is not enough for SkylakeX's kernels.
        XCTAssertEqual(CPUInfo.openBLASCore(for: [.intel, .avx, .avx2, .fma, .avx512f]), "Haswell")
        XCTAssertEqual(CPUInfo.openBLASCore(for: [.intel, .avx, .avx2, .fma]), "Haswell")
        XCTAssertEqual(CPUInfo.openBLASCore(for: [.avx2, .fma]), "Haswell")
        XCTAssertEqual(CPUInfo.openBLASCore(for: [.amd, .avx, .avx2, .fma]), "Zen")
        XCTAssertEqual(CPUInfo.openBLASCore(for: [.intel, .avx, .avx2]), "SandyBridge")  // AVX2 without FMA
        XCTAssertEqual(CPUInfo.openBLASCore(for: [.intel, .avx]), "SandyBridge")
        XCTAssertNil(CPUInfo.openBLASCore(for: [.amd, .avx]))
        XCTAssertNil(CPUInfo.openBLASCore(for: [.intel]))
        XCTAssertNil(CPUInfo.openBLASCore(for: []))
        XCTAssertEqual(CPUFeatures([.intel, .avx2, .avx512vl]).description, "intel avx2 avx512vl")
    }

    func testCurrentDescribesTheLoadedLibrary() throws {
        let info = CPUInfo.current
        XCTAssertFalse(info.model.isEmpty)
        XCTAssertEqual(info.kernels, CPUInfo.kernelVariant)
        XCTAssertNotNil(CPUKernelVariant(name: info.kernels), info.kernels)
        XCTAssertEqual(info.maximumThreads, CPUThreads.maximum)
        XCTAssertNil(info.blasError, info.blasError ?? "")
        XCTAssertNotNil(info.blasLibrary)
        XCTAssertTrue(info.summary.hasPrefix("cpu: \(info.model); threads "), info.summary)
        XCTAssertEqual(try JSONDecoder().decode(CPUInfo.self, from: JSONEncoder().encode(info)), info)
        // Loading changed nothing the user set: OPENBLAS_CORETYPE is as it was before the load.
        if info.blasCoreChosenBy == "cpuid" {
            XCTAssertNil(ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"].flatMap { $0.isEmpty ? nil : $0 })
        }
    }

    /// The lines of `lstm-gpu devices` that describe the CPU path, run with `environment`.
    func devicesCPULines(_ environment: [String: String] = [:]) throws -> [String] {
        try requireLSTMGPU()
        let result = try runProcess(
            lstmGPUExecutable.path, ["devices"], environment: environment,
            removing: Self.openBLASVariables)
        XCTAssertEqual(result.status, 0, result.output)
        let lines = result.output.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines.first?.hasPrefix("[cpu] ") ?? false, result.output)
        return Array(lines.prefix { $0.hasPrefix("[cpu]") || $0.hasPrefix("    ") }.prefix(4))
    }

    /// The core `devices` names ("    BLAS core NAME, ..."), nil when it names none.
    func reportedCore(_ lines: [String]) -> String? {
        guard let line = lines.first(where: { $0.hasPrefix("    BLAS core ") }) else { return nil }
        return line.dropFirst("    BLAS core ".count).split(separator: ",").first.map(String.init)
    }

    func testDevicesReportsTheCoreChosenFromCPUID() throws {
        let lines = try devicesCPULines()
        let text = lines.joined(separator: "\n")
        XCTAssertTrue(text.contains("threads \(CPUThreads.current) of \(CPUThreads.maximum) cores"), text)
        XCTAssertTrue(text.contains("LSTMKit kernels \(CPUInfo.kernelVariant)"), text)
        XCTAssertTrue(lines.contains { $0.hasPrefix("    BLAS /") || $0.hasPrefix("    BLAS lib") }, text)
        try XCTSkipIf(text.contains("not OpenBLAS"), "the BLAS library is not OpenBLAS: no core to choose\n" + text)
        let features = CPUFeatures.current
        if let expected = CPUInfo.openBLASCore(for: features) {
            XCTAssertEqual(reportedCore(lines)?.lowercased(), expected.lowercased(), text)
            XCTAssertTrue(text.contains("chosen from CPUID (\(features))"), text)
        } else {
            XCTAssertTrue(text.contains("OpenBLAS's own detection"), text)
        }
        if features.isSuperset(of: CPUFeatures.avx512) {  // as on the AVX-512 Xeon this was written on
            XCTAssertEqual(reportedCore(lines), "SkylakeX", text)
        }
    }

    /// `devices` names the body each reduced precision runs, as `ReducedPrecisionBodies` says.
    func testDevicesNamesTheReducedPrecisionBodies() throws {
        try requireLSTMGPU()
        let result = try runProcess(lstmGPUExecutable.path, ["devices"])
        XCTAssertEqual(result.status, 0, result.output)
        let line = try XCTUnwrap(
            result.output.split(separator: "\n").first { $0.hasPrefix("    reduced precision (inference): ") },
            result.output)
        for precision in [Precision.int8, .bf16, .fp16] {
            XCTAssertTrue(line.contains("\(precision) \(ReducedPrecisionBodies.body(precision))"), String(line))
        }
    }

    func testUserSetCoreTypeIsRespected() throws {
        try XCTSkipUnless(CPUFeatures.current.isSuperset(of: [.avx2, .fma]), "Haswell kernels need AVX2 and FMA")
        let lines = try devicesCPULines(["OPENBLAS_CORETYPE": "Haswell"])
        let text = lines.joined(separator: "\n")
        try XCTSkipIf(text.contains("not OpenBLAS"), "the BLAS library is not OpenBLAS\n" + text)
        XCTAssertEqual(reportedCore(lines), "Haswell", text)
        XCTAssertTrue(text.contains("set by OPENBLAS_CORETYPE"), text)
    }

    /// The parity fixtures pass on the kernels chosen from CPUID (and `check` says which).
    func testFixturesPassUnderTheChosenCore() throws {
        try requireLSTMGPU()
        let result = try runProcess(
            lstmGPUExecutable.path, ["check", fixtureFolder, "--backend", "cpu", "--quiet"],
            removing: Self.openBLASVariables)
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(result.output.contains("check: \(try fixturePaths().count) passed, 0 failed"), result.output)
    }

    /// No BLAS library: `devices` still lists, and the CPU path is a thrown error (exit 2), not a crash.
    func testMissingBLASIsAnErrorAtFirstUse() throws {
        try requireLSTMGPU()
        let missing = ["LSTM_GPU_BLAS": "/nonexistent/libopenblas.so.0"]
        let devices = try runProcess(
            lstmGPUExecutable.path, ["devices"], environment: missing, removing: Self.openBLASVariables)
        XCTAssertEqual(devices.status, 0, devices.output)
        XCTAssertTrue(
            devices.output.contains("BLAS none: no usable BLAS library: /nonexistent/libopenblas.so.0"), devices.output)
        let check = try runProcess(
            lstmGPUExecutable.path, ["check", fixtureFolder + "/wide.safetensors", "--backend", "cpu"],
            environment: missing, removing: Self.openBLASVariables)
        XCTAssertEqual(check.status, 2, check.output)
        XCTAssertTrue(check.output.contains("the CPU path needs OpenBLAS"), check.output)
        let notBLAS = try runProcess(
            lstmGPUExecutable.path, ["bench", "--shape", "8,6,2,3", "--repeat", "1", "--backend", "cpu"],
            environment: ["LSTM_GPU_BLAS": "libc.so.6"], removing: Self.openBLASVariables)
        XCTAssertEqual(notBLAS.status, 2, notBLAS.output)
        XCTAssertTrue(notBLAS.output.contains("libc.so.6 has no cblas_sgemm"), notBLAS.output)
    }

    /// `bench` prints the CPU line above its table and records it in each JSON row; rows without
    /// it (written before) still decode.
    func testBenchReportsTheCPU() throws {
        try requireLSTMGPU()
        let table = try runProcess(
            lstmGPUExecutable.path, ["bench", "--shape", "8,6,2,3", "--repeat", "1", "--backend", "cpu"],
            removing: Self.openBLASVariables)
        XCTAssertEqual(table.status, 0, table.output)
        let lines = table.output.split(separator: "\n").map(String.init).filter { !$0.hasPrefix("bench: row") }
        XCTAssertTrue(lines.first?.hasPrefix("cpu: ") ?? false, table.output)
        XCTAssertTrue(lines.first?.contains("kernels \(CPUInfo.kernelVariant)") ?? false, table.output)

        let json = try runProcess(
            lstmGPUExecutable.path, ["bench", "--shape", "8,6,2,3", "--repeat", "1", "--backend", "cpu", "--json"],
            removing: Self.openBLASVariables)
        XCTAssertEqual(json.status, 0, json.output)
        let rowLine = try XCTUnwrap(json.output.split(separator: "\n").first { $0.hasPrefix("{") })
        let row = try JSONDecoder().decode(BenchmarkRow.self, from: Data(rowLine.utf8))
        let cpu = try XCTUnwrap(row.cpu)
        XCTAssertEqual(cpu.kernels, CPUInfo.kernelVariant)
        XCTAssertEqual(cpu.model, CPUInfo.modelName)
        XCTAssertNotNil(cpu.blasLibrary)
        if let expected = CPUInfo.openBLASCore(for: .current), cpu.blasVersion != nil {
            XCTAssertEqual(cpu.blasCore?.lowercased(), expected.lowercased())
            XCTAssertEqual(cpu.blasCoreChosenBy, "cpuid")
        }
        // A row as written before the cpu field existed.
        var object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(rowLine.utf8)) as? [String: Any])
        object["cpu"] = nil
        let old = try JSONDecoder().decode(BenchmarkRow.self, from: JSONSerialization.data(withJSONObject: object))
        XCTAssertNil(old.cpu)
        XCTAssertEqual(old.name, row.name)
    }
}
