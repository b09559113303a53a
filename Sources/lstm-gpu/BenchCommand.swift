import ArgumentParser
import Foundation
import LSTMKit

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time forward and training steps on the standard suite (or a custom shape).",
        discussion: """
        FLOPs per layer and direction: forward 2*T*B*4H*(In + H); a training step counts 3x \
        forward. Times are medians after a warm-up run (min-max shown). The parity column is \
        the max abs difference of each backend's output against the CPU path on the same \
        weights and input.
        """)

    @Option(help: "Comma-separated suite names to run (default: all).")
    var only: String?

    @Option(help: "A custom row: I,H,B,T[,layers[,bi]] (may be repeated).")
    var shape: [String] = []

    @Option(help: "cpu or opencl (default: every available backend).")
    var backend: BackendKind?

    @Option(help: "OpenCL device: index or name substring.")
    var device: String?

    @Option(parsing: .unconditional, help: "Seconds of timing per measurement.")
    var seconds: Double = 1.0

    @Option(parsing: .unconditional, help: "Exact number of timed runs per measurement (overrides --seconds).")
    var `repeat`: Int?

    @Option(parsing: .unconditional, help: "Threads for the CPU path (default: all cores; at most the cores).")
    var threads: Int?

    @Flag(help: "Print one JSON object per row instead of a table.")
    var json = false

    @Option(help: "Also write the rows as a JSON array to this file.")
    var output: String?

    @Flag(help: "Print the selected rows' shapes as JSON lines (name, I, H, B, T, layers, directions) without timing.")
    var list = false

    func validate() throws {
        guard seconds.isFinite, seconds >= 0, seconds <= 3600 else {
            throw ValidationError("--seconds must be a finite number in 0...3600, got \(seconds)")
        }
        if let r = `repeat`, !(1...1_000_000).contains(r) { throw ValidationError("--repeat must be in 1...1000000, got \(r)") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
    }

    func run() throws {
        var shapes: [BenchmarkShape] = []
        if let only {
            let names = only.split(separator: ",").map(String.init)
            for name in names where !BenchmarkShape.suite.contains(where: { $0.name == name }) {
                throw ValidationError("unknown suite row '\(name)'; known: \(BenchmarkShape.suite.map(\.name).joined(separator: ", "))")
            }
            shapes = BenchmarkShape.suite.filter { names.contains($0.name) }
        }
        for text in shape {
            do { shapes.append(try BenchmarkShape.parse(text)) } catch let error as LSTMError {
                throw ValidationError("\(error)")   // a bad --shape is a usage error (exit 64)
            }
        }
        if only == nil, shape.isEmpty { shapes = BenchmarkShape.suite }
        if list {
            for s in shapes {
                print("{\"name\":\"\(s.name)\",\"I\":\(s.inputSize),\"H\":\(s.hiddenSize),\"B\":\(s.batch),\"T\":\(s.steps),"
                      + "\"layers\":\(s.layers),\"directions\":\(s.bidirectional ? 2 : 1)}")
            }
            return
        }
        if let threads, CPUThreads.set(threads) < threads {
            printError("note: --threads \(threads) is more than the \(CPUThreads.maximum) cores; using \(CPUThreads.current)")
        }
        if let r = `repeat`, r <= 0 { throw ValidationError("--repeat must be positive") }
        // The backends to time: the CPU path, then the chosen OpenCL device (every device
        // when none is named). The CPU path's output is always computed for the parity column.
        var devices: [OpenCLBackend] = []
        if backend != .cpu {
            do {
                if device != nil || backend == nil && ProcessInfo.processInfo.environment["LSTM_GPU_DEVICE"] != nil {
                    devices = [try OpenCLBackend.shared(device: device)]
                } else {
                    devices = try OpenCLDevices.all().map { try OpenCLBackend.shared(device: "\($0.index)") }
                }
            } catch {
                if backend == .opencl { throw error }
                printError("OpenCL unavailable, timing the CPU path only: \(error)")
            }
            if backend == .opencl, devices.isEmpty { throw LSTMError.noDevice("no OpenCL device found") }
        }

        let interactive = isatty(STDOUT_FILENO) != 0 && !json
        if !json {
            print("lstm-gpu bench: \(shapes.count) rows, CPU threads \(CPUThreads.current), \(`repeat`.map { "\($0) runs" } ?? "\(seconds) s") per measurement")
            print(header)
        }
        var rows: [BenchmarkRow] = []
        for (index, shape) in shapes.enumerated() {
            func progress(_ what: String) {
                if interactive { FileHandle.standardError.write(Data("  [\(index + 1)/\(shapes.count)] \(shape.name) on \(what)…\u{1B}[K\r".utf8)) }
            }
            func emit(_ row: BenchmarkRow) throws {
                if interactive { FileHandle.standardError.write(Data("\u{1B}[K".utf8)) }
                rows.append(row)
                print(json ? try jsonLine(row) : format(row))
            }
            let reference: Tensor
            if backend == .opencl {
                reference = try referenceOutput(shape)
            } else {
                progress("cpu")
                let (row, output) = try runBenchmark(shape, backend: CPUBackend(), seconds: seconds, maximumRuns: `repeat`)
                reference = output
                try emit(row)
            }
            for device in devices {
                progress(device.device.name)
                try emit(runBenchmark(shape, backend: device, seconds: seconds, maximumRuns: `repeat`, reference: reference).row)
            }
        }
        if let output {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try writeAtomically(try encoder.encode(rows), to: output)
        }
    }

    /// The CPU path's output for `shape` (same weights and input as `runBenchmark`), untimed.
    func referenceOutput(_ shape: BenchmarkShape) throws -> Tensor {
        try runBenchmark(shape, backend: CPUBackend(), seconds: 0, maximumRuns: 1).output
    }

    var header: String {
        pad("name", 20) + pad("backend", 26) + pad("I", 6, right: true) + pad("H", 6, right: true) + pad("B", 5, right: true)
            + pad("T", 5, right: true) + pad("L", 3, right: true) + pad("D", 3, right: true)
            + pad("fwd ms (min-max)", 24, right: true) + pad("GFLOP/s", 9, right: true)
            + pad("train ms (min-max)", 26, right: true) + pad("GFLOP/s", 9, right: true) + pad("parity", 10, right: true)
    }

    func format(_ r: BenchmarkRow) -> String {
        func timing(_ t: TimingSummary) -> String { "\(fixed(t.medianMs, 2)) (\(fixed(t.minMs, 1))-\(fixed(t.maxMs, 1)))" }
        return pad(r.name, 20) + pad(r.backend == "cpu" ? "cpu" : String(("opencl " + r.device.dropFirst("opencl: ".count)).prefix(25)), 26) + pad("\(r.I)", 6, right: true) + pad("\(r.H)", 6, right: true)
            + pad("\(r.B)", 5, right: true) + pad("\(r.T)", 5, right: true) + pad("\(r.layers)", 3, right: true)
            + pad("\(r.directions)", 3, right: true) + pad(timing(r.forward), 24, right: true)
            + pad(fixed(r.forwardGflops, 1), 9, right: true) + pad(timing(r.train), 26, right: true)
            + pad(fixed(r.trainGflops, 1), 9, right: true) + pad(scientific(Float(r.parityMaxAbs)), 10, right: true)
    }

    func jsonLine(_ row: BenchmarkRow) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(row), as: UTF8.self)
    }
}
