import CLSTMKernels
@_spi(Backend) import LSTMCore

/// The CPU path's gate-column order. PyTorch orders the 4H gate rows [i | f | g | o];
/// the CPU path regroups them in blocks of 8 hidden units, [i f g o] per block
/// (a last block of H mod 8 units likewise), so that the columns of a range of units are
/// contiguous: a thread that owns units owns one column range of every gate matrix and
/// runs its recurrent GEMM and its cell update without waiting on another thread, and a
/// block's four gates load as whole SIMD vectors.
struct GateLayout: Equatable {
    /// Units per block: `LSTM_GATE_BLOCK` of the C kernels (one definition for both languages).
    static let block = Int(LSTM_GATE_BLOCK)
    /// H.
    let hiddenSize: Int

    var blockCount: Int { (hiddenSize + Self.block - 1) / Self.block }

    /// Units of block `b` (8, or H mod 8 for a last partial block).
    func width(ofBlock b: Int) -> Int { min(Self.block, hiddenSize - b * Self.block) }

    /// First gate column of block `b` (every block before it is full).
    func column(ofBlock b: Int) -> Int { 4 * Self.block * b }

    /// The gate column of (gate 0...3 in i, f, g, o order, unit j).
    func column(gate: Int, unit j: Int) -> Int {
        let b = j / Self.block
        return column(ofBlock: b) + gate * width(ofBlock: b) + j % Self.block
    }

    /// Gate columns of the units of blocks `blocks`.
    func columns(ofBlocks blocks: Range<Int>) -> Range<Int> {
        blocks.isEmpty
            ? 0..<0
            : column(
                ofBlock: blocks.lowerBound)..<(blocks.upperBound == blockCount
                ? 4 * hiddenSize : column(ofBlock: blocks.upperBound))
    }

    /// Units of blocks `blocks`.
    func units(ofBlocks blocks: Range<Int>) -> Range<Int> {
        (blocks.lowerBound * Self.block)..<min(hiddenSize, blocks.upperBound * Self.block)
    }

    /// dst[column(g, j), :] = src[g·H + j, :] for a [4H, width] matrix (PyTorch → CPU order).
    func regroupRows(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, width: Int) {
        for gate in 0..<4 {
            for j in 0..<hiddenSize {
                (dst + column(gate: gate, unit: j) * width).update(
                    from: src + (gate * hiddenSize + j) * width, count: width)
            }
        }
    }

    /// dst[g·H + j, :] = src[column(g, j), :] (CPU → PyTorch order).
    func restoreRows(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, width: Int) {
        for gate in 0..<4 {
            for j in 0..<hiddenSize {
                (dst + (gate * hiddenSize + j) * width).update(
                    from: src + column(gate: gate, unit: j) * width, count: width)
            }
        }
    }
}
