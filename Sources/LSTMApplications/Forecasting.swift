import Foundation
import LSTMKit

/// Time-series forecasting: from the last `window` values, the next `horizon` values (one-step
/// with horizon 1, multi-step with more, all at once: LSTM → last step → Linear to `horizon`
/// outputs), trained with MSE on the standardised series.
///
/// The series is cut in time order: the first 1 − validation − test fraction of the values
/// trains, the next part validates, the last part tests; a window belongs to the part its
/// first target falls in and must have all its targets there (its inputs may reach back into
/// the part before, which is already observed then). The standardiser is fitted on the
/// training part alone. Test MAE is in the series' own units, beside two baselines on the same
/// windows: naive (every target = the last input) and, with `season`, seasonal naive (a target
/// = the value one season before it, or whole seasons before it when the horizon is longer).
///
/// With `difference`, the model reads and forecasts the changes y[t] − y[t−1] instead of the
/// values, and a forecast is the last observed value plus the forecast changes summed: the
/// way to forecast a series with a trend (CO2), whose later values lie outside the range the
/// standardiser saw in training. Windows, parts and figures are then over the changes' times
/// (one value fewer); the MAE and the baselines stay in the series' own units.
public enum Forecasting {
    /// The settings the forecaster and `train --task forecast` start from: a small series
    /// wants many short epochs (200, batch 16, rate 3e-3, patience 20) and larger validation
    /// and test parts (15% each).
    public static var defaultSettings: ApplicationSettings {
        var s = ApplicationSettings()
        (s.epochs, s.batchSize, s.learningRate, s.patience) = (200, 16, 3e-3, 20)
        (s.validationFraction, s.testFraction) = (0.15, 0.15)
        return s
    }

    /// The network they start from: an LSTM of 32 (a series has one feature per step).
    public static var defaultShape: NetworkShape {
        var n = NetworkShape()
        n.hidden = 32
        return n
    }
    /// The metadata keys: the standardiser (JSON), the window and the horizon.
    public static let standardizerKey = "lstm_gpu_standardizer"
    public static let windowKey = "lstm_gpu_window"
    public static let horizonKey = "lstm_gpu_horizon"
    /// "true" when the model forecasts changes (`difference`), else "false".
    public static let differenceKey = "lstm_gpu_difference"

