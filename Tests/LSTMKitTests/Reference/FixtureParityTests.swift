import XCTest

@testable import LSTMCPU
@testable import LSTMCore
@testable import LSTMData
@testable import LSTMKit
@testable import LSTMNN
@testable import LSTMOpenCL
@testable import LSTMReference

/// The CPU path against PyTorch's float64 reference on every committed fixture.
final class FixtureParityTests: XCTestCase {
    func testEveryFixturePassesOnTheCPUPath() throws {
        let paths = try fixturePaths()
        XCTAssertGreaterThanOrEqual(paths.count, 15, "fixtures missing from \(fixtureFolder)")
        for path in paths {
            let fixture = try Fixture(contentsOf: path)
            let rows = try fixture.check(backend: .cpu)
            let worst = rows.map(\.maxAbsolute).max() ?? .nan
            print("\(URL(fileURLWithPath: path).lastPathComponent): \(rows.count) tensors, max abs diff \(worst)")
            for row in rows where !row.passed {
                XCTFail(
                    "\(path): \(row.name) fails: \(row.failures) of \(row.count) elements, max abs \(row.maxAbsolute)")
            }
            // Forward-and-backward fixtures compare every gradient, not just outputs.
            if fixture.hasGradients {
                XCTAssertEqual(rows.count, 6 + fixture.configuration.parameterSpecs.count, path)
            }
        }
    }

    func testTheFixturesCoverEveryFeature() throws {
        let fixtures = try fixturePaths().map { try Fixture(contentsOf: $0) }
        let configs = fixtures.map(\.configuration)
        XCTAssertTrue(configs.contains { $0.bidirectional })
        XCTAssertTrue(configs.contains { $0.projectionSize > 0 })
        XCTAssertTrue(configs.contains { $0.batchFirst })
        XCTAssertTrue(configs.contains { !$0.bias })
        XCTAssertEqual(Set(configs.map(\.numLayers)), [1, 2, 3])
        XCTAssertTrue(fixtures.contains { $0.lengths?.contains(0) == true })
        XCTAssertTrue(fixtures.contains { $0.input.shape[$0.configuration.batchFirst ? 1 : 0] == 1 })
        XCTAssertTrue(fixtures.contains { !$0.hasGradients })
    }

    /// A reference off by 1e-3 in one element must fail the check: the harness can fail.
    func testAWrongReferenceFails() throws {
        let fixture = try Fixture(contentsOf: fixtureFolder + "/basic.safetensors")
        let ours = try LSTM(fixture.configuration, weights: fixture.weights)
            .forward(fixture.input, h0: fixture.h0, c0: fixture.c0).output
        var reference = fixture.references["output"]!
        XCTAssertTrue(compare("output", ours: ours, reference: reference, tolerance: .outputs).passed)
        reference.scalars[3] += 1e-3
        let row = compare("output", ours: ours, reference: reference, tolerance: .outputs)
        XCTAssertFalse(row.passed)
        XCTAssertEqual(row.failures, 1)
    }
}
