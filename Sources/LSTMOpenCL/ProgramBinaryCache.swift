import Foundation
@_spi(Backend) import LSTMCore

/// Built program binaries on disk, so a second process skips the kernel compiler.
/// Location: `$LSTM_GPU_KERNEL_CACHE`, else `$XDG_CACHE_HOME/lstm-gpu/kernels`, else
/// `~/.cache/lstm-gpu/kernels`; `LSTM_GPU_KERNEL_CACHE=off` disables it. A file's name
/// is a 128-bit hash of the device (name, vendor, version), the driver version, the
/// source and the build options, so any change of these builds afresh. Files are
/// written atomically; an unreadable or rejected file is rebuilt and replaced.
///
/// A file is never handed to the driver unchecked (a damaged binary can crash it): it starts
/// with a header, `LGPUBIN1`, the 32-digit key it was stored under (the hash of the device,
/// driver, source and options), the binary's length (8 bytes, little-endian) and the 32-digit
/// hash of the binary's bytes. A file whose magic, key, length or hash does not match — a
/// truncated or overwritten file, a binary copied under another name, a file of an older
/// format — is ignored, and the program is rebuilt and stored again.
struct ProgramBinaryCache {
    static let magic = Array("LGPUBIN1".utf8)
    /// The hash of what the binary was built from (device, driver, source, options).
    let key: String
    let file: String?

    init(device: OpenCLDeviceInfo, source: String, options: String) {
        let identity = ProgramBinaryCache.identity(device) + [options, source]
        let key = ProgramBinaryCache.hash(identity.joined(separator: "\u{1}"))
        self.key = key
        file = ProgramBinaryCache.folder.map { $0 + "/" + key + ".bin" }
    }

    /// The cache folder (nil: disabled), from the environment at each call.
    static var folder: String? {
        let environment = ProcessInfo.processInfo.environment
        switch environment["LSTM_GPU_KERNEL_CACHE"] {
        case "off", "0", "none": return nil
        case let path? where !path.isEmpty: return path
        default:
            if let xdg = environment["XDG_CACHE_HOME"], !xdg.isEmpty { return xdg + "/lstm-gpu/kernels" }
            if let home = environment["HOME"], !home.isEmpty { return home + "/.cache/lstm-gpu/kernels" }
            return nil
        }
    }

    /// What identifies a device and its driver in cache keys.
    static func identity(_ device: OpenCLDeviceInfo) -> [String] {
        [device.name, device.vendor, device.version, device.driverVersion, device.platform]
    }

    /// The stored binary, or nil: none, not a regular file of at most 1 GiB, or a header
    /// (magic, key, length, hash) that does not match (then it is rebuilt and replaced).
    func load() -> [UInt8]? {
        guard let file, FileManager.default.fileExists(atPath: file),
            let data = try? readRegularFile(file, maximumBytes: 1 << 30)
        else { return nil }
        return Self.unwrap([UInt8](data), key: key)
    }

    func store(_ binary: [UInt8]) {
        guard let file, !binary.isEmpty else { return }
        let folder = (file as NSString).deletingLastPathComponent
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try? writeAtomically(Data(Self.wrap(binary, key: key)), to: file)
    }

    /// The file's bytes for `binary` stored under `key`: the header, then the binary.
    static func wrap(_ binary: [UInt8], key: String) -> [UInt8] {
        var length = UInt64(binary.count).littleEndian
        let lengthBytes = withUnsafeBytes(of: &length) { Array($0) }
        return magic + Array(key.utf8) + lengthBytes + Array(hash(bytes: binary).utf8) + binary
    }

    /// The binary in `bytes` when its header matches `key` and the bytes that follow; else nil.
    static func unwrap(_ bytes: [UInt8], key: String) -> [UInt8]? {
        let headerSize = magic.count + 32 + 8 + 32
        guard bytes.count > headerSize, Array(bytes[0..<magic.count]) == magic,
            Array(bytes[magic.count..<(magic.count + 32)]) == Array(key.utf8)
        else { return nil }
        var length: UInt64 = 0
        withUnsafeMutableBytes(of: &length) { $0.copyBytes(from: bytes[(magic.count + 32)..<(magic.count + 40)]) }
        let binary = Array(bytes[headerSize...])
        guard UInt64(littleEndian: length) == UInt64(binary.count),
            Array(bytes[(magic.count + 40)..<headerSize]) == Array(hash(bytes: binary).utf8)
        else { return nil }
        return binary
    }

    /// Two FNV-1a 64-bit hashes (different offsets, the second with an extra shift-xor per
    /// byte so the two are independent), as 32 hex digits.
    package static func hash(_ text: String) -> String { hash(bytes: Array(text.utf8)) }

    /// `hash(_:)` of raw bytes.
    static func hash(bytes: [UInt8]) -> String {
        var a = FNV1a(), b = FNV1a(offsetBasis: 0x6C62_272E_07BB_0142)
        for byte in bytes {
            a.combine(UInt64(byte))
            b.combine(UInt64(byte))
            b.value ^= b.value >> 29
        }
        return String(a.value, radix: 16).leftPadded(16) + String(b.value, radix: 16).leftPadded(16)
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
