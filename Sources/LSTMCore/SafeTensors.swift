import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reader and writer for the safetensors format: an 8-byte little-endian header size N,
/// N bytes of JSON (`{"name": {"dtype", "shape", "data_offsets"}, "__metadata__": {...}}`),
/// then the raw little-endian tensor bytes. Every field is validated on read; writes are
/// atomic (temporary file, fsync, rename), so no half-written file is ever left behind.
public struct SafeTensorsFile {
    /// Element types of the format, by their names in the header.
    public enum DType: String, Sendable {
        case f64 = "F64", f32 = "F32", f16 = "F16", bf16 = "BF16"
        case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8", u8 = "U8", bool = "BOOL"

        /// Bytes per element.
        public var size: Int {
            switch self {
            case .f64, .i64: return 8
            case .f32, .i32: return 4
            case .f16, .bf16, .i16: return 2
            case .i8, .u8, .bool: return 1
            }
        }
        public var isFloatingPoint: Bool { self == .f64 || self == .f32 || self == .f16 || self == .bf16 }
    }

    /// One tensor's header entry.
    public struct Entry: Sendable {
        public var dtype: DType
        public var shape: [Int]
        /// Byte range inside the data section.
        public var range: Range<Int>
    }

    /// Largest header accepted (the reference implementation's limit).
    public static let maxHeaderSize = 100_000_000

    /// Where the file came from (for messages).
    public let path: String
    /// The `__metadata__` map (string to string), empty when absent.
    public let metadata: [String: String]
    /// Header entries by tensor name.
    public let entries: [String: Entry]
    /// Tensor names in data order.
    public var names: [String] { entries.sorted { $0.value.range.lowerBound < $1.value.range.lowerBound }.map(\.key) }
    private let bytes: Data
    private let dataStart: Int

    /// Reads and validates the file at `path`.
    /// - Throws: `LSTMError.io` when it is missing, unreadable, a folder or not a regular file;
    ///   `LSTMError.corruptFile` saying what in the header or data is wrong.
    public init(contentsOf path: String) throws {
        try self.init(data: readRegularFile(path), path: path)
    }

