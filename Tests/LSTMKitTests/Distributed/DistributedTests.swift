import Foundation
import XCTest

@testable import LSTMCPU
@testable import LSTMCore
@testable import LSTMData
@testable import LSTMKit
@testable import LSTMNN
@testable import LSTMOpenCL
@testable import LSTMReference

/// Data parallelism: N replicas with batch b take the same steps as one process with N·b.
final class DistributedTests: XCTestCase {
    static let text = String(
        repeating: "Now is the winter of our discontent\nMade glorious summer by this sun of York;\n", count: 20)

    func trainer(batch: Int, reducer: GradientReducer?, seed: UInt64 = 5) throws -> LanguageModelTrainer<CPUBackend> {
        try Self.makeTrainer(batch: batch, reducer: reducer, seed: seed)
    }

    static func makeTrainer(
        batch: Int, reducer: GradientReducer?, seed: UInt64 = 5
    ) throws -> LanguageModelTrainer<CPUBackend> {
        let vocabulary = Vocabulary(text: text)
        let model = try LanguageModel(
            LanguageModelConfiguration(
                vocabularySize: vocabulary.count, embeddingSize: 6, hiddenSize: 20,
                numLayers: 2, dropout: 0.25), backend: CPUBackend(threads: 1), seed: seed)
        var options = TrainingOptions()
        options.batch = batch
        options.sequenceLength = 10
        options.learningRate = 1e-2
        options.clipNorm = 1
        return try LanguageModelTrainer(
            model: model, vocabulary: vocabulary, ids: try vocabulary.encode(text), options: options,
            reducer: reducer)
    }

    /// Runs `body(rank)` on `count` threads and waits for all.
    func concurrently(_ count: Int, _ body: @escaping @Sendable (Int) throws -> Void) throws {
        let errors = NSLock()
        nonisolated(unsafe) var failures: [Error] = []
        let group = DispatchGroup()
        for rank in 0..<count {
            group.enter()
            Thread {
                do { try body(rank) } catch { errors.lock(); failures.append(error); errors.unlock() }
                group.leave()
            }.start()
        }
        group.wait()
        if let first = failures.first { throw first }
    }

    func testReplicasMatchOneProcessWithTheWholeBatch() throws {
        for replicas in [2, 3] {
            let single = try trainer(batch: 2 * replicas, reducer: nil)
            var expected: [Float] = []
            for _ in 0..<15 { expected.append(try single.trainStep().loss) }

            let group = InProcessReducerGroup(size: replicas)
            nonisolated(unsafe) var losses = [[Float]](repeating: [], count: replicas)
            nonisolated(unsafe) var weights = [[String: Tensor]](repeating: [:], count: replicas)
            try concurrently(replicas) { rank in
                // Each rank starts from other weights: rank 0's win.
                let t = try Self.makeTrainer(batch: 2, reducer: group.reducer(rank: rank), seed: 5 + UInt64(rank))
                for _ in 0..<15 { losses[rank].append(try t.trainStep().loss) }
                weights[rank] = try t.model.parameterTensors()
            }
            let reference = try single.model.parameterTensors()
            var worstLoss: Float = 0, worstWeight: Float = 0
            for rank in 0..<replicas {
                for (a, b) in zip(losses[rank], expected) { worstLoss = max(worstLoss, abs(a - b)) }
                for (name, tensor) in reference {
                    worstWeight = max(worstWeight, tensor.maxAbsDifference(weights[rank][name]!))
                }
                XCTAssertEqual(weights[rank], weights[0], "replicas hold identical weights")
            }
            print(
                "\(replicas) replicas vs one process: max loss difference \(worstLoss), max weight difference "
                    + "after 15 steps \(worstWeight)"
            )
            XCTAssertLessThan(worstLoss, 1e-5)
            // Adam divides by √v: summation-order noise in tiny gradients shows up a little larger.
            XCTAssertLessThan(worstWeight, 1e-4)
        }
    }

    func testMismatchedReplicasAreRefused() throws {
        let group = InProcessReducerGroup(size: 2)
        nonisolated(unsafe) var messages = ["", ""]
        try? concurrently(2) { rank in
            do { _ = try Self.makeTrainer(batch: rank == 0 ? 2 : 3, reducer: group.reducer(rank: rank)) } catch {
                messages[rank] = "\(error)"; throw error
            }
        }
        for message in messages { XCTAssertTrue(message.contains("replicas disagree"), message) }
    }

    /// A checkpoint of N replicas holds the whole batch's state: one process resumes from it.
    func testReplicaCheckpointResumesInOneProcess() throws {
        let folder = try temporaryFolder()
        let group = InProcessReducerGroup(size: 2)
        try concurrently(2) { rank in
            let t = try Self.makeTrainer(batch: 2, reducer: group.reducer(rank: rank))
            for _ in 0..<4 { try t.trainStep() }
            try t.saveCheckpoint(to: folder + "/parallel.safetensors")
        }
        let single = try trainer(batch: 4, reducer: nil)
        for _ in 0..<4 { try single.trainStep() }
        let resumed = try trainer(batch: 4, reducer: nil)
        try resumed.resume(from: folder + "/parallel.safetensors")
        for _ in 0..<3 {
            let a = try single.trainStep().loss, b = try resumed.trainStep().loss
            XCTAssertEqual(a, b, accuracy: 1e-5)
        }
    }

