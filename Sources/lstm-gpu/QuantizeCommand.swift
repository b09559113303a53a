import ArgumentParser
import Foundation
import LSTMBenchmark
import LSTMCommandLine
import LSTMKit

struct QuantizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quantize",
        abstract: "Store a trained model's LSTM weights in bf16, fp16 or int8 for inference.",
        discussion: """
            MODEL is an LSTM state_dict (lstm-gpu's or PyTorch's; --prefix selects a sub-module), an \
            application's model file (train --task, the examples) or a seq2seq model file (the \
            translator's). Every LSTM's weight matrices (weight_ih, weight_hh, weight_hr) are \
            quantized (int8: symmetric per output row with a float scale) or rounded (bf16, fp16); \
            biases, peepholes, layer-norm scales, embeddings and linear layers stay float32, as \
            PyTorch's quantize_dynamic({nn.LSTM}) leaves them. The file keeps everything else \
            (configuration, vocabularies, class names) and records the precision in its metadata; \
            run, inspect, LSTM(contentsOf:), Sequential(contentsOf:) and Seq2Seq(contentsOf:) load it \
            and run in that precision (inference only). Prints the file sizes before and after. Exits 2 when the model cannot \
            be read or its weights cannot be held (NaN or infinite weights in int8, beyond ±65504 in fp16).
            """)

    @Argument(help: "The float32 model: a state_dict, a model file or a seq2seq model file.") var model: String
    @Option(help: "The precision to store: bf16, fp16 or int8.") var to: Precision
    @Option(help: "The file to write (replaced atomically).") var output: String
    @Option(
        help: "Tensor name prefix of the LSTM in a state_dict (e.g. lstm.); the file's other tensors are kept (F32).")
    var prefix = ""

    func validate() throws {
        guard to.isReduced else {
            throw ValidationError("--to fp32 stores nothing new: quantize to bf16, fp16 or int8")
        }
    }

    func run() throws {
        try requireDistinctPaths(inputs: [("MODEL", model)], outputs: [("--output", output)])
        try prepareOutputPath(output, option: "--output")
        let file = try SafeTensorsFile(contentsOf: model)
        let kind = ProjectFileKind(file)
        let stored = try ReducedStateDict.precision(in: file.metadata, source: model)
        guard !stored.isReduced else {
            throw LSTMError.invalidArgument(
                "\(model) is already stored in \(stored); quantize its float32 original instead (rounding twice "
                    + "compounds the errors)")
        }
        if kind != .stateDict, !prefix.isEmpty {
            throw ValidationError("--prefix selects the LSTM of a state_dict; \(model) is \(kind.name)")
        }
        let what: String
        switch kind {
        case .stateDict:
            let lstm = try LSTM(contentsOf: model, prefix: prefix).quantized(to)
            // The file's other tensors (a model around the LSTM under --prefix) and metadata come along.
            var entries = try lstm.weightEntries(prefix: prefix)
            var others = 0
            for name in file.names where !name.hasPrefix(prefix) {
                let entry = file.entries[name]!
                entries.append(
                    entry.dtype.isFloatingPoint
                        ? (name, .float32(try file.floatTensor(name)))
                        : (name, .int64(shape: entry.shape, values: try file.intTensor(name).values)))
                others += 1
            }
            try SafeTensorsFile.write(
                entries, metadata: file.metadata.merging(lstm.weightMetadata) { $1 }, to: output)
            what =
                "LSTM \(describeModel(lstm.configuration))"
                + (others > 0 ? " (and \(others) other tensor\(others == 1 ? "" : "s") kept as float32)" : "")
        case .sequentialModel:
            let original = try Sequential<CPUBackend>(contentsOf: model, backend: CPUBackend())
            let quantized = try original.quantized(to)
            let own: Set<String> = ["format", ModelArchitecture.metadataKey, ReducedStateDict.metadataKey]
            try quantized.save(to: output, metadata: file.metadata.filter { !own.contains($0.key) })
            let lstms = quantized.layers.filter { $0 is LSTMLayer<CPUBackend> }.count
            what = "model of \(quantized.layers.count) layers (\(lstms) LSTM)"
        case .seq2seqModel:
            let quantized = try Seq2Seq<CPUBackend>(contentsOf: model, backend: CPUBackend()).quantized(to)
            try quantized.save(to: output)
            what = "seq2seq model (encoder and decoder LSTMs)"
        case .checkpoint:
            throw LSTMError.invalidArgument(
                "\(model) is \(kind.name): quantize what inference loads, not a training checkpoint; "
                    + "`lstm-gpu sample --precision \(to)` runs a checkpoint's model in \(to)")
        case .fixture, .fitState:
            throw LSTMError.invalidArgument("\(model) is \(kind.name), which holds no model to quantize")
        }
        let before = try fileSize(model), after = try fileSize(output)
        print(
            "\(output): \(what) in \(to), \(before) → \(after) bytes (\(fixed(Double(after) / Double(max(before, 1)), 3))× the "
                + "file it came from)")
    }

    func fileSize(_ path: String) throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
    }
}
