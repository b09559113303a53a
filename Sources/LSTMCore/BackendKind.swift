/// Which engine runs the model.
public enum BackendKind: String, Sendable, CaseIterable {
    /// The fast CPU path: OpenBLAS + SIMD kernels on the host (`CPUBackend`).
    case cpu
    /// An OpenCL device (see `OpenCLDevice`).
    case opencl
    /// The readable oracle: a plain-loop LSTM computed in Double (`ReferenceLSTM`), for
    /// checking the other engines (`lstm-gpu check --backend reference`, the parity tests).
    /// Slow, and only behind `LSTM`: the model pieces, training and benchmarks run on the
    /// `ModelOps` backends (cpu, opencl).
    case reference
}
