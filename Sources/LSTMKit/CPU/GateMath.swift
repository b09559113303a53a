// Vectorised activations and the fused LSTM cell math of the CPU path.
// Gate order i, f, g, o, in the CPU layout of blocks of 8 units [i f g o] (GateLayout).
// exp uses Cephes' range reduction and polynomial (relative error ~2e-7 over the
// clamped range); sigmoid(x) = 1 / (1 + exp(-x)), tanh(x) = 2·sigmoid(2x) - 1
// (absolute error ~1e-7, well inside the parity tolerance).

typealias Vector = SIMD8<Float>
let vectorWidth = 8

@inline(__always)
func exp(_ x: Vector) -> Vector {
    let clamped = pointwiseMax(pointwiseMin(x, Vector(repeating: 88.3)), Vector(repeating: -87.3))
    // n = round(x·log2 e) by the 1.5·2^23 trick: the sum's low mantissa bits hold n.
    let magic = Vector(repeating: 12_582_912)
    let shifted = clamped * 1.442_695_04 + magic
    let n = shifted - magic
    var r = clamped - n * 0.693_359_375
    r = r + n * 2.121_944_4e-4
    var p = Vector(repeating: 1.987_569_15e-4)
    p = p * r + 1.398_199_95e-3
    p = p * r + 8.333_451_9e-3
    p = p * r + 4.166_579_59e-2
    p = p * r + 1.666_666_55e-1
    p = p * r + 5.000_000_12e-1
    let e = p * r * r + r + 1
    let bits = unsafeBitCast(shifted, to: SIMD8<UInt32>.self) &- unsafeBitCast(magic, to: SIMD8<UInt32>.self)
    return e * unsafeBitCast((bits &+ 127) &<< 23, to: Vector.self)
}

@inline(__always) func sigmoid(_ x: Vector) -> Vector { 1 / (1 + exp(-x)) }
@inline(__always) func tanh(_ x: Vector) -> Vector { 2 / (1 + exp(-2 * x)) - 1 }

@inline(__always)
func load(_ p: UnsafePointer<Float>) -> Vector { UnsafeRawPointer(p).loadUnaligned(as: Vector.self) }
@inline(__always)
func store(_ v: Vector, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: Vector.self) }

/// Scalar lane of the same math (used for a last partial block), so every unit is
/// computed by the same formula.
@inline(__always) func sigmoid(_ x: Float) -> Float { sigmoid(Vector(repeating: x))[0] }
@inline(__always) func tanh(_ x: Float) -> Float { tanh(Vector(repeating: x))[0] }

/// Forward cell math for one block of `width` units (8, or fewer for a last partial
/// block) of one sequence, in the CPU gate layout (`GateLayout`): `gates` holds the
/// block's pre-activations [i | f | g | o], each `width` wide, and receives the
/// activations; writes c(t) to `cell` and o·tanh(c) to `hidden`.
@inline(__always)
func cellForwardBlock(gates: UnsafeMutablePointer<Float>, width: Int, previousCell: UnsafePointer<Float>,
                      cell: UnsafeMutablePointer<Float>, hidden: UnsafeMutablePointer<Float>) {
    if width == vectorWidth {
        let i = sigmoid(load(gates)), f = sigmoid(load(gates + 8)), g = tanh(load(gates + 16)), o = sigmoid(load(gates + 24))
        let c = f * load(previousCell) + i * g
        store(i, gates); store(f, gates + 8); store(g, gates + 16); store(o, gates + 24)
        store(c, cell)
        store(o * tanh(c), hidden)
        return
    }
    for j in 0..<width {
        let i = sigmoid(gates[j]), f = sigmoid(gates[width + j]), g = tanh(gates[2 * width + j])
        let o = sigmoid(gates[3 * width + j])
        let c = f * previousCell[j] + i * g
        gates[j] = i; gates[width + j] = f; gates[2 * width + j] = g; gates[3 * width + j] = o
        cell[j] = c
        hidden[j] = o * tanh(c)
    }
}

/// Backward cell math for one block of `width` units of one sequence. In: the block's
/// activations `gates` [i | f | g | o], c(t) `cell`, c(prev) `previousCell`, dL/d(o·tanh c)
/// `hiddenGradient`, and the carried dL/dc(t) `cellGradient`, which is replaced by
/// dL/dc(prev). Out: the pre-activation gate gradients `gateGradients`, same layout.
@inline(__always)
func cellBackwardBlock(gates: UnsafePointer<Float>, width: Int, cell: UnsafePointer<Float>,
                       previousCell: UnsafePointer<Float>, hiddenGradient: UnsafePointer<Float>,
                       cellGradient: UnsafeMutablePointer<Float>, gateGradients: UnsafeMutablePointer<Float>) {
    if width == vectorWidth {
        let i = load(gates), f = load(gates + 8), g = load(gates + 16), o = load(gates + 24)
        let tc = tanh(load(cell))
        let dr = load(hiddenGradient)
        let dc = load(cellGradient) + dr * o * (1 - tc * tc)
        store(dc * g * i * (1 - i), gateGradients)
        store(dc * load(previousCell) * f * (1 - f), gateGradients + 8)
        store(dc * i * (1 - g * g), gateGradients + 16)
        store(dr * tc * o * (1 - o), gateGradients + 24)
        store(dc * f, cellGradient)
        return
    }
    for j in 0..<width {
        let i = gates[j], f = gates[width + j], g = gates[2 * width + j], o = gates[3 * width + j]
        let tc = tanh(cell[j])
        let dr = hiddenGradient[j]
        let dc = cellGradient[j] + dr * o * (1 - tc * tc)
        gateGradients[j] = dc * g * i * (1 - i)
        gateGradients[width + j] = dc * previousCell[j] * f * (1 - f)
        gateGradients[2 * width + j] = dc * i * (1 - g * g)
        gateGradients[3 * width + j] = dr * tc * o * (1 - o)
        cellGradient[j] = dc * f
    }
}
