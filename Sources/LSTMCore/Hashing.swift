/// FNV-1a, 64-bit: the one hash for fingerprints (training text, replica configurations) and
/// cache keys (program binaries). Fast and stable across runs and machines; not cryptographic.
package struct FNV1a {
    package static let offsetBasis: UInt64 = 0xCBF2_9CE4_8422_2325
    package static let prime: UInt64 = 0x100_0000_01B3
    package var value: UInt64

    package init(offsetBasis: UInt64 = FNV1a.offsetBasis) { value = offsetBasis }

    /// Mixes one value (a byte, or a whole 64-bit word as one unit).
    package mutating func combine(_ unit: UInt64) { value = (value ^ unit) &* FNV1a.prime }

    /// The hash of a string's UTF-8 bytes.
    package static func hash(_ text: String) -> UInt64 {
        var hasher = FNV1a()
        for byte in text.utf8 { hasher.combine(UInt64(byte)) }
        return hasher.value
    }
}
