import CLSTMKernels
import Foundation
@_spi(Backend) import LSTMCore

/// The fast CPU path (not the reference: that is `ReferenceLSTM`, the plain-loop oracle this
/// backend is tested against element by element): OpenBLAS for the matrix products, SIMD for
/// the fused cell math (portable, AVX2 or AVX-512 bodies: `CPUKernelVariant`),
/// its own team of threads for parallelism (OpenBLAS runs single-threaded in each).
///
/// Per direction, each thread owns a range of hidden units and therefore (in the
/// `GateLayout` order) one contiguous range of gate columns: it computes the input
/// projection of all T steps for its columns (one sgemm [T·B, In] × [In, its 4H share],
/// biases folded in). In the step loop (`CPUStepSplit`) it then either keeps its units —
/// per step its share of the recurrent product (`lstm_gemm_packed`) and the fused
/// activations + cell update of its units, meeting the others at one barrier per step (two
/// with projection) — or takes a range of batch rows with every unit, which needs no
/// barrier inside the loop. The backward mirrors it; the weight gradients are one sgemm per
/// thread over all T·B rows for its gate columns. Nothing is allocated inside the step loop.
public final class CPUBackend: LSTMBackend {
    public typealias Buffer = CPUBuffer
    public typealias Lengths = [Int]

    let team: WorkerTeam
    /// Whether a layer may run on fewer threads than `threads` when its steps are small
    /// (see `CPUThreads.minimumStepWorkPerThread`); false when the count was given.
    public let adaptsThreads: Bool
    /// The most threads this backend computes with.
    public var threads: Int { team.size }
    /// How a direction's threads share its step loop (`CPUStepSplit`; `.automatic` by default).
    public let stepSplit: CPUStepSplit

    /// A backend on exactly `threads` threads, or, by default, on up to `CPUThreads.current`
    /// (the active cores) with fewer for layers whose steps are too small to share
    /// (`threads(hiddenSize:outputSize:batch:directions:)`).
    /// An explicit count above the cores is honoured (the barrier then yields instead of spinning).
    /// `stepSplit` chooses how the threads of a direction share its step loop (see
    /// `CPUStepSplit`; the default picks by shape and cache size).
    public init(threads: Int? = nil, stepSplit: CPUStepSplit = .automatic) {
        team = WorkerTeam.shared(size: max(1, threads ?? CPUThreads.current))
        adaptsThreads = threads == nil
        self.stepSplit = stepSplit
        CPUThreads.singleThreadedBLAS()
    }

    public var name: String { "cpu" }
    public var kind: BackendKind { .cpu }
    public var memoryCapacity: Int { SizeLimits.hostMemory }
    /// Every precision: the reduced ones (`Precision`) run `CPUReducedOperand`'s kernels.
    public var precisions: [Precision] { Precision.allCases }
    public func synchronize() throws {}

    public func makeBuffer(count: Int) throws -> CPUBuffer {
        guard count >= 0 else { throw LSTMError.invalidArgument("buffer of \(count) floats") }
        try requireCapacity(SizeLimits.saturatingProduct([count, 4]), for: "a buffer of \(count) floats")
        try BLASLibrary.require()  // every computation starts with buffers: a missing BLAS is reported here
        return CPUBuffer(count: count)
    }

    public func makeScratchBuffer(count: Int) throws -> CPUBuffer {
        guard count >= 0 else { throw LSTMError.invalidArgument("buffer of \(count) floats") }
        try requireCapacity(SizeLimits.saturatingProduct([count, 4]), for: "a buffer of \(count) floats")
        try BLASLibrary.require()
        return CPUBuffer(count: count, zeroed: false)
    }

    public func write(_ values: [Float], to buffer: CPUBuffer, offset: Int) throws {
        guard offset >= 0, offset + values.count <= buffer.count else {
            throw LSTMError.invalidArgument(
                "write of \(values.count) floats at \(offset) into a buffer of \(buffer.count)")
        }
        values.withUnsafeBufferPointer { (buffer.pointer + offset).update(from: $0.baseAddress!, count: values.count) }
        buffer.markModified()
    }

    public func read(_ buffer: CPUBuffer, offset: Int, count: Int) throws -> [Float] {
        guard offset >= 0, count >= 0, offset + count <= buffer.count else {
            throw LSTMError.invalidArgument("read of \(count) floats at \(offset) from a buffer of \(buffer.count)")
        }
        return Array(UnsafeBufferPointer(start: buffer.pointer + offset, count: count))
    }

    public func makeLengths(_ lengths: [Int]?, batch: Int, sequenceLength steps: Int) throws -> [Int] {
        lengths ?? [Int](repeating: steps, count: batch)
    }

    public func swapOuterDimensions(_ src: CPUBuffer, into dst: CPUBuffer, a: Int, c: Int, inner: Int) throws {
        for i in 0..<a {
            for j in 0..<c {
                (dst.pointer + (j * a + i) * inner).update(from: src.pointer + (i * c + j) * inner, count: inner)
            }
        }
        dst.markModified()
    }

    /// dst [rows, width] ← the view's rows, or zeros when there is no view.
    func copyRows(_ view: MatrixView<CPUBuffer>?, into dst: UnsafeMutablePointer<Float>, rows: Int, width: Int) {
        guard let view else { dst.update(repeating: 0, count: rows * width); return }
        for r in 0..<rows {
            (dst + r * width).update(from: view.buffer.pointer + view.offset + r * view.rowStride, count: width)
        }
    }
}

/// dst[range] = src[range].
@inline(__always)
func copy(_ src: UnsafePointer<Float>, to dst: UnsafeMutablePointer<Float>, _ range: Range<Int>) {
    (dst + range.lowerBound).update(from: src + range.lowerBound, count: range.count)
}

/// out[c] = Σ_r m[r, c] for c in `columns` of an [R, W] matrix.
func sumColumns(
    _ m: UnsafePointer<Float>, rows: Int, width: Int, columns: Range<Int>, into out: UnsafeMutablePointer<Float>
) {
    let o = out + columns.lowerBound
    o.update(repeating: 0, count: columns.count)
    for r in 0..<rows {
        let row = m + r * width + columns.lowerBound
        for j in 0..<columns.count { o[j] += row[j] }
    }
}
