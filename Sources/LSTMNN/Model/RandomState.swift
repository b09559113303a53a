import LSTMCore

/// A layer whose training forward draws random numbers (dropout masks) from generators of its
/// own: their states, saved and restored, make a resumed training draw what it would have.
protocol RandomStateHolder: AnyObject {
    var randomStates: [UInt64] { get set }
}

extension Dropout: RandomStateHolder {
    var randomStates: [UInt64] {
        get { [seeds.state] }
        set { seeds.state = newValue[0] }
    }
}

extension LSTMLayer: RandomStateHolder {
    var randomStates: [UInt64] {
        get { [dropoutSeeds.state] }
        set { dropoutSeeds.state = newValue[0] }
    }
}

extension Sequential: RandomStateHolder {
    /// The state of every random generator in the model's layers (dropout and the LSTMs'
    /// between-layer dropout), in layer order; nested containers included. Layers of your own
    /// are not covered. Setting it needs exactly as many states as it gives.
    public var randomStates: [UInt64] {
        get { layers.flatMap { ($0 as? RandomStateHolder)?.randomStates ?? [] } }
        set {
            precondition(
                newValue.count == randomStates.count,
                "Sequential.randomStates takes \(randomStates.count) states, got \(newValue.count)")
            var rest = newValue[...]
            for case let holder as RandomStateHolder in layers {
                let count = holder.randomStates.count
                holder.randomStates = Array(rest.prefix(count))
                rest = rest.dropFirst(count)
            }
        }
    }

    /// The backend of the first layer that names one (nil for a model of custom layers only).
    var backend: Backend? {
        for layer in layers {
            switch layer {
            case let l as Embedding<Backend>: return l.backend
            case let l as LSTMLayer<Backend>: return l.stack.backend
            case let l as Linear<Backend>: return l.backend
            case let l as Dropout<Backend>: return l.backend
            case let l as SequencePooling<Backend>: return l.backend
            case let l as Sequential<Backend>: if let backend = l.backend { return backend }
            default: continue
            }
        }
        return nil
    }
}
