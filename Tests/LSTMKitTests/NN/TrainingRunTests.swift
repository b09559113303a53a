import Foundation
import XCTest

@testable import LSTMCPU
@testable import LSTMCore
@testable import LSTMData
@testable import LSTMKit
@testable import LSTMNN
@testable import LSTMOpenCL
@testable import LSTMReference

/// The library's training loop: cadence, stop conditions, divergence.
final class TrainingRunTests: XCTestCase {
    func testCadenceOfStepsEvaluationsAndCheckpoints() throws {
        let folder = try temporaryFolder()
        let trainer = try makeSmallCheckpoint(folder + "/start.safetensors")  // 2 steps taken
        var schedule = TrainingSchedule(totalSteps: 7)
        schedule.evaluateEvery = 2
        schedule.evaluationCharacters = 100
        schedule.checkpoint = folder + "/run.safetensors"
        schedule.checkpointEvery = 3
        var steps: [Int] = [], evaluations: [Int] = [], checkpoints: [Int] = []
        let summary = try TrainingRun(trainer: trainer, schedule: schedule).run { event in
            switch event {
            case let .step(report, tokensPerSecond):
                steps.append(report.step)
                XCTAssertGreaterThan(tokensPerSecond, 0)
            case let .evaluated(step, result, _):
                evaluations.append(step)
                XCTAssertLessThanOrEqual(result.total, 100)
                XCTAssertTrue(result.complete)
            case let .checkpointWritten(step, _): checkpoints.append(step)
            case .evaluating: break
            }
        }
        XCTAssertEqual(steps, [3, 4, 5, 6, 7], "totalSteps counts from the first run")
        XCTAssertEqual(evaluations, [4, 6, 7], "every 2 steps, and once at the end")
        XCTAssertEqual(checkpoints, [3, 6, 7], "every 3 steps, and once at the end")
        XCTAssertEqual(summary.steps, 5)
        XCTAssertNotNil(summary.heldOutLoss)
        XCTAssertEqual(try CheckpointFile(contentsOf: folder + "/run.safetensors").counters.step, 7)
    }

    func testDivergenceNamesTheStepAndTheLastGoodCheckpoint() throws {
        let folder = try temporaryFolder()
        let trainer = try makeSmallCheckpoint(folder + "/start.safetensors")
        var schedule = TrainingSchedule(totalSteps: 10)
        schedule.checkpoint = folder + "/run.safetensors"
        schedule.checkpointEvery = 1
        var poisoned = false
        XCTAssertThrowsError(
            try TrainingRun(trainer: trainer, schedule: schedule).run { event in
                if case let .checkpointWritten(step, _) = event, step == 4, !poisoned {
                    var weights = try trainer.model.parameterTensors()
                    weights["head.weight"]!.scalars[0] = .infinity
                    try trainer.model.load(weights, source: "test")
                    poisoned = true
                }
            }
        ) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("step 5"), message)
            XCTAssertTrue(message.contains("last good checkpoint: \(folder)/run.safetensors (step 4)"), message)
        }
        XCTAssertEqual(
            try CheckpointFile(contentsOf: folder + "/run.safetensors").counters.step, 4, "the good checkpoint stays")
    }

    func testTimeLimitIncludesTheEvaluation() throws {
        let folder = try temporaryFolder()
        let trainer = try makeSmallCheckpoint(folder + "/start.safetensors")
        let started = Date()
        let summary = try TrainingRun(trainer: trainer, schedule: TrainingSchedule(seconds: 0.5)).run()
        XCTAssertLessThan(Date().timeIntervalSince(started), 5)
        XCTAssertGreaterThan(summary.steps, 0)
    }
}
