/// A small, fast, seedable random generator (SplitMix64). The same seed gives the
/// same weights on every platform and backend.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    /// The generator's whole state: saving it and restoring it resumes the sequence.
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A float in `range`, from the top 24 bits of one draw.
    public mutating func nextFloat(in range: Range<Float>) -> Float {
        let unit = Float(next() >> 40) * (1.0 / 16_777_216.0)
        return range.lowerBound + (range.upperBound - range.lowerBound) * unit
    }
}
