import Foundation
import XCTest

@testable import LSTMCPU
@testable import LSTMCore
@testable import LSTMData
@testable import LSTMKit
@testable import LSTMNN
@testable import LSTMOpenCL
@testable import LSTMReference

/// OpenCL failures a user can act on.
final class OpenCLErrorTests: XCTestCase {
    func testUnknownDevicesAreNamed() throws {
        let backend = try requireOpenCL()
        let count = try OpenCLDevices.all().count
        assertThrows(["device index \(count + 3) does not exist", backend.device.name]) {
            _ = try OpenCLDevices.select("\(count + 3)")
        }
        assertThrows(["no device name contains 'no-such-gpu'"]) { _ = try OpenCLDevices.select("no-such-gpu") }
        assertThrows(["device index 99 does not exist"]) {
            _ = try LSTM(LSTMConfiguration(inputSize: 2, hiddenSize: 3), backend: .opencl, device: "99")
        }
    }

    func testProblemsTooLargeForTheDeviceSaySo() throws {
        let backend = try requireOpenCL()
        assertThrows(["out of memory on", backend.device.name, "needs 4.00 TiB"]) {
            _ = try backend.makeBuffer(count: 1 << 40)
        }
        // A size the 32-bit kernel arguments cannot hold is refused, never truncated.
        let small = try backend.makeBuffer(count: 4)
        assertThrows(["kernel multiply argument 0 is 1099511627776", "outside the 32-bit range"]) {
            try backend.launch(
                "multiply", in: .training, global: [4], [.int(1 << 40), .buffer(small), .buffer(small), .buffer(small)])
        }
        let lstm = try LSTM(
            LSTMConfiguration(inputSize: 4, hiddenSize: 8), backend: .opencl, device: "\(backend.device.index)")
        // T·B·4H floats of gates alone exceed any device; the check happens before allocating.
        let stack = try LSTMStack(
            configuration: lstm.configuration, backend: backend,
            weights: LSTM.initialWeights(lstm.configuration, seed: 1))
        assertThrows(["out of memory on", "T = 1000000, B = 2048", "there are"]) {
            _ = try stack.forward(input: try backend.makeBuffer(count: 1), sequenceLength: 1_000_000, batch: 2048)
        }
        // Beyond 2³¹ − 1 rows the 32-bit interfaces refuse first.
        assertThrows(["T·B = 1000000000·4096 rows exceed 2^31 − 1"]) {
            _ = try stack.forward(input: try backend.makeBuffer(count: 1), sequenceLength: 1_000_000_000, batch: 4096)
        }
        assertThrows(["out of memory on", "initialising"]) {
            _ = try LSTM(LSTMConfiguration(inputSize: 1 << 20, hiddenSize: 1 << 20), backend: .opencl)
        }
    }

    func testKernelBuildFailuresCarryTheBuildLog() throws {
        let backend = try requireOpenCL()
        assertThrows(["broken.cl", "failed to build", "build log", "undeclared_thing"]) {
            try backend.buildProgram(
                named: "broken.cl", source: "__kernel void k(__global float* x) { x[0] = undeclared_thing; }")
        }
    }

    func testRefusedWorkGroupSizesAreExplained() throws {
        let backend = try requireOpenCL()
        let tooMany = backend.device.maxWorkGroupSize * 2
        assertThrows(["kernel transpose needs a work-group of \(tooMany) items", "allows"]) {
            let src = try backend.makeBuffer(count: 4), dst = try backend.makeBuffer(count: 4)
            try backend.launch(
                "transpose", in: .tensorOps, global: [tooMany], local: [tooMany],
                [.int(2), .int(2), .buffer(src), .buffer(dst)])
        }
    }

    /// Contexts, queues, programs and buffers are released: building and dropping backends
    /// in a loop does not grow the process.
    func testCreatingAndDroppingContextsDoesNotLeak() throws {
        let info = try requireOpenCL().device
        func residentBytes() -> Int {
            let fields = (try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8))?.split(separator: " ") ?? []
            return fields.count > 1 ? (Int(fields[1]) ?? 0) * 4096 : 0
        }
        func cycle() throws {
            let backend = try OpenCLBackend(info: info)
            let buffer = try backend.makeBuffer(count: 1 << 20)
            try backend.write([Float](repeating: 1, count: 16), to: buffer, offset: 0)
            _ = try backend.transposed(buffer, rows: 1024, columns: 1024)
            try backend.synchronize()
        }
        for _ in 0..<3 { try cycle() }
        let before = residentBytes()
        for _ in 0..<20 { try cycle() }
        let growth = residentBytes() - before
        print("resident memory growth over 20 context cycles: \(growth / 1024) KiB")
        // Each cycle allocates 8 MiB of buffers; leaking them would grow by 160 MiB.
        XCTAssertLessThan(growth, 24 << 20)
    }
}
