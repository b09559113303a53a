import CBLASLoader
import CLSTMKernels
import Foundation
@_spi(Backend) import LSTMCore

/// Processor features that decide which BLAS kernels run, as CPUID reports them and the
/// operating system enables them. Empty on processors other than x86.
public struct CPUFeatures: OptionSet, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let avx = CPUFeatures(rawValue: UInt32(LSTM_CPU_AVX))
    public static let avx2 = CPUFeatures(rawValue: UInt32(LSTM_CPU_AVX2))
    public static let fma = CPUFeatures(rawValue: UInt32(LSTM_CPU_FMA))
    public static let avx512f = CPUFeatures(rawValue: UInt32(LSTM_CPU_AVX512F))
    public static let avx512bw = CPUFeatures(rawValue: UInt32(LSTM_CPU_AVX512BW))
    public static let avx512dq = CPUFeatures(rawValue: UInt32(LSTM_CPU_AVX512DQ))
    public static let avx512vl = CPUFeatures(rawValue: UInt32(LSTM_CPU_AVX512VL))
    /// The vendor, as CPUID names it.
    public static let intel = CPUFeatures(rawValue: UInt32(LSTM_CPU_VENDOR_INTEL))
    public static let amd = CPUFeatures(rawValue: UInt32(LSTM_CPU_VENDOR_AMD))

    /// What OpenBLAS's SkylakeX kernels need.
    public static let avx512: CPUFeatures = [.avx512f, .avx512bw, .avx512dq, .avx512vl]

    /// This processor's features.
    public static var current: CPUFeatures { CPUFeatures(rawValue: UInt32(lstm_cpu_features())) }

    static let names: [(CPUFeatures, String)] = [
        (.intel, "intel"), (.amd, "amd"), (.avx, "avx"), (.avx2, "avx2"), (.fma, "fma"),
        (.avx512f, "avx512f"), (.avx512bw, "avx512bw"), (.avx512dq, "avx512dq"), (.avx512vl, "avx512vl"),
    ]

    /// The features by name, space-separated ("intel avx avx2 fma avx512f ...").
    public var description: String { Self.names.filter { contains($0.0) }.map(\.1).joined(separator: " ") }
}

/// The CPU path on this machine: the processor, the threads it computes with, the BLAS library
/// and the kernels that library runs, and the variant of LSTMKit's own kernels. What
/// `lstm-gpu devices` lists first and `lstm-gpu bench` prints above its table (and in each
/// `--json` row as `cpu`).
///
/// How the BLAS kernels are chosen: LSTMKit loads the BLAS library at first use (libopenblas.so.0,
/// else libopenblas.so, libcblas.so.3, libblas.so.3). Unless OPENBLAS_CORETYPE is set, it sets it
/// for that load to `openBLASCore(for: .current)`, so an OpenBLAS too old to know this processor
/// still runs kernels that match it. A user-set OPENBLAS_CORETYPE is left as it is.
public struct CPUInfo: Sendable, Codable, Equatable {
    /// The processor's name (/proc/cpuinfo "model name"; the machine architecture where there is none).
    public var model: String
    /// The processor's features that the BLAS core is chosen from (`CPUFeatures.description`).
    public var features: String
    /// Threads CPU backends made from now on compute with (`CPUThreads.current`).
    public var threads: Int
    /// The active cores (`CPUThreads.maximum`).
    public var maximumThreads: Int
    /// The BLAS library's file as the dynamic loader found it; nil when none could be loaded.
    public var blasLibrary: String?
    /// OpenBLAS's build description (openblas_get_config: "OpenBLAS 0.3.21 DYNAMIC_ARCH ...");
    /// nil for another BLAS.
    public var blasVersion: String?
    /// The kernels OpenBLAS runs (openblas_get_corename: "SkylakeX", "Haswell", ...); nil for another BLAS.
    public var blasCore: String?
    /// Who chose `blasCore`: "cpuid" (LSTMKit, from this processor's features), "environment"
    /// (OPENBLAS_CORETYPE set by the user), "library" (OpenBLAS's own detection: no rule for
    /// this processor), "preloaded" (OpenBLAS was in the process before LSTMKit loaded it),
    /// "not-openblas" (another BLAS: no cores to choose), "none" (no library).
    public var blasCoreChosenBy: String
    /// The core LSTMKit asked OpenBLAS for (when `blasCoreChosenBy` is "cpuid").
    public var blasRequestedCore: String?
    /// Why no BLAS library could be loaded; nil when one was.
    public var blasError: String?
    /// The variant of LSTMKit's own CPU kernels (`CPUInfo.kernelVariant`).
    public var kernels: String
    /// The body each reduced precision's products run (`ReducedPrecisionBodies`), by precision
    /// name ("int8": "avx512-amx (tdpbusd)", …); nil in rows written before it was recorded.
    public var reducedBodies: [String: String]? = nil

