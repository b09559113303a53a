import Foundation
import XCTest

@testable import LSTMCPU
@testable import LSTMCore
@testable import LSTMData
@testable import LSTMKit
@testable import LSTMNN
@testable import LSTMOpenCL
@testable import LSTMReference

/// The package's root folder (this file is Tests/LSTMKitTests/Support/TestSupport.swift).
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()

/// The committed parity fixtures: Tests/LSTMKitTests/Fixtures.
let fixtureFolder = packageRoot.appendingPathComponent("Tests/LSTMKitTests/Fixtures").path

func fixturePaths() throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: fixtureFolder)
        .filter { $0.hasSuffix(".safetensors") }.sorted().map { fixtureFolder + "/" + $0 }
}

/// A fresh empty folder for one test.
func temporaryFolder() throws -> String {
    let path = NSTemporaryDirectory() + "lstm-gpu-tests-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

func randomTensor(_ shape: [Int], seed: UInt64, scale: Float = 1) -> Tensor {
    var generator = SeededGenerator(seed: seed)
    return Tensor(uniform: shape, low: -scale, high: scale, generator: &generator)
}

/// Asserts that `body` throws an `LSTMError` whose description contains every one of `fragments`.
func assertThrows(_ fragments: [String], file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void)
{
    do {
        try body()
        XCTFail("expected an error mentioning \(fragments)", file: file, line: line)
    } catch let error as LSTMError {
        for fragment in fragments where !error.description.contains(fragment) {
            XCTFail("error '\(error.description)' does not mention '\(fragment)'", file: file, line: line)
        }
    } catch {
        XCTFail("expected an LSTMError, got \(error)", file: file, line: line)
    }
}

/// Prints and asserts the element-wise comparison, llm.c style.
func assertClose(
    _ ours: Tensor, _ reference: Tensor, _ name: String, tolerance: Tolerance,
    file: StaticString = #filePath, line: UInt = #line
) {
    let row = compare(name, ours: ours, reference: reference, tolerance: tolerance)
    print("  \(name): max abs diff \(row.maxAbsolute)\(row.passed ? "" : " FAIL (\(row.failures) elements)")")
    XCTAssertTrue(
        row.passed, "\(name): \(row.failures) of \(row.count) elements differ, max abs \(row.maxAbsolute)",
        file: file, line: line)
}

/// One configuration of the randomised parity tests: the model, T, B, per-sequence lengths
/// (nil: all T) and whether h0/c0 are given.
struct ParityCase: CustomStringConvertible {
    var configuration: LSTMConfiguration
    var sequenceLength: Int, batch: Int
    var lengths: [Int]?
    var givenState: Bool
    var description: String {
        let c = configuration
        return "I=\(c.inputSize) H=\(c.hiddenSize) L=\(c.numLayers) D=\(c.numDirections) P=\(c.projectionSize)"
            + " bias=\(c.bias) batchFirst=\(c.batchFirst) dropout=\(c.dropout) T=\(sequenceLength) B=\(batch)"
            + " lengths=\(lengths.map { "\($0)" } ?? "nil") h0c0=\(givenState)"
            + (c.cellOptions.isPlain ? "" : " \(c.cellOptions)") + (c.reverse ? " reverse" : "")
    }
}
