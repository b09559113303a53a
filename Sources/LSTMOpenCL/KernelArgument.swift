// KernelArgument.swift: what a kernel argument can be (a buffer, a 32-bit int, uint or float)
// and how one is set on a kernel, refusing an int the kernels' 32-bit parameters cannot hold.

import COpenCL
@_spi(Backend) import LSTMCore

/// An argument of a kernel launch.
enum KernelArgument {
    case buffer(OpenCLBuffer)
    case int(Int)
    case uint(UInt32)
    case float(Float)

    /// Sets this as argument `index` of `kernel` (named `name` in errors). An int outside the
    /// 32-bit range throws rather than being truncated.
    func set(on kernel: cl_kernel, at index: Int, name: String) throws {
        let status: cl_int
        switch self {
        case let .buffer(buffer):
            var memory: cl_mem? = buffer.memory
            status = clSetKernelArg(kernel, cl_uint(index), MemoryLayout<cl_mem?>.size, &memory)
        case let .int(value):
            guard let exact = cl_int(exactly: value) else {
                throw LSTMError.invalidArgument(
                    "kernel \(name) argument \(index) is \(value), outside the 32-bit range the kernels use")
            }
            var v = exact
            status = clSetKernelArg(kernel, cl_uint(index), 4, &v)
        case let .uint(value):
            var v = cl_uint(value)
            status = clSetKernelArg(kernel, cl_uint(index), 4, &v)
        case let .float(value):
            var v = value
            status = clSetKernelArg(kernel, cl_uint(index), 4, &v)
        }
        try clCheck(status, "clSetKernelArg(\(name), \(index))")
    }
}
