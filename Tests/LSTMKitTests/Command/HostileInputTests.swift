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

/// Issue classes of hostile input: sizes, checkpoints, output paths, messages, replicas.
final class HostileInputTests: XCTestCase {
    // MARK: sizes used before they are checked

    func testHugeShapesInAFileAreRefusedNotTrapped() throws {
        let folder = try temporaryFolder()
        let source = folder + "/lstm.safetensors", bad = folder + "/huge.safetensors"
        try LSTM(LSTMConfiguration(inputSize: 3, hiddenSize: 4), seed: 1).saveWeights(to: source)
        for shape in [[4_611_686_018_427_387_904], [1 << 31, 1 << 31, 4], [9_223_372_036_854_775_807]] {
            try rewriteHeader(source, to: bad) { header in
                var entry = header["weight_ih_l0"] as! [String: Any]
                entry["shape"] = shape
                header["weight_ih_l0"] = entry
            }
            assertThrows(["not a valid safetensors file", "weight_ih_l0"]) { _ = try LSTM(contentsOf: bad) }
        }
        try rewriteHeader(source, to: bad) { header in
            var entry = header["weight_ih_l0"] as! [String: Any]
            entry["data_offsets"] = [1e300, 2e300]
            header["weight_ih_l0"] = entry
        }
        assertThrows(["weight_ih_l0", "invalid data_offsets"]) { _ = try LSTM(contentsOf: bad) }
    }

    func testConfigurationLimitsAndMemoryAreChecked() throws {
        assertThrows(["numLayers is 100000000, above the limit of 1024"]) {
            try LSTMConfiguration(inputSize: 2, hiddenSize: 2, numLayers: 100_000_000).validate()
        }
        assertThrows(["hiddenSize must be at least 1, got -3"]) {
            try LSTMConfiguration(inputSize: 2, hiddenSize: -3).validate()
        }
        assertThrows(["hiddenSize is 100000000, above the limit"]) {
            _ = try LSTM(LSTMConfiguration(inputSize: 2, hiddenSize: 100_000_000))
        }
        // 4·H·(I + H) floats for H = I = 2²⁴ cannot fit any host here: refused before allocating.
        assertThrows(["out of memory on host", "initialising"]) {
            _ = try LSTM(LSTMConfiguration(inputSize: 1 << 24, hiddenSize: 1 << 24))
        }
        assertThrows(["out of memory on host", "benchmark row"]) {
            _ = try runBenchmark(
                BenchmarkShape.parse("100000,100000,1000,1000"), backend: CPUBackend(), seconds: 0, maximumRuns: 1)
        }
        XCTAssertEqual(SizeLimits.saturatingProduct([1 << 40, 1 << 40]), Int.max, "sizes saturate instead of wrapping")
        XCTAssertEqual(SizeLimits.saturatingSum([Int.max, 1]), Int.max)
        assertThrows(["overflows"]) { _ = try SizeLimits.product([1 << 40, 1 << 40], "test") }
    }

    func testFixtureMetadataIsValidated() throws {
        let folder = try temporaryFolder()
        let bad = folder + "/bad.safetensors"
        for (key, value, fragment) in [
            ("num_layers", "100000000", "numLayers is 100000000"),
            ("hidden_size", "-1", "hiddenSize must be at least 1"),
            ("proj_size", "x", "metadata 'proj_size' is 'x', not an integer"),
            ("bidirectional", "maybe", "metadata 'bidirectional' is 'maybe'"),
        ] {
            try rewriteHeader(fixtureFolder + "/basic.safetensors", to: bad) { header in
                var metadata = header["__metadata__"] as! [String: Any]
                metadata[key] = value
                header["__metadata__"] = metadata
            }
            assertThrows([bad, fragment]) { _ = try Fixture(contentsOf: bad) }
        }
    }

    // MARK: checkpoints are untrusted

