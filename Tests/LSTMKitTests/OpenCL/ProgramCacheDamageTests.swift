import Foundation
import XCTest

@testable import LSTMOpenCL

/// A damaged program-binary cache never reaches the driver: every file carries its key,
/// length and hash, and one that does not match is rebuilt (a damaged binary crashed PoCL,
/// and a binary copied under another name failed with CL_INVALID_KERNEL_NAME until deleted).
final class ProgramCacheDamageTests: XCTestCase {
    func testTheHeaderRefusesEveryDamage() {
        let binary: [UInt8] = Array(0..<200).map { UInt8($0 % 251) }
        let key = ProgramBinaryCache.hash("device\u{1}source"), other = ProgramBinaryCache.hash("other")
        let file = ProgramBinaryCache.wrap(binary, key: key)
        XCTAssertEqual(ProgramBinaryCache.unwrap(file, key: key), binary)
        XCTAssertNil(ProgramBinaryCache.unwrap(file, key: other), "a binary stored under another key")
        XCTAssertNil(ProgramBinaryCache.unwrap(Array(file.dropLast(1)), key: key), "truncated")
        XCTAssertNil(ProgramBinaryCache.unwrap(file + [0], key: key), "grown")
        var flipped = file
        flipped[file.count - 50] ^= 0x10
        XCTAssertNil(ProgramBinaryCache.unwrap(flipped, key: key), "a byte of the binary overwritten")
        XCTAssertNil(ProgramBinaryCache.unwrap(binary, key: key), "a raw binary of the old format")
        XCTAssertNil(ProgramBinaryCache.unwrap([], key: key))
    }

    /// Through the command, on the OpenCL device: damaged, truncated and swapped cache files.
    func testDamagedCacheFilesAreRebuiltNotCrashed() throws {
        _ = try requireOpenCL()
        try requireLSTMGPU()
        let cache = try temporaryFolder()
        let fixture = fixtureFolder + "/basic.safetensors"
        func check() throws -> (status: Int32, output: String) {
            try runProcess(
                lstmGPUExecutable.path, ["check", fixture, "--backend", "opencl", "--quiet"],
                environment: ["LSTM_GPU_KERNEL_CACHE": cache])
        }
        let first = try check()
        XCTAssertEqual(first.status, 0, first.output)
        let fm = FileManager.default
        let files = try fm.contentsOfDirectory(atPath: cache).filter { $0.hasSuffix(".bin") }.sorted()
            .map { cache + "/" + $0 }
        XCTAssertGreaterThanOrEqual(files.count, 2, "the first run stored its programs")
        let originals = try files.map { try Data(contentsOf: URL(fileURLWithPath: $0)) }
        let damages: [(String, (Data) -> Data)] = [
            ("truncated", { $0.prefix($0.count / 2) }),
            (
                "overwritten",
                { data in
                    var d = data
                    for i in stride(from: 100, to: d.count, by: 97) { d[i] ^= 0xFF }
                    return d
                }
            ),
            ("emptied", { _ in Data() }),
        ]
        for (name, damage) in damages {
            for (path, original) in zip(files, originals) { try damage(original).write(to: URL(fileURLWithPath: path)) }
            let run = try check()
            XCTAssertEqual(run.status, 0, "\(name): \(run.output)")
            XCTAssertTrue(run.output.contains("PASS"), "\(name): \(run.output)")
            // Rebuilt and stored again: each file is whole once more, under its own key.
            for path in files {
                let key = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
                let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
                XCTAssertNotNil(ProgramBinaryCache.unwrap(bytes, key: key), "\(name): \(path) was not stored again")
            }
        }
        // Binaries swapped between cache names.
        try originals[1].write(to: URL(fileURLWithPath: files[0]))
        try originals[0].write(to: URL(fileURLWithPath: files[1]))
        let swapped = try check()
        XCTAssertEqual(swapped.status, 0, swapped.output)
        XCTAssertFalse(swapped.output.contains("CL_INVALID_KERNEL_NAME"), swapped.output)
    }
}
