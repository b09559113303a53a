import Foundation
import LSTMCore
import LSTMKit

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A float32 tensor decoded from an ONNX `TensorProto`.
struct FloatArray {
    var shape: [Int]
    var values: [Float]
}

/// Decodes the constant tensors of a model (initializers and `Constant` nodes), reading
/// external data relative to `folder`. Everything is checked: data type, dims, byte counts,
/// and external files (relative, inside the folder, offsets and lengths within the file).
struct TensorDecoder {
    /// Names the model in messages.
    let source: String
    /// The model file's folder, for external data; nil when the model came from memory.
    let folder: URL?
    /// What the tensors decoded so far hold, shared by the copies of this decoder.
    let budget = DecodedBytes()

    func invalid(_ reason: String) -> ONNXError { .invalidModel(source: source, reason: reason) }

    /// The float32 values of `tensor`, which `what` names in errors (e.g. "initializer 'W'").
    func floats(_ tensor: Onnx_TensorProto, _ what: String) throws -> FloatArray {
        let shape = try tensor.dims.map { dim -> Int in
            guard dim >= 0, dim <= Int64(SizeLimits.maxCount) else {
                throw invalid("\(what) has an invalid dimension \(dim) in dims \(tensor.dims)")
            }
            return Int(dim)
        }
        let count: Int
        do { count = try SizeLimits.product(shape, what) } catch {
            throw invalid("\(what): dims \(shape) overflow 64-bit sizes")
        }
        guard tensor.dataType == Int32(Onnx_TensorProto.DataType.float.rawValue) else {
            let name = Onnx_TensorProto.DataType(rawValue: Int(tensor.dataType)).map { "\($0)" } ?? "\(tensor.dataType)"
            throw invalid(
                "\(what) has data type \(name.uppercased()); only FLOAT (float32) weights are supported "
                    + "(convert the model's weights to float32)")
        }
        guard !tensor.hasSegment else { throw invalid("\(what) is a segment of a larger tensor (not supported)") }
        let bytes: Data
        if tensor.hasDataLocation, tensor.dataLocation == .external {
            bytes = try externalData(tensor, what, byteCount: SizeLimits.saturatingProduct([count, 4]))
        } else if tensor.hasRawData {
            bytes = tensor.rawData
        } else {
            guard tensor.floatData.count == count else {
                throw invalid(
                    "\(what): dims \(shape) need \(count) values, float_data holds \(tensor.floatData.count)")
            }
            return FloatArray(shape: shape, values: tensor.floatData)
        }
        let byteCount = SizeLimits.saturatingProduct([count, 4])
        guard bytes.count == byteCount else {
            throw invalid(
                "\(what): dims \(shape) need \(count) float32 values (\(byteCount) bytes), raw data has \(bytes.count)")
        }
        budget.bytes = SizeLimits.saturatingSum([budget.bytes, byteCount])
        var values = [Float](repeating: 0, count: count)
        bytes.withUnsafeBytes { raw in
            for i in 0..<count {
                values[i] = Float(
                    bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
            }
        }
        return FloatArray(shape: shape, values: values)
    }

    /// The bytes of an externally stored tensor: `location` relative to the model's folder
    /// (absolute paths and paths that leave the folder are refused), `offset` and `length`
    /// checked against the file's size.
    func externalData(_ tensor: Onnx_TensorProto, _ what: String, byteCount: Int) throws -> Data {
        var fields: [String: String] = [:]
        for entry in tensor.externalData {
            guard fields[entry.key] == nil else {
                throw invalid("\(what): external_data repeats the key \(quoted(entry.key))")
            }
            fields[entry.key] = entry.value
        }
        guard let location = fields["location"], !location.isEmpty else {
            throw invalid("\(what) is stored externally but its external_data has no location")
        }
        guard let folder else {
            throw invalid(
                "\(what) is stored in the external file \(quoted(location)), but the model was not read from a file")
        }
        guard !location.hasPrefix("/"), !location.contains("\\"), !location.contains("\0"),
            !location.split(separator: "/").contains("..")
        else {
            throw invalid(
                "\(what): external data location \(quoted(location)) must be a relative path inside the model's folder")
        }
        func number(_ key: String) throws -> Int? {
            guard let text = fields[key] else { return nil }
            guard let value = Int(text), value >= 0 else {
                throw invalid("\(what): external_data \(key) = \(quoted(text)) is not a non-negative integer")
            }
            return value
        }
        let offset = try number("offset") ?? 0
        let length = try number("length")
        let base = folder.standardizedFileURL.resolvingSymlinksInPath()
        let file = base.appendingPathComponent(location).standardizedFileURL.resolvingSymlinksInPath()
        guard file.path.hasPrefix(base.path.hasSuffix("/") ? base.path : base.path + "/") else {
            throw invalid("\(what): external data \(quoted(location)) resolves outside the model's folder \(base.path)")
        }
        let opened: OpenedFile
        do { opened = try OpenedFile(file.path) } catch let error as LSTMError {
            throw invalid("\(what): external data file \(error)")
        }
        let size = opened.size
        let needed = length ?? byteCount
        guard needed == byteCount else {
            throw invalid("\(what): external_data length \(needed) does not match the \(byteCount) bytes its dims need")
        }
        guard offset <= size, needed <= size - offset else {
            throw invalid(
                "\(what): external data \(file.path) is \(size) bytes; offset \(offset) + length \(needed) runs past its end"
            )
        }
        // The bytes read and the floats decoded from them, beside the weights read before.
        let total = SizeLimits.saturatingSum([budget.bytes, needed, needed])
        guard total <= SizeLimits.hostMemory else {
            throw invalid(
                "\(what): reading its \(needed) bytes of external data from \(file.path) needs \(formatBytes(total)) "
                    + "(with the weights read before), the host has \(formatBytes(SizeLimits.hostMemory))")
        }
        do { return try opened.read(count: needed, at: offset) } catch let error as LSTMError {
            throw invalid("\(what): external data file \(error)")
        }
    }
}

/// Bytes of the weights decoded so far (for the host-memory check of external data).
final class DecodedBytes {
    var bytes = 0
}

/// A regular file opened for reading, its size taken from the open descriptor. Errors are
/// `LSTMError.io` naming the file with the system's reason (never a Foundation error code);
/// FIFOs and devices are refused without blocking.
final class OpenedFile {
    let path: String
    let descriptor: Int32
    let size: Int

