import Foundation

/// Creating and reading the weight tensors a configuration needs, by `state_dict` name
/// (used by the `LSTM` facade, the model layers and the trainers alike).
extension LSTMConfiguration {
    /// PyTorch's default initialisation: every tensor U(−1/√H, 1/√H) from `seed`, the
    /// layer-norm scales γ = 1 (as `torch.nn.LayerNorm` starts).
    public func initialWeights(seed: UInt64) -> [String: Tensor] {
        var generator = SeededGenerator(seed: seed)
        let bound = 1 / Float(hiddenSize).squareRoot()
        var weights: [String: Tensor] = [:]
        for (name, shape) in parameterSpecs {
            weights[name] = Tensor(uniform: shape, low: -bound, high: bound, generator: &generator)
            if name.hasPrefix("layer_norm_weight_") {
                weights[name] = try! Tensor(shape: shape, scalars: [Float](repeating: 1, count: shape[0]))
            }
        }
        return weights
    }

    /// This configuration's weights from `file` under `prefix`, strictly: a tensor under the
    /// prefix that is not a weight of this configuration is an error unless `ignoring` says so.
    package func weights(
        in file: SafeTensorsFile, prefix: String, ignoring: (String) -> Bool = { _ in false }
    ) throws -> [String: Tensor] {
        let expected = Set(parameterSpecs.map(\.name))
        var weights: [String: Tensor] = [:]
        for name in file.entries.keys.sorted() where name.hasPrefix(prefix) {
            let short = String(name.dropFirst(prefix.count))
            if ignoring(short) { continue }
            guard expected.contains(short) else { throw LSTMError.unexpectedTensor(name: name, file: file.path) }
            weights[short] = try file.floatTensor(name)
        }
        for (name, shape) in parameterSpecs {
            guard let tensor = weights[name] else {
                throw LSTMError.missingTensor(name: prefix + name, file: file.path)
            }
            try checkShape(tensor, shape, "\(file.path): '\(prefix + name)'")
        }
        return weights
    }
}
