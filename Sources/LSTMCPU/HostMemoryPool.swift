import Foundation
@_spi(Backend) import LSTMCore

/// Recycles the CPU path's large allocations. A training loop allocates buffers of the
/// same sizes every step (activations, gradients); handing back memory that is already
/// mapped avoids a page fault per 4 KiB and the kernel's page clearing on every step.
/// Exact sizes only; at most `capacity` bytes are kept, the oldest freed first.
final class HostMemoryPool: @unchecked Sendable {
    static let shared = HostMemoryPool()
    /// Bytes kept for reuse at most.
    let capacity = 1 << 30
    /// Allocations below this many floats go straight to the system allocator.
    let minimumFloats = 1 << 14
    private let lock = NSLock()
    private var free: [Int: [UnsafeMutablePointer<Float>]] = [:]
    private var order: [(floats: Int, pointer: UnsafeMutablePointer<Float>)] = []
    private var keptBytes = 0

    func take(floats: Int) -> UnsafeMutablePointer<Float> {
        if floats >= minimumFloats {
            lock.lock()
            if var list = free[floats], let pointer = list.popLast() {
                free[floats] = list
                keptBytes -= floats * 4
                if let index = order.lastIndex(where: { $0.pointer == pointer }) { order.remove(at: index) }
                lock.unlock()
                return pointer
            }
            lock.unlock()
        }
        let raw = UnsafeMutableRawPointer.allocate(byteCount: floats * 4, alignment: 64)
        return raw.bindMemory(to: Float.self, capacity: floats)
    }

    func give(_ pointer: UnsafeMutablePointer<Float>, floats: Int) {
        guard floats >= minimumFloats, floats * 4 <= capacity else { pointer.deallocate(); return }
        lock.lock()
        free[floats, default: []].append(pointer)
        order.append((floats, pointer))
        keptBytes += floats * 4
        while keptBytes > capacity, !order.isEmpty {
            let (size, oldest) = order.removeFirst()
            if var list = free[size], let index = list.firstIndex(of: oldest) {
                list.remove(at: index)
                free[size] = list
                keptBytes -= size * 4
                oldest.deallocate()
            }
        }
        lock.unlock()
    }
}