    init(_ path: String) throws {
        self.path = path
        let descriptor = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw LSTMError.io(
                path: path,
                reason: "cannot be read: " + (errno == ENOENT ? "no such file" : String(cString: strerror(errno))))
        }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else {
            let reason = String(cString: strerror(errno))
            close(descriptor)
            throw LSTMError.io(path: path, reason: "cannot be read: \(reason)")
        }
        switch info.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFDIR:
            close(descriptor)
            throw LSTMError.io(path: path, reason: "is a directory, not a file")
        default:
            close(descriptor)
            throw LSTMError.io(path: path, reason: "is not a regular file (a FIFO, device or socket)")
        }
        self.descriptor = descriptor
        size = Int(info.st_size)
    }

    deinit { close(descriptor) }

    /// `count` bytes from `offset` (which the caller checked against `size`); a file that
    /// shrank or a failing read is an error naming the file.
    func read(count: Int, at offset: Int) throws -> Data {
        var data = Data(count: count)
        var done = 0
        try data.withUnsafeMutableBytes { (buffer: UnsafeMutableRawBufferPointer) in
            while done < count {
                let chunk = min(count - done, 1 << 30)
                let got = pread(descriptor, buffer.baseAddress! + done, chunk, off_t(offset + done))
                if got < 0 {
                    if errno == EINTR { continue }
                    throw LSTMError.io(path: path, reason: "cannot be read: \(String(cString: strerror(errno)))")
                }
                guard got > 0 else {
                    throw LSTMError.io(
                        path: path, reason: "ended after \(done) of the \(count) bytes wanted from offset \(offset)")
                }
                done += got
            }
        }
        return data
    }
}

/// The contents of the ONNX model file at `url`: refused before reading when it is not a
/// regular file, is larger than `maximumBytes`, or would not fit in the host's memory
/// (the bytes and the decoded model); read errors name the file and the system's reason.
func readModelFile(_ url: URL, maximumBytes: Int) throws -> Data {
    let file = try OpenedFile(url.path)
    guard file.size <= maximumBytes else {
        throw LSTMError.io(
            path: url.path,
            reason: "is \(file.size) bytes, more than the \(maximumBytes) an ONNX model file may have (store large "
                + "weights as external data)")
    }
    let needed = SizeLimits.saturatingProduct([file.size, 2])
    guard needed <= SizeLimits.hostMemory else {
        throw LSTMError.io(
            path: url.path,
            reason: "is \(file.size) bytes; reading it needs \(formatBytes(needed)) (the file and its decoded model), "
                + "the host has \(formatBytes(SizeLimits.hostMemory))")
    }
    return try file.read(count: file.size, at: 0)
}
