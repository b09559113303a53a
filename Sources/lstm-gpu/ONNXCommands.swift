import ArgumentParser
import Foundation
import LSTMCommandLine
import LSTMKit
import LSTMONNX

/// Whether `path` names an ONNX model (by its extension), not a safetensors weight file.
func isONNXPath(_ path: String) -> Bool { path.lowercased().hasSuffix(".onnx") }

/// A one-line description of a configuration (sizes, then the options that are set).
func describeModel(_ c: LSTMConfiguration) -> String {
    var parts = ["I=\(c.inputSize) H=\(c.hiddenSize) L=\(c.numLayers) D=\(c.numDirections)"]
    if c.projectionSize > 0 { parts.append("P=\(c.projectionSize)") }
    if !c.bias { parts.append("no-bias") }
    if c.batchFirst { parts.append("batch-first") }
    if c.reverse { parts.append("reverse") }
    if c.peepholes { parts.append("peepholes") }
    if c.coupledInputForget { parts.append("cifg") }
    if c.layerNorm { parts.append("layer-norm") }
    if c.activationClip > 0 { parts.append("activation-clip \(c.activationClip)") }
    if c.cellClip > 0 { parts.append("cell-clip \(c.cellClip)") }
    if c.projectionClip > 0 { parts.append("proj-clip \(c.projectionClip)") }
    return parts.joined(separator: " ")
}

/// Prints an import's warnings on standard error, each as a note of `command`.
func printNotes(_ warnings: [String], command: String) {
    for warning in warnings { printError("lstm-gpu \(command): note: \(warning)") }
}

struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Convert an ONNX model's LSTM into a safetensors state_dict with lstm-gpu's (PyTorch's) names.",
        discussion: """
            Reads the model's LSTM nodes (opset 7 and later; a chain of them, as torch.onnx.export \
            writes a stacked LSTM, is one multi-layer model): W, R, B in ONNX's gate order i, o, f, c \
            become weight_ih, weight_hh, bias_ih, bias_hh in i, f, g, o; P becomes weight_ci, \
            weight_cf, weight_co; clip, input_forget, direction, layout and hidden_size become the \
            configuration, recorded in the file's metadata (LSTM(contentsOf:), run and export read \
            it back). Weights may be in the file or in external data files beside it. Anything \
            lstm-gpu does not run (other activations, activation_alpha/beta, LSTM nodes that are not \
            one chain) is an error naming the node and attribute; the graph's other operators are \
            listed on standard error. Exits 2 when the model cannot be imported.
            """)

    @Argument(help: "An ONNX model (.onnx).") var model: String
    @Option(help: "The safetensors file to write (replaced atomically).") var output: String

    func run() throws {
        try prepareOutputPath(output, option: "--output")
        let imported = try ONNXImport(contentsOf: URL(fileURLWithPath: model))
        printNotes(imported.warnings, command: "import")
        let c = imported.configuration
        try SafeTensorsFile.write(
            c.parameterSpecs.map { ($0.name, .float32(imported.weights[$0.name]!)) },
            metadata: ["format": "pt"].merging(c.metadata) { a, _ in a }, to: output)
        print(
            "\(output): LSTM \(describeModel(c)) from \(imported.layerNodes.count) LSTM node(s) of \(model) "
                + "(opset \(imported.opsetVersion))")
    }
}

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write an LSTM state_dict as an ONNX model (opset \(ONNXExport.opsetVersion)) that onnxruntime runs.",
        discussion: """
            The graph has inputs input [T, B, I] ([B, T, I] batch-first), h0 and c0 [L·D, B, H] and \
            lengths (int32 [B]), one LSTM node per layer with a Transpose and a Reshape between \
            layers (as torch.onnx.export writes a stacked LSTM), and outputs output, hn, cn in \
            PyTorch's layout. Peepholes, CIFG (input_forget), the activation clip (clip) and the \
            reverse direction are written; projection, layer norm, cell clip and projection clip \
            have no ONNX form and are refused. Exits 2 when the model cannot be exported.
            """)

    @Argument(help: "An LSTM state_dict (.safetensors; configuration from its metadata, else inferred).")
    var weights: String
    @Option(help: "The ONNX file to write (replaced atomically).") var output: String
    @Option(help: "Tensor name prefix of the LSTM in the state_dict (e.g. lstm.).") var prefix = ""

    func run() throws {
        try prepareOutputPath(output, option: "--output")
        let lstm = try LSTM(contentsOf: weights, prefix: prefix)
        if lstm.precision.isReduced {
            printError(
                "lstm-gpu export: note: \(weights) is stored in \(lstm.precision); the ONNX model holds its weights "
                    + "widened to float32 (exactly) and computes in float32")
        }
        try lstm.exportONNX(to: URL(fileURLWithPath: output))
        print("\(output): ONNX opset \(ONNXExport.opsetVersion), LSTM \(describeModel(lstm.configuration))")
    }
}

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run an LSTM (a safetensors state_dict or an ONNX model) on the tensors of a safetensors file.",
        discussion: """
            MODEL is a state_dict (configuration from its metadata, else inferred from the tensors) \
            or an .onnx model, imported on the fly (its other operators are listed on standard error \
            and not run). The input file holds 'input' [T, B, I] ([B, T, I] when the model is \
            batch-first) and optionally 'h0' [L·D, B, Hout], 'c0' [L·D, B, H] (zeros without) and \
            'lengths' (integers [B], each in 0...T; packed-sequence semantics). The output file gets \
            'output' [T, B, D·Hout] ([B, T, D·Hout] batch-first), 'hn' [L·D, B, Hout] and 'cn' \
            [L·D, B, H], float32, PyTorch's layout. --precision runs the weights in bf16, fp16 or int8 \
            (quantized on load; a model `lstm-gpu quantize` wrote runs in its own precision); --chunk N \
            runs the input through a stream N steps at a time (unidirectional models), which gives \
            the same numbers (bf16 and fp16: to float rounding for inputs of 256 rows or more). \
            Exits 2 when a file or tensor cannot be used.
            """)

    @Argument(help: "The model: a .safetensors state_dict or an .onnx model.") var model: String
    @Option(help: "Safetensors file with 'input' and optionally 'h0', 'c0', 'lengths'.") var input: String
    @Option(help: "Safetensors file to write with 'output', 'hn', 'cn' (replaced atomically).") var output: String
    @Option(help: "Tensor name prefix of the LSTM in a state_dict (e.g. lstm.).") var prefix = ""
    @OptionGroup var engine: BackendOptions
    @OptionGroup var precisionOption: PrecisionOption
    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Run the input through a stream, this many steps at a time (unidirectional models).", valueName: "steps"))
    var chunk: Int?
    var backend: BackendKind { engine.backend }
    var device: String? { engine.device }

    func validate() throws {
        if isONNXPath(model), !prefix.isEmpty {
            throw ValidationError("--prefix selects tensors of a state_dict; '\(model)' is an ONNX model")
        }
        try precisionOption.validate(backend: backend)
        if let chunk, chunk < 1 { throw ValidationError("--chunk must be at least 1, got \(chunk)") }
    }

    func run() throws {
        try prepareOutputPath(output, option: "--output")
        var lstm: LSTM
        if isONNXPath(model) {
            let imported = try ONNXImport(contentsOf: URL(fileURLWithPath: model))
            printNotes(imported.warnings, command: "run")
            lstm = try LSTM(imported.configuration, weights: imported.weights, backend: backend, device: device)
        } else {
            lstm = try LSTM(contentsOf: model, prefix: prefix, backend: backend, device: device)
        }
        lstm = try lstm.quantized(precisionOption.resolved(stored: lstm.precision, model: model))
        let c = lstm.configuration
        let file = try SafeTensorsFile(contentsOf: input)
        let known = ["input", "h0", "c0", "lengths"]
        for name in file.entries.keys.sorted() where !known.contains(name) {
            throw LSTMError.invalidArgument(
                "\(input): unexpected tensor '\(name)'; the input file holds 'input' and optionally 'h0', 'c0', 'lengths'"
            )
        }
        guard file.contains("input") else { throw LSTMError.missingTensor(name: "input", file: input) }
        let x = try file.floatTensor("input")
        guard x.shape.count == 3 else {
            throw LSTMError.invalidArgument(
                "\(input): 'input' must be 3-D \(c.batchFirst ? "[B, T, I]" : "[T, B, I]"), got shape \(x.shape)")
        }
        let (steps, batch) = c.batchFirst ? (x.shape[1], x.shape[0]) : (x.shape[0], x.shape[1])
        let h0 = try file.contains("h0") ? file.floatTensor("h0") : nil
        let c0 = try file.contains("c0") ? file.floatTensor("c0") : nil
        var lengths: [Int]? = nil
        if file.contains("lengths") {
            let (shape, values) = try file.intTensor("lengths")
            guard shape == [batch] else {
                throw LSTMError.shapeMismatch(what: "\(input): 'lengths' ([B])", expected: [batch], got: shape)
            }
            if let bad = values.first(where: { !(0...steps).contains($0) }) {
                throw LSTMError.invalidArgument("\(input): 'lengths' holds \(bad), outside 0...T = 0...\(steps)")
            }
            lengths = values
        }
        let result: (output: Tensor, hn: Tensor, cn: Tensor)
        if let chunk {
            result = try streamed(lstm, x, h0: h0, c0: c0, lengths: lengths, chunk: chunk)
        } else {
            let whole = try lstm.forward(x, h0: h0, c0: c0, lengths: lengths)
            result = (whole.output, whole.hn, whole.cn)
        }
        try SafeTensorsFile.write(
            [("output", .float32(result.output)), ("hn", .float32(result.hn)), ("cn", .float32(result.cn))],
            to: output)
        print(
            "\(output): output \(result.output.shape), hn \(result.hn.shape), cn \(result.cn.shape) from LSTM "
                + "\(describeModel(c)) in \(lstm.precision) on \(lstm.backendName)"
                + (chunk.map { ", streamed \($0) step\($0 == 1 ? "" : "s") at a time" } ?? ""))
    }

    /// `x` through a stream, `chunk` steps at a time: each sequence's length split over the chunks.
    func streamed(
        _ lstm: LSTM, _ x: Tensor, h0: Tensor?, c0: Tensor?, lengths: [Int]?, chunk: Int
    ) throws -> (output: Tensor, hn: Tensor, cn: Tensor) {
        let c = lstm.configuration
        let (steps, batch, width) =
            c.batchFirst ? (x.shape[1], x.shape[0], x.shape[2]) : (x.shape[0], x.shape[1], x.shape[2])
        let stream = try lstm.makeStream(batch: batch, h0: h0, c0: c0)
        let sequenceMajor = c.batchFirst ? x.swappingOuterDimensions() : x  // [T, B, I]
        var output: [Float] = []
        for start in stride(from: 0, to: steps, by: chunk) {
            let n = min(chunk, steps - start)
            var piece = try Tensor(
                shape: [n, batch, width],
                scalars: Array(sequenceMajor.scalars[(start * batch * width)..<((start + n) * batch * width)]))
            if c.batchFirst { piece = piece.swappingOuterDimensions() }
            let y = try stream.feed(piece, lengths: lengths.map { $0.map { min(max($0 - start, 0), n) } })
            output += (c.batchFirst ? y.swappingOuterDimensions() : y).scalars
        }
        var result = try Tensor(shape: [steps, batch, c.outputSize], scalars: output)
        if c.batchFirst { result = result.swappingOuterDimensions() }
        return (result, stream.hidden, stream.cell)
    }
}
