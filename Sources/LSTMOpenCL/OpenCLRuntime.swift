import COpenCL
import Foundation
@_spi(Backend) import LSTMCore

/// A float32 (or int32) array in device memory. When the last reference goes, its memory
/// returns to its runtime's pool for the next buffer of the same size (or is released to
/// OpenCL, which keeps it alive until the commands already enqueued on it have finished).
public final class OpenCLBuffer {
    let memory: cl_mem
    /// Elements (4 bytes each).
    public let count: Int
    /// Where the memory goes back to (nil: released at once).
    private let pool: OpenCLMemoryPool?
    /// Bumped by every host write and optimiser step into the buffer; derived copies (the
    /// transposed weights of the step kernels) check it, as on the CPU path (`CPUBuffer`).
    public private(set) var version = 0
    /// Copies derived from the contents, by kind, with the version they saw.
    var derived: [String: (version: Int, buffer: OpenCLBuffer)] = [:]
    /// Records that the contents changed.
    public func markModified() { version &+= 1 }
    init(memory: cl_mem, count: Int, pool: OpenCLMemoryPool? = nil) {
        self.memory = memory
        self.count = count
        self.pool = pool
    }
    deinit {
        if let pool { pool.give(memory, bytes: max(count, 1) * 4) } else { clReleaseMemObject(memory) }
    }
}

/// Device memory of released buffers, kept by size for reuse, so that the buffers a training
/// step allocates (activations, gradients, scratch: the same sizes every step) are not created
/// and destroyed with OpenCL each time. Reuse is safe because every runtime has one in-order
/// queue: whatever is enqueued on the new buffer runs after what was enqueued on the old one.
/// Holds at most `limitBytes`; the rest is released.
final class OpenCLMemoryPool {
    let limitBytes: Int
    private var free: [Int: [cl_mem]] = [:]
    private var heldBytes = 0
    private let lock = NSLock()

    init(limitBytes: Int) { self.limitBytes = limitBytes }

    /// Memory of exactly `bytes`, if some was given back.
    func take(bytes: Int) -> cl_mem? {
        lock.lock(); defer { lock.unlock() }
        guard let memory = free[bytes]?.popLast() else { return nil }
        heldBytes -= bytes
        return memory
    }

    func give(_ memory: cl_mem, bytes: Int) {
        lock.lock()
        let keep = heldBytes + bytes <= limitBytes
        if keep {
            free[bytes, default: []].append(memory)
            heldBytes += bytes
        }
        lock.unlock()
        if !keep { clReleaseMemObject(memory) }
    }

    /// Releases everything held (e.g. before a large allocation that failed, to retry it).
    func drain() {
        lock.lock()
        let all = free.values.flatMap { $0 }
        free = [:]
        heldBytes = 0
        lock.unlock()
        for memory in all { clReleaseMemObject(memory) }
    }

    deinit { drain() }
}

/// An argument of a kernel launch.
enum KernelArgument {
    case buffer(OpenCLBuffer)
    case int(Int)
    case uint(UInt32)
    case float(Float)
}

/// One device's context, in-order queue, program cache and launches. Not thread-safe: one
/// runtime serves one thread at a time (the backend enqueues, the caller waits).
final class OpenCLRuntime {
    let device: OpenCLDeviceInfo
    package let context: cl_context
    let queue: cl_command_queue
    private var programs: [String: cl_program] = [:]
    private var kernels: [String: (kernel: cl_kernel, maxWorkGroup: Int)] = [:]
    /// A one-element buffer bound where a kernel's optional buffer argument is unused.
    let placeholder: OpenCLBuffer
    /// Whether the queue records profiling events (`bench --profile`): then every launch keeps
    /// its event until `takeProfile` reads the device's start and end times.
    let profiling: Bool
    private var events: [(name: String, event: cl_event, work: KernelWork?)] = []
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

    // MARK: memory

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

