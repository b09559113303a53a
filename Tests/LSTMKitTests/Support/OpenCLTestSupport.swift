import Foundation
import XCTest

@testable import LSTMCPU
@testable import LSTMCore
@testable import LSTMData
@testable import LSTMKit
@testable import LSTMNN
@testable import LSTMOpenCL
@testable import LSTMReference

/// Skips the calling test when no OpenCL platform exists, unless LSTM_GPU_REQUIRE_DEVICE=1
/// makes that a failure. Returns the backend the tests use (LSTM_GPU_DEVICE picks it).
func requireOpenCL(file: StaticString = #filePath, line: UInt = #line) throws -> OpenCLBackend {
    let devices = try OpenCLDevices.all()
    if devices.isEmpty {
        if ProcessInfo.processInfo.environment["LSTM_GPU_REQUIRE_DEVICE"] == "1" {
            XCTFail("LSTM_GPU_REQUIRE_DEVICE=1 but no OpenCL platform was found", file: file, line: line)
            throw XCTSkip("no OpenCL device (failure recorded)")
        }
        throw XCTSkip("no OpenCL platform on this machine (set LSTM_GPU_REQUIRE_DEVICE=1 to fail instead)")
    }
    return try OpenCLBackend.shared()
}
