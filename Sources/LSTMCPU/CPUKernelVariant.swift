import CLSTMKernels
import Foundation
@_spi(Backend) import LSTMCore

/// The bodies the CPU path's own kernels (Sources/CLSTMKernels: the fused cell forward and
/// backward, the packed recurrent GEMM) run, one for the whole process. The input projection
/// and the weight gradients run in OpenBLAS, which picks its own kernels.
///
/// Chosen at run time, never at build time: by default the best one CPUID allows
/// (`avx512` needs AVX-512 F, BW, DQ, VL and FMA; `avx2` needs AVX2 and FMA; `portable` runs
/// anywhere, Arm included). `avx2-vnni` and `avx512-vnni` run the float32 bodies of `avx2` and
/// `avx512` and add, for the reduced-precision products (`ReducedPrecisionBodies`), AVX-VNNI
/// (with F16C) and AVX-512 VNNI (with F16C, and AVX512-BF16 where the CPU has it);
/// `avx512-amx` runs avx512-vnni's bodies with the int8 products on AMX tiles (it needs
/// AMX-INT8 and Linux's permission for the tile state, asked for once). The environment variable
/// `LSTM_GPU_CPU_ISA=portable|avx2|avx2-vnni|avx512|avx512-vnni|avx512-amx` forces one; a value that is not one of these, or a variant this CPU lacks, makes the CPU
/// backend's forward and backward throw `LSTMError.invalidArgument` naming the variable, the
/// value and what the CPU supports (`lstm-gpu` refuses it at start with exit code 2).
///
/// For display (`lstm-gpu devices`, `bench`): `CPUKernelVariant.current.name`, e.g. "avx512",
/// and `CPUKernelVariant.supported`.
public enum CPUKernelVariant: Int, CaseIterable, Sendable, CustomStringConvertible {
    case portable = 0, avx2 = 1, avx2VNNI = 2, avx512 = 3, avx512VNNI = 4, avx512AMX = 5

    /// The environment variable that forces a variant.
    public static let environmentVariable = "LSTM_GPU_CPU_ISA"

    /// "portable", "avx2", "avx2-vnni", "avx512" or "avx512-vnni": the value `LSTM_GPU_CPU_ISA`
    /// takes for this variant.
    public var name: String {
        switch self {
        case .portable: return "portable"
        case .avx2: return "avx2"
        case .avx2VNNI: return "avx2-vnni"
        case .avx512: return "avx512"
        case .avx512VNNI: return "avx512-vnni"
        case .avx512AMX: return "avx512-amx"
        }
    }

    public var description: String { name }

    /// Whether this variant has float32 bodies of its own (avx2-vnni and avx512-vnni run
    /// avx2's and avx512's: they differ only in the reduced-precision products).
    public var hasOwnFloatBodies: Bool { self == .portable || self == .avx2 || self == .avx512 }

    /// Whether this variant has an int8 body of its own (avx512 runs avx2's vpmaddwd body).
    public var hasOwnInt8Body: Bool { self != .avx512 }

    /// The variant named `name` (`name` of a case), or nil.
    public init?(name: String) {
        guard let variant = Self.allCases.first(where: { $0.name == name }) else { return nil }
        self = variant
    }

    /// The variants this CPU (and OS) can run, from CPUID, in increasing order of preference.
    public static var supported: [CPUKernelVariant] {
        let mask = lstm_kernels_supported()
        return allCases.filter { mask & (1 << $0.rawValue) != 0 }
    }

    /// The best variant this CPU can run.
    public static var best: CPUKernelVariant {
        CPUKernelVariant(rawValue: Int(lstm_kernels_best_variant())) ?? .portable
    }

    /// The variant the kernels run now: `LSTM_GPU_CPU_ISA`'s when it is set and usable,
    /// otherwise the best one (when the variable is unusable `selected()` throws instead).
    public static var current: CPUKernelVariant {
        _ = configuration
        return CPUKernelVariant(rawValue: Int(lstm_kernels_variant())) ?? .portable
    }

    /// The variant this process is configured to run (`LSTM_GPU_CPU_ISA`, or the best one),
    /// applied to the kernels; throws when the variable names no variant or one this CPU lacks.
    @discardableResult
    public static func selected() throws -> CPUKernelVariant {
        switch configuration {
        case .success(let variant): return variant
        case .failure(let error): throw error
        }
    }

    /// `LSTM_GPU_CPU_ISA` read once, and applied to the kernels, on first use.
    private static let configuration: Result<CPUKernelVariant, LSTMError> = {
        let result = resolve(ProcessInfo.processInfo.environment[environmentVariable])
        if case .success(let variant) = result { lstm_kernels_set_variant(Int32(variant.rawValue)) }
        return result
    }()

    /// The variant a value of `LSTM_GPU_CPU_ISA` (nil: unset) selects on this CPU.
    /// `supported` stands in for CPUID in tests.
    static func resolve(
        _ value: String?, supported: [CPUKernelVariant] = supported
    ) -> Result<CPUKernelVariant, LSTMError> {
        guard let value, !value.isEmpty else { return .success(supported.last ?? .portable) }
        let names = supported.map(\.name).joined(separator: ", ")
        guard let variant = CPUKernelVariant(name: value) else {
            return .failure(
                .invalidArgument(
                    "\(environmentVariable)=\(displayedValue(value)) is not a CPU kernel variant: use one of "
                        + "\(allCases.map(\.name).joined(separator: ", ")), or unset it for the best this CPU "
                        + "supports (\(names))"
                ))
        }
        guard supported.contains(variant) else {
            return .failure(
                .invalidArgument(
                    "\(environmentVariable)=\(value): this CPU does not support the \(value) "
                        + "kernels; it supports \(names)"))
        }
        return .success(variant)
    }

    /// Internal, for tests: runs `body` with every kernel forced to `variant` (which this CPU
    /// must support), then goes back to the configured one. Not for use while another thread
    /// runs CPU kernels.
    static func withVariant<T>(_ variant: CPUKernelVariant, _ body: () throws -> T) throws -> T {
        _ = configuration
        let previous = lstm_kernels_variant()
        guard lstm_kernels_set_variant(Int32(variant.rawValue)) == 0 else {
            throw LSTMError.invalidArgument(
                "CPU kernel variant \(variant.name) is not supported here (\(supported.map(\.name)))")
        }
        defer { lstm_kernels_set_variant(previous) }
        return try body()
    }
}
