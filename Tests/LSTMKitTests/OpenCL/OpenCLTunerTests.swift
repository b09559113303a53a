import Foundation
import XCTest

@_spi(Backend) @testable import LSTMCPU
@_spi(Backend) @testable import LSTMCore
@testable import LSTMData
@_spi(Backend) @testable import LSTMKit
@_spi(Backend) @testable import LSTMNN
@_spi(Backend) @testable import LSTMOpenCL
@testable import LSTMReference

/// The OpenCL step-kernel autotuner (`OpenCLStepVariant`, `OpenCLBackend.tune`): it times
/// every variant the device runs, keeps the faster per shape, and a forced variant wins.
final class OpenCLTunerTests: XCTestCase {
    /// A fresh backend on the test device that tunes (skips when LSTM_GPU_KERNEL_VARIANT
    /// forces a variant) and keeps nothing from earlier processes.
    func tunableBackend() throws -> OpenCLBackend {
        let shared = try requireOpenCL()
        try XCTSkipIf(
            ProcessInfo.processInfo.environment[OpenCLStepVariant.environmentVariable] != nil,
            "LSTM_GPU_KERNEL_VARIANT is set: nothing is tuned")
        let backend = try OpenCLBackend(info: shared.device)
        backend.tuningStore = OpenCLTuningStore(file: nil)
        return backend
    }

    func testTuningTimesEveryVariantAndKeepsTheFaster() throws {
        let backend = try tunableBackend()
        let shape = OpenCLStepShape(hiddenSize: 19, outputSize: 19, batch: 3)
        let tuning = try backend.tune(shape)
        XCTAssertEqual(tuning.reason, "timed")
        XCTAssertEqual(tuning.timings.map(\.variant), OpenCLStepVariant.allCases)
        let times = tuning.timings.compactMap(\.milliseconds)
        XCTAssertEqual(times.count, OpenCLStepVariant.allCases.count)
        XCTAssertTrue(times.allSatisfy { $0 > 0 && $0.isFinite }, "\(times)")
        let fastest = tuning.timings.min { $0.milliseconds! < $1.milliseconds! }!.variant
        XCTAssertEqual(tuning.chosen, fastest)
        XCTAssertEqual(backend.tunings[shape], tuning)
        let direction = DirectionShape(sequenceLength: 4, batch: 3, layerInputSize: 5, hiddenSize: 19, outputSize: 19)
        XCTAssertEqual(try backend.stepVariant(for: direction), fastest)
        // Nothing was being timed afterwards, and another shape is tuned on first use.
        XCTAssertNil(backend.variantUnderTest)
        let other = DirectionShape(sequenceLength: 2, batch: 2, layerInputSize: 3, hiddenSize: 7, outputSize: 5)
        _ = try backend.stepVariant(for: other)
        XCTAssertNotNil(backend.tunings[OpenCLStepShape(other)])
    }

    /// A later backend on the device reads what an earlier one chose, without timing; a corrupt
    /// file is ignored (with a warning) and replaced by the next tuning.
    func testTuningsPersistAndACorruptStoreIsIgnored() throws {
        let shared = try requireOpenCL()
        try XCTSkipIf(
            ProcessInfo.processInfo.environment[OpenCLStepVariant.environmentVariable] != nil,
            "LSTM_GPU_KERNEL_VARIANT is set: nothing is tuned")
        let file = try temporaryFolder() + "/tuning.json"
        let shape = OpenCLStepShape(hiddenSize: 9, outputSize: 9, batch: 2)
        let direction = DirectionShape(sequenceLength: 3, batch: 2, layerInputSize: 4, hiddenSize: 9, outputSize: 9)
        let first = try OpenCLBackend(info: shared.device)
        first.tuningStore = OpenCLTuningStore(file: file)
        let tuning = try first.tune(shape)
        XCTAssertTrue(FileManager.default.fileExists(atPath: file))
        let second = try OpenCLBackend(info: shared.device)
        second.tuningStore = OpenCLTuningStore(file: file)
        XCTAssertEqual(try second.stepVariant(for: direction), tuning.chosen)
        XCTAssertEqual(second.tunings[shape]?.reason, "cached")
        XCTAssertEqual(second.tunings[shape]?.timings, tuning.timings)

        for garbage in [
            "{not json", #"{"format":"other/9","steps":[]}"#,
            #"{"format":"lstm-gpu-tuning/1","steps":[{"shape":{"hiddenSize":4,"outputSize":9,"batch":1},"timings":[],"chosen":"split","reason":"timed"}]}"#,
        ] {
            try garbage.write(toFile: file, atomically: true, encoding: .utf8)
            XCTAssertEqual(OpenCLTuningStore(file: file).load(), OpenCLTuningStore.Contents(), garbage)
            let third = try OpenCLBackend(info: shared.device)
            third.tuningStore = OpenCLTuningStore(file: file)
            _ = try third.stepVariant(for: direction)
            XCTAssertEqual(third.tunings[shape]?.reason, "timed", garbage)
            XCTAssertEqual(OpenCLTuningStore(file: file).load().steps.map(\.shape), [shape], "replaced")
        }
        // A FIFO or a folder at the path is ignored (never opened for reading: that would block).
        let fifo = try temporaryFolder() + "/tuning.json"
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        XCTAssertEqual(OpenCLTuningStore(file: fifo).load(), OpenCLTuningStore.Contents())
        let folder = try temporaryFolder()
        XCTAssertEqual(OpenCLTuningStore(file: folder).load(), OpenCLTuningStore.Contents())
    }

