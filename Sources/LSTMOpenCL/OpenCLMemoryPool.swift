// OpenCLMemoryPool.swift: how released device memory is kept for reuse (by size, up to a
// limit) so that a training step does not create and destroy its buffers with OpenCL each time.

import COpenCL
import Foundation

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
