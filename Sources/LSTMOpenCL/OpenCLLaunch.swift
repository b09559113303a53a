// OpenCLLaunch.swift: how a runtime enqueues one kernel: its arguments set in order, the
// work-group checked against the kernel's and the device's limits, the global size rounded up
// to it, one retry after freeing the pool when the device reports itself full, and the event
// kept when profiling.

import COpenCL
@_spi(Backend) import LSTMCore

extension OpenCLRuntime {
    /// Enqueues `kernel` over `global` items (rounded up to multiples of `local` when given),
    /// without waiting. `maxWorkGroup` is the kernel's limit (`maxWorkGroupSize`), queried once by the caller.
    func launch(
        _ kernel: cl_kernel, name: String, maxWorkGroup: Int, global: [Int], local: [Int]? = nil,
        work: KernelWork? = nil, _ arguments: [KernelArgument]
    ) throws {
        for (index, argument) in arguments.enumerated() {
            try argument.set(on: kernel, at: index, name: name)
        }
        if global.contains(0) { return }
        var globalSize = global
        var localSize = local
        if let local {
            let items = local.reduce(1, *)
            let allowed = maxWorkGroup
            guard items <= allowed, items <= device.maxWorkGroupSize else {
                throw LSTMError.invalidArgument(
                    "kernel \(name) needs a work-group of \(items) items; \(device.name) allows "
                        + "\(min(allowed, device.maxWorkGroupSize)) for it")
            }
            globalSize = zip(global, local).map { ($0 + $1 - 1) / $1 * $1 }
            localSize = local
        }
        // Drivers that allocate buffers lazily report a full device here: then the pool's
        // memory is given back and the launch tried once more.
        var (event, status) = enqueue(kernel, globalSize, localSize)
        if status == CL_MEM_OBJECT_ALLOCATION_FAILURE || status == CL_OUT_OF_RESOURCES {
            pool.drain()
            (event, status) = enqueue(kernel, globalSize, localSize)
        }
        if let event { events.append((name, event, work)) }
        try clCheck(
            status,
            "clEnqueueNDRangeKernel(\(name), global \(globalSize), local \(localSize.map { "\($0)" } ?? "auto"))")
    }

    /// One clEnqueueNDRangeKernel (with an event when profiling).
    private func enqueue(_ kernel: cl_kernel, _ global: [Int], _ local: [Int]?) -> (cl_event?, cl_int) {
        var event: cl_event?
        let status: cl_int = withUnsafeMutablePointer(to: &event) { eventPointer in
            let eventOut = profiling ? eventPointer : nil
            return global.withUnsafeBufferPointer { g in
                if let local {
                    return local.withUnsafeBufferPointer { l in
                        clEnqueueNDRangeKernel(
                            queue, kernel, cl_uint(g.count), nil, g.baseAddress, l.baseAddress, 0, nil, eventOut)
                    }
                }
                return clEnqueueNDRangeKernel(
                    queue, kernel, cl_uint(g.count), nil, g.baseAddress, nil, 0, nil, eventOut)
            }
        }
        return (event, status)
    }
}
