import Foundation
import XCTest

@testable import LSTMCPU
@testable import LSTMCore
@testable import LSTMKit
@testable import LSTMNN

/// `lstm-gpu quantize`, `run --precision`, `run --chunk` and `inspect` on quantized files, as a
/// user runs them.
final class QuantizeCommandTests: XCTestCase {
    func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try runProcess(lstmGPUExecutable.path, arguments)
    }

    func testQuantizeRunAndInspect() throws {
        try requireLSTMGPU()
        let folder = try temporaryFolder()
        let c = LSTMConfiguration(inputSize: 6, hiddenSize: 24, numLayers: 2)
        let model = try LSTM(c, seed: 2)
        try model.saveWeights(to: folder + "/lstm.safetensors")
        let x = randomTensor([9, 2, 6], seed: 3)
        try SafeTensorsFile.write(
            [("input", .float32(x)), ("lengths", .int64(shape: [2], values: [9, 5]))], to: folder + "/in.safetensors")
        let quantize = try run([
            "quantize", folder + "/lstm.safetensors", "--to", "int8", "--output", folder + "/int8.safetensors",
        ])
        XCTAssertEqual(quantize.status, 0, quantize.output)
        XCTAssertTrue(quantize.output.contains("in int8") && quantize.output.contains("bytes"), quantize.output)
        let inspect = try run(["inspect", folder + "/int8.safetensors"])
        XCTAssertEqual(inspect.status, 0, inspect.output)
        XCTAssertTrue(inspect.output.contains("LSTM weights in int8 (inference only)"), inspect.output)

        // The stored int8 model, the float32 one run in int8, and a stream of 2 steps: the same numbers.
        let outputs = [
            ("stored", [folder + "/int8.safetensors"]),
            ("on-load", [folder + "/lstm.safetensors", "--precision", "int8"]),
            ("streamed", [folder + "/int8.safetensors", "--chunk", "2"]),
        ]
        var results: [String: Tensor] = [:]
        for (name, arguments) in outputs {
            let path = folder + "/out-\(name).safetensors"
            let result = try run(["run"] + arguments + ["--input", folder + "/in.safetensors", "--output", path])
            XCTAssertEqual(result.status, 0, result.output)
            XCTAssertTrue(result.output.contains("in int8"), result.output)
            results[name] = try SafeTensorsFile(contentsOf: path).floatTensor("output")
        }
        XCTAssertEqual(results["stored"], results["on-load"])
        XCTAssertEqual(results["stored"], results["streamed"])
        let expected = try model.quantized(.int8).forward(x, lengths: [9, 5]).output
        XCTAssertEqual(results["stored"], expected)

        // Refusals: a second quantization, another precision than the stored one, OpenCL, fp32.
        let twice = try run([
            "quantize", folder + "/int8.safetensors", "--to", "bf16", "--output", folder + "/x.safetensors",
        ])
        XCTAssertEqual(twice.status, 2, twice.output)
        XCTAssertTrue(twice.output.contains("already stored in int8"), twice.output)
        let other = try run([
            "run", folder + "/int8.safetensors", "--precision", "bf16", "--input", folder + "/in.safetensors",
            "--output", folder + "/x.safetensors",
        ])
        XCTAssertEqual(other.status, 64, other.output)
        XCTAssertTrue(other.output.contains("stored in int8 and runs in int8 only"), other.output)
        let opencl = try run([
            "run", folder + "/lstm.safetensors", "--precision", "int8", "--backend", "opencl", "--input",
            folder + "/in.safetensors", "--output", folder + "/x.safetensors",
        ])
        XCTAssertEqual(opencl.status, 64, opencl.output)
        XCTAssertTrue(opencl.output.contains("OpenCL computes in fp32 only"), opencl.output)
        let same = try run([
            "quantize", folder + "/lstm.safetensors", "--to", "fp32", "--output", folder + "/x.safetensors",
        ])
        XCTAssertEqual(same.status, 64, same.output)
        let overwrite = try run([
            "quantize", folder + "/lstm.safetensors", "--to", "int8", "--output", folder + "/lstm.safetensors",
        ])
        XCTAssertEqual(overwrite.status, 2, overwrite.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/x.safetensors"), "refusals write nothing")
    }

    /// `--prefix`: the LSTM of a larger state_dict is quantized, its other tensors and metadata kept.
    func testQuantizeWithAPrefixKeepsTheRest() throws {
        try requireLSTMGPU()
        let folder = try temporaryFolder()
        let model = try LSTM(LSTMConfiguration(inputSize: 4, hiddenSize: 16), seed: 3)
        var entries = try model.weightEntries(prefix: "lstm.")
        let head = randomTensor([2, 16], seed: 4)
        entries.append(("fc.weight", .float32(head)))
        entries.append(("steps", .int64(shape: [1], values: [7])))
        try SafeTensorsFile.write(entries, metadata: ["note": "mine"], to: folder + "/all.safetensors")
        let result = try run([
            "quantize", folder + "/all.safetensors", "--prefix", "lstm.", "--to", "int8", "--output",
            folder + "/all8.safetensors",
        ])
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(result.output.contains("2 other tensors kept"), result.output)
        let file = try SafeTensorsFile(contentsOf: folder + "/all8.safetensors")
        XCTAssertEqual(try file.floatTensor("fc.weight"), head)
        XCTAssertEqual(try file.intTensor("steps").values, [7])
        XCTAssertEqual(file.metadata["note"], "mine")
        XCTAssertEqual(try LSTM(contentsOf: folder + "/all8.safetensors", prefix: "lstm.").precision, .int8)
    }

    func testQuantizeModelFilesAndRefuseCheckpoints() throws {
        try requireLSTMGPU()
        let folder = try temporaryFolder()
        let model = try countingModel(CPUBackend())
        try model.save(to: folder + "/model.safetensors", metadata: ["lstm_gpu_classes": "[\"a\",\"b\"]"])
        let result = try run([
            "quantize", folder + "/model.safetensors", "--to", "fp16", "--output", folder + "/fp16.safetensors",
        ])
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(result.output.contains("model of 5 layers (1 LSTM) in fp16"), result.output)
        let file = try SafeTensorsFile(contentsOf: folder + "/fp16.safetensors")
        XCTAssertEqual(file.metadata["lstm_gpu_classes"], "[\"a\",\"b\"]", "the application's metadata is kept")
        XCTAssertEqual(file.metadata["lstm_gpu_precision"], "fp16")
        let inspect = try run(["inspect", folder + "/fp16.safetensors"])
        XCTAssertTrue(inspect.output.contains("LSTM weights in fp16"), inspect.output)

        try makeSmallCheckpoint(folder + "/lm.safetensors")
        let checkpoint = try run([
            "quantize", folder + "/lm.safetensors", "--to", "int8", "--output", folder + "/x.safetensors",
        ])
        XCTAssertEqual(checkpoint.status, 2, checkpoint.output)
        XCTAssertTrue(checkpoint.output.contains("sample --precision int8"), checkpoint.output)

        // sample --precision: the checkpoint's LSTM in each precision scores the prompt close to fp32.
        var scores: [String: Double] = [:]
        for precision in ["fp32", "int8", "bf16", "fp16"] {
            let scored = try run([
                "sample", "--checkpoint", folder + "/lm.safetensors", "--score", "--prompt", "the quick brown fox",
                "--precision", precision,
            ])
            XCTAssertEqual(scored.status, 0, scored.output)
            let line = try XCTUnwrap(scored.output.split(separator: "\n").last)
            let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            scores[precision] = try XCTUnwrap(object["cross_entropy"] as? Double, scored.output)
        }
        for precision in ["int8", "bf16", "fp16"] {
            XCTAssertLessThan(abs(scores[precision]! - scores["fp32"]!), 0.02, "\(precision): \(scores)")
        }
        let opencl = try run([
            "sample", "--checkpoint", folder + "/lm.safetensors", "--precision", "int8", "--backend", "opencl",
        ])
        XCTAssertEqual(opencl.status, 64, opencl.output)
    }
}
