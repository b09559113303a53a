import LSTMCore

/// A piece of a model over a `ModelOps` backend that knows its own backward: `forward` keeps
/// what `backward` needs when `training` is true, and `backward` turns dL/d(output) into the
/// gradients of the layer's parameters (set on `parameters`) and dL/d(input). `Sequential`
/// chains layers and runs their backwards in reverse, so no user code touches gradients.
///
/// A layer of your own implements the three requirements. Scaling by a constant (the test
/// suite builds this very class and checks its gradients in a `Sequential`):
///
/// ```swift
/// final class Scale<Backend: ModelOps>: Layer {
///     let backend: Backend
///     let factor: Float
///     private var kept: (factors: Backend.Buffer, count: Int)?
///     var parameters: [Parameter<Backend.Buffer>] { [] }
///     init(backend: Backend, factor: Float) { self.backend = backend; self.factor = factor }
///
///     func forward(_ input: LayerValue<Backend>, training: Bool) throws -> LayerValue<Backend> {
///         guard let x = input.buffer else {
///             throw LSTMError.invalidArgument("Scale expects a sequence or rows, got \(input.summary)")
///         }
///         let n = input.elementCount
///         let factors = try backend.makeBuffer(count: n), y = try backend.makeBuffer(count: n)
///         try backend.write(Array(repeating: factor, count: n), to: factors, offset: 0)
///         try backend.multiply(x, factors, into: y, count: n)
///         kept = training ? (factors, n) : nil
///         return input.replacing(y, features: input.shape.last!)
///     }
///
///     func backward(_ outputGradient: Backend.Buffer) throws -> Backend.Buffer? {
///         guard let (factors, n) = kept else { throw LSTMError.invalidArgument("Scale: no training forward") }
///         let dx = try backend.makeBuffer(count: n)
///         try backend.multiply(outputGradient, factors, into: dx, count: n)
///         return dx
///     }
/// }
///
/// let model = try Sequential<CPUBackend>([embedding, lstm, Scale(backend: cpu, factor: 0.5), pooling, head])
/// ```
///
/// Gradients flow as buffers shaped like the value they belong to: dL/d(output) like the last
/// forward's output, dL/d(input) like its input (nil when the input was token ids).
public protocol Layer<Backend>: AnyObject {
    associatedtype Backend: ModelOps
    /// The layer's weights with PyTorch's module-local names ("weight", "weight_ih_l0", …);
    /// a container prefixes them with the layer's position. `backward` sets their gradients.
    var parameters: [Parameter<Backend.Buffer>] { get }
    /// Runs the layer. With `training`, keeps what `backward` needs (and draws dropout masks);
    /// without, keeps nothing and runs the inference path.
    /// - Throws: `LSTMError` naming the kind of value the layer expected when given another.
    func forward(_ input: LayerValue<Backend>, training: Bool) throws -> LayerValue<Backend>
    /// From dL/d(output) (shaped like the last forward's output), sets every parameter's
    /// gradient and returns dL/d(input) (nil for token ids).
    /// - Throws: `LSTMError` when the last forward was not a training one.
    func backward(_ outputGradient: Backend.Buffer) throws -> Backend.Buffer?
}
