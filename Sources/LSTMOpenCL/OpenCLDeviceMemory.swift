// OpenCLDeviceMemory.swift: how a runtime allocates buffers (pooled, zero- or NaN-filled,
// refused with the sizes when the device or the kernels' 32-bit indices cannot hold them) and
// moves data between host and device (blocking and non-blocking writes, reads, waiting for
// the queue).

import COpenCL
@_spi(Backend) import LSTMCore

extension OpenCLRuntime {
    // MARK: allocation

    /// The most elements of one buffer: 32-bit indices with room for rounded-up grids.
    static let maximumElements = Int(Int32.max) - (1 << 16) + 1

    /// A buffer of `count` 4-byte elements, zero-filled unless `zeroed` is false (scratch:
    /// then debug builds fill it with NaN, so that a kernel reading before writing shows);
    /// from the pool when memory of that size was given back. Throws `outOfMemory` with the
    /// sizes when the device cannot hold it.
    func makeBuffer(count: Int, zeroed: Bool = true) throws -> OpenCLBuffer {
        guard count >= 0 else { throw LSTMError.invalidArgument("buffer of \(count) elements") }
        let (bytes, overflow) = max(count, 1).multipliedReportingOverflow(by: 4)
        guard !overflow, bytes <= device.maxAllocation, bytes <= device.globalMemory else {
            throw LSTMError.outOfMemory(
                device: device.name, needed: overflow ? Int.max : bytes,
                available: min(device.maxAllocation, device.globalMemory))
        }
        // The kernels index with 32-bit ints: a buffer they could not address is refused here
        // rather than read or written at a wrapped index. The margin keeps the items of a grid
        // rounded up to its work-group size (at most 1024) below 2^31 too.
        guard count <= Self.maximumElements else {
            throw LSTMError.invalidArgument(
                "an OpenCL buffer of \(count) elements: the OpenCL kernels address at most \(Self.maximumElements) "
                    + "(2^31 − 2^16) elements per buffer (a smaller T·B or model)")
        }
        let buffer = OpenCLBuffer(memory: try memory(bytes: bytes), count: count, pool: pool)
        var fill: Float = 0
        #if DEBUG
        if !zeroed { fill = .nan }
        #else
        if !zeroed { return buffer }
        #endif
        try clCheck(clEnqueueFillBuffer(queue, buffer.memory, &fill, 4, 0, bytes, 0, nil, nil), "clEnqueueFillBuffer")
        return buffer
    }

    /// Device memory of `bytes`: pooled, or created (after releasing the pool when the device
    /// is short of memory).
    private func memory(bytes: Int) throws -> cl_mem {
        if let pooled = pool.take(bytes: bytes) { return pooled }
        var status: cl_int = 0
        for attempt in 0..<2 {
            if let memory = clCreateBuffer(context, cl_mem_flags(CL_MEM_READ_WRITE), bytes, nil, &status),
                status == CL_SUCCESS
            {
                return memory
            }
            let exhausted =
                status == CL_MEM_OBJECT_ALLOCATION_FAILURE || status == CL_OUT_OF_RESOURCES
                || status == CL_INVALID_BUFFER_SIZE
            guard exhausted else { break }
            if attempt == 0 {
                pool.drain()
            } else {
                throw LSTMError.outOfMemory(device: device.name, needed: bytes, available: device.globalMemory)
            }
        }
        throw LSTMError.openCL(call: "clCreateBuffer(\(bytes) bytes)", status: openCLStatusName(status))
    }

    // MARK: transfers

    func write<T>(_ values: [T], to buffer: OpenCLBuffer, offset: Int) throws {
        guard MemoryLayout<T>.size == 4, offset >= 0, offset + values.count <= buffer.count else {
            throw LSTMError.invalidArgument(
                "write of \(values.count) elements at \(offset) into a buffer of \(buffer.count)")
        }
        guard !values.isEmpty else { return }
        try values.withUnsafeBytes { raw in
            try clCheck(
                clEnqueueWriteBuffer(
                    queue, buffer.memory, cl_bool(CL_TRUE), offset * 4, raw.count, raw.baseAddress,
                    0, nil, nil), "clEnqueueWriteBuffer")
        }
    }

    /// `write` without waiting: the values are copied to host memory that the runtime keeps
    /// until the transfer's event reports it complete (checked at the next such write), or
    /// until the queue is known drained (`finish`, a blocking read), so the caller goes on
    /// enqueuing at once.
    func writeWithoutWaiting(_ values: [Int32], to buffer: OpenCLBuffer) throws {
        guard values.count <= buffer.count else {
            throw LSTMError.invalidArgument("write of \(values.count) elements into a buffer of \(buffer.count)")
        }
        guard !values.isEmpty else { return }
        releaseCompletedUploads()
        let copy = UnsafeMutableBufferPointer<Int32>.allocate(capacity: values.count)
        _ = copy.initialize(from: values)
        var event: cl_event?
        let status = clEnqueueWriteBuffer(
            queue, buffer.memory, cl_bool(CL_FALSE), 0, values.count * 4, copy.baseAddress, 0, nil, &event)
        guard status == CL_SUCCESS, let event else {
            copy.deallocate()
            try clCheck(status, "clEnqueueWriteBuffer")
            throw LSTMError.openCL(call: "clEnqueueWriteBuffer", status: "no event")
        }
        pendingUploads.append((copy, event))
    }

    /// Frees the host copies whose transfer has completed.
    private func releaseCompletedUploads() {
        pendingUploads.removeAll { upload in
            var state: cl_int = 0
            let status = clGetEventInfo(
                upload.event, cl_event_info(CL_EVENT_COMMAND_EXECUTION_STATUS), MemoryLayout<cl_int>.size, &state,
                nil)
            guard status == CL_SUCCESS, state == CL_COMPLETE else { return false }
            upload.copy.deallocate()
            clReleaseEvent(upload.event)
            return true
        }
    }

    /// Frees every host copy of earlier non-blocking writes; call only when the queue has
    /// completed everything enqueued so far (after `clFinish` or a blocking read).
    func releaseUploads() {
        for upload in pendingUploads {
            upload.copy.deallocate()
            clReleaseEvent(upload.event)
        }
        pendingUploads = []
    }

    func read(_ buffer: OpenCLBuffer, offset: Int, count: Int) throws -> [Float] {
        guard offset >= 0, count >= 0, offset + count <= buffer.count else {
            throw LSTMError.invalidArgument("read of \(count) elements at \(offset) from a buffer of \(buffer.count)")
        }
        var values = [Float](repeating: 0, count: count)
        guard count > 0 else { return values }
        try values.withUnsafeMutableBytes { raw in
            try clCheck(
                clEnqueueReadBuffer(
                    queue, buffer.memory, cl_bool(CL_TRUE), offset * 4, raw.count, raw.baseAddress,
                    0, nil, nil), "clEnqueueReadBuffer")
        }
        releaseUploads()  // a blocking command on an in-order queue: everything before it is done
        return values
    }

    func finish() throws {
        try clCheck(clFinish(queue), "clFinish")
        releaseUploads()
    }
}
