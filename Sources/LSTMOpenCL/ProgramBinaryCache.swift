import Foundation
@_spi(Backend) import LSTMCore

/// Built program binaries on disk, so a second process skips the kernel compiler.
/// Location: `$LSTM_GPU_KERNEL_CACHE`, else `$XDG_CACHE_HOME/lstm-gpu/kernels`, else
/// `~/.cache/lstm-gpu/kernels`; `LSTM_GPU_KERNEL_CACHE=off` disables it. A file's name
/// is a 128-bit hash of the device (name, vendor, version), the driver version, the
/// source and the build options, so any change of these builds afresh. Files are
/// written atomically; an unreadable or rejected file is rebuilt and replaced.
struct ProgramBinaryCache {
    let file: String?

    init(device: OpenCLDeviceInfo, source: String, options: String) {
        let identity = ProgramBinaryCache.identity(device) + [options, source]
        file = ProgramBinaryCache.folder.map {
            $0 + "/" + ProgramBinaryCache.hash(identity.joined(separator: "\u{1}")) + ".bin"
        }
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

    /// The stored binary, or nil (none, or not a regular file of at most 1 GiB: then it is rebuilt).
    func load() -> [UInt8]? {
        guard let file, FileManager.default.fileExists(atPath: file),
            let data = try? readRegularFile(file, maximumBytes: 1 << 30), !data.isEmpty
        else { return nil }
        return [UInt8](data)
    }

    func store(_ binary: [UInt8]) {
        guard let file, !binary.isEmpty else { return }
        let folder = (file as NSString).deletingLastPathComponent
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try? writeAtomically(Data(binary), to: file)
    }

    /// Two FNV-1a 64-bit hashes (different offsets, the second with an extra shift-xor per
    /// byte so the two are independent), as 32 hex digits.
    package static func hash(_ text: String) -> String {
        var a = FNV1a(), b = FNV1a(offsetBasis: 0x6C62_272E_07BB_0142)
        for byte in text.utf8 {
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
