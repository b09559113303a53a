import Foundation
import XCTest

@testable import LSTMCPU
@testable import LSTMCore
@testable import LSTMData
@testable import LSTMKit
@testable import LSTMNN
@testable import LSTMOpenCL
@testable import LSTMReference

// Running the built programs (lstm-gpu, swiftc) as a user would, from any test.

/// The `lstm-gpu` built beside the test bundle (`LSTM_GPU_EXECUTABLE` names another, e.g. an
/// older build to show that a test catches what it was written for).
var lstmGPUExecutable: URL {
    if let path = ProcessInfo.processInfo.environment["LSTM_GPU_EXECUTABLE"] { return URL(fileURLWithPath: path) }
    var folder = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    while folder.pathExtension == "xctest" || folder.lastPathComponent == "Contents"
        || folder.lastPathComponent == "MacOS"
    {
        folder = folder.deletingLastPathComponent()
    }
    return folder.appendingPathComponent("lstm-gpu")
}

/// Skips the calling test when `lstm-gpu` is not built (`lstmGPUExecutable`).
func requireLSTMGPU() throws {
    try XCTSkipUnless(
        FileManager.default.isExecutableFile(atPath: lstmGPUExecutable.path),
        "lstm-gpu not built at \(lstmGPUExecutable.path)")
}

/// Runs a program to completion; returns its status and its output (stdout and stderr).
/// `environment` is added to this process's environment, after the variables in `removing` are taken out.
func runProcess(
    _ path: String, _ arguments: [String], environment: [String: String] = [:], removing: [String] = [],
    directory: String? = nil
) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    process.arguments = arguments
    if !environment.isEmpty || !removing.isEmpty {
        var merged = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        for name in removing where environment[name] == nil { merged[name] = nil }
        process.environment = merged
    }
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

func temporaryPath(_ name: String) -> String {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("fit-tests-\(getpid())")
    try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    return folder.appendingPathComponent(name).path
}

/// Runs `executable` under a 20 s time limit and a 4 GiB address-space limit.
func runLimited(
    _ executable: String, _ arguments: [String]
) throws -> (status: Int32, signal: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/sh")
    process.arguments = ["-c", "ulimit -v 4194304; exec timeout -s KILL 20 \"$0\" \"$@\"", executable] + arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    if process.terminationReason == .uncaughtSignal { return (0, process.terminationStatus, output) }
    // `timeout -s KILL` reports a killed child as 128 + 9; a child's own signal as 128 + N.
    let status = process.terminationStatus
    return status > 128 ? (0, status - 128, output) : (status, 0, output)
}
