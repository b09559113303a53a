import Foundation
import LSTMCore

#if canImport(Glibc)
import Glibc
#endif

/// Reports a fit as it goes: on a terminal a progress bar with the running loss and metric and
/// an ETA, redrawn in place, then one summary line per epoch; elsewhere (a pipe, a log file) one
/// JSON object per epoch (`EpochRecord.jsonLine`), which a program can read line by line.
public final class ProgressReport: FitCallback {
    public enum Style: Sendable { case automatic, bar, jsonLines }
    let output: FileHandle
    let bar: Bool
    private var lastDrawn = Date.distantPast
    private var drawn = false

    /// `style` `.automatic`: a bar when `output` is a terminal, else JSON lines.
    public init(output: FileHandle = .standardOutput, style: Style = .automatic) {
        self.output = output
        switch style {
        case .automatic: bar = isatty(output.fileDescriptor) != 0
        case .bar: bar = true
        case .jsonLines: bar = false
        }
    }

    public func batchEnded(_ progress: BatchProgress, context: FitContext) throws {
        guard bar, progress.batch == progress.batches || Date().timeIntervalSince(lastDrawn) >= 0.1 else { return }
        lastDrawn = Date()
        let width = 24, done = progress.batches > 0 ? width * progress.batch / progress.batches : width
        let eta = progress.seconds / Double(progress.batch) * Double(progress.batches - progress.batch)
        let line =
            "epoch \(progress.epoch)/\(context.settings.epochs) ["
            + String(repeating: "=", count: done) + String(repeating: " ", count: width - done) + "] "
            + "\(progress.batch)/\(progress.batches) loss \(fixed(progress.loss)) "
            + "\(context.metric.name) \(fixed(progress.metric)) ETA \(clock(eta))"
        write("\r\u{1B}[K" + line)
        drawn = true
    }

    public func epochEnded(_ record: EpochRecord, context: FitContext) throws -> FitDecision {
        if bar {
            if drawn { write("\r\u{1B}[K") }
            drawn = false
            var line =
                "epoch \(record.epoch)/\(context.settings.epochs): loss \(fixed(record.loss)) "
                + "\(context.metric.name) \(fixed(record.metric))"
            if let validationLoss = record.validationLoss {
                line +=
                    " · val_loss \(fixed(validationLoss)) val_\(context.metric.name) "
                    + fixed(record.validationMetric ?? .nan)
            }
            write(line + " · lr \(String(format: "%.3g", record.learningRate)) · \(clock(record.seconds))\n")
        } else {
            write(record.jsonLine(metric: context.metric.name) + "\n")
        }
        return .proceed
    }

    private func write(_ text: String) { output.write(Data(text.utf8)) }
    private func fixed(_ value: Double) -> String { String(format: "%.4f", value) }
    private func clock(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "?" }
        let s = Int(seconds.rounded())
        return s >= 3600
            ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}