    func testCheckpointFieldsAndTensorsAreValidated() throws {
        let folder = try temporaryFolder()
        let good = folder + "/good.safetensors", bad = folder + "/bad.safetensors"
        try makeSmallCheckpoint(good)
        func resume() throws { try makeSmallCheckpoint(folder + "/other.safetensors").resume(from: bad) }
        func edit(_ change: @escaping (inout [String: Any], inout [String: Any]) -> Void) throws {
            try rewriteHeader(good, to: bad) { header in
                var metadata = header["__metadata__"] as! [String: Any]
                change(&header, &metadata)
                header["__metadata__"] = metadata
            }
        }
        // An optimiser state of the wrong size (it reached the Adam update out of bounds).
        try edit { header, _ in
            var entry = header["optimizer.head.bias.m"] as! [String: Any]
            let bias = (entry["shape"] as! [Int])[0]
            entry["shape"] = [bias / 2, 2]
            header["optimizer.head.bias.m"] = entry
        }
        XCTAssertThrowsError(try resume()) { XCTAssertTrue("\($0)".contains("optimizer.head.bias.m"), "\($0)") }
        try edit { header, _ in  // an optimiser tensor of an unknown key
            header["optimizer.head.bias.zz"] = header.removeValue(forKey: "optimizer.head.bias.m")
        }
        XCTAssertThrowsError(try resume()) { XCTAssertTrue("\($0)".contains("optimizer.head.bias.zz"), "\($0)") }
        try edit { header, _ in  // a carried state of the wrong shape
            var entry = header["train.state.cell"] as! [String: Any]
            entry["shape"] = [1, 4, 4]
            header["train.state.cell"] = entry
        }
        XCTAssertThrowsError(try resume()) { XCTAssertTrue("\($0)".contains("train.state.cell"), "\($0)") }
        for (key, value, fragment) in [
            ("step", "-1", "'step' is '-1'"), ("chunk", "-5", "'chunk' is '-5'"),
            ("chunk", "99999", "past the"), ("epoch", "x", "'epoch' is 'x'"),
            ("optimizer_step", "", "'optimizer_step' is ''"),
        ] {
            try edit { _, metadata in metadata[key] = value }
            XCTAssertThrowsError(try resume(), key) { XCTAssertTrue("\($0)".contains(fragment), "\($0)") }
        }
        // A vocabulary shorter than the model's output.
        try edit { _, metadata in metadata["vocabulary"] = "[\"a\",\"b\"]" }
        assertThrows(["'vocabulary' has 2 symbols but the model's output has"]) {
            _ = try Checkpoint.loadModel(bad, backend: CPUBackend())
        }
        try edit { _, metadata in metadata["vocabulary"] = "[\"a\",\"a\"]" }
        assertThrows(["repeats a character"]) { _ = try Checkpoint.loadModel(bad, backend: CPUBackend()) }
        try edit { _, metadata in
            metadata["model"] =
                "{\"vocabularySize\": 30, \"embeddingSize\": 4, \"hiddenSize\": 8, \"layers\": 100000000, "
                + "\"dropout\": 0}"
        }
        assertThrows(["'model' is invalid", "numLayers is 100000000"]) {
            _ = try Checkpoint.loadModel(bad, backend: CPUBackend())
        }
        // A state_dict is not a checkpoint, and says so.
        try LSTM(LSTMConfiguration(inputSize: 2, hiddenSize: 3), seed: 1).saveWeights(to: bad)
        assertThrows(["not an lstm-gpu train checkpoint", "PyTorch state_dict"]) {
            _ = try Checkpoint.loadModel(bad, backend: CPUBackend())
        }
    }

