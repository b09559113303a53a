import Foundation
import LSTMKit  // the public API only, as a user sees it
import XCTest

/// Every public error type gives its own sentence through `localizedDescription`.
final class PublicErrorTests: XCTestCase {
    func testLocalizedDescriptionIsTheMessage() {
        let errors: [Error] = [
            LSTMError.missingTensor(name: "bias_hh_l1", file: "model.safetensors"),
            LSTMError.shapeMismatch(what: "h0", expected: [4, 2, 64], got: [4, 3, 64]),
            TrainingError.diverged(step: 12, loss: .nan),
            TrainingError.mismatchedResume("another model"),
            DistributedError.mismatch("rank 1 has another text"),
            DistributedError.collectiveFailed("MPI_Allreduce returned 5"),
        ]
        for error in errors {
            XCTAssertEqual(error.localizedDescription, "\(error)")
            XCTAssertFalse(error.localizedDescription.contains("could not be completed"), error.localizedDescription)
        }
        XCTAssertEqual(
            LSTMError.missingTensor(name: "bias_hh_l1", file: "model.safetensors").localizedDescription,
            "model.safetensors: missing tensor 'bias_hh_l1'")
    }
}
