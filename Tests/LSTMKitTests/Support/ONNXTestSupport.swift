import Foundation
import XCTest

@testable import LSTMCore
@testable import LSTMKit
@testable import LSTMONNX

/// Exported models to break and import again, for the ONNX test classes.
protocol ONNXModelMaking {}

extension ONNXModelMaking {
    /// An exported model (I = 3, H = 4, `layers` layers) to break: its layers read h0, c0
    /// through Slices and are joined by a Transpose [0, 2, 1, 3] and a Reshape [0, 0, −1]
    /// ("reshape_tb").
    func model(layers: Int = 1, bidirectional: Bool = false) throws -> Onnx_ModelProto {
        let configuration = LSTMConfiguration(
            inputSize: 3, hiddenSize: 4, numLayers: layers, bidirectional: bidirectional)
        return try ONNXExport.model(configuration: configuration, weights: LSTM.initialWeights(configuration, seed: 2))
    }

    /// `model` through the importer, as from a file named test.onnx.
    func importing(_ model: Onnx_ModelProto) throws -> ONNXImport {
        try ONNXImport(data: model.serializedBytes(), source: "test.onnx")
    }
}