    func testNonFiniteCheckpointStopsAsDivergence() throws {
        let folder = try temporaryFolder()
        let path = folder + "/nan.safetensors"
        let trainer = try makeSmallCheckpoint(path)
        var weights = try trainer.model.parameterTensors()
        weights["lstm.weight_hh_l0"]!.scalars[3] = .nan
        try trainer.model.load(weights, source: "test")
        // Writing refuses NaN weights (naming the tensor), so a checkpoint on disk stays good.
        XCTAssertThrowsError(try trainer.saveCheckpoint(to: folder + "/other.safetensors")) { error in
            XCTAssertTrue("\(error)".contains("weight 'lstm.weight_hh_l0'"), "\(error)")
            XCTAssertEqual((error as? TrainingError)?.isDivergence, true)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/other.safetensors"))
        // A step on NaN weights stops with the step named, before any update.
        XCTAssertThrowsError(try trainer.trainStep()) { error in
            XCTAssertTrue("\(error)".contains("step 3"), "\(error)")
            XCTAssertEqual((error as? TrainingError)?.isDivergence, true)
        }
        // A checkpoint holding NaN (written by something else) is refused on resume.
        try rewriteNaN(into: path, tensor: "head.bias")
        XCTAssertThrowsError(try makeSmallCheckpoint(folder + "/third.safetensors").resume(from: path)) { error in
            XCTAssertTrue("\(error)".contains("'head.bias'") && "\(error)".contains("step 2"), "\(error)")
            XCTAssertEqual((error as? TrainingError)?.isDivergence, true)
        }
    }

    /// Every tensor of a checkpoint is checked for NaN/±Inf, the optimiser state and carried
    /// state too; `sample` refuses such a model; a different seed is another run.
    func testCheckpointStateAndSeedAreChecked() throws {
        let folder = try temporaryFolder()
        let path = folder + "/state.safetensors"
        try makeSmallCheckpoint(path)
        try rewriteNaN(into: path, tensor: "optimizer.head.bias.m")
        XCTAssertThrowsError(try makeSmallCheckpoint(folder + "/other.safetensors").resume(from: path)) { error in
            XCTAssertTrue("\(error)".contains("'optimizer.head.bias.m'"), "\(error)")
        }
        try makeSmallCheckpoint(path)
        try rewriteNaN(into: path, tensor: "head.weight")
        assertThrowsAny(["NaN or infinite values in 'head.weight'"]) {
            _ = try Checkpoint.loadModel(path, backend: CPUBackend())
        }
        try makeSmallCheckpoint(path)
        try rewriteHeader(path, to: folder + "/seed.safetensors") { header in
            var metadata = header["__metadata__"] as! [String: Any]
            metadata["seed"] = "99"
            header["__metadata__"] = metadata
        }
        XCTAssertThrowsError(
            try makeSmallCheckpoint(folder + "/other.safetensors").resume(from: folder + "/seed.safetensors")
        ) {
            XCTAssertTrue("\($0)".contains("trained with seed 99"), "\($0)")
        }
    }

    /// A run of more than 2³¹ − 1 rows (T·B) is refused: the BLAS and kernel interfaces are 32-bit.
    func testRowsBeyond32BitsAreRefused() throws {
        let configuration = LSTMConfiguration(inputSize: 2, hiddenSize: 3)
        let stack = try LSTMStack(
            configuration: configuration, backend: CPUBackend(), weights: LSTM.initialWeights(configuration, seed: 1))
        let input = try stack.backend.makeBuffer(count: 2)
        assertThrows(["T·B = 65536·65536 rows exceed 2^31 − 1"]) {
            _ = try stack.forward(input: input, sequenceLength: 65536, batch: 65536)
        }
    }

    // MARK: output paths

    func testOutputPathsAreCheckedAndLockedAndStaleTemporariesRemoved() throws {
        let folder = try temporaryFolder()
        assertThrows(["--checkpoint", "is a directory"]) { try prepareOutputPath(folder, option: "--checkpoint") }
        assertThrows(["--log", "is not a regular file"]) { try prepareOutputPath("/dev/null", option: "--log") }
        try prepareOutputPath(folder + "/new/sub/run.safetensors", option: "--checkpoint")
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder + "/new/sub"), "the folder is created")
        let readOnly = folder + "/ro"
        try FileManager.default.createDirectory(atPath: readOnly, withIntermediateDirectories: true)
        chmod(readOnly, 0o500)
        defer { chmod(readOnly, 0o700) }
        if getuid() != 0 {  // root writes anywhere: the probe cannot fail there
            assertThrows(["cannot write in"]) {
                try prepareOutputPath(readOnly + "/x.safetensors", option: "--checkpoint")
            }
        }

        let path = folder + "/run.safetensors"
        let lock = try FileLock(for: path, what: "checkpoint")
        assertThrows(["checkpoint \(path) is in use by process \(getpid())"]) {
            _ = try FileLock(for: path, what: "checkpoint")
        }
        withExtendedLifetime(lock) {}

