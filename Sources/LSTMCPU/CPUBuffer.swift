import Foundation
@_spi(Backend) import LSTMCore

/// A float32 array in host memory (64-byte aligned; zero-filled unless made as scratch).
/// Debug builds (the tests) fill scratch with NaN, so that code reading an element before
/// writing it gives NaN instead of passing by luck on memory that happened to be zero.
public final class CPUBuffer {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int
    /// Bumped by every `CPUBackend.write`; derived copies (regrouped weights) check it.
    /// Code that writes through `pointer` directly must call `markModified()`.
    public private(set) var version = 0
    /// Copies derived from the contents (regrouped, packed), by kind, with the version they saw.
    var derived: [String: (version: Int, buffer: CPUBuffer)] = [:]

    init(count: Int, zeroed: Bool = true) {
        self.count = count
        pointer = HostMemoryPool.shared.take(floats: max(count, 1))
        if zeroed {
            pointer.update(repeating: 0, count: max(count, 1))
        } else {
            #if DEBUG
            pointer.update(repeating: .nan, count: max(count, 1))
            #endif
        }
    }
    deinit { HostMemoryPool.shared.give(pointer, floats: max(count, 1)) }

    /// Records that the contents changed.
    public func markModified() { version &+= 1 }
}
