import Foundation

/// Every failure the engine reports. Each case carries enough context to say what
/// was wrong and where; `description` is the sentence a user sees.
public enum LSTMError: Error, CustomStringConvertible, Equatable {
    /// A tensor handed to the engine has the wrong shape. `what` names the argument.
    case shapeMismatch(what: String, expected: [Int], got: [Int])
    /// An argument is out of range or inconsistent (a length > T, a negative size, ...).
    case invalidArgument(String)
    /// A configuration that `torch.nn.LSTM` would also refuse.
    case invalidConfiguration(String)
    /// A weight file lacks a tensor the configuration needs.
    case missingTensor(name: String, file: String)
    /// A weight file holds a tensor the configuration does not know (strict loading).
    case unexpectedTensor(name: String, file: String)
    /// A stored tensor has a dtype the reader cannot use there.
    case wrongDType(name: String, expected: String, got: String)
    /// A safetensors file is truncated, corrupt or violates the format.
    case corruptFile(path: String, reason: String)
    /// A file is not of the kind expected there (`expected`: "an lstm-fixture/1 parity
    /// fixture", "an lstm-gpu train checkpoint"); `found` says what its metadata holds.
    case unknownFormat(path: String, expected: String, found: String)
    /// Reading or writing a file failed at the operating-system level, or a data file (a
    /// table, tagging file or parallel text read by the loaders in `Data/`) is malformed;
    /// `reason` then begins with the 1-based line ("line 12: ...").
    case io(path: String, reason: String)
    /// An OpenCL call failed; `call` names the API function, `status` its error code by name.
    case openCL(call: String, status: String)
    /// An OpenCL program did not build; `log` is the compiler's build log.
    case kernelBuild(program: String, device: String, log: String)
    /// No OpenCL platform or no device matching the request.
    case noDevice(String)
    /// The problem does not fit the device's memory.
    case outOfMemory(device: String, needed: Int, available: Int)
    /// A file another process holds (an advisory lock, e.g. a checkpoint being trained).
    case inUse(String)
    /// A shared library the engine loads at run time is missing or unusable (the CPU path's
    /// BLAS: libopenblas.so.0 or another CBLAS); the message says what was tried.
    case missingLibrary(String)

    public var description: String {
        switch self {
        case let .shapeMismatch(what, expected, got):
            return "shape mismatch for \(what): expected \(expected), got \(got)"
        case let .invalidArgument(message): return "invalid argument: \(message)"
        case let .invalidConfiguration(message): return "invalid LSTM configuration: \(message)"
        case let .missingTensor(name, file): return "\(file): missing tensor '\(name)'"
        case let .unexpectedTensor(name, file):
            return "\(file): unexpected tensor '\(name)' (not part of this LSTM configuration)"
        case let .wrongDType(name, expected, got):
            return "tensor '\(name)' has dtype \(got), expected \(expected)"
        case let .corruptFile(path, reason): return "\(path): not a valid safetensors file: \(reason)"
        case let .unknownFormat(path, expected, found): return "\(path): not \(expected) (\(found))"
        case let .io(path, reason): return "\(path): \(reason)"
        case let .openCL(call, status): return "OpenCL call \(call) failed with \(status)"
        case let .kernelBuild(program, device, log):
            return "OpenCL program \(program) failed to build on \(device); build log:\n\(log)"
        case let .noDevice(message): return "no OpenCL device: \(message)"
        case let .outOfMemory(device, needed, available):
            return "out of memory on \(device): needs \(formatBytes(needed)), there are \(formatBytes(available))"
        case let .inUse(message): return message
        case let .missingLibrary(message):
            return
                "\(message); the CPU path needs OpenBLAS (Debian/Ubuntu: apt install libopenblas0) or another "
                + "CBLAS library"
        }
    }
}

/// "1.50 GiB"-style rendering of a byte count (messages, `lstm-gpu devices`).
public func formatBytes(_ bytes: Int) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
    var value = Double(bytes)
    var unit = 0
    while value >= 1024, unit < units.count - 1 { value /= 1024; unit += 1 }
    return unit == 0 ? "\(bytes) B" : String(format: "%.2f %@", value, units[unit])
}

/// `value` as an error message shows a value from outside (an environment variable, a
/// file's field): as it is when it is a plain word (letters, digits, `.`, `_`, `-`), else
/// quoted with Swift's escapes, so that spaces show and control characters (newlines, NUL,
/// terminal escapes) never reach the terminal raw.
package func displayedValue(_ value: String) -> String {
    let plain =
        !value.isEmpty
        && value.unicodeScalars.allSatisfy {
            $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "._-".unicodeScalars.contains($0))
        }
    return plain ? value : value.debugDescription
}

/// `text` with every control character (C0, DEL, C1: newlines and terminal escapes included)
/// written as `\u{XX}`, for messages that quote what a file or the environment holds.
package func terminalSafe(_ text: String) -> String {
    var out = ""
    for scalar in text.unicodeScalars {
        if scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) {
            out += "\\u{" + String(scalar.value, radix: 16) + "}"
        } else {
            out.unicodeScalars.append(scalar)
        }
    }
    return out
}
