// LSTMKit is the umbrella: `import LSTMKit` gives every library target of the engine (see
// docs/architecture.md for what each holds and how they depend on each other), plus the `LSTM`
// facade that picks a backend. A third-party backend imports `@_spi(Backend) import LSTMCore`.
@_exported import LSTMCPU
@_exported import LSTMCore
@_exported import LSTMData
@_exported import LSTMNN
@_exported import LSTMOpenCL
@_exported import LSTMReference
