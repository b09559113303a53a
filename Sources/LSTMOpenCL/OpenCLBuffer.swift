// OpenCLBuffer.swift: what a device buffer is (its memory, element count and content version,
// the copies derived from it) and where its memory goes when the last reference is dropped.

import COpenCL

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
