import Foundation
import LSTMCore

// The readable LSTM: one layer in one direction, forward and backward, in plain loops.
//
// Shape letters, named once for the whole Reference folder:
//   T    steps                      B    batch (sequences)
//   I    input features (layer 0)   In   input features of the layer at hand (I, or D·Hout above)
//   H    hidden units               P    projection size (0: no projection)
//   Hout the size of h: P when projecting, else H
//   L    layers                     D    directions (2 when bidirectional, else 1)
//
// Why it looks the way it does:
// - It is the oracle the fast paths are tested against, so it is written to be checked by
//   reading against PyTorch's documentation of `torch.nn.LSTM`, not to be fast: one scalar
//   loop per formula, gate rows in PyTorch's order i, f, g, o (rows q·H + j of the 4H-row
//   weights), no regrouping, packing, threads or BLAS.
// - It computes in Double. The fixtures' expected values are PyTorch's, computed in float64
//   from the stored float32 inputs; computing in Double makes this model agree with them to
//   about float32 rounding, so a difference between a fast path and the reference is the fast
//   path's own float32 error, not the sum of two. Inputs are widened and results rounded to
//   Float only at the model's edge (`ReferenceLSTM`).
// - Nested arrays, indexed the way the shapes read: `x[t][b][k]` is step t, sequence b,
//   feature k of a [T, B, In] sequence.

/// The readable LSTM (see the top of this file): a namespace for its types and its
/// per-direction math; `ReferenceLSTM` is the whole model on host tensors.
enum Reference {
    /// A vector of Doubles.
    typealias Vector = [Double]
    /// A row-major matrix as rows: `m[r][c]`.
    typealias Matrix = [[Double]]
    /// A [T, B, ·] sequence: `s[t][b]` is the feature vector of sequence b at step t.
    typealias StepRows = [[Vector]]

    /// The weights of one layer and direction, PyTorch's layouts and names, widened to Double.
    struct Weights {
        /// `weight_ih` [G·H, In], rows in gate order i, f, g, o (f, g, o with CIFG).
        var inputWeights: Matrix
        /// `weight_hh` [G·H, Hout].
        var recurrentWeights: Matrix
        /// `bias_ih`, `bias_hh` [G·H]; nil without bias.
        var inputBias: Vector?
        var recurrentBias: Vector?
        /// `weight_hr` [P, H]; nil without projection.
        var projectionWeights: Matrix?
        /// `weight_ci`, `weight_cf`, `weight_co` [H] by gate (i, f, o); nil where absent.
        var peepholes: [Gate: Vector] = [:]
        /// `layer_norm_weight_{i,f,g,o}` [H] by gate; empty without layer norm.
        var layerNormWeights: [Gate: Vector] = [:]
        /// The cell variant (PyTorch's when plain).
        var cell = LSTMCellOptions()
        /// The matrices' precision; in a reduced one the three matrices above hold the reduced
        /// values widened to Double, and `reduced` the matrices themselves (int8's integers).
        var precision = Precision.fp32
        var reduced: ReducedDirectionMatrices? = nil

        var hiddenSize: Int { recurrentWeights.count / cell.gateCount }  // H
        var outputSize: Int { projectionWeights?.count ?? hiddenSize }  // Hout
        var inputSize: Int { inputWeights.first?.count ?? 0 }  // In
        /// The gates with weight rows, in row order: i, f, g, o (f, g, o with CIFG).
        var weightedGates: [Gate] { cell.coupledInputForget ? [.f, .g, .o] : Gate.allCases }
        /// The weight row of unit j of gate q (q must have weights).
        func row(_ q: Gate, _ j: Int) -> Int { weightedGates.firstIndex(of: q)! * hiddenSize + j }
    }

    /// The four gates, in PyTorch's order.
    enum Gate: Int, CaseIterable { case i, f, g, o }

    /// The gradients of one layer and direction's weights, shaped like `Weights`.
    /// `bias_ih` and `bias_hh` enter the pre-activations the same way, so one vector is the
    /// gradient of both.
    struct WeightGradients {
        var inputWeights: Matrix  // [G·H, In]
        var recurrentWeights: Matrix  // [G·H, Hout]
        var bias: Vector  // [G·H]
        var projectionWeights: Matrix?  // [P, H]
        var peepholes: [Gate: Vector]  // [H] each
        var layerNormWeights: [Gate: Vector]  // [H] each
    }