    /// Parses and validates an in-memory safetensors image; `path` only labels errors.
    public init(data: Data, path: String = "<memory>") throws {
        func corrupt(_ reason: String) -> LSTMError { .corruptFile(path: path, reason: reason) }
        self.path = path
        self.bytes = data.startIndex == 0 ? data : Data(data)
        guard data.count >= 8 else { throw corrupt("file is \(data.count) bytes, shorter than the 8-byte header size") }
        var headerSize: UInt64 = 0
        for i in 0..<8 { headerSize |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        guard headerSize <= UInt64(Self.maxHeaderSize) else {
            throw corrupt("header size \(headerSize) exceeds the limit of \(Self.maxHeaderSize) bytes")
        }
        guard 8 + Int(headerSize) <= data.count else {
            throw corrupt("header size \(headerSize) runs past the end of the file (\(data.count) bytes): truncated?")
        }
        dataStart = 8 + Int(headerSize)
        let headerBytes = bytes.subdata(in: 8..<dataStart)
        guard headerBytes.first == UInt8(ascii: "{"),
            let json = try? JSONSerialization.jsonObject(with: headerBytes), let header = json as? [String: Any]
        else { throw corrupt("header is not a JSON object") }

        var metadata: [String: String] = [:]
        var entries: [String: Entry] = [:]
        for (name, value) in header {
            if name == "__metadata__" {
                guard let map = value as? [String: Any] else { throw corrupt("__metadata__ is not an object") }
                for (k, v) in map {
                    guard let s = v as? String else { throw corrupt("__metadata__ value for '\(k)' is not a string") }
                    metadata[k] = s
                }
                continue
            }
            guard let info = value as? [String: Any] else { throw corrupt("entry '\(name)' is not an object") }
            guard let dtypeName = info["dtype"] as? String else { throw corrupt("entry '\(name)' has no dtype") }
            guard let dtype = DType(rawValue: dtypeName) else {
                throw corrupt("entry '\(name)' has unknown dtype \(dtypeName)")
            }
            guard let shapeValues = info["shape"] as? [Any] else { throw corrupt("entry '\(name)' has no shape") }
            let shape = try shapeValues.map { v -> Int in
                guard let n = exactCount(v) else {
                    throw corrupt("entry '\(name)' has an invalid shape \(shapeValues)")
                }
                return n
            }
            guard let offsets = info["data_offsets"] as? [Any], offsets.count == 2,
                let begin = exactCount(offsets[0]), let end = exactCount(offsets[1]), begin <= end
            else { throw corrupt("entry '\(name)' has invalid data_offsets") }
            var bytes = dtype.size
            for n in shape {
                let (product, overflow) = bytes.multipliedReportingOverflow(by: n)
                guard !overflow else { throw corrupt("entry '\(name)': the shape \(shape) overflows 64-bit sizes") }
                bytes = product
            }
            guard end - begin == bytes else {
                throw corrupt(
                    "entry '\(name)': \(dtypeName)\(shape) needs \(bytes) bytes but data_offsets span \(end - begin)")
            }
            entries[name] = Entry(dtype: dtype, shape: shape, range: begin..<end)
        }
        // The data section must be covered exactly: sorted ranges, no overlap, no hole.
        let dataSize = data.count - dataStart
        var cursor = 0
        for (name, entry) in entries.sorted(by: {
            ($0.value.range.lowerBound, $0.value.range.upperBound) < (
                $1.value.range.lowerBound, $1.value.range.upperBound
            )
        }) {
            guard entry.range.lowerBound == cursor else {
                throw corrupt(
                    entry.range.lowerBound < cursor
                        ? "tensor '\(name)' overlaps the previous tensor"
                        : "gap in the data section before tensor '\(name)'")
            }
            cursor = entry.range.upperBound
        }
        guard cursor == dataSize else {
            throw corrupt(
                cursor > dataSize
                    ? "tensor data runs past the end of the file (needs \(cursor) bytes, has \(dataSize)): truncated?"
                    : "\(dataSize - cursor) trailing bytes after the last tensor")
        }
        self.metadata = metadata
        self.entries = entries
    }

    /// Whether the file holds `name`.
    public func contains(_ name: String) -> Bool { entries[name] != nil }

    /// The tensor `name` as float32 (F64, F16 and BF16 are converted).
    /// - Returns: a tensor of the entry's shape.
    /// - Throws: `LSTMError.missingTensor` or `.wrongDType` (an integer dtype), naming it.
    public func floatTensor(_ name: String) throws -> Tensor {
        guard let entry = entries[name] else { throw LSTMError.missingTensor(name: name, file: path) }
        guard entry.dtype.isFloatingPoint else {
            throw LSTMError.wrongDType(name: name, expected: "a floating-point type (F32)", got: entry.dtype.rawValue)
        }
        let count = entry.shape.reduce(1, *)
        var values = [Float](repeating: 0, count: count)
        let offset = dataStart + entry.range.lowerBound
        bytes.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let src = UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + entry.range.count)])
            values.withUnsafeMutableBufferPointer { dst in
                for i in 0..<count {
                    switch entry.dtype {
                    case .f32:
                        dst[i] = Float(
                            bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
                    case .f64:
                        dst[i] = Float(
                            Double(
                                bitPattern: UInt64(
                                    littleEndian: src.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))))
                    case .bf16:
                        let bits = UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                        dst[i] = Float(bitPattern: UInt32(bits) << 16)
                    case .f16:
                        let bits = UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                        dst[i] = Self.halfToFloat(bits)
                    default: break
                    }
                }
            }
        }
        return try Tensor(shape: entry.shape, scalars: values)
    }

    /// The tensor `name` as integers (I64, I32, I16, I8, U8); throws when missing or floating.
    public func intTensor(_ name: String) throws -> (shape: [Int], values: [Int]) {
        guard let entry = entries[name] else { throw LSTMError.missingTensor(name: name, file: path) }
        let count = entry.shape.reduce(1, *)
        let offset = dataStart + entry.range.lowerBound
        let values: [Int] = try bytes.withUnsafeBytes { raw in
            let src = UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + entry.range.count)])
            return try (0..<count).map { i -> Int in
                switch entry.dtype {
                case .i64: return Int(Int64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self)))
                case .i32: return Int(Int32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self)))
                case .i16: return Int(Int16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self)))
                case .i8: return Int(src.load(fromByteOffset: i, as: Int8.self))
                case .u8: return Int(src.load(fromByteOffset: i, as: UInt8.self))
                default:
                    throw LSTMError.wrongDType(name: name, expected: "an integer type (I64)", got: entry.dtype.rawValue)
                }
            }
        }
        return (entry.shape, values)
    }

    /// The I8 tensor `name`'s values; throws when it is missing or of another dtype.
    public func int8Tensor(_ name: String) throws -> (shape: [Int], values: [Int8]) {
        guard let entry = entries[name] else { throw LSTMError.missingTensor(name: name, file: path) }
        guard entry.dtype == .i8 else {
            throw LSTMError.wrongDType(name: name, expected: "I8", got: entry.dtype.rawValue)
        }
        let offset = dataStart + entry.range.lowerBound
        let values = bytes.withUnsafeBytes { raw in
            Array(
                UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + entry.range.count)]).bindMemory(to: Int8.self))
        }
        return (entry.shape, values)
    }

    /// The 16-bit patterns of the `dtype` (BF16 or F16) tensor `name`; throws when it is
    /// missing or of another dtype.
    public func halfBits(_ name: String, dtype: DType) throws -> (shape: [Int], bits: [UInt16]) {
        guard let entry = entries[name] else { throw LSTMError.missingTensor(name: name, file: path) }
        guard entry.dtype == dtype else {
            throw LSTMError.wrongDType(name: name, expected: dtype.rawValue, got: entry.dtype.rawValue)
        }
        let count = entry.shape.reduce(1, *)
        let offset = dataStart + entry.range.lowerBound
        let bits = bytes.withUnsafeBytes { raw in
            let src = UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + entry.range.count)])
            return (0..<count).map { UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self)) }
        }
        return (entry.shape, bits)
    }

    static func halfToFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exponent = Int((h >> 10) & 0x1F)
        let mantissa = UInt32(h & 0x3FF)
        if exponent == 0 {
            let magnitude = Float(mantissa) * Float(sign: .plus, exponent: -24, significand: 1)
            return sign != 0 ? -magnitude : magnitude
        }
        if exponent == 31 { return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13)) }
        return Float(bitPattern: sign | UInt32(exponent - 15 + 127) << 23 | (mantissa << 13))
    }
}