    /// The CPU path now (loads the BLAS library if nothing has yet).
    public static var current: CPUInfo {
        let blas = BLASLibrary.state
        func string(_ pointer: UnsafePointer<CChar>?) -> String? {
            pointer.map { String(cString: $0).trimmingCharacters(in: .whitespacesAndNewlines) }
        }
        return CPUInfo(
            model: modelName, features: CPUFeatures.current.description, threads: CPUThreads.current,
            maximumThreads: CPUThreads.maximum,
            blasLibrary: string(lstm_blas_path()), blasVersion: string(lstm_blas_config()),
            blasCore: string(lstm_blas_corename()),
            blasCoreChosenBy: blas.error == nil ? blas.chosenBy : "none",
            blasRequestedCore: blas.requestedCore, blasError: blas.error, kernels: kernelVariant,
            reducedBodies: Dictionary(
                uniqueKeysWithValues: [Precision.int8, .bf16, .fp16].map {
                    ($0.rawValue, ReducedPrecisionBodies.body($0))
                }))
    }

    /// The variant of LSTMKit's own CPU kernels (Sources/CLSTMKernels) that runs: "avx2" or "portable".
    public static var kernelVariant: String { CPUKernelVariant.current.name }

    /// The OpenBLAS core whose kernels suit a processor with `features`, or nil to leave the
    /// choice to OpenBLAS: AVX-512 F, BW, DQ and VL → "SkylakeX"; AVX2 and FMA → "Haswell"
    /// ("Zen" on AMD, which every OpenBLAS that knows AVX2 knows); AVX → "SandyBridge" (not on
    /// AMD: OpenBLAS knows all of AMD's AVX-only processors); anything less → nil.
    public static func openBLASCore(for features: CPUFeatures) -> String? {
        if features.isSuperset(of: .avx512) { return "SkylakeX" }
        if features.isSuperset(of: [.avx2, .fma]) { return features.contains(.amd) ? "Zen" : "Haswell" }
        if features.contains(.avx), !features.contains(.amd) { return "SandyBridge" }
        return nil
    }

    /// The processor's name: /proc/cpuinfo's first "model name" (Linux), else `uname -m`.
    public static var modelName: String {
        if let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) {
            for line in text.split(separator: "\n") where line.hasPrefix("model name") {
                if let colon = line.firstIndex(of: ":") {
                    let name = line[line.index(after: colon)...].split(whereSeparator: \.isWhitespace).joined(
                        separator: " ")
                    if !name.isEmpty { return name }
                }
            }
        }
        var names = utsname()
        uname(&names)
        let machine = withUnsafeBytes(of: &names.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return machine.isEmpty ? "unknown processor" : machine
    }

    /// Who chose the core, in words.
    public var coreChoice: String {
        switch blasCoreChosenBy {
        case "cpuid": return "chosen from CPUID (\(features)); OPENBLAS_CORETYPE overrides"
        case "environment": return "set by OPENBLAS_CORETYPE"
        case "library": return "OpenBLAS's own detection (no rule for this processor's features)"
        case "preloaded": return "chosen before LSTMKit loaded OpenBLAS (it was already in the process)"
        default: return blasCoreChosenBy
        }
    }

    /// The library's file name and version in a few words: "OpenBLAS 0.3.21 (libopenblas.so.0)".
    public var blasSummary: String {
        guard let blasLibrary else { return "none (\(blasError ?? "not loaded"))" }
        let file = (blasLibrary as NSString).lastPathComponent
        guard let blasVersion else { return file }
        let words = blasVersion.split(separator: " ")
        return (words.count >= 2 ? words.prefix(2).joined(separator: " ") : blasVersion) + " (\(file))"
    }

    /// One line: processor, threads, BLAS and its core, kernels.
    public var summary: String {
        var core = ""
        if let blasCore {
            core =
                ", core \(blasCore)"
                + (blasCoreChosenBy == "cpuid"
                    ? " (from CPUID)"
                    : blasCoreChosenBy == "environment" ? " (OPENBLAS_CORETYPE)" : "")
        }
        return "cpu: \(model); threads \(threads) of \(maximumThreads); BLAS \(blasSummary)\(core); kernels \(kernels)"
    }

    /// The lines `lstm-gpu devices` prints for the CPU.
    public var details: [String] {
        var lines = [
            "[cpu] \(model)  (--backend cpu)",
            "    threads \(threads) of \(maximumThreads) cores; LSTMKit kernels \(kernels) (here: "
                + CPUKernelVariant.supported.map(\.name).joined(separator: ", ") + ")",
        ]
        if let blasLibrary {
            lines.append("    BLAS \(blasLibrary)" + (blasVersion.map { ": \($0)" } ?? ""))
            if let blasCore {
                var line = "    BLAS core \(blasCore), \(coreChoice)"
                if let blasRequestedCore, blasRequestedCore.lowercased() != blasCore.lowercased() {
                    line += "; asked for \(blasRequestedCore)"
                }
                lines.append(line)
            } else {
                lines.append("    BLAS core: not OpenBLAS, no kernel choice")
            }
        } else {
            lines.append("    BLAS none: \(blasError ?? "not loaded") (the CPU path cannot run)")
        }
        if let reducedBodies {
            lines.append(
                "    reduced precision (inference): "
                    + ["int8", "bf16", "fp16"].compactMap { name in reducedBodies[name].map { "\(name) \($0)" } }
                    .joined(separator: "; "))
        }
        return lines
    }
}
