import Foundation

/// A named weight tensor on a backend, with the gradient of the last backward.
public final class Parameter<Buffer: AnyObject> {
    /// The checkpoint name (PyTorch's `state_dict` key, e.g. "lstm.weight_ih_l0").
    /// A container prefixes it with the module's position (`Sequential`), as PyTorch's
    /// `named_parameters` does.
    public package(set) var name: String
    public let shape: [Int]
    public let value: Buffer
    /// Set by the model's backward; nil before the first one.
    public var gradient: Buffer?
    public var count: Int { shape.reduce(1, *) }

    public init(name: String, shape: [Int], value: Buffer) {
        self.name = name
        self.shape = shape
        self.value = value
    }
}

/// Normal(0, 1) draws (Box–Muller) from the seeded generator, for embedding initialisation.
package func normalValues(_ count: Int, generator: inout SeededGenerator) -> [Float] {
    var values: [Float] = []
    values.reserveCapacity(count + 1)
    while values.count < count {
        let u1 = max(generator.nextFloat(in: 0..<1), 1e-7), u2 = generator.nextFloat(in: 0..<1)
        let radius = (-2 * Float.log(u1)).squareRoot()
        values.append(radius * Float.cos(2 * .pi * u2))
        values.append(radius * Float.sin(2 * .pi * u2))
    }
    return Array(values.prefix(count))
}

extension Float {
    static func log(_ x: Float) -> Float { Float(Foundation.log(Double(x))) }
    static func cos(_ x: Float) -> Float { Float(Foundation.cos(Double(x))) }
    static func sin(_ x: Float) -> Float { Float(Foundation.sin(Double(x))) }
}