/// A JSON number that is a whole count in 0...2⁵³ (exact in a Double), else nil: rejects
/// negatives, fractions, huge values and strings.
private func exactCount(_ value: Any) -> Int? {
    guard let number = value as? NSNumber else { return nil }
    let double = number.doubleValue
    guard double.isFinite, double >= 0, double <= 9_007_199_254_740_992, double.rounded() == double else { return nil }
    let count = Int(double)
    guard number.int64Value == Int64(count) else { return nil }
    return count
}

/// The contents of the regular file at `path`; a directory, FIFO, device or socket is
/// refused by what it is (reading a FIFO would block), as is a missing or unreadable file,
/// and one larger than `maximumBytes` when given (the error ends "more than the N " +
/// `limitReason`). SPI for the package's other modules (LSTMONNX reads models with it).
package func readRegularFile(
    _ path: String, maximumBytes: Int? = nil, limitReason: String = "such a file may have"
) throws -> Data {
    var info = stat()
    guard stat(path, &info) == 0 else {
        throw LSTMError.io(
            path: path, reason: errno == ENOENT ? "no such file" : "cannot read: \(String(cString: strerror(errno)))")
    }
    switch info.st_mode & S_IFMT {
    case S_IFREG: break
    case S_IFDIR: throw LSTMError.io(path: path, reason: "is a directory, not a file")
    default: throw LSTMError.io(path: path, reason: "is not a regular file (a FIFO, device or socket)")
    }
    let size = Int(info.st_size)
    if let maximumBytes, size > maximumBytes {
        throw LSTMError.io(path: path, reason: "is \(size) bytes, more than the \(maximumBytes) \(limitReason)")
    }
    // Read whole, so it must fit: refused up front from its size, never after gigabytes read.
    guard size <= SizeLimits.hostMemory else {
        throw LSTMError.outOfMemory(device: "host (reading \(path))", needed: size, available: SizeLimits.hostMemory)
    }
    let fd = open(path, O_RDONLY | O_NONBLOCK)
    guard fd >= 0 else { throw LSTMError.io(path: path, reason: "cannot open: \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    var data = Data(count: size)
    var done = 0
    let failure: String? = data.withUnsafeMutableBytes { raw in
        while done < size {
            let n = read(fd, raw.baseAddress! + done, size - done)
            if n < 0 {
                if errno == EINTR { continue }
                return String(cString: strerror(errno))
            }
            if n == 0 { break }  // the file shrank while being read
            done += n
        }
        return nil
    }
    if let failure { throw LSTMError.io(path: path, reason: "cannot read: \(failure)") }
    return done == size ? data : data.prefix(done)
}

/// A tensor to be written: float32 values, int64 values (e.g. `lengths`), or a reduced-precision
/// matrix's int8 values or 16-bit patterns (BF16, F16).
public enum SafeTensorsValue {
    case float32(Tensor)
    case int64(shape: [Int], values: [Int])
    case int8(shape: [Int], values: [Int8])
    case bfloat16(shape: [Int], bits: [UInt16])
    case float16(shape: [Int], bits: [UInt16])
}

extension SafeTensorsFile {
    /// Serialises `tensors` (in the given order) and `metadata` to a safetensors image.
    public static func encode(
        _ tensors: [(name: String, value: SafeTensorsValue)], metadata: [String: String] = [:]
    ) -> Data {
        var header = "{"
        var parts: [String] = []
        if !metadata.isEmpty {
            let fields = metadata.keys.sorted().map { "\(jsonStringLiteral($0)):\(jsonStringLiteral(metadata[$0]!))" }
            parts.append("\"__metadata__\":{\(fields.joined(separator: ","))}")
        }
        var offset = 0
        for (name, value) in tensors {
            let (dtype, shape, size): (String, [Int], Int) =
                switch value {
                case let .float32(t): ("F32", t.shape, t.count * 4)
                case let .int64(shape, values): ("I64", shape, values.count * 8)
                case let .int8(shape, values): ("I8", shape, values.count)
                case let .bfloat16(shape, bits): ("BF16", shape, bits.count * 2)
                case let .float16(shape, bits): ("F16", shape, bits.count * 2)
                }
            let dims = shape.map(String.init).joined(separator: ",")
            parts.append(
                "\(jsonStringLiteral(name)):{\"dtype\":\"\(dtype)\",\"shape\":[\(dims)],\"data_offsets\":[\(offset),\(offset + size)]}"
            )
            offset += size
        }
        header += parts.joined(separator: ",") + "}"
        var headerBytes = Array(header.utf8)
        while (8 + headerBytes.count) % 8 != 0 { headerBytes.append(UInt8(ascii: " ")) }
        var data = Data(capacity: 8 + headerBytes.count + offset)
        withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(contentsOf: headerBytes)
        for (_, value) in tensors {
            switch value {
            case let .float32(t):
                t.scalars.map { $0.bitPattern.littleEndian }.withUnsafeBytes { data.append(contentsOf: $0) }
            case let .int64(_, values):
                values.map { Int64($0).littleEndian }.withUnsafeBytes { data.append(contentsOf: $0) }
            case let .int8(_, values):
                values.withUnsafeBytes { data.append(contentsOf: $0) }
            case let .bfloat16(_, bits), let .float16(_, bits):
                bits.map { $0.littleEndian }.withUnsafeBytes { data.append(contentsOf: $0) }
            }
        }
        return data
    }

    /// Writes `tensors` to `path` atomically: a temporary file in the same folder,
    /// fsync, then rename over `path`. On any failure `path` is untouched.
    public static func write(
        _ tensors: [(name: String, value: SafeTensorsValue)], metadata: [String: String] = [:],
        to path: String
    ) throws {
        try writeAtomically(encode(tensors, metadata: metadata), to: path)
    }

}

/// A JSON string literal for `text`: quotes, backslashes and control characters escaped.
public func jsonStringLiteral(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where scalar.value < 0x20 || scalar.value == 0x7F:
            out += String(format: "\\u%04x", scalar.value)
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}

/// What a file's metadata says it is, for "not the expected kind of file" errors.
package func describeFormat(_ file: SafeTensorsFile) -> String {
    switch file.metadata["format"] {
    case nil: return "it has no __metadata__.format"
    case "pt": return "its format is 'pt': a PyTorch state_dict (weights only)"
    case let format?: return "its format is '\(format)'"
    }
}
