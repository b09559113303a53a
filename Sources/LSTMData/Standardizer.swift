import Foundation
import LSTMCore

/// z-scores for a series: (x − mean) / standardDeviation, with the mean and the population
/// standard deviation (divisor n, as scikit-learn's StandardScaler) fitted on training values
/// only (e.g. a prefix of the series), then applied to every split and inverted on forecasts.
///
/// A constant training series has standard deviation 0: `standardDeviation` is then 1, so
/// `apply` only subtracts the mean and `invert` still undoes it exactly (`isConstant` says so).
/// Codable, so a model's metadata can keep it.
public struct Standardizer: Codable, Sendable, Equatable {
    /// The training values' mean.
    public let mean: Double
    /// Their population standard deviation, or 1 when it is 0.
    public let standardDeviation: Double
    /// True when the training values were all equal (the deviation used is then 1).
    public let isConstant: Bool

    /// Fits on `values`; throws when there are none or one is not finite, or the statistics
    /// overflow.
    public init(fitting values: some Collection<Double>) throws {
        guard !values.isEmpty else { throw LSTMError.invalidArgument("cannot fit a standardizer on no values") }
        if let bad = values.first(where: { !$0.isFinite }) {
            throw LSTMError.invalidArgument("cannot fit a standardizer on the non-finite value \(bad)")
        }
        let count = Double(values.count)
        let mean = values.reduce(0, +) / count
        let deviation = (values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / count).squareRoot()
        guard mean.isFinite, deviation.isFinite else {
            throw LSTMError.invalidArgument("the values' mean or standard deviation overflows a Double")
        }
        try self.init(mean: mean, standardDeviation: deviation == 0 ? 1 : deviation, isConstant: deviation == 0)
    }

    /// A standardizer with the given statistics (as stored); throws unless the mean is finite
    /// and the deviation finite and positive.
    public init(mean: Double, standardDeviation: Double, isConstant: Bool = false) throws {
        guard mean.isFinite, standardDeviation.isFinite, standardDeviation > 0 else {
            throw LSTMError.invalidArgument(
                "a standardizer needs a finite mean and a finite positive standard deviation, got \(mean) and "
                    + "\(standardDeviation)")
        }
        self.mean = mean
        self.standardDeviation = standardDeviation
        self.isConstant = isConstant
    }

    /// Decodes `{"mean", "standardDeviation", "isConstant"}`, validated as `init(mean:standardDeviation:isConstant:)`.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        try self.init(
            mean: container.decode(Double.self, forKey: .mean),
            standardDeviation: container.decode(Double.self, forKey: .standardDeviation),
            isConstant: container.decodeIfPresent(Bool.self, forKey: .isConstant) ?? false)
    }

    /// (x − mean) / standardDeviation for each value.
    public func apply(_ values: [Double]) -> [Double] { values.map { ($0 - mean) / standardDeviation } }

    /// x · standardDeviation + mean for each value: `apply` undone (for forecasts).
    public func invert(_ values: [Double]) -> [Double] { values.map { $0 * standardDeviation + mean } }

    /// `invert` for float32 model outputs.
    public func invert(_ values: [Float]) -> [Double] { invert(values.map(Double.init)) }
}
