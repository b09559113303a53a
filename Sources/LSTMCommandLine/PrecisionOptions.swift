import ArgumentParser
import LSTMKit

extension Precision: ExpressibleByArgument {
    /// A comma-separated list of precisions given to `option` (`bench --precision`,
    /// `--test-precision`), in the order given and without repeats, each one of `allowed`.
    /// - Throws: `ValidationError` naming the option and the item that is not one of them.
    public static func list(_ text: String, option: String, allowed: [Precision] = allCases) throws -> [Precision] {
        var out: [Precision] = []
        for item in text.split(separator: ",", omittingEmptySubsequences: false).map(String.init) {
            guard let precision = Precision(name: item), allowed.contains(precision) else {
                throw ValidationError(
                    "\(option): '\(item)' is not one of \(allowed.map(\.rawValue).joined(separator: ", "))")
            }
            if !out.contains(precision) { out.append(precision) }
        }
        return out
    }
}

/// `--precision`: the weight precision a command runs a trained model in (`Precision`).
public struct PrecisionOption: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Weight precision to run in: fp32, bf16, fp16 or int8 (default: the model's own). The reduced ones "
                + "(inference only) run on the CPU backend and the reference.", valueName: "precision"))
    public var precision: Precision?

    public init() {}

    /// Refuses a reduced `--precision` on OpenCL (which computes in fp32 only).
    public func validate(backend: BackendKind) throws {
        if let precision, precision.isReduced, backend == .opencl {
            throw ValidationError(
                "--precision \(precision) runs on the CPU backend (or the reference); OpenCL computes in fp32 only")
        }
    }

    /// The precision to run a model stored in `stored` in: `--precision` when given, else
    /// `stored`. A model stored reduced runs only in its own precision (the float32 original is
    /// not in the file).
    public func resolved(stored: Precision, model: String) throws -> Precision {
        guard let precision, precision != stored else { return stored }
        guard !stored.isReduced else {
            throw ValidationError(
                "\(model) is stored in \(stored) and runs in \(stored) only (its float32 original is not in the "
                    + "file): drop --precision or give --precision \(stored)")
        }
        return precision
    }
}
