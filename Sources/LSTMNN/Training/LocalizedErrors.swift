import Foundation

// The training errors as `LocalizedError`s, like `LSTMError` in LSTMCore: `localizedDescription`
// is the same sentence as `description`.

extension TrainingError: LocalizedError {
    public var errorDescription: String? { description }
}

extension DistributedError: LocalizedError {
    public var errorDescription: String? { description }
}
