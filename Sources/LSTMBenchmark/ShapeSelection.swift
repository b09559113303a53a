import LSTMKit

/// The rows `--only` (suite names, comma-separated) and `--shape` (I,H,B,T[,layers[,bi]])
/// select, in that order; the whole suite when neither is given. Unknown names and bad shapes
/// are `SettingError`s naming the option.
extension BenchmarkShape {
    public static func selected(only: String?, shapes texts: [String]) throws -> [BenchmarkShape] {
        var shapes: [BenchmarkShape] = []
        if let only {
            let names = only.split(separator: ",").map(String.init)
            guard !names.isEmpty else { throw SettingError("--only", "--only needs at least one suite row name") }
            for name in names where !BenchmarkShape.suite.contains(where: { $0.name == name }) {
                throw SettingError(
                    "--only",
                    "unknown suite row '\(name)'; known: \(BenchmarkShape.suite.map(\.name).joined(separator: ", "))")
            }
            shapes = BenchmarkShape.suite.filter { names.contains($0.name) }
        }
        for text in texts {
            do { shapes.append(try BenchmarkShape.parse(text)) } catch let error as LSTMError {
                throw SettingError("--shape", "\(error)")
            }
        }
        return only == nil && texts.isEmpty ? BenchmarkShape.suite : shapes
    }
}
