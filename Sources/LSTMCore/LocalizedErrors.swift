import Foundation

// The library's public error types, as `LocalizedError`s: `error.localizedDescription`
// (what Foundation, loggers and UI code show) is the same sentence as `description`,
// instead of Foundation's generic "The operation could not be completed".
// The public error types are exactly these three: LSTMError (here), TrainingError and
// DistributedError (LSTMNN, Training/LocalizedErrors.swift).

extension LSTMError: LocalizedError {
    public var errorDescription: String? { description }
}
