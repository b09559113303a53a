// Vectorised activations and the fused LSTM cell math of the CPU path.
// Gate order i, f, g, o; a gate row of one sequence is [4H] = [i | f | g | o].
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

/// Scalar lane of the same math (used for the H mod 8 tail), so every element of a row
/// is computed by the same formula.
@inline(__always) func sigmoid(_ x: Float) -> Float { sigmoid(Vector(repeating: x))[0] }
@inline(__always) func tanh(_ x: Float) -> Float { tanh(Vector(repeating: x))[0] }

/// Forward cell math for one sequence row: `gates` holds the pre-activations [4H] and
/// receives the activations; writes c(t) to `cell` and o·tanh(c) to `hidden`.
@inline(__always)
func cellForwardRow(gates: UnsafeMutablePointer<Float>, previousCell: UnsafePointer<Float>,
                    cell: UnsafeMutablePointer<Float>, hidden: UnsafeMutablePointer<Float>, hiddenSize h: Int) {
    var j = 0
    while j + vectorWidth <= h {
        let i = sigmoid(load(gates + j)), f = sigmoid(load(gates + h + j))
        let g = tanh(load(gates + 2 * h + j)), o = sigmoid(load(gates + 3 * h + j))
        let c = f * load(previousCell + j) + i * g
        store(i, gates + j); store(f, gates + h + j); store(g, gates + 2 * h + j); store(o, gates + 3 * h + j)
        store(c, cell + j)
        store(o * tanh(c), hidden + j)
        j += vectorWidth
    }
    while j < h {
        let i = sigmoid(gates[j]), f = sigmoid(gates[h + j]), g = tanh(gates[2 * h + j]), o = sigmoid(gates[3 * h + j])
        let c = f * previousCell[j] + i * g
        gates[j] = i; gates[h + j] = f; gates[2 * h + j] = g; gates[3 * h + j] = o
        cell[j] = c
        hidden[j] = o * tanh(c)
        j += 1
    }
}

/// Backward cell math for one sequence row. In: activations `gates` [4H], c(t) `cell`,
/// c(prev) `previousCell`, dL/d(o·tanh c) `hiddenGradient` [H], and the carried dL/dc(t)
/// `cellGradient` [H], which is replaced by dL/dc(prev). Out: pre-activation gate
/// gradients `gateGradients` [4H].
@inline(__always)
func cellBackwardRow(gates: UnsafePointer<Float>, cell: UnsafePointer<Float>, previousCell: UnsafePointer<Float>,
                     hiddenGradient: UnsafePointer<Float>, cellGradient: UnsafeMutablePointer<Float>,
                     gateGradients: UnsafeMutablePointer<Float>, hiddenSize h: Int) {
    var j = 0
    while j + vectorWidth <= h {
        let i = load(gates + j), f = load(gates + h + j), g = load(gates + 2 * h + j), o = load(gates + 3 * h + j)
        let tc = tanh(load(cell + j))
        let dr = load(hiddenGradient + j)
        let dc = load(cellGradient + j) + dr * o * (1 - tc * tc)
        store(dc * g * i * (1 - i), gateGradients + j)
        store(dc * load(previousCell + j) * f * (1 - f), gateGradients + h + j)
        store(dc * i * (1 - g * g), gateGradients + 2 * h + j)
        store(dr * tc * o * (1 - o), gateGradients + 3 * h + j)
        store(dc * f, cellGradient + j)
        j += vectorWidth
    }
    while j < h {
        let i = gates[j], f = gates[h + j], g = gates[2 * h + j], o = gates[3 * h + j]
        let tc = tanh(cell[j])
        let dr = hiddenGradient[j]
        let dc = cellGradient[j] + dr * o * (1 - tc * tc)
        gateGradients[j] = dc * g * i * (1 - i)
        gateGradients[h + j] = dc * previousCell[j] * f * (1 - f)
        gateGradients[2 * h + j] = dc * i * (1 - g * g)
        gateGradients[3 * h + j] = dr * tc * o * (1 - o)
        cellGradient[j] = dc * f
        j += 1
    }
}
