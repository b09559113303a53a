import Foundation

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
        /// `weight_ih` [4H, In], rows in gate order i, f, g, o.
        var inputWeights: Matrix
        /// `weight_hh` [4H, Hout].
        var recurrentWeights: Matrix
        /// `bias_ih`, `bias_hh` [4H]; nil without bias.
        var inputBias: Vector?
        var recurrentBias: Vector?
        /// `weight_hr` [P, H]; nil without projection.
        var projectionWeights: Matrix?

        var hiddenSize: Int { recurrentWeights.count / 4 }  // H
        var outputSize: Int { projectionWeights?.count ?? hiddenSize }  // Hout
        var inputSize: Int { inputWeights.first?.count ?? 0 }  // In
    }

    /// The gradients of one layer and direction's weights, shaped like `Weights`.
    /// `bias_ih` and `bias_hh` enter the pre-activations the same way, so one vector is the
    /// gradient of both.
    struct WeightGradients {
        var inputWeights: Matrix  // [4H, In]
        var recurrentWeights: Matrix  // [4H, Hout]
        var bias: Vector  // [4H]
        var projectionWeights: Matrix?  // [P, H]
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
        /// [T, B, 4H]: the gates after activation, i, f, g, o.
        var gates: StepRows
        /// [T, B, H]: c after the step.
        var cell: StepRows
        /// [T, B, Hout], [T, B, H]: the states the step started from.
        var previousHidden: StepRows
        var previousCell: StepRows
        /// [T, B, H]: o·tanh(c), the h before projection (h itself without projection).
        var unprojected: StepRows
    }

    static func sigmoid(_ x: Double) -> Double { 1 / (1 + exp(-x)) }

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

    /// Forward of one layer in one direction over the whole sequence, PyTorch's LSTM cell:
    ///
    ///     z = W_ih·x(t) + b_ih + W_hh·h(prev) + b_hh          [4H], rows i, f, g, o
    ///     i = σ(z_i)   f = σ(z_f)   g = tanh(z_g)   o = σ(z_o)
    ///     c(t) = f·c(prev) + i·g
    ///     h(t) = o·tanh(c(t)),  or W_hr·(o·tanh(c(t))) with projection
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
        let (In, H, Hout) = (w.inputSize, w.hiddenSize, w.outputSize)
        var result = DirectionForward(
            output: zeros(sequenceLength: T, batch: B, width: Hout), finalHidden: initialHidden, finalCell: initialCell,
            gates: zeros(sequenceLength: T, batch: B, width: 4 * H), cell: zeros(sequenceLength: T, batch: B, width: H),
            previousHidden: zeros(sequenceLength: T, batch: B, width: Hout),
            previousCell: zeros(sequenceLength: T, batch: B, width: H),
            unprojected: zeros(sequenceLength: T, batch: B, width: H))
        var hidden = initialHidden  // [B, Hout]: h(prev) of each sequence
        var cell = initialCell  // [B, H]: c(prev)

        for t in processingOrder(sequenceLength: T, reverse: reverse) {
            for b in 0..<B where t < lengths[b] {
                // Pre-activations of the four gates, rows q·H + j for gate q of unit j.
                var z = zeros(4 * H)
                for row in 0..<4 * H {
                    var sum = (w.inputBias?[row] ?? 0) + (w.recurrentBias?[row] ?? 0)
                    for k in 0..<In { sum += w.inputWeights[row][k] * x[t][b][k] }
                    for k in 0..<Hout { sum += w.recurrentWeights[row][k] * hidden[b][k] }
                    z[row] = sum
                }
                // Activations and the cell update, unit by unit.
                var gates = zeros(4 * H), newCell = zeros(H), unprojected = zeros(H)
                for j in 0..<H {
                    let i = sigmoid(z[j]), f = sigmoid(z[H + j]), g = tanh(z[2 * H + j]), o = sigmoid(z[3 * H + j])
                    newCell[j] = f * cell[b][j] + i * g
                    unprojected[j] = o * tanh(newCell[j])
                    (gates[j], gates[H + j], gates[2 * H + j], gates[3 * H + j]) = (i, f, g, o)
                }
                // h(t): o·tanh(c), projected to P features by W_hr when there is a projection.
                var newHidden = unprojected
                if let projection = w.projectionWeights {
                    newHidden = zeros(Hout)
                    for p in 0..<Hout {
                        for j in 0..<H { newHidden[p] += projection[p][j] * unprojected[j] }
                    }
                }
                result.previousHidden[t][b] = hidden[b]
                result.previousCell[t][b] = cell[b]
                result.gates[t][b] = gates
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
    /// Per valid step of sequence b (with tc = tanh(c(t)) and m = o·tanh(c(t))):
    ///
    ///     dh   = carried dh + dL/doutput(t)                       [Hout]
    ///     dW_hr += dh ⊗ m;   dm = W_hrᵀ·dh   (dm = dh without projection)
    ///     dc   = carried dc + dm·o·(1 − tc²)
    ///     dz_i = dc·g·i(1 − i)    dz_f = dc·c(prev)·f(1 − f)
    ///     dz_g = dc·i·(1 − g²)    dz_o = dm·tc·o(1 − o)
    ///     dW_ih += dz ⊗ x(t);  dW_hh += dz ⊗ h(prev);  db += dz
    ///     dx(t) = W_ihᵀ·dz;  carried dh = W_hhᵀ·dz;  carried dc = dc·f
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
        var inputGradient = zeros(sequenceLength: T, batch: B, width: In)
        var grads = WeightGradients(
            inputWeights: zeros(4 * H, In), recurrentWeights: zeros(4 * H, Hout), bias: zeros(4 * H),
            projectionWeights: w.projectionWeights.map { _ in zeros(Hout, H) })
        var hiddenGradient = finalHiddenGradient  // [B, Hout]: dL/dh carried back to the previous step
        var cellGradient = finalCellGradient  // [B, H]: dL/dc carried back

        for t in processingOrder(sequenceLength: T, reverse: reverse).reversed() {
            for b in 0..<B where t < lengths[b] {
                let gates = forward.gates[t][b], cell = forward.cell[t][b]
                let previousCell = forward.previousCell[t][b], unprojected = forward.unprojected[t][b]
                var dh = hiddenGradient[b]
                for p in 0..<Hout { dh[p] += outputGradient[t][b][p] }
                // Through the projection h = W_hr·m.
                var dm = dh
                if let projection = w.projectionWeights {
                    dm = zeros(H)
                    for p in 0..<Hout {
                        for j in 0..<H {
                            grads.projectionWeights![p][j] += dh[p] * unprojected[j]
                            dm[j] += projection[p][j] * dh[p]
                        }
                    }
                }
                // Through the cell update and the activations, unit by unit.
                var dz = zeros(4 * H)
                for j in 0..<H {
                    let (i, f, g, o) = (gates[j], gates[H + j], gates[2 * H + j], gates[3 * H + j])
                    let tc = tanh(cell[j])
                    let dc = cellGradient[b][j] + dm[j] * o * (1 - tc * tc)
                    dz[j] = dc * g * i * (1 - i)
                    dz[H + j] = dc * previousCell[j] * f * (1 - f)
                    dz[2 * H + j] = dc * i * (1 - g * g)
                    dz[3 * H + j] = dm[j] * tc * o * (1 - o)
                    cellGradient[b][j] = dc * f
                }
                // Through the two products of the pre-activations.
                var dhPrevious = zeros(Hout)
                for row in 0..<4 * H {
                    grads.bias[row] += dz[row]
                    for k in 0..<In {
                        grads.inputWeights[row][k] += dz[row] * x[t][b][k]
                        inputGradient[t][b][k] += w.inputWeights[row][k] * dz[row]
                    }
                    for k in 0..<Hout {
                        grads.recurrentWeights[row][k] += dz[row] * forward.previousHidden[t][b][k]
                        dhPrevious[k] += w.recurrentWeights[row][k] * dz[row]
                    }
                }
                hiddenGradient[b] = dhPrevious
            }
        }
        return (inputGradient, hiddenGradient, cellGradient, grads)
    }
}
