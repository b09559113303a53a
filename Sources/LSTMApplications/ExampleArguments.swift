import Foundation
import LSTMKit

/// The command line of the example programs: one positional argument or none, `--name value`
/// options and `--flag`s, checked against what the program accepts, with the options every
/// application shares read into `ApplicationSettings` and `NetworkShape`. A mistake prints the
/// usage and what was wrong, and exits with status 2.
public struct ExampleArguments {
    /// The options every application takes (values) and its flags.
    public static let sharedOptions = [
        "epochs", "batch", "lr", "seed", "patience", "checkpoint", "log", "limit", "validation", "test", "backend",
        "embedding", "hidden", "layers", "dropout", "pooling", "clip",
    ]
    public static let sharedFlags = ["bidirectional", "resume", "no-early-stop"]

    public let program: String
    public private(set) var positional: [String] = []
    private var values: [String: String] = [:]
    private var flags: Set<String> = []
    private let usage: String

    /// Parses `arguments` (without the program name). `options` and `flags` are the program's
    /// own besides the shared ones; `usage` is printed with `--help` and with any mistake.
    /// `unused` names shared options and flags the program has no use for (a forecaster has no
    /// embedding): given, they are refused rather than ignored.
    public init(
        _ arguments: [String], program: String, options: [String] = [], flags: [String] = [], unused: [String] = [],
        usage: String
    ) {
        self.program = program
        self.usage = usage
        let known = Set(Self.sharedOptions + options).subtracting(unused)
        let knownFlags = Set(Self.sharedFlags + flags).subtracting(unused)
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            if argument == "-h" || argument == "--help" {
                print(usage)
                exit(0)
            }
            if argument.hasPrefix("--") {
                let name = String(argument.dropFirst(2))
                if knownFlags.contains(name) {
                    self.flags.insert(name)
                } else if known.contains(name) {
                    index += 1
                    guard index < arguments.count else { fail("\(argument) needs a value") }
                    values[name] = arguments[index]
                } else {
                    fail("unknown option \(argument)")
                }
            } else {
                positional.append(argument)
            }
            index += 1
        }
    }

    /// Prints `message` and the usage to standard error and exits with status 2.
    public func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("\(program): \(message)\n\(usage)\n".utf8))
        exit(2)
    }

    /// The text of `--name`, or nil.
    public func string(_ name: String) -> String? { values[name] }
    public func flag(_ name: String) -> Bool { flags.contains(name) }

    /// `--name` as a value of `T` (Int, Double, Float, UInt64), or `fallback`; a value that does
    /// not parse is a usage error naming the option.
    public func value<T: LosslessStringConvertible>(_ name: String, _ fallback: T) -> T {
        guard let text = values[name] else { return fallback }
        guard let value = T(text) else { fail("--\(name) \(text.debugDescription) is not a valid \(T.self)") }
        return value
    }

    /// The shared options read over `defaults`.
    public func settings(_ defaults: ApplicationSettings = ApplicationSettings()) -> ApplicationSettings {
        var s = defaults
        s.epochs = value("epochs", s.epochs)
        s.batchSize = value("batch", s.batchSize)
        s.learningRate = value("lr", s.learningRate)
        s.seed = value("seed", s.seed)
        s.patience = flag("no-early-stop") ? nil : value("patience", s.patience ?? 3)
        s.modelPath = string("checkpoint") ?? s.modelPath
        s.resume = flag("resume")
        s.logPath = string("log")
        s.limit = values["limit"].map { _ in value("limit", 0) }
        s.validationFraction = value("validation", s.validationFraction)
        s.testFraction = value("test", s.testFraction)
        if let clip = values["clip"] { s.maxGradientNorm = clip == "none" ? nil : value("clip", Float(5)) }
        return s
    }

    /// The network options read over `defaults`.
    public func shape(_ defaults: NetworkShape = NetworkShape()) -> NetworkShape {
        var s = defaults
        s.embedding = value("embedding", s.embedding)
        s.hidden = value("hidden", s.hidden)
        s.layers = value("layers", s.layers)
        s.dropout = value("dropout", s.dropout)
        if flag("bidirectional") { s.bidirectional = true }
        if let pooling = values["pooling"] {
            guard let mode = PoolingMode(name: pooling) else { fail("--pooling must be last, mean or max") }
            s.pooling = mode
        }
        return s
    }

    /// Runs `body` on the backend `--backend` names (cpu, the default, or opencl); an error it
    /// throws is printed as `program: error` with exit status 1.
    public func onBackend(_ body: (any ModelOps) throws -> Void) -> Never {
        do {
            switch string("backend") ?? "cpu" {
            case "cpu": try body(CPUBackend())
            case "opencl": try body(OpenCLBackend.shared())
            case let other: fail("--backend must be cpu or opencl, not \(other.debugDescription)")
            }
        } catch {
            FileHandle.standardError.write(Data("\(program): \(error)\n".utf8))
            exit(1)
        }
        exit(0)
    }

    /// The usage text's shared part, for the programs' own usage strings.
    public static let sharedUsage = """
          --epochs N --batch B --lr RATE --clip NORM|none --seed S --patience P | --no-early-stop
          --validation FRACTION --test FRACTION --limit N (first N examples)
          --embedding E --hidden H --layers L --dropout P --bidirectional --pooling last|mean|max
          --checkpoint FILE (the best model; FILE.fitstate resumes) --resume --log FILE.jsonl
          --backend cpu|opencl
        """
}

extension PoolingMode {
    /// "last", "mean" or "max".
    public init?(name: String) {
        switch name {
        case "last": self = .last
        case "mean": self = .mean
        case "max": self = .max
        default: return nil
        }
    }
}
