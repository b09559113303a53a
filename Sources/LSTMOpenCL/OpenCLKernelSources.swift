@_spi(Backend) import LSTMCore

/// The kernels compiled into the binary (Kernels/*.cl), by file. Each file's banner lists
/// its kernels and their preconditions; each kernel has one typed launcher: OpenCLKernels.swift
/// (tensor_ops, lstm_forward, lstm_backward), OpenCLGEMMKernels.swift (gemm),
/// OpenCLOptionsKernels.swift (lstm_options), OpenCLTrainingKernels.swift (training).
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
