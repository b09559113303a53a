import Foundation
import XCTest

@testable import LSTMKit

/// The OpenCL kernels, each step-kernel variant, under Oclgrind, a second OpenCL implementation that simulates a device
/// and reports out-of-bounds accesses, data races and barrier divergence: a few committed
/// fixtures (ragged lengths, both directions, projection, saturated gates) through
/// `lstm-gpu check --backend opencl`, each kernel checked element by element against PyTorch
/// and by the simulator. Skips only where `oclgrind` is not installed (`make test` installs it).
final class OclgrindTests: XCTestCase {
    func testKernelsAreCleanUnderOclgrind() throws {
        guard
            let oclgrind = ["/usr/bin/oclgrind", "/usr/local/bin/oclgrind"].first(where: {
                FileManager.default.isExecutableFile(atPath: $0)
            })
        else { throw XCTSkip("oclgrind not installed (apt-get install oclgrind)") }
        let executable = lstmGPUExecutable.path
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: executable), "lstm-gpu not built")
        let fixtures = ["basic", "bi-proj-lengths", "lengths-zero", "saturated-proj"].map {
            fixtureFolder + "/\($0).safetensors"
        }
        // Each step-kernel variant in turn (OpenCLStepVariant), forced.
        for variant in OpenCLStepVariant.allCases {
            try checkUnderOclgrind(oclgrind, executable, fixtures, variant: variant)
        }
    }

    func checkUnderOclgrind(
        _ oclgrind: String, _ executable: String, _ fixtures: [String], variant: OpenCLStepVariant
    )
        throws
    {
        let result = try runProcess(
            oclgrind,
            ["--data-races", executable, "check"] + fixtures + ["--backend", "opencl", "--quiet"],
            environment: ["LSTM_GPU_KERNEL_CACHE": "off", OpenCLStepVariant.environmentVariable: variant.rawValue])
        print("[\(variant)] " + result.output)
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(result.output.contains("check: \(fixtures.count) passed, 0 failed"), result.output)
        // Oclgrind reports a problem as a block such as "Invalid read of size 4", "Read-write data
        // race at …", "Work-group divergence detected" or "OCLGRIND FATAL ERROR".
        let report = result.output.lowercased()
        for problem in ["invalid read", "invalid write", "data race", "divergence", "oclgrind fatal", "oclgrind error"]
        {
            XCTAssertFalse(report.contains(problem), "Oclgrind found (\(variant)): \(problem)\n\(result.output)")
        }
    }
}
