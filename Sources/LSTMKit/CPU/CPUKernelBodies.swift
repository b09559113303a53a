import CLSTMKernels

/// Internal, for tests: which body the CPU kernels (Sources/CLSTMKernels) run.
enum CPUKernelBodies {
    /// True when the AVX2+FMA bodies run (CPUID allows them and they are not switched off).
    static var usesAVX2: Bool { lstm_kernels_use_avx2() != 0 }

    /// Runs `body` with the portable bodies forced, then goes back to the CPUID choice.
    /// Not for use while another thread runs CPU kernels.
    static func withPortableBodies<T>(_ body: () throws -> T) rethrows -> T {
        lstm_kernels_force_portable(1)
        defer { lstm_kernels_force_portable(0) }
        return try body()
    }
}