    /// What one step of one sequence computed on the way, beyond the states: what its backward
    /// reads. Gate-indexed arrays hold all four gates (i = 1 − f with CIFG).
    struct StepTrace {
        /// Gate activations i, f, g, o [H] each.
        var gates: [Vector]
        /// z: pre-activations before the activation clip [H] per gate.
        var preActivations: [Vector]
        /// x̂ and 1/√(var + ε) of each gate's normalisation (layer norm only).
        var normalized: [Vector]
        var inverseDeviation: [Double]
        /// c before the cell clip [H]; h before the projection clip [Hout].
        var unclippedCell: Vector
        var unclippedHidden: Vector
    }

    /// A forward of one direction: its results and what its backward reads. Everything is
    /// indexed by time step t (not by processing order); the saved values of a padded step
    /// (t ≥ lengths[b]) are never read.
    struct DirectionForward {
        /// [T, B, Hout]: h after each step; 0 at padded steps.
        var output: StepRows
        /// [B, Hout], [B, H]: the states after each sequence's last valid step (its h0, c0 for length 0).
        var finalHidden: [Vector]
        var finalCell: [Vector]
        /// [T][B]: what each step computed on the way (gates, pre-activations, normalisation).
        var traces: [[StepTrace?]]
        /// [T, B, H]: c after the step.
        var cell: StepRows
        /// [T, B, Hout], [T, B, H]: the states the step started from.
        var previousHidden: StepRows
        var previousCell: StepRows
        /// [T, B, H]: o·tanh(c), the h before projection (h itself without projection).
        var unprojected: StepRows
    }

    static func sigmoid(_ x: Double) -> Double { 1 / (1 + exp(-x)) }

    /// x clamped to [−limit, limit]; a limit of 0 means no clip.
    static func clip(_ x: Double, _ limit: Float) -> Double {
        limit > 0 ? min(max(x, -Double(limit)), Double(limit)) : x
    }

    /// The clamp's derivative: 1 where x lay within [−limit, limit] (bounds included), else 0.
    static func clipSlope(_ x: Double, _ limit: Float) -> Double {
        limit > 0 && abs(x) > Double(limit) ? 0 : 1
    }

    static func zeros(_ count: Int) -> Vector { Vector(repeating: 0, count: count) }

    /// [rows, columns] of zeros.
    static func zeros(_ rows: Int, _ columns: Int) -> Matrix { Matrix(repeating: zeros(columns), count: rows) }

    /// [T, B, width] of zeros.
    static func zeros(sequenceLength steps: Int, batch: Int, width: Int) -> StepRows {
        StepRows(repeating: [Vector](repeating: zeros(width), count: batch), count: steps)
    }

    /// The steps in the order a direction visits them: 0..<T forward, T-1 down to 0 in reverse.
    static func processingOrder(sequenceLength steps: Int, reverse: Bool) -> [Int] {
        reverse ? Array((0..<steps).reversed()) : Array(0..<steps)
    }

    /// z of gate q from its sum s [H]: with layer norm γ ⊙ (s − mean)/√(var + ε) + biases, else s
    /// (whose biases are already in it). Returns z and, with layer norm, x̂ and 1/√(var + ε).
    static func normalize(_ s: Vector, gate q: Gate, weights w: Weights) -> (z: Vector, xhat: Vector, r: Double) {
        guard w.cell.layerNorm, let gamma = w.layerNormWeights[q] else { return (s, [], 0) }
        let H = Double(s.count)
        let mean = s.reduce(0, +) / H
        let variance = s.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / H
        let r = 1 / (variance + Double(w.cell.layerNormEpsilon)).squareRoot()
        let xhat = s.map { ($0 - mean) * r }
        let z = xhat.indices.map { j in
            gamma[j] * xhat[j] + (w.inputBias?[w.row(q, j)] ?? 0) + (w.recurrentBias?[w.row(q, j)] ?? 0)
        }
        return (z, xhat, r)
    }

    /// The backward of `normalize`: ds from dz (dz itself without layer norm), accumulating the
    /// layer-norm weight's gradient γ_q += Σ dz ⊙ x̂.
    static func normalizeBackward(
        _ dz: Vector, gate q: Gate, trace: StepTrace, weights w: Weights, gradients: inout WeightGradients
    ) -> Vector {
        guard w.cell.layerNorm, let gamma = w.layerNormWeights[q] else { return dz }
        let xhat = trace.normalized[q.rawValue], r = trace.inverseDeviation[q.rawValue]
        let H = Double(dz.count)
        let dxhat = dz.indices.map { dz[$0] * gamma[$0] }
        let meanD = dxhat.reduce(0, +) / H
        let meanDX = dxhat.indices.map { dxhat[$0] * xhat[$0] }.reduce(0, +) / H
        for j in dz.indices { gradients.layerNormWeights[q]![j] += dz[j] * xhat[j] }
        return dz.indices.map { r * (dxhat[$0] - meanD - xhat[$0] * meanDX) }
    }

