import LSTMCore

/// A setting outside its bounds, named as the user gave it ("--lr" on the command line, a
/// field name in a file): every front end (`lstm-gpu train`, `train --task`, the example
/// programs) reports it as a usage error.
public struct SettingError: Error, CustomStringConvertible, Equatable {
    /// The option or field ("--lr").
    public let setting: String
    /// The whole sentence: "--lr must be a finite number in 1e-30...1000000.0, got nan".
    public let description: String

    public init(_ setting: String, _ description: String) {
        self.setting = setting
        self.description = description
    }
}

/// The one set of bounds for the training settings, and the checks every front end runs with
/// them (one message per kind of mistake). A check of an absent value (nil) passes.
public enum SettingBounds {
    public static let learningRate: ClosedRange<Double> = 1e-30...1e6
    public static let momentum: ClosedRange<Double> = 0...1
    /// Dropout probability: [0, 1).
    public static let dropout: ClosedRange<Double> = 0...0.999_999
    /// Weight decay, gradient clip norm (0: off), cell-option clips (0: off).
    public static let nonNegative: ClosedRange<Double> = 0...Double.greatestFiniteMagnitude
    /// Wall time in minutes.
    public static let minutes: ClosedRange<Double> = 1e-6...1e7
    /// Seconds a collective may wait under MPI.
    public static let collectiveTimeout: ClosedRange<Double> = 1e-3...1e7

    /// `value` is a whole number in `minimum...maximum`.
    public static func count(_ value: Int?, _ name: String, minimum: Int, maximum: Int = SizeLimits.maxCount) throws {
        guard let value else { return }
        guard value >= minimum, value <= maximum else {
            throw SettingError(name, "\(name) must be in \(minimum)...\(maximum), got \(value)")
        }
    }

    /// `value` is a finite number in `range`.
    public static func number(_ value: Double?, _ name: String, in range: ClosedRange<Double>) throws {
        guard let value else { return }
        guard value.isFinite, range.contains(value) else {
            throw SettingError(
                name, "\(name) must be a finite number in \(range.lowerBound)...\(range.upperBound), got \(value)")
        }
    }

    /// `value` is a finite Float in `range`.
    public static func number(_ value: Float?, _ name: String, in range: ClosedRange<Double>) throws {
        try number(value.map(Double.init), name, in: range)
    }

    /// A fraction of the examples: a finite number in [0, 1).
    public static func fraction(_ value: Double?, _ name: String) throws {
        guard let value else { return }
        guard value.isFinite, value >= 0, value < 1 else {
            throw SettingError(name, "\(name) must be in [0, 1), got \(value)")
        }
    }

    /// Layers, widths and the projection of an LSTM model, with the engine's size limits;
    /// `names` gives the option names (the defaults are the command's).
    public static func modelSizes(
        layers: Int?, hidden: Int?, embedding: Int? = nil, projection: Int? = nil, dropout: Float? = nil,
        names: (layers: String, hidden: String, embedding: String, projection: String, dropout: String) = (
            "--layers", "--hidden", "--embedding", "--proj-size", "--dropout"
        )
    ) throws {
        try count(layers, names.layers, minimum: 1, maximum: SizeLimits.maxLayers)
        try count(hidden, names.hidden, minimum: 1, maximum: SizeLimits.maxWidth)
        try count(embedding, names.embedding, minimum: 1, maximum: SizeLimits.maxWidth)
        try count(projection, names.projection, minimum: 0, maximum: SizeLimits.maxWidth)
        try number(dropout, names.dropout, in: Self.dropout)
    }
}
