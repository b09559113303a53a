import ArgumentParser
import Foundation
import LSTMBenchmark
import LSTMCommandLine
import LSTMKit

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time forward and training steps on the standard suite (or a custom shape).",
        discussion: """
            FLOPs per layer and direction: forward 2*T*B*4H*(In + H); a training step counts 3x \
            forward. Times are medians after a warm-up run (min-max shown). The parity column is \
            the max abs difference of each row's output against the CPU path's float32 output on the \
            same weights and input. Reduced precisions (--precision bf16, fp16, int8) run on the CPU \
            path, forward only (inference); their GFLOP/s count the same FLOPs as float32's.
            """)

    @Option(help: "Comma-separated suite names to run (default: all).")
    var only: String?

    @Option(help: "A custom row: I,H,B,T[,layers[,bi]] (may be repeated).")
    var shape: [String] = []

    @Option(
        help: ArgumentHelp(
            "Cell options for every row: a comma-separated list of peephole, cifg, layer-norm, "
                + "activation-clip=C, cell-clip=C (default: PyTorch's plain cell).", valueName: "options"))
    var cell: String?

    @Option(help: "cpu or opencl (default: every available backend).")
    var backend: BackendKind?

    @Option(
        help: ArgumentHelp(
            "Weight precisions to time, comma-separated: fp32, bf16, fp16, int8 (default fp32). The reduced ones run "
                + "on the CPU path, forward only.", valueName: "list"))
    var precision: String = "fp32"

    /// `--precision` parsed, in the order given, without repeats.
    var precisions: [Precision] {
        get throws { try Precision.list(precision, option: "--precision") }
    }

    @OptionGroup var deviceOption: DeviceOption
    var device: String? { deviceOption.device }

    @Option(parsing: .unconditional, help: "Seconds of timing per measurement.")
    var seconds: Double = 1.0

    @Option(parsing: .unconditional, help: "Exact number of timed runs per measurement (overrides --seconds).")
    var `repeat`: Int?

    @Option(
        parsing: .unconditional,
        help:
            ArgumentHelp(
                "Exactly this many threads for the CPU path, at most the cores (default: up to all cores, fewer for "
                    + "rows whose steps are too small to share; the threads column says).")
    )
    var threads: Int?

    @Flag(
        help: ArgumentHelp(
            "On OpenCL devices, also profile one forward and one training step per row: launches per step and "
                + "device time per kernel (OpenCL profiling events; in --json as `profile`)."))
    var profile = false

    @Flag(
        help: ArgumentHelp(
            "Also time every row through the model API (the LSTM as an LSTMLayer in a Sequential) and print its "
                + "times beside the engine's alone (in --json as `inModel`)."))
    var inModel = false

    @Flag(help: "Print one JSON object per row instead of a table.")
    var json = false

    @Option(help: "Also write the rows as a JSON array to this file.")
    var output: String?

    @Flag(help: "Print the selected rows' shapes as JSON lines (name, I, H, B, T, layers, directions) without timing.")
    var list = false

    func validate() throws {
        if backend == .reference { throw BackendOptions.referenceRefused("bench") }
        guard seconds.isFinite, seconds >= 0, seconds <= 3600 else {
            throw ValidationError("--seconds must be a finite number in 0...3600, got \(seconds)")
        }
        if let r = `repeat`, !(1...1_000_000).contains(r) {
            throw ValidationError("--repeat must be in 1...1000000, got \(r)")
        }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
        let precisions = try self.precisions
        if backend == .opencl, precisions.contains(where: \.isReduced) {
            throw ValidationError(
                "--precision \(precision): reduced precisions run on the CPU path only; drop --backend opencl")
        }
    }

    func run() throws {
        if let output { try prepareOutputPath(output, option: "--output") }  // before minutes of measuring
        var shapes: [BenchmarkShape]
        do { shapes = try BenchmarkShape.selected(only: only, shapes: shape) } catch let error as SettingError {
            throw ValidationError(error.description)
        }
        if let cell {
            let options: LSTMCellOptions
            do { options = try BenchmarkShape.parseCell(cell) } catch let error as LSTMError {
                throw ValidationError("\(error)")
            }
            for index in shapes.indices { shapes[index].cell = options }
        }
        if list {
            for s in shapes {
                print(
                    "{\"name\":\"\(s.name)\",\"I\":\(s.inputSize),\"H\":\(s.hiddenSize),\"B\":\(s.batch),\"T\":\(s.sequenceLength),"
                        + "\"layers\":\(s.layers),\"directions\":\(s.bidirectional ? 2 : 1)}")
            }
            return
        }
        if let threads, CPUThreads.set(threads) < threads {
            printError(
                "note: --threads \(threads) is more than the \(CPUThreads.maximum) cores; using \(CPUThreads.current)")
        }
        // The CPU path: exactly --threads threads, or up to all cores chosen per row by work size.
        let cpu = threads.map { CPUBackend(threads: min($0, CPUThreads.maximum)) } ?? CPUBackend()
        if let r = `repeat`, r <= 0 { throw ValidationError("--repeat must be positive") }
        // The backends to time: the CPU path, then the chosen OpenCL device (every device
        // when none is named). The CPU path's output is always computed for the parity column.
        var devices: [OpenCLBackend] = []
        if backend != .cpu {
            do {
                if device != nil || backend == nil && ProcessInfo.processInfo.environment["LSTM_GPU_DEVICE"] != nil {
                    devices = [
                        profile
                            ? try OpenCLBackend(info: OpenCLDevices.select(device), profiling: true)
                            : try OpenCLBackend.shared(device: device)
                    ]
                } else {
                    // By default every GPU (or accelerator); OpenCL devices that are CPUs (PoCL)
                    // run the same math far slower than the CPU path and are timed only when asked
                    // for (--backend opencl or --device).
                    var chosen = try OpenCLDevices.all()
                    if backend == nil {
                        for info in chosen where info.type == "CPU" {
                            printError(
                                "bench: leaving out opencl[\(info.index)] \(info.name) (an OpenCL device on the CPU; "
                                    + "--backend opencl or --device \(info.index) times it)")
                        }
                        chosen = chosen.filter { $0.type != "CPU" }
                    }
                    devices = try chosen.map {
                        profile
                            ? try OpenCLBackend(info: $0, profiling: true)
                            : try OpenCLBackend.shared(device: "\($0.index)")
                    }
                }
            } catch {
                if backend == .opencl { throw error }
                printError("OpenCL unavailable, timing the CPU path only: \(error)")
            }
            if backend == .opencl, devices.isEmpty { throw LSTMError.noDevice("no OpenCL device found") }
        }

        // Progress goes to standard error: a status line rewritten in place on a terminal, else
        // one plain line per measurement (so a redirected or piped run shows where it is).
        let statusLine = isatty(STDERR_FILENO) != 0
        let cpuInfo = CPUInfo.current
        let table = BenchTable(
            shapes: shapes, devices: devices.map { deviceLabel($0.device) },
            cpu: backend != .opencl)
        if !json {
            let runs = `repeat`.map { "\($0) run\($0 == 1 ? "" : "s")" } ?? "\(seconds) s"
            let threadNote =
                threads.map { "CPU threads \(min($0, CPUThreads.maximum))" }
                ?? "CPU threads up to \(cpu.threads), chosen per row by work size"
            print(cpuInfo.summary)
            print(
                "lstm-gpu bench: \(shapes.count) row\(shapes.count == 1 ? "" : "s"), \(threadNote), \(runs) per "
                    + "measurement"
                    + (shapes.first.map { $0.cell.isPlain ? "" : ", cell options: \($0.cell.summary)" } ?? "")
            )
            print(table.header)
        }
        var rows: [BenchmarkRow] = []
        for (index, shape) in shapes.enumerated() {
            func progress(_ what: String) {
                let text = "bench: row \(index + 1)/\(shapes.count) \(shape.name) on \(what)"
                FileHandle.standardError.write(Data((statusLine ? text + "\u{1B}[K\r" : text + "\n").utf8))
            }
            func emit<Backend: ModelOps>(_ row: BenchmarkRow, _ backend: Backend) throws {
                var row = row
                row.cpu = cpuInfo
                if inModel, row.precision ?? .fp32 == .fp32 {
                    row.inModel = try runInModelBenchmark(
                        shape, backend: backend, seconds: seconds, maximumRuns: `repeat`)
                }
                if statusLine { FileHandle.standardError.write(Data("\u{1B}[K".utf8)) }
                rows.append(row)
                print(json ? try jsonLine(row) : table.format(row))
                if let timing = row.inModel, let train = row.train, !json {
                    print(
                        "    inside a model: forward \(fixed(timing.forward.medianMs, 3)) ms "
                            + "(\(fixed(timing.forward.medianMs / row.forward.medianMs, 3))× alone), training step "
                            + "\(fixed(timing.train.medianMs, 3)) ms (\(fixed(timing.train.medianMs / train.medianMs, 3))× alone)"
                    )
                }
            }
            // The CPU path's float32 output is every row's parity reference.
            let precisions = try self.precisions
            var reference: Tensor? = nil
            if backend == .opencl || !precisions.contains(.fp32) || precisions.first != .fp32 {
                reference = try referenceOutput(shape)
            }
            if backend != .opencl {
                for precision in precisions {
                    progress(precision == .fp32 ? "cpu" : "cpu \(precision)")
                    let (row, output) = try runBenchmark(
                        shape, backend: cpu, seconds: seconds, maximumRuns: `repeat`, reference: reference,
                        precision: precision)
                    if reference == nil { reference = output }
                    try emit(row, cpu)
                }
            }
            for device in devices where precisions.contains(.fp32) {
                progress(deviceLabel(device.device))
                var row = try runBenchmark(
                    shape, backend: device, seconds: seconds, maximumRuns: `repeat`, reference: reference!
                ).row
                row.deviceIndex = device.device.index
                if profile {
                    _ = try device.takeProfile()  // the timing runs' events
                    row.profile = try profileBenchmark(shape, backend: device)
                }
                try emit(row, device)
                if profile, !json, let p = row.profile { p.tableLines().forEach { print($0) } }
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

    func jsonLine(_ row: BenchmarkRow) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(row), as: UTF8.self)
    }
}