    /// Forward of one layer in one direction over the whole sequence: PyTorch's LSTM cell, with
    /// the options of `LSTMCellOptions` (whose documentation has the formulas) when set:
    ///
    ///     s = W_ih·x(t) + W_hh·h(prev) (+ b_ih + b_hh without layer norm)   rows i, f, g, o
    ///     (+ peepholes p ⊙ c(prev) into i and f; layer norm; activation clip)
    ///     i = σ(z_i)   f = σ(z_f)   g = tanh(z_g)   (i = 1 − f with CIFG)
    ///     c(t) = f·c(prev) + i·g    (then the cell clip)
    ///     o = σ(z_o)   (its peephole reads c(t))
    ///     h(t) = o·tanh(c(t)),  or W_hr·(o·tanh(c(t))) with projection (then the projection clip)
    ///
    /// Packed-sequence semantics: sequence b only runs its steps t < lengths[b]; at the others
    /// its output is 0 and its state is left as it is. The reverse direction visits t from T-1
    /// down, so each sequence starts at its own last valid step.
    ///
    /// - Parameters:
    ///   - input: [T, B, In].
    ///   - lengths: [B], each in 0...T.
    ///   - initialHidden: [B, Hout]; initialCell: [B, H].
    static func forward(
        input x: StepRows, lengths: [Int], weights w: Weights,
        initialHidden: [Vector], initialCell: [Vector], reverse: Bool
    ) -> DirectionForward {
        let (T, B) = (x.count, lengths.count)
        let (H, Hout) = (w.hiddenSize, w.outputSize)
        let options = w.cell
        var result = DirectionForward(
            output: zeros(sequenceLength: T, batch: B, width: Hout), finalHidden: initialHidden, finalCell: initialCell,
            traces: [[StepTrace?]](repeating: [StepTrace?](repeating: nil, count: B), count: T),
            cell: zeros(sequenceLength: T, batch: B, width: H),
            previousHidden: zeros(sequenceLength: T, batch: B, width: Hout),
            previousCell: zeros(sequenceLength: T, batch: B, width: H),
            unprojected: zeros(sequenceLength: T, batch: B, width: H))
        var hidden = initialHidden  // [B, Hout]: h(prev) of each sequence
        var cell = initialCell  // [B, H]: c(prev)

        for t in processingOrder(sequenceLength: T, reverse: reverse) {
            for b in 0..<B where t < lengths[b] {
                let previousCell = cell[b]
                // s_q: the two products (and the biases, without layer norm) of each weighted gate.
                // (In a reduced precision each product is `product`'s: x and h made ready once.)
                var s = [Vector](repeating: zeros(H), count: 4)
                let xa = Activation(x[t][b], precision: w.precision)
                let ha = Activation(hidden[b], precision: w.precision)
                for q in w.weightedGates {
                    for j in 0..<H {
                        let row = w.row(q, j)
                        var sum = options.layerNorm ? 0 : (w.inputBias?[row] ?? 0) + (w.recurrentBias?[row] ?? 0)
                        sum += product(w.inputWeights, w.reduced?.input, row: row, xa)
                        sum += product(w.recurrentWeights, w.reduced?.recurrent, row: row, ha)
                        s[q.rawValue][j] = sum
                    }
                }
                for q in [Gate.i, .f] {
                    if let p = w.peepholes[q] { for j in 0..<H { s[q.rawValue][j] += p[j] * previousCell[j] } }
                }
                var trace = StepTrace(
                    gates: [Vector](repeating: zeros(H), count: 4),
                    preActivations: [Vector](repeating: zeros(H), count: 4),
                    normalized: [Vector](repeating: [], count: 4), inverseDeviation: [0, 0, 0, 0],
                    unclippedCell: zeros(H), unclippedHidden: zeros(Hout))
                /// z of gate q (layer norm, biases), recorded, then clipped and activated.
                func activate(_ q: Gate, _ activation: (Double) -> Double) -> Vector {
                    let (z, xhat, r) = normalize(s[q.rawValue], gate: q, weights: w)
                    (trace.preActivations[q.rawValue], trace.normalized[q.rawValue]) = (z, xhat)
                    trace.inverseDeviation[q.rawValue] = r
                    return z.map { activation(clip($0, options.activationClip)) }
                }
                let f = activate(.f, sigmoid), g = activate(.g, tanh)
                let i = options.coupledInputForget ? f.map { 1 - $0 } : activate(.i, sigmoid)
                var newCell = zeros(H)
                for j in 0..<H {
                    trace.unclippedCell[j] = f[j] * previousCell[j] + i[j] * g[j]
                    newCell[j] = clip(trace.unclippedCell[j], options.cellClip)
                }
                if let p = w.peepholes[.o] { for j in 0..<H { s[Gate.o.rawValue][j] += p[j] * newCell[j] } }
                let o = activate(.o, sigmoid)
                trace.gates = [i, f, g, o]
                let unprojected = (0..<H).map { o[$0] * tanh(newCell[$0]) }
                // h(t): o·tanh(c), projected to P features by W_hr when there is a projection.
                var newHidden = unprojected
                if let projection = w.projectionWeights {
                    let ma = Activation(unprojected, precision: w.precision)
                    for p in 0..<Hout {
                        trace.unclippedHidden[p] = product(projection, w.reduced?.projection, row: p, ma)
                    }
                    newHidden = trace.unclippedHidden.map { clip($0, options.projectionClip) }
                }
                result.previousHidden[t][b] = hidden[b]
                result.previousCell[t][b] = previousCell
                result.traces[t][b] = trace
                result.cell[t][b] = newCell
                result.unprojected[t][b] = unprojected
                result.output[t][b] = newHidden
                hidden[b] = newHidden
                cell[b] = newCell
            }
        }
        result.finalHidden = hidden
        result.finalCell = cell
        return result
    }

