import Foundation
@_spi(Backend) import LSTMCore

/// The model API's operations on the CPU: sequence pooling and binary cross-entropy (the
/// formulas of `ModelOps`; Kernels/training.cl spells out the same steps for OpenCL).
extension CPUBackend {
    public func binaryCrossEntropyWithLogits(
        logits: CPUBuffer, targets: CPUBuffer, count: Int, gradient: CPUBuffer, loss: CPUBuffer, lossSlot: Int
    ) throws {
        var total: Double = 0
        let scale = 1 / Float(max(count, 1))
        for i in 0..<count {
            let x = logits.pointer[i], y = targets.pointer[i]
            total += Double(max(x, 0) - x * y + Foundation.log1p(Foundation.exp(-abs(x))))
            gradient.pointer[i] = (1 / (1 + Foundation.exp(-x)) - y) * scale
        }
        loss.pointer[lossSlot] = Float(total / Double(max(count, 1)))
        gradient.markModified(); loss.markModified()
    }

    public func poolSteps(
        _ input: CPUBuffer, steps: Int, batch: Int, width: Int, lengths: [Int32], mode: PoolingMode,
        into out: CPUBuffer, argmax: CPUBuffer
    ) throws {
        let x = input.pointer
        for b in 0..<batch {
            let n = Int(lengths[b])
            for j in 0..<width {
                var value: Float = 0, best = -1
                if n > 0 {
                    switch mode {
                    case .last:
                        best = n - 1
                        value = x[(best * batch + b) * width + j]
                    case .mean:
                        for t in 0..<n { value += x[(t * batch + b) * width + j] }
                        value /= Float(n)
                    case .max:
                        best = 0
                        value = x[b * width + j]
                        for t in 1..<max(n, 1) where x[(t * batch + b) * width + j] > value {
                            value = x[(t * batch + b) * width + j]
                            best = t
                        }
                    }
                }
                out.pointer[b * width + j] = value
                argmax.pointer[b * width + j] = Float(best)
            }
        }
        out.markModified(); argmax.markModified()
    }

    public func poolStepsBackward(
        _ outputGradient: CPUBuffer, steps: Int, batch: Int, width: Int, lengths: [Int32], mode: PoolingMode,
        argmax: CPUBuffer, into inputGradient: CPUBuffer
    ) throws {
        let g = outputGradient.pointer, dx = inputGradient.pointer
        for t in 0..<steps {
            for b in 0..<batch {
                let n = Int(lengths[b])
                for j in 0..<width {
                    var value: Float = 0
                    if t < n {
                        switch mode {
                        case .last, .max: value = t == Int(argmax.pointer[b * width + j]) ? g[b * width + j] : 0
                        case .mean: value = g[b * width + j] / Float(n)
                        }
                    }
                    dx[(t * batch + b) * width + j] = value
                }
            }
        }
        inputGradient.markModified()
    }
}
