// forecaster: time-series forecasting with an LSTM: from a window of past values, the next one
// (or the next --horizon values at once), trained by `fit` with MSE on the standardised series,
// tested on the series' last part in time against the naive and seasonal-naive forecasts. The
// work is `Forecasting.run`, the same code as `lstm-gpu train --task forecast`, with the same
// options and exit codes.
//
//   scripts/fetch-sunspots               # data/sunspots.csv (yearly, 1700–2008), data/co2.csv (weekly)
//   swift run -c release forecaster data/sunspots.csv --window 22 --season 11 [--horizon 3]
//   swift run -c release forecaster data/co2.csv --window 104 --season 52 --difference   # a trend: model the changes
import ArgumentParser
import LSTMApplications
import LSTMCommandLine
import LSTMKit

struct Forecaster: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forecaster", abstract: "Forecast a numeric series with an LSTM (scripts/fetch-sunspots).",
        discussion: "Defaults: "
            + defaultsHelp(Forecasting.defaultSettings, Forecasting.defaultShape, tokens: false, pooling: false)
            + ". Not taken: --embedding, --pooling, --bidirectional, --proj-size, --proj-clip, --backend reference.")

    @Argument(help: "A CSV file with the series (scripts/fetch-sunspots writes data/sunspots.csv).") var file: String
    @Option(help: "The series' column (default: the last numeric column).") var column: String?
    @Option(parsing: .unconditional, help: "Past values in each input window.") var window = 22
    @Option(parsing: .unconditional, help: "Values forecast at once.") var horizon = 1
    @Option(parsing: .unconditional, help: "The season in steps, for the seasonal-naive baseline.") var season: Int?
    @Flag(help: "Model the changes y[t] − y[t−1] (for a series with a trend).") var difference = false
    @OptionGroup var options: ApplicationProgramOptions

    func validate() throws {
        try CommandEntry.validating {
            for (value, name) in [(window, "--window"), (horizon, "--horizon"), (season, "--season")] {
                try SettingBounds.count(value, name, minimum: 1)
            }
        }
        if let season, season > window {
            throw ValidationError(
                "--season \(season) must not exceed --window \(window) (the seasonal-naive baseline looks one season "
                    + "back within a window)")
        }
        try options.validate(
            program: "forecaster", settings: Forecasting.defaultSettings,
            unused: ["--embedding", "--pooling", "--bidirectional"], reason: " (a series is read as numbers)")
    }

    func run() throws {
        let lock = try options.output.prepareApplicationOutputs(inputs: [("FILE", file)])
        defer { withExtendedLifetime(lock) {} }
        let series = try NumericSeries(contentsOf: file, column: column)
        try options.engine.withModelBackend("forecaster") { backend in
            let report = try Forecasting.run(
                series.values, name: series.name, window: window, horizon: horizon, season: season,
                difference: difference, shape: options.shape(Forecasting.defaultShape),
                settings: options.settings(Forecasting.defaultSettings), backend: backend)
            try report.requireConverged(program: "forecaster")
        }
    }
}

CommandEntry.main(Forecaster.self)
