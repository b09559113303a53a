import Foundation
import XCTest

@testable import LSTMCPU
@testable import LSTMCore
@testable import LSTMData
@testable import LSTMKit
@testable import LSTMNN
@testable import LSTMOpenCL
@testable import LSTMReference

// Making damaged or edited files for the hostile-input tests, and small checkpoints to damage.

/// Rewrites the JSON header of the safetensors file at `source` with `edit` and writes the
/// result to `destination` (the data section is kept as it is).
func rewriteHeader(_ source: String, to destination: String, _ edit: (inout [String: Any]) -> Void) throws {
    let data = try Data(contentsOf: URL(fileURLWithPath: source))
    let size = Int(data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
    var header = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + size))) as! [String: Any]
    edit(&header)
    let json = try JSONSerialization.data(withJSONObject: header)
    var out = Data()
    withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
    out.append(json)
    out.append(data.subdata(in: (8 + size)..<data.count))
    try out.write(to: URL(fileURLWithPath: destination))
}

/// Overwrites the first float of `tensor` in the safetensors file at `path` with NaN.
func rewriteNaN(into path: String, tensor: String) throws {
    let file = try SafeTensorsFile(contentsOf: path)
    var data = try Data(contentsOf: URL(fileURLWithPath: path))
    let headerSize = Int(data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
    let offset = 8 + headerSize + file.entries[tensor]!.range.lowerBound
    withUnsafeBytes(of: Float.nan.bitPattern.littleEndian) { data.replaceSubrange(offset..<(offset + 4), with: $0) }
    try data.write(to: URL(fileURLWithPath: path))
}

/// A tiny train checkpoint (CPU, 1×8 LSTM) at `path`, and the trainer that wrote it.
@discardableResult
func makeSmallCheckpoint(_ path: String, optimizer: OptimizerKind = .adam()) throws -> LanguageModelTrainer<CPUBackend>
{
    let text = String(repeating: "the quick brown fox jumps over the lazy dog. ", count: 20)
    let vocabulary = Vocabulary(text: text)
    let model = try LanguageModel(
        LanguageModelConfiguration(vocabularySize: vocabulary.count, embeddingSize: 4, hiddenSize: 8),
        backend: CPUBackend(threads: 1), seed: 3)
    var options = TrainingOptions()
    options.batch = 2
    options.sequenceLength = 8
    options.optimizer = optimizer
    let trainer = try LanguageModelTrainer(
        model: model, vocabulary: vocabulary, ids: vocabulary.encode(text), options: options)
    try trainer.trainStep()
    try trainer.trainStep()
    try trainer.saveCheckpoint(to: path)
    return trainer
}
