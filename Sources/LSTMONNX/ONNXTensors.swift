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
        var info = stat()
        guard stat(file.path, &info) == 0 else {
            throw invalid(
                "\(what): external data file \(file.path) cannot be read: \(String(cString: strerror(errno)))")
        }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw invalid("\(what): external data \(file.path) is not a regular file")
        }
        let size = Int(info.st_size)
        let needed = length ?? byteCount
        guard needed == byteCount else {
            throw invalid("\(what): external_data length \(needed) does not match the \(byteCount) bytes its dims need")
        }
        guard offset <= size, needed <= size - offset else {
            throw invalid(
                "\(what): external data \(file.path) is \(size) bytes; offset \(offset) + length \(needed) runs past its end"
            )
        }
        guard let handle = FileHandle(forReadingAtPath: file.path) else {
            throw invalid("\(what): cannot open the external data file \(file.path)")
        }
        defer { try? handle.close() }
        do {
            try handle.seek(toOffset: UInt64(offset))
            let data = try handle.read(upToCount: needed) ?? Data()
            guard data.count == needed else {
                throw invalid("\(what): external data \(file.path) ended after \(data.count) of \(needed) bytes")
            }
            return data
        } catch let error as ONNXError { throw error } catch {
            throw invalid("\(what): cannot read the external data file \(file.path): \(error.localizedDescription)")
        }
    }
}

/// The contents of the regular file at `url`, at most `maximumBytes` (LSTMKit's
/// `readRegularFile`, with the ONNX hint for a file that is too large).
func readModelFile(_ url: URL, maximumBytes: Int) throws -> Data {
    try readRegularFile(
        url.path, maximumBytes: maximumBytes,
        limitReason: "an ONNX model file may have (store large weights as external data)")
}
