import Foundation
@_spi(Backend) import LSTMCore

/// The autotuner's choices on disk, beside the program binaries (`ProgramBinaryCache.folder`;
/// `LSTM_GPU_KERNEL_CACHE=off` disables both): one JSON file per device, driver, build
/// options and kernel sources (a 128-bit hash of them names it, so a new driver or changed
/// kernels tune afresh), holding the step variant chosen per layer shape (H, Hout, B) and the
/// GEMM kernel. A later process on the same device uses them without timing. Written
/// atomically after each tuning; a file that cannot be read or decoded (a folder, a FIFO, one
/// over 16 MiB), or whose entries are not valid, is ignored with a warning on standard error
/// (and replaced by the next tuning).
struct OpenCLTuningStore {
    /// The file (nil: no cache folder).
    let file: String?

    /// The file's contents.
    struct Contents: Codable, Equatable {
        var format = OpenCLTuningStore.format
        var steps: [OpenCLTuning] = []
        var gemm: OpenCLGEMMTuning?
    }
    static let format = "lstm-gpu-tuning/1"
    /// A tuning file is a few kB; anything past this is not one.
    static let maximumBytes = 16 << 20

    init(file: String?) { self.file = file }

    /// The store of `device` for programs built with `options` from `sources`.
    init(device: OpenCLDeviceInfo, options: String, sources: [String]) {
        let identity = (ProgramBinaryCache.identity(device) + [options] + sources).joined(separator: "\u{1}")
        file = ProgramBinaryCache.folder.map { $0 + "/tuning-" + ProgramBinaryCache.hash(identity) + ".json" }
    }

    /// What the file holds; empty when there is none; empty with a warning when it is unusable.
    func load() -> Contents {
        guard let file, FileManager.default.fileExists(atPath: file) else { return Contents() }
        do {
            let data = try readRegularFile(file, maximumBytes: Self.maximumBytes)
            let contents = try JSONDecoder().decode(Contents.self, from: data)
            guard contents.format == Self.format else {
                throw LSTMError.invalidArgument("format '\(contents.format)', not '\(Self.format)'")
            }
            for tuning in contents.steps {
                let s = tuning.shape
                guard s.hiddenSize > 0, s.outputSize > 0, s.outputSize <= s.hiddenSize, s.batch > 0 else {
                    throw LSTMError.invalidArgument("an entry for an impossible shape \(s)")
                }
            }
            return contents
        } catch {
            // An I/O error names the file itself; the others are about its contents.
            let reason: String
            if case .io? = error as? LSTMError {
                reason = error.localizedDescription
            } else {
                reason = "\(file): " + ((error as? LSTMError)?.localizedDescription ?? "\(error)")
            }
            FileHandle.standardError.write(
                Data("warning: ignoring the OpenCL tuning cache \(terminalSafe(reason))\n".utf8))
            return Contents()
        }
    }

    /// Writes `contents` (atomically). A failure only costs a later process a tuning, so
    /// callers other than `lstm-gpu tune` may ignore it.
    func store(_ contents: Contents) throws {
        guard let file else { return }
        let data = try JSONEncoder().encode(contents)
        try FileManager.default.createDirectory(
            atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try writeAtomically(data, to: file)
    }
}
