// forecaster: time-series forecasting with an LSTM: from a window of past values, the next one
// (or the next --horizon values at once), trained by `fit` with MSE on the standardised series,
// tested on the series' last part in time against the naive and seasonal-naive forecasts. The
// work is `Forecasting.run`, the same code as `lstm-gpu train --task forecast`.
//
//   scripts/fetch-sunspots               # data/sunspots.csv (yearly, 1700–2008), data/co2.csv (weekly)
//   swift run -c release forecaster data/sunspots.csv --window 22 --season 11 [--horizon 3]
//   swift run -c release forecaster data/co2.csv --window 104 --season 52 --difference   # a trend: model the changes
import LSTMApplications
import LSTMKit

let usage = """
    usage: forecaster FILE.csv [--column NAME] [--window 22] [--horizon 1] [--season 11] [--difference]
    \(ExampleArguments.sharedUsage)
    """
let arguments = ExampleArguments(
    Array(CommandLine.arguments.dropFirst()), program: "forecaster",
    options: ["column", "window", "horizon", "season"],
    flags: ["difference"], unused: ["embedding", "pooling"], usage: usage)
guard arguments.positional.count == 1 else {
    arguments.fail("give one data file (scripts/fetch-sunspots writes data/sunspots.csv)")
}
arguments.onBackend { backend in
    let series = try NumericSeries(contentsOf: arguments.positional[0], column: arguments.string("column"))
    _ = try Forecasting.run(
        series.values, name: series.name, window: arguments.value("window", 22),
        horizon: arguments.value("horizon", 1),
        season: arguments.string("season").map { _ in arguments.value("season", 0) },
        difference: arguments.flag("difference"), shape: arguments.shape(Forecasting.defaultShape),
        settings: arguments.settings(Forecasting.defaultSettings), backend: backend)
}
