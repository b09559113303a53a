import Foundation
import LSTMKit

/// `opencl[N] NAME`: the index `--device` takes and the device's name, shortened: "(R)" and
/// "(TM)" marks and PoCL's "pthread-"/"cpu-" prefixes dropped, spaces collapsed, and past 24
/// characters cut to 23 and an ellipsis (the full name is in `--json`'s `device`).
public func deviceLabel(_ device: OpenCLDeviceInfo) -> String { deviceLabel(index: device.index, name: device.name) }

public func deviceLabel(index: Int, name full: String) -> String {
    var name = full
    for mark in ["(R)", "(r)", "(TM)", "(tm)"] { name = name.replacingOccurrences(of: mark, with: "") }
    for prefix in ["pthread-", "cpu-"] where name.hasPrefix(prefix) { name.removeFirst(prefix.count) }
    name = name.split(whereSeparator: \.isWhitespace).joined(separator: " ")
    if name.count > 24 { name = String(name.prefix(23)) + "…" }
    return "opencl[\(index)] \(name)"
}

/// The bench table: rows are printed as they are measured, so column widths come from what
/// is known before the first row (every row name, every backend label, the headers) with
/// room for typical numbers; a wider value still gets the two-space gap before the next
/// column (it shifts that row's later columns instead of running into them).
public struct BenchTable {
    /// Columns: title, width, right-aligned.
    public var columns: [(title: String, width: Int, right: Bool)]
    public static let gap = "  "

    public init(shapes: [BenchmarkShape], devices: [String], cpu: Bool) {
        let names = shapes.map(\.name) + ["name"]
        let backends = devices + (cpu ? ["cpu"] : []) + ["backend"]
        func widest(_ values: [String]) -> Int { values.map(\.count).max() ?? 0 }
        func digits(_ values: [Int], _ title: String) -> Int { widest(values.map { "\($0)" } + [title]) }
        columns = [
            ("name", widest(names), false), ("backend", widest(backends), false), ("prec", 4, false),
            ("threads", 7, true),
            ("I", digits(shapes.map(\.inputSize), "I"), true), ("H", digits(shapes.map(\.hiddenSize), "H"), true),
            ("B", digits(shapes.map(\.batch), "B"), true), ("T", digits(shapes.map(\.sequenceLength), "T"), true),
            ("L", digits(shapes.map(\.layers), "L"), true), ("D", 1, true),
            ("fwd ms (min-max)", 24, true), ("GFLOP/s", 7, true),
            ("train ms (min-max)", 24, true), ("GFLOP/s", 7, true), ("parity", 8, true),
        ]
    }

    public var header: String { line(columns.map(\.title)) }

    public func format(_ r: BenchmarkRow) -> String {
        func timing(_ t: TimingSummary) -> String {
            "\(fixed(t.medianMs, 2)) (\(fixed(t.minMs, 1))-\(fixed(t.maxMs, 1)))"
        }
        let backend =
            r.backend == "cpu"
            ? "cpu"
            : r.deviceIndex.map { index in
                let name = String(r.device.dropFirst(r.device.hasPrefix("opencl: ") ? "opencl: ".count : 0))
                return deviceLabel(index: index, name: name)
            } ?? r.device
        return line([
            r.name, backend, (r.precision ?? .fp32).rawValue, r.backend == "cpu" ? "\(r.threads)" : "-", "\(r.I)",
            "\(r.H)", "\(r.B)", "\(r.T)", "\(r.layers)", "\(r.directions)", timing(r.forward),
            fixed(r.forwardGflops, 1), r.train.map(timing) ?? "- (inference only)",
            r.trainGflops.map { fixed($0, 1) } ?? "-", scientific(Float(r.parityMaxAbs)),
        ])
    }

    /// The cells padded to their columns, joined by the gap; the last column is not padded on the right.
    public func line(_ cells: [String]) -> String {
        var out = ""
        var overflow = 0  // how far earlier cells ran past their columns
        for (index, (cell, column)) in zip(cells, columns).enumerated() {
            if index > 0 { out += Self.gap }
            let room = max(0, column.width - overflow)
            let fill = String(repeating: " ", count: max(0, room - cell.count))
            let last = index == columns.count - 1
            out += column.right ? fill + cell : cell + (last ? "" : fill)
            overflow = max(0, cell.count - room)
        }
        return out
    }
}

/// The profile of one row: per kernel, launches per step and device time, forward then training step.
extension BenchmarkProfile {
    /// The profile as table lines (per kernel: launches, per step, device time, share, rates).
    public func tableLines() -> [String] {
        let p = self
        var lines: [String] = []
        let passes = [
            ("forward", p.forward, p.forwardIdleMilliseconds), ("training step", p.train, p.trainIdleMilliseconds),
        ]
        for (pass, kernels, idle) in passes {
            let total = kernels.reduce(0) { $0 + $1.milliseconds }
            lines.append(
                "    profile, \(pass): \(fixed(total, 2)) ms of device time over \(p.steps) steps (T·L·D), "
                    + "\(fixed(idle, 2)) ms idle between launches")
            for k in kernels {
                lines.append(
                    "      " + pad(k.kernel, 32) + pad("\(k.launches) launches", 14, right: true)
                        + pad(fixed(Double(k.launches) / Double(max(p.steps, 1)), 2) + " per step", 16, right: true)
                        + pad(fixed(k.milliseconds, 3) + " ms", 14, right: true)
                        + pad(fixed(100 * k.milliseconds / max(total, 1e-12), 1) + "%", 8, right: true)
                        + pad(k.gflops.map { fixed($0, 1) + " GFLOP/s" } ?? "", 16, right: true)
                        + pad(k.gigabytesPerSecond.map { fixed($0, 1) + " GB/s" } ?? "", 13, right: true))
            }
        }
        return lines
    }
}
