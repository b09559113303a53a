import LSTMReference

extension Fixture {
    /// Runs the fixture on `backend` and compares every reference tensor.
    /// `tolerance` overrides the default rules (outputs and gradients alike) when given.
    public func check(
        backend: BackendKind = .cpu, device: String? = nil, tolerance: Tolerance? = nil
    ) throws -> [ParityRow] {
        let lstm = try LSTM(configuration, weights: weights, backend: backend, device: device)
        let result = try lstm.forward(input, h0: h0, c0: c0, lengths: lengths, training: hasGradients)
        var rows: [ParityRow] = []
        let outputTolerance = tolerance ?? .outputs, gradientTolerance = tolerance ?? .gradients
        for (name, ours) in [("output", result.output), ("hn", result.hn), ("cn", result.cn)] {
            rows.append(compare(name, ours: ours, reference: references[name]!, tolerance: outputTolerance))
        }
        guard hasGradients else { return rows }
        let grads = try lstm.backward(
            result, outputGradient: outputGradient, hnGradient: hnGradient, cnGradient: cnGradient)
        var ours: [String: Tensor] = ["grad_input": grads.input, "grad_h0": grads.h0, "grad_c0": grads.c0]
        for (name, tensor) in grads.weights { ours["grad." + name] = tensor }
        for name in references.keys.sorted() where name.hasPrefix("grad") {
            guard let mine = ours[name] else { throw LSTMError.unexpectedTensor(name: name, file: path) }
            rows.append(compare(name, ours: mine, reference: references[name]!, tolerance: gradientTolerance))
        }
        return rows
    }
}