    /// Backpropagation through time for one layer in one direction: the steps in the reverse
    /// of the forward's order, carrying dL/dh and dL/dc from step to step.
    ///
    /// Per valid step of sequence b (with tc = tanh(c(t)) and m = o·tanh(c(t))), for PyTorch's cell:
    ///
    ///     dh   = carried dh + dL/doutput(t)                       [Hout]
    ///     dW_hr += dh ⊗ m;   dm = W_hrᵀ·dh   (dm = dh without projection)
    ///     dc   = carried dc + dm·o·(1 − tc²)
    ///     dz_i = dc·g·i(1 − i)    dz_f = dc·c(prev)·f(1 − f)
    ///     dz_g = dc·i·(1 − g²)    dz_o = dm·tc·o(1 − o)
    ///     dW_ih += dz ⊗ x(t);  dW_hh += dz ⊗ h(prev);  db += dz
    ///     dx(t) = W_ihᵀ·dz;  carried dh = W_hhᵀ·dz;  carried dc = dc·f
    ///
    /// The options add their links to that chain: each clip multiplies the gradient through it
    /// by its slope (`clipSlope`); the output gate's peephole adds ds_o·p_o to dc, the others
    /// ds_i·p_i + ds_f·p_f to the carried dc; CIFG sends −di into df; layer norm runs its own
    /// backward between dz and ds (`normalizeBackward`), the biases then taking dz and the
    /// weight products ds.
    ///
    /// A padded step changes nothing: its dx is 0 and the carried gradients pass through, so a
    /// sequence of length 0 hands dL/dhn, dL/dcn straight to h0, c0.
    ///
    /// - Parameters:
    ///   - input: [T, B, In], the forward's input.
    ///   - outputGradient: [T, B, Hout]; its padded steps are ignored.
    ///   - finalHiddenGradient: [B, Hout]; finalCellGradient: [B, H].
    /// - Returns: the gradients of the input [T, B, In], h0 [B, Hout], c0 [B, H] and the weights.
    static func backward(
        _ forward: DirectionForward, input x: StepRows, lengths: [Int],
        weights w: Weights, outputGradient: StepRows,
        finalHiddenGradient: [Vector], finalCellGradient: [Vector], reverse: Bool
    )
        -> (input: StepRows, initialHidden: [Vector], initialCell: [Vector], weights: WeightGradients)
    {
        let (T, B) = (x.count, lengths.count)
        let (In, H, Hout) = (w.inputSize, w.hiddenSize, w.outputSize)
        let options = w.cell
        let rows = w.weightedGates.count * H
        var inputGradient = zeros(sequenceLength: T, batch: B, width: In)
        var grads = WeightGradients(
            inputWeights: zeros(rows, In), recurrentWeights: zeros(rows, Hout), bias: zeros(rows),
            projectionWeights: w.projectionWeights.map { _ in zeros(Hout, H) },
            peepholes: w.peepholes.mapValues { _ in zeros(H) },
            layerNormWeights: w.layerNormWeights.mapValues { _ in zeros(H) })
        var hiddenGradient = finalHiddenGradient  // [B, Hout]: dL/dh carried back to the previous step
        var cellGradient = finalCellGradient  // [B, H]: dL/dc carried back

        for t in processingOrder(sequenceLength: T, reverse: reverse).reversed() {
            for b in 0..<B where t < lengths[b] {
                let trace = forward.traces[t][b]!
                let cell = forward.cell[t][b]
                let previousCell = forward.previousCell[t][b], unprojected = forward.unprojected[t][b]
                let (i, f, g, o) = (trace.gates[0], trace.gates[1], trace.gates[2], trace.gates[3])
                var dh = hiddenGradient[b]
                for p in 0..<Hout { dh[p] += outputGradient[t][b][p] }
                // Through the projection h = clip(W_hr·m).
                var dm = dh
                if let projection = w.projectionWeights {
                    for p in 0..<Hout { dh[p] *= clipSlope(trace.unclippedHidden[p], options.projectionClip) }
                    dm = zeros(H)
                    for p in 0..<Hout {
                        for j in 0..<H {
                            grads.projectionWeights![p][j] += dh[p] * unprojected[j]
                            dm[j] += projection[p][j] * dh[p]
                        }
                    }
                }
                /// ds of gate q from the gradient of its activation's output (da) and the
                /// activation's derivative at the saved value.
                var ds = [Vector](repeating: zeros(H), count: 4)
                func backThroughGate(_ q: Gate, _ da: Vector, slope: (Double) -> Double) {
                    let z = trace.preActivations[q.rawValue], a = trace.gates[q.rawValue]
                    let dz = (0..<H).map { da[$0] * slope(a[$0]) * clipSlope(z[$0], options.activationClip) }
                    ds[q.rawValue] = normalizeBackward(dz, gate: q, trace: trace, weights: w, gradients: &grads)
                    for j in 0..<H { grads.bias[w.row(q, j)] += dz[j] }
                }
                let sigmoidSlope = { (a: Double) in a * (1 - a) }
                // The output gate, then the cell (whose gradient the o peephole adds to).
                backThroughGate(.o, (0..<H).map { dm[$0] * tanh(cell[$0]) }, slope: sigmoidSlope)
                var dc = zeros(H)
                for j in 0..<H {
                    let tc = tanh(cell[j])
                    dc[j] = cellGradient[b][j] + dm[j] * o[j] * (1 - tc * tc)
                    if let p = w.peepholes[.o] {
                        dc[j] += ds[Gate.o.rawValue][j] * p[j]
                        grads.peepholes[.o]![j] += ds[Gate.o.rawValue][j] * cell[j]
                    }
                    dc[j] *= clipSlope(trace.unclippedCell[j], options.cellClip)
                }
                var df = (0..<H).map { dc[$0] * previousCell[$0] }
                let di = (0..<H).map { dc[$0] * g[$0] }
                if options.coupledInputForget {
                    for j in 0..<H { df[j] -= di[j] }  // i = 1 − f
                } else {
                    backThroughGate(.i, di, slope: sigmoidSlope)
                }
                backThroughGate(.f, df, slope: sigmoidSlope)
                backThroughGate(.g, (0..<H).map { dc[$0] * i[$0] }, slope: { 1 - $0 * $0 })
                var carriedCell = (0..<H).map { dc[$0] * f[$0] }
                for q in [Gate.i, .f] {
                    guard let p = w.peepholes[q] else { continue }
                    for j in 0..<H {
                        carriedCell[j] += ds[q.rawValue][j] * p[j]
                        grads.peepholes[q]![j] += ds[q.rawValue][j] * previousCell[j]
                    }
                }
                cellGradient[b] = carriedCell
                // Through the two products of the pre-activations.
                var dhPrevious = zeros(Hout)
                for q in w.weightedGates {
                    for j in 0..<H {
                        let row = w.row(q, j), d = ds[q.rawValue][j]
                        for k in 0..<In {
                            grads.inputWeights[row][k] += d * x[t][b][k]
                            inputGradient[t][b][k] += w.inputWeights[row][k] * d
                        }
                        for k in 0..<Hout {
                            grads.recurrentWeights[row][k] += d * forward.previousHidden[t][b][k]
                            dhPrevious[k] += w.recurrentWeights[row][k] * d
                        }
                    }
                }
                hiddenGradient[b] = dhPrevious
            }
        }
        return (inputGradient, hiddenGradient, cellGradient, grads)
    }
}