    /// Under `mpirun` (CI installs Open MPI): 2 and 3 ranks against one process, via the command.
    func testMPIRanksMatchOneProcess() throws {
        let executable = lstmGPUExecutable
        guard
            let mpirun = ["/usr/bin/mpirun", "/usr/local/bin/mpirun"].first(where: {
                FileManager.default.isExecutableFile(atPath: $0)
            }),
            FileManager.default.isExecutableFile(atPath: executable.path)
        else {
            throw XCTSkip("mpirun or lstm-gpu not found (install openmpi-bin)")
        }
        let folder = try temporaryFolder()
        let common = [
            "train", "--steps", "12", "--hidden", "24", "--embedding", "8", "--layers", "2", "--dropout", "0.2",
            "--seq-length", "16", "--eval-every", "0", "--threads", "1", "--collective-timeout", "60",
        ]
        func losses(_ path: String) throws -> [Double] {
            try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").compactMap { line in
                (try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["loss"] as? Double
            }
        }
        let single = try runProcess(executable.path, common + ["--batch", "6", "--log", folder + "/single.jsonl"])
        XCTAssertEqual(single.status, 0, single.output)
        let reference = try losses(folder + "/single.jsonl")
        XCTAssertEqual(reference.count, 12)
        for ranks in [2, 3] {
            let run = try runProcess(
                mpirun,
                ["--allow-run-as-root", "--oversubscribe", "-np", "\(ranks)", executable.path]
                    + common + ["--batch", "\(6 / ranks)", "--log", folder + "/np\(ranks).jsonl"])
            XCTAssertEqual(run.status, 0, run.output)
            let ours = try losses(folder + "/np\(ranks).jsonl")
            XCTAssertEqual(ours.count, 12, run.output)
            let worst = zip(ours, reference).map { abs($0 - $1) }.max() ?? .infinity
            print("mpirun -np \(ranks): max loss difference against one process over 12 steps \(worst)")
            XCTAssertLessThan(worst, 1e-5)
        }
        // Ranks started with different models refuse to run.
        let mismatch = try runProcess(
            mpirun,
            ["--allow-run-as-root", "--oversubscribe", "-np", "1", executable.path] + common
                + ["--batch", "3", ":", "-np", "1", executable.path] + common + ["--batch", "3", "--hidden", "25"])
        XCTAssertNotEqual(mismatch.status, 0)
        XCTAssertTrue(mismatch.output.contains("replicas disagree"), mismatch.output)
        // Ranks whose options change the sequence of collectives are refused at start, naming the option.
        let cadence = try runProcess(
            mpirun,
            ["--allow-run-as-root", "--oversubscribe", "-np", "1", executable.path] + common
                + ["--batch", "3", "--checkpoint-every", "5", ":", "-np", "1", executable.path] + common
                + ["--batch", "3", "--checkpoint-every", "7"])
        XCTAssertNotEqual(cadence.status, 0)
        XCTAssertTrue(cadence.output.contains("different options: --checkpoint-every"), cadence.output)

        // A rank that dies, and one that hangs: the job ends with a clear message in bounded
        // time, and the checkpoint written before stays intact and loadable.
        for fault in ["exit", "hang"] {
            let checkpoint = folder + "/\(fault).safetensors"
            let started = Date()
            let run = try runProcess(
                mpirun,
                ["--allow-run-as-root", "--oversubscribe", "-np", "2", executable.path]
                    + common.map { $0 == "60" ? "4" : $0 } + [
                        "--batch", "3", "--checkpoint", checkpoint, "--checkpoint-every", "5",
                    ],
                environment: ["LSTM_GPU_FAULT": fault, "LSTM_GPU_FAULT_RANK": "1", "LSTM_GPU_FAULT_STEP": "7"])
            let seconds = Date().timeIntervalSince(started)
            print(
                "rank 1 \(fault == "exit" ? "dies" : "hangs") at step 8: job ended after "
                    + "\(String(format: "%.1f", seconds)) s with status \(run.status)"
            )
            XCTAssertNotEqual(run.status, 0)
            XCTAssertLessThan(seconds, 60)
            XCTAssertTrue(
                fault == "exit"
                    ? run.output.contains("exited with non-zero status") || run.output.contains("rank 1")
                    : run.output.contains("no progress in MPI_Allreduce"), run.output)
            let file = try SafeTensorsFile(contentsOf: checkpoint)
            XCTAssertEqual(file.metadata["step"], "5")
            XCTAssertNoThrow(try Checkpoint.loadModel(checkpoint, backend: CPUBackend()))
        }

        // --resume across ranks: the checkpoint of 2 ranks × 3 streams, resumed by 3 ranks × 2,
        // continues the single process's run of 6 streams.
        let resumed = try runProcess(
            mpirun,
            ["--allow-run-as-root", "--oversubscribe", "-np", "3", executable.path] + common
                + [
                    "--batch", "2", "--checkpoint", folder + "/exit.safetensors", "--resume", "--log",
                    folder + "/resumed.jsonl",
                ])
        XCTAssertEqual(resumed.status, 0, resumed.output)
        let continued = try losses(folder + "/resumed.jsonl")
        XCTAssertEqual(continued.count, 7, resumed.output)
        let worst = zip(continued, reference.suffix(7)).map { abs($0 - $1) }.max() ?? .infinity
        print("resumed by 3 ranks from a 2-rank checkpoint at step 5: max loss difference against one process \(worst)")
        XCTAssertLessThan(worst, 1e-5)
    }
}