    /// Host copies of `writeWithoutWaiting` and their transfers' events.
    private var pendingUploads: [(copy: UnsafeMutableBufferPointer<Int32>, event: cl_event)] = []

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
    private func releaseUploads() {
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

    // MARK: programs

    /// The program for `source` built with `options`: from memory, else from the on-disk
    /// binary cache, else compiled (and then cached). A failed build throws with its log.
    func program(named name: String, source: String, options: String) throws -> cl_program {
        let key = name + "\u{0}" + options
        if let program = programs[key] { return program }
        let cache = ProgramBinaryCache(device: device, source: source, options: options)
        if let binary = cache.load(), let program = try? buildFromBinary(binary, options: options) {
            programs[key] = program
            return program
        }
        let program = try buildFromSource(name: name, source: source, options: options)
        if let binary = try? binary(of: program) { cache.store(binary) }
        programs[key] = program
        return program
    }

    private func buildFromSource(name: String, source: String, options: String) throws -> cl_program {
        var status: cl_int = 0
        let program: cl_program? = source.withCString { text in
            var pointer: UnsafePointer<CChar>? = text
            var length = strlen(text)
            return clCreateProgramWithSource(context, 1, &pointer, &length, &status)
        }
        guard let program, status == CL_SUCCESS else {
            throw LSTMError.openCL(call: "clCreateProgramWithSource(\(name))", status: openCLStatusName(status))
        }
        var id: cl_device_id? = device.id
        let built = clBuildProgram(program, 1, &id, options, nil, nil)
        if built != CL_SUCCESS {
            let log = buildLog(program)
            clReleaseProgram(program)
            if built == CL_BUILD_PROGRAM_FAILURE || built == CL_INVALID_BUILD_OPTIONS
                || built == CL_COMPILE_PROGRAM_FAILURE
            {
                throw LSTMError.kernelBuild(
                    program: name, device: device.name,
                    log: log.isEmpty ? "(empty build log; status \(openCLStatusName(built)))" : log)
            }
            throw LSTMError.openCL(call: "clBuildProgram(\(name))", status: openCLStatusName(built))
        }
        return program
    }

    private func buildFromBinary(_ binary: [UInt8], options: String) throws -> cl_program {
        var status: cl_int = 0, binaryStatus: cl_int = 0
        var id: cl_device_id? = device.id
        var length = binary.count
        let program: cl_program? = binary.withUnsafeBufferPointer { bytes in
            var pointer: UnsafePointer<UInt8>? = bytes.baseAddress
            return clCreateProgramWithBinary(context, 1, &id, &length, &pointer, &binaryStatus, &status)
        }
        guard let program, status == CL_SUCCESS, binaryStatus == CL_SUCCESS else {
            throw LSTMError.openCL(call: "clCreateProgramWithBinary", status: openCLStatusName(status))
        }
        let built = clBuildProgram(program, 1, &id, options, nil, nil)
        guard built == CL_SUCCESS else {
            clReleaseProgram(program)
            throw LSTMError.openCL(call: "clBuildProgram(binary)", status: openCLStatusName(built))
        }
        return program
    }

    private func buildLog(_ program: cl_program) -> String {
        var size = 0
        guard
            clGetProgramBuildInfo(program, device.id, cl_program_build_info(CL_PROGRAM_BUILD_LOG), 0, nil, &size)
                == CL_SUCCESS,
            size > 0
        else { return "" }
        var bytes = [CChar](repeating: 0, count: size + 1)
        clGetProgramBuildInfo(program, device.id, cl_program_build_info(CL_PROGRAM_BUILD_LOG), size, &bytes, nil)
        return decodeCString(bytes).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private func binary(of program: cl_program) throws -> [UInt8] {
        var size = 0
        try clCheck(
            clGetProgramInfo(program, cl_program_info(CL_PROGRAM_BINARY_SIZES), MemoryLayout<Int>.size, &size, nil),
            "clGetProgramInfo(CL_PROGRAM_BINARY_SIZES)")
        guard size > 0 else { return [] }
        var bytes = [UInt8](repeating: 0, count: size)
        try bytes.withUnsafeMutableBufferPointer { buffer in
            var pointer: UnsafeMutablePointer<UInt8>? = buffer.baseAddress
            try clCheck(
                clGetProgramInfo(
                    program, cl_program_info(CL_PROGRAM_BINARIES), MemoryLayout<UnsafeMutablePointer<UInt8>?>.size,
                    &pointer, nil), "clGetProgramInfo(CL_PROGRAM_BINARIES)")
        }
        return bytes
    }

    /// The kernel `name` of the program `programKey` (built by `program` on first use) with its
    /// work-group limit: created and queried once, then reused.
    func kernel(
        _ name: String, programKey: String, program: () throws -> cl_program
    ) throws -> (kernel: cl_kernel, maxWorkGroup: Int) {
        let key = programKey + "/" + name
        if let entry = kernels[key] { return entry }
        var status: cl_int = 0
        guard let kernel = clCreateKernel(try program(), name, &status), status == CL_SUCCESS else {
            throw LSTMError.openCL(call: "clCreateKernel(\(name))", status: openCLStatusName(status))
        }
        var size = 0
        try clCheck(
            clGetKernelWorkGroupInfo(
                kernel, device.id, cl_kernel_work_group_info(CL_KERNEL_WORK_GROUP_SIZE),
                MemoryLayout<Int>.size, &size, nil), "clGetKernelWorkGroupInfo(\(name))")
        kernels[key] = (kernel, size)
        return (kernel, size)
    }

    /// Enqueues `kernel` over `global` items (rounded up to multiples of `local` when given),
    /// without waiting. `maxWorkGroup` is the kernel's limit (`maxWorkGroupSize`), queried once by the caller.
    func launch(
        _ kernel: cl_kernel, name: String, maxWorkGroup: Int, global: [Int], local: [Int]? = nil,
        work: KernelWork? = nil, _ arguments: [KernelArgument]
    ) throws {
        for (index, argument) in arguments.enumerated() {
            let status: cl_int
            switch argument {
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

    /// What the profiling events since the last call recorded (waits for the queue): per
    /// kernel name its launches, device nanoseconds and declared work; and the device's idle
    /// time between the first launch's start and the last one's end (gaps in which no kernel
    /// of this queue ran: host enqueue cost and launch latency). Empty unless `profiling`.
    func takeProfile() throws -> RuntimeProfile {
        let taken = events
        events = []
        defer { for entry in taken { clReleaseEvent(entry.event) } }
        try finish()
        var profile = RuntimeProfile()
        var spans: [(start: cl_ulong, end: cl_ulong)] = []
        for (name, event, work) in taken {
            var start: cl_ulong = 0, end: cl_ulong = 0
            try clCheck(
                clGetEventProfilingInfo(event, cl_profiling_info(CL_PROFILING_COMMAND_START), 8, &start, nil),
                "clGetEventProfilingInfo(\(name))")
            try clCheck(
                clGetEventProfilingInfo(event, cl_profiling_info(CL_PROFILING_COMMAND_END), 8, &end, nil),
                "clGetEventProfilingInfo(\(name))")
            var entry = profile.kernels[name] ?? RuntimeProfile.Entry()
            entry.launches += 1
            entry.nanoseconds += end > start ? end - start : 0
            if let work {
                entry.flops += work.flops
                entry.bytes += work.bytes
            } else {
                entry.undeclared = true
            }
            profile.kernels[name] = entry
            spans.append((start, max(start, end)))
        }
        spans.sort { $0.start < $1.start }
        var covered = spans.first?.end ?? 0
        for span in spans.dropFirst() {
            if span.start > covered { profile.idleNanoseconds += span.start - covered }
            covered = max(covered, span.end)
        }
        return profile
    }
}

/// The arithmetic and the least memory traffic of one kernel launch, declared by its launcher
/// (for `bench --profile`'s GFLOP/s and GB/s): FLOPs, and bytes that must cross between the
/// device's memory and its compute units (every input read once, every output written once).
struct KernelWork {
    var flops: Double
    var bytes: Double
}

/// `OpenCLRuntime.takeProfile`'s result.
struct RuntimeProfile {
    struct Entry {
        var launches = 0
        var nanoseconds: UInt64 = 0
        var flops = 0.0
        var bytes = 0.0
        /// Whether a launch declared no work (then no rates are derived).
        var undeclared = false
    }
    var kernels: [String: Entry] = [:]
    var idleNanoseconds: UInt64 = 0
}
