import Foundation
import LSTMKit

extension LSTM {
    /// A model read from an ONNX file (see `ONNXImport` for what is read and refused); the
    /// graph's other operators are not run (`ONNXImport.warnings` lists them).
    /// - Throws: `LSTMError.io` when the file cannot be read, `ONNXError` saying what in the
    ///   model is malformed or unsupported, `LSTMError` when the backend cannot be used.
    public convenience init(onnx url: URL, backend: BackendKind = .cpu, device: String? = nil) throws {
        let imported = try ONNXImport(contentsOf: url)
        try self.init(imported.configuration, weights: imported.weights, backend: backend, device: device)
    }

    /// Writes the model as ONNX (opset 14) to `url`, atomically (see `ONNXExport`).
    /// - Throws: `ONNXError.notExportable` for projection, layer norm, a cell or projection
    ///   clip; `LSTMError.io` when the file cannot be written.
    public func exportONNX(to url: URL) throws {
        try ONNXExport.write(configuration: configuration, weights: weights(), to: url)
    }
}
