// OpenCLRuntime.swift: what one device's runtime holds (context, in-order queue, placeholder
// buffer, memory pool, the caches of programs, kernels, uploads and profiling events) and how
// it is set up and torn down. Its work is in the files beside it: OpenCLDeviceMemory.swift
// (buffers, writes, reads), OpenCLProgram.swift (programs and kernels), OpenCLLaunch.swift
// (enqueuing a kernel) and OpenCLProfiling.swift (the profile of the launches).

import COpenCL
@_spi(Backend) import LSTMCore

/// One device's context, in-order queue, program cache and launches. Not thread-safe: one
/// runtime serves one thread at a time (the backend enqueues, the caller waits).
final class OpenCLRuntime {
    let device: OpenCLDeviceInfo
    package let context: cl_context
    let queue: cl_command_queue
    /// Built programs by name and build options (`program(named:source:options:)`).
    var programs: [String: cl_program] = [:]
    /// Created kernels by program and name, with their work-group limit (`kernel(_:programKey:program:)`).
    var kernels: [String: (kernel: cl_kernel, maxWorkGroup: Int)] = [:]
    /// A one-element buffer bound where a kernel's optional buffer argument is unused.
    let placeholder: OpenCLBuffer
    /// Whether the queue records profiling events (`bench --profile`): then every launch keeps
    /// its event until `takeProfile` reads the device's start and end times.
    let profiling: Bool
    /// The events of the launches since the last `takeProfile` (only when `profiling`).
    var events: [(name: String, event: cl_event, work: KernelWork?)] = []
    /// Host copies of `writeWithoutWaiting` and their transfers' events.
    var pendingUploads: [(copy: UnsafeMutableBufferPointer<Int32>, event: cl_event)] = []
    /// Memory of released buffers for reuse: up to a quarter of the device's memory.
    let pool: OpenCLMemoryPool

    init(device: OpenCLDeviceInfo, profiling: Bool = false) throws {
        self.profiling = profiling
        self.device = device
        pool = OpenCLMemoryPool(limitBytes: device.globalMemory / 4)
        var status: cl_int = 0
        var id: cl_device_id? = device.id
        guard let context = clCreateContext(nil, 1, &id, nil, nil, &status) else {
            throw LSTMError.openCL(call: "clCreateContext", status: openCLStatusName(status))
        }
        try clCheck(status, "clCreateContext")
        let properties = profiling ? cl_command_queue_properties(CL_QUEUE_PROFILING_ENABLE) : 0
        guard let queue = clCreateCommandQueue(context, device.id, properties, &status) else {
            clReleaseContext(context)
            throw LSTMError.openCL(call: "clCreateCommandQueue", status: openCLStatusName(status))
        }
        guard let memory = clCreateBuffer(context, cl_mem_flags(CL_MEM_READ_WRITE), 4, nil, &status),
            status == CL_SUCCESS
        else {
            clReleaseCommandQueue(queue)
            clReleaseContext(context)
            throw LSTMError.openCL(call: "clCreateBuffer(placeholder)", status: openCLStatusName(status))
        }
        self.context = context
        self.queue = queue
        placeholder = OpenCLBuffer(memory: memory, count: 1)
    }

    deinit {
        clFinish(queue)
        releaseUploads()
        pool.drain()  // buffers still alive give theirs back later; the pool frees it when the last one goes
        for entry in events { clReleaseEvent(entry.event) }
        for entry in kernels.values { clReleaseKernel(entry.kernel) }
        for program in programs.values { clReleaseProgram(program) }
        clReleaseCommandQueue(queue)
        clReleaseContext(context)
    }

}
