import Foundation
import LSTMKit
import XCTest

/// F16 and BF16 tensors decoded through `SafeTensorsFile.floatTensor`, from file images
/// holding known bit patterns (normals with non-zero mantissas, subnormals of both signs,
/// signed zeros, ±Inf, NaN).
final class HalfPrecisionTests: XCTestCase {
    /// A safetensors image with one 1-D tensor per entry, in the given order.
    func image(_ tensors: [(name: String, dtype: String, bits: [UInt16])]) -> Data {
        var entries: [String] = []
        var data = Data()
        for t in tensors {
            let start = data.count
            for b in t.bits { data.append(UInt8(b & 0xFF)); data.append(UInt8(b >> 8)) }  // little-endian
            entries.append(
                "\"\(t.name)\":{\"dtype\":\"\(t.dtype)\",\"shape\":[\(t.bits.count)],\"data_offsets\":[\(start),\(data.count)]}"
            )
        }
        let header = Data(("{" + entries.joined(separator: ",") + "}").utf8)
        var file = Data()
        var size = UInt64(header.count)
        for _ in 0..<8 { file.append(UInt8(size & 0xFF)); size >>= 8 }
        return file + header + data
    }

    func testF16AndBF16Decode() throws {
        let f16: [(UInt16, Float)] = [
            (0x3C00, 1.0), (0x3C01, 1.0009765625), (0x3555, 0.333251953125), (0xC000, -2.0),
            (0x7BFF, 65504.0), (0x0400, 0x1p-14),  // largest and smallest normal
            (0x0001, 0x1p-24), (0x03FF, 1023 * 0x1p-24),  // subnormals
            (0x8001, -0x1p-24), (0x83FF, -1023 * 0x1p-24), (0x8200, -0x1p-15),  // negative subnormals
            (0x0000, 0.0), (0x8000, -0.0),
            (0x7C00, .infinity), (0xFC00, -.infinity),
        ]
        let bf16: [(UInt16, Float)] = [
            (0x3F80, 1.0), (0x4049, 3.140625), (0xBF80, -1.0), (0x3EAB, 0.333984375),
            (0x0001, Float(bitPattern: 0x0001_0000)), (0x8000, -0.0),
            (0x7F80, .infinity), (0xFF80, -.infinity),
        ]
        let nans: [UInt16] = [0x7E00, 0xFE00, 0x7C01, 0x7FFF]
        let bf16NaNs: [UInt16] = [0x7FC0, 0xFFC0, 0x7F81]
        let file = try SafeTensorsFile(
            data: image([
                ("half", "F16", f16.map(\.0)), ("brain", "BF16", bf16.map(\.0)),
                ("half_nan", "F16", nans), ("brain_nan", "BF16", bf16NaNs),
            ]))
        for (name, expected) in [("half", f16), ("brain", bf16)] {
            let decoded = try file.floatTensor(name)
            XCTAssertEqual(decoded.shape, [expected.count])
            for (value, (bits, want)) in zip(decoded.scalars, expected) {
                // Bitwise: catches a lost sign on -0.0 and on negative subnormals.
                XCTAssertEqual(
                    value.bitPattern, want.bitPattern,
                    "\(name) 0x\(String(bits, radix: 16)): got \(value), expected \(want)")
            }
        }
        for name in ["half_nan", "brain_nan"] {
            for (value, bits) in zip(try file.floatTensor(name).scalars, name == "half_nan" ? nans : bf16NaNs) {
                XCTAssertTrue(value.isNaN, "\(name) 0x\(String(bits, radix: 16)) decoded to \(value), not NaN")
                XCTAssertEqual(value.sign, bits & 0x8000 != 0 ? .minus : .plus, "\(name) 0x\(String(bits, radix: 16))")
            }
        }
    }
}
