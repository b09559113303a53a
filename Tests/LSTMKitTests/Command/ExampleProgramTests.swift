import Foundation
import XCTest

/// The example programs parse their command lines with the option groups `lstm-gpu train
/// --task` uses: the same option names, bounds, messages and exit codes (64 for a usage error,
/// 2 for an input that cannot be used), checked before any data is read.
final class ExampleProgramTests: XCTestCase {
    func example(_ name: String) throws -> String {
        try requireLSTMGPU()
        let path = lstmGPUExecutable.deletingLastPathComponent().appendingPathComponent(name).path
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: path), "\(name) is not built")
        return path
    }

    func testUsageErrorsExit64WithTheSharedMessages() throws {
        let data = fixtureFolder + "/apps/sunspots.csv"
        let cases: [(String, [String], String)] = [
            ("forecaster", [data, "--validation-fraction", "2"], "--validation-fraction must be in [0, 1), got 2.0"),
            ("forecaster", [data, "--lr", "nan"], "--lr must be a finite number in 1e-30...1000000.0, got nan"),
            ("forecaster", [data, "--embedding", "8"], "--embedding is not an option of forecaster"),
            ("forecaster", [data, "--validation", "0.1"], "Unknown option '--validation'"),
            ("forecaster", [data, "--clip", "none"], "--clip"),
            ("forecaster", [data, "--test-fraction", "0"], "the test fraction (0.0) > 0"),
            ("digits-classifier", [data, "--layers", "2000"], "--layers must be in 1...1024, got 2000"),
            ("sentiment-classifier", [data, "--optimizer", "lion"], "--optimizer must be sgd, adam or adamw"),
            ("translator", [data, data, "--pooling", "max"], "--pooling is not an option of translator"),
            ("translator", [data, data, "--peephole"], "the cell options are not options of translator"),
        ]
        for (program, arguments, message) in cases {
            let result = try runProcess(try example(program), arguments)
            XCTAssertEqual(result.status, 64, "\(program) \(arguments): \(result.output)")
            XCTAssertTrue(result.output.contains(message), "\(program) \(arguments): \(result.output)")
        }
    }

    func testAnUnusableFileExits2() throws {
        let result = try runProcess(try example("forecaster"), ["/no/such/series.csv", "--epochs", "1"])
        XCTAssertEqual(result.status, 2, result.output)
        XCTAssertTrue(result.output.contains("forecaster: error: /no/such/series.csv"), result.output)
    }
}