    /// Trains and tests on `values`.
    /// - Returns: figures "test_mae", "naive_mae", "seasonal_naive_mae" (with `season`),
    ///   "test_mae_step_1", … per horizon step, and "training_windows", "validation_windows",
    ///   "test_windows".
    /// - Throws: `LSTMError` for a series too short for a window in every part, or settings out of range.
    public static func run<Backend: ModelOps>(
        _ values: [Double], name: String = "series", window: Int, horizon: Int = 1, season: Int? = nil,
        difference: Bool = false, shape: NetworkShape, settings: ApplicationSettings, backend: Backend,
        say: (String) -> Void = printLine
    ) throws -> ApplicationReport {
        let started = Date()
        try settings.validate()
        try SizeLimits.requireSize(window, "the window", limit: SizeLimits.maxCount)
        try SizeLimits.requireSize(horizon, "the horizon", limit: SizeLimits.maxCount)
        if let season { try SizeLimits.requireSize(season, "the season", limit: SizeLimits.maxCount) }
        let original = limited(values, settings.limit)
        // The modelled series: the values, or their changes (then value index = change index + 1).
        let offset = difference ? 1 : 0
        let series = difference ? zip(original.dropFirst(), original).map { $0 - $1 } : original, n = series.count
        guard n >= 2 else {
            throw LSTMError.invalidArgument(
                "a series of \(original.count) values is too short to forecast\(difference ? " its changes" : "")")
        }
        let trainEnd = Int(Double(n) * (1 - settings.validationFraction - settings.testFraction))
        let validationEnd = Int(Double(n) * (1 - settings.testFraction))
        let standardizer = try Standardizer(fitting: series[0..<max(trainEnd, 1)])
        let scaled = standardizer.apply(series)
        /// The windows whose targets all lie in lower..<upper: their starts.
        func starts(_ lower: Int, _ upper: Int) -> [Int] {
            let first = max(0, lower - window), last = upper - window - horizon
            guard upper - lower >= horizon, first <= last else { return [] }
            return Array(first...last).filter { $0 + window >= lower }
        }
        let parts = [starts(0, trainEnd), starts(trainEnd, validationEnd), starts(validationEnd, n)]
        guard !parts[0].isEmpty, !parts[2].isEmpty else {
            throw LSTMError.invalidArgument(
                "a series of \(n) values is too short: the training part (\(trainEnd) values) and the test part "
                    + "(\(n - validationEnd)) each need at least window + horizon = \(window + horizon) (test: horizon)"
            )
        }
        if let season, season > window {
            throw LSTMError.invalidArgument("the season (\(season)) must not exceed the window (\(window))")
        }
        func example(_ start: Int) -> LabelledSequence {
            LabelledSequence(
                .steps(scaled[start..<(start + window)].map { Float($0) }, width: 1),
                target: .values(scaled[(start + window)..<(start + window + horizon)].map { Float($0) }))
        }
        let training = parts[0].map(example), validation = parts[1].map(example)
        let testStarts = parts[2]
        say(
            "\(name): \(n) \(difference ? "changes" : "values") → \(training.count) training, \(validation.count) validation, \(testStarts.count) "
                + "test windows of \(window) → \(horizon); \(backend.name)")
        var seeds = SeededGenerator(seed: settings.seed &+ 404)
        let layers: [any Layer<Backend>] =
            (try shape.recurrentLayers(input: 1, backend: backend, seed: seeds.next()))
            + [
                SequencePooling(backend: backend, mode: .last),
                try Linear(backend: backend, inputSize: shape.outputWidth, outputSize: horizon, seed: seeds.next()),
            ]
        let model = try SupervisedModel(Sequential<Backend>(layers), loss: .meanSquaredError)
        model.metadata = [
            differenceKey: difference ? "true" : "false",
            standardizerKey: try jsonString(standardizer), windowKey: "\(window)", horizonKey: "\(horizon)",
        ]
        let (history, best) = try fitAndKeepBest(model, training: training, validation: validation, settings: settings)

        // Test figures in the series' units: the model's MAE per step ahead, and the baselines'.
        func absoluteErrors(_ model: SupervisedModel<Backend>) throws -> [Double] {
            let output = try model.predict(testStarts.map(example))
            let predicted = standardizer.invert(
                try backend.read(output.buffer!, offset: 0, count: testStarts.count * horizon))
            var errors = [Double](repeating: 0, count: horizon)
            for (w, start) in testStarts.enumerated() {
                var forecast = original[start + window - 1 + offset]
                for j in 0..<horizon {
                    let truth = original[start + window + j + offset]
                    forecast = difference ? forecast + predicted[w * horizon + j] : predicted[w * horizon + j]
                    errors[j] += abs(forecast - truth)
                }
            }
            return errors
        }
        let model_ = try absoluteErrors(best)
        var naive = 0.0, seasonal = 0.0
        for start in testStarts {
            let last = original[start + window - 1 + offset]
            for j in 0..<horizon {
                let t = start + window + j + offset, truth = original[t]
                naive += abs(last - truth)
                if let season { seasonal += abs(original[t - season * (1 + j / season)] - truth) }
            }
        }
        let count = Double(testStarts.count)
        let perStep = model_.map { $0 / count }
        let mae = perStep.reduce(0, +) / Double(horizon)
        var figures: [String: Double] = [
            "test_mae": mae, "naive_mae": naive / (count * Double(horizon)), "test_windows": count,
            "training_windows": Double(training.count), "validation_windows": Double(validation.count),
        ]
        for (j, value) in perStep.enumerated() { figures["test_mae_step_\(j + 1)"] = value }
        var line =
            "test MAE \(String(format: "%.3f", mae)) (naive: \(String(format: "%.3f", figures["naive_mae"]!))"
        if season != nil {
            figures["seasonal_naive_mae"] = seasonal / (count * Double(horizon))
            line += ", seasonal naive (\(season!)): \(String(format: "%.3f", figures["seasonal_naive_mae"]!))"
        }
        say(line + ") over \(testStarts.count) windows")
        if horizon > 1 {
            say(
                "  per step ahead: "
                    + perStep.enumerated().map { "\($0 + 1): \(String(format: "%.3f", $1))" }.joined(separator: ", "))
        }
        let reduced = try precisionFigures(
            best, settings: settings, names: ["test_mae"], say: say, quantize: { try $0.quantized($1) }
        ) { model in ["test_mae": try absoluteErrors(model).reduce(0, +) / (count * Double(horizon))] }
        figures.merge(reduced) { a, _ in a }
        return ApplicationReport(history: history, figures: figures, seconds: Date().timeIntervalSince(started))
    }
}