        // A temporary file of a writer that died (no such PID) is removed by the next write;
        // one of a live process (this one) is left alone.
        let stale = folder + "/.run.safetensors.tmp-2147483646-7", live = folder + "/.run.safetensors.tmp-\(getpid())-7"
        XCTAssertTrue(FileManager.default.createFile(atPath: stale, contents: Data([1])))
        XCTAssertTrue(FileManager.default.createFile(atPath: live, contents: Data([1])))
        try writeAtomically(Data([1, 2, 3]), to: path)
        XCTAssertFalse(FileManager.default.fileExists(atPath: stale))
        XCTAssertTrue(FileManager.default.fileExists(atPath: live))
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), Data([1, 2, 3]))
    }

    // MARK: messages

    func testDirectoriesFIFOsAndBinaryFilesAreNamedForWhatTheyAre() throws {
        let folder = try temporaryFolder()
        assertThrows([folder, "is a directory"]) { _ = try LSTM(contentsOf: folder) }
        assertThrows([folder, "is a directory"]) { _ = try Fixture(contentsOf: folder) }
        let fifo = folder + "/pipe.safetensors"
        XCTAssertEqual(mkfifo(fifo, 0o644), 0)
        assertThrows([fifo, "is not a regular file"]) { _ = try LSTM(contentsOf: fifo) }  // must not block
        assertThrows(["/dev/zero", "is not a regular file"]) { _ = try SafeTensorsFile(contentsOf: "/dev/zero") }
        assertThrows(["nosuch.safetensors: no such file"]) { _ = try SafeTensorsFile(contentsOf: "nosuch.safetensors") }
        let binary = folder + "/binary.txt", latin1 = folder + "/latin1.txt"
        try Data([0x61, 0x62, 0x00, 0x63]).write(to: URL(fileURLWithPath: binary))
        try Data([0x61, 0x62, 0xE9, 0x63]).write(to: URL(fileURLWithPath: latin1))
        assertThrows(["NUL byte at offset 2", "binary"]) { _ = try readTextFile(binary) }
        assertThrows(["not UTF-8 text", "offset 2"]) { _ = try readTextFile(latin1) }
        XCTAssertEqual(try readTextFile(fixtureFolder + "/../Command/HostileInputTests.swift").prefix(6), "import")
    }

    func testParityRowsTreatNaNAndInfinityAsPyTorchDoes() throws {
        let reference = try Tensor(shape: [4], scalars: [.nan, .infinity, 1, 2])
        let same = compare("t", ours: reference, reference: reference, tolerance: .outputs)
        XCTAssertTrue(same.passed, "NaN where the reference has NaN and equal infinities agree")
        XCTAssertEqual(same.maxAbsolute, 0)
        let wrong = compare(
            "t", ours: try Tensor(shape: [4], scalars: [.nan, .infinity, .nan, 2.000001]), reference: reference,
            tolerance: .outputs)
        XCTAssertEqual(wrong.failures, 1)
        XCTAssertTrue(wrong.maxAbsolute.isNaN, "a NaN failure must not report a small max abs diff")
    }

    // MARK: replicas

    func testReplicasStartedWithDifferentOptionsAreRefusedByName() throws {
        let group = InProcessReducerGroup(size: 3)
        let errors = UnsafeSendableBox(Array<String?>(repeating: nil, count: 3))
        let done = DispatchGroup()
        for rank in 0..<3 {  // one thread per replica: each call is a rendezvous of all three
            done.enter()
            Thread {
                let fields = [
                    ("--steps", "10"), ("--checkpoint-every", rank == 2 ? "100" : "200"), ("--eval-every", "0"),
                ]
                do { try group.reducer(rank: rank).requireAgreement(on: fields) } catch { errors.set(rank, "\(error)") }
                done.leave()
            }.start()
        }
        XCTAssertEqual(done.wait(timeout: .now() + 60), .success)
        for rank in 0..<3 {
            let message = try XCTUnwrap(errors.value[rank], "rank \(rank) must refuse too")
            XCTAssertTrue(message.contains("--checkpoint-every"), message)
            XCTAssertFalse(message.contains("--steps"), message)
        }
    }
}

/// Asserts that `body` throws any error whose description contains every fragment.
func assertThrowsAny(
    _ fragments: [String], file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void
) {
    do {
        try body()
        XCTFail("expected an error mentioning \(fragments)", file: file, line: line)
    } catch {
        for fragment in fragments where !"\(error)".contains(fragment) {
            XCTFail("error '\(error)' does not mention '\(fragment)'", file: file, line: line)
        }
    }
}

/// A lock-protected array for results written from several threads.
final class UnsafeSendableBox<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [T?]
    init(_ values: [T?]) { self.values = values }
    func set(_ index: Int, _ value: T) { lock.lock(); values[index] = value; lock.unlock() }
    var value: [T?] { lock.lock(); defer { lock.unlock() }; return values }
}