    /// A shape too large to time (timing makes a second model of it; 8 TB here) still gets a variant.
    func testAShapeTooLargeToTimeFallsBackWithoutFailing() throws {
        let backend = try tunableBackend()
        let huge = DirectionShape(
            sequenceLength: 1, batch: 1, layerInputSize: 1, hiddenSize: 500_000, outputSize: 500_000)
        XCTAssertEqual(try backend.stepVariant(for: huge), .split)
        let tuning = try XCTUnwrap(backend.tunings[OpenCLStepShape(huge)])
        XCTAssertTrue(tuning.reason.hasPrefix("untimed"), tuning.reason)
        XCTAssertNil(backend.variantUnderTest)
    }

    func testAForcedVariantIsReportedWithoutTiming() throws {
        let shared = try requireOpenCL()
        for variant in OpenCLStepVariant.allCases {
            let backend = try OpenCLBackend(info: shared.device, stepVariant: variant)
            let tuning = try backend.tune(OpenCLStepShape(hiddenSize: 8, outputSize: 8, batch: 2))
            XCTAssertEqual(tuning.chosen, variant)
            XCTAssertEqual(tuning.reason, "forced")
            XCTAssertTrue(backend.tunings.isEmpty)
        }
    }

    func testTheVariableIsReadOrRefusedByName() throws {
        XCTAssertEqual(try OpenCLStepVariant.forced("split").get(), .split)
        XCTAssertEqual(try OpenCLStepVariant.forced("classic").get(), .classic)
        XCTAssertNil(try OpenCLStepVariant.forced("auto").get())
        XCTAssertNil(try OpenCLStepVariant.forced(nil).get())
        guard case .failure(let error) = OpenCLStepVariant.forced("fast") else { return XCTFail("fast accepted") }
        XCTAssertTrue(error.localizedDescription.contains("LSTM_GPU_KERNEL_VARIANT=fast"), error.localizedDescription)
        XCTAssertTrue(error.localizedDescription.contains("classic, split"), error.localizedDescription)
        // The command refuses it at start, before any work, with exit code 2.
        try requireLSTMGPU()
        let result = try runProcess(
            lstmGPUExecutable.path, ["devices"], environment: ["LSTM_GPU_KERNEL_VARIANT": "fast"])
        XCTAssertEqual(result.status, 2, result.output)
        XCTAssertTrue(result.output.contains("LSTM_GPU_KERNEL_VARIANT=fast"), result.output)
        // A value with a control character is shown escaped; help and --version still answer.
        guard case .failure(let escaped) = OpenCLStepVariant.forced("split\nx") else { return XCTFail("accepted") }
        XCTAssertTrue(escaped.localizedDescription.contains(#"LSTM_GPU_KERNEL_VARIANT="split\nx""#), "\(escaped)")
        for arguments in [["--help"], ["tune", "--help"], ["--version"]] {
            let answer = try runProcess(
                lstmGPUExecutable.path, arguments, environment: ["LSTM_GPU_KERNEL_VARIANT": "fast"])
            XCTAssertEqual(answer.status, 0, "\(arguments): \(answer.output)")
        }
    }
}
