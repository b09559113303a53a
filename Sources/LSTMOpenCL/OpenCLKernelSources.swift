@_spi(Backend) import LSTMCore

/// The kernels compiled into the binary (Kernels/*.cl), by file. Each file's banner lists
/// its kernels and their preconditions; `OpenCLKernels.swift` has one typed launcher per kernel.
enum KernelSource: String, CaseIterable {
    case gemm, tensorOps = "tensor_ops", lstmForward = "lstm_forward", lstmBackward = "lstm_backward", training
    case lstmOptions = "lstm_options"

    var text: String {
        switch self {
        case .gemm: return String(decoding: PackageResources.gemm_cl, as: UTF8.self)
        case .tensorOps: return String(decoding: PackageResources.tensor_ops_cl, as: UTF8.self)
        case .lstmForward: return String(decoding: PackageResources.lstm_forward_cl, as: UTF8.self)
        case .lstmBackward: return String(decoding: PackageResources.lstm_backward_cl, as: UTF8.self)
        case .training: return String(decoding: PackageResources.training_cl, as: UTF8.self)
        case .lstmOptions: return String(decoding: PackageResources.lstm_options_cl, as: UTF8.self)
        }
    }
}
