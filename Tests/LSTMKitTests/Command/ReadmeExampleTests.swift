import Foundation
import XCTest

/// The README's library example, compiled and run verbatim as a user's program: the first
/// ```swift block of the section "The library in a few lines" is extracted from README.md
/// at test time, compiled with swiftc against the LSTMKit module and objects that
/// `swift build` already made (no package resolution, no network), and run in a scratch
/// folder. Any edit to the README that breaks the example fails this test.
final class ReadmeExampleTests: XCTestCase {
    let root = packageRoot

    /// The first ```swift block after the heading `section`.
    func readmeSnippet(section: String, file: String = "README.md") throws -> String {
        let readme = try String(contentsOf: root.appendingPathComponent(file), encoding: .utf8)
        guard let heading = readme.range(of: "\n## \(section)\n") else {
            XCTFail("\(file) has no section '\(section)': the library example is missing")
            return ""
        }
        let rest = readme[heading.upperBound...]
        guard let open = rest.range(of: "```swift\n"), let close = rest[open.upperBound...].range(of: "\n```") else {
            XCTFail("no ```swift block in README section '\(section)'")
            return ""
        }
        return String(rest[open.upperBound..<close.lowerBound]) + "\n"
    }

    /// docs/library.md opens with the same example: the copy must stay the one that is compiled.
    func testTheLibraryPageShowsTheCompiledExample() throws {
        let section = "The library in a few lines"
        XCTAssertEqual(
            try readmeSnippet(section: section, file: "docs/library.md"), try readmeSnippet(section: section),
            "docs/library.md's example differs from README.md's, which ReadmeExampleTests compiles")
    }

    func testTheReadmeExampleCompilesAndRuns() throws {
        let snippet = try readmeSnippet(section: "The library in a few lines")
        XCTAssertTrue(snippet.contains("import LSTMKit"), snippet)

        let folder = try temporaryFolder()
        let compile = try compileAgainstLSTMKit(snippet, in: folder, executable: "readme-example")
        XCTAssertEqual(
            compile.status, 0, "the README example does not compile:\n\(compile.output)\n--- snippet ---\n\(snippet)")
        guard compile.status == 0 else { return }
        let fm = FileManager.default

        let run = try runProcess(folder + "/readme-example", [], directory: folder)
        XCTAssertEqual(run.status, 0, run.output)
        let lines = run.output.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines, ["true", "[10, 4, 128] [4, 4, 64] [4, 4, 64]", "[10, 4, 32] [256, 32]"], run.output)
        for file in ["lstm.safetensors", "model.safetensors"] {
            XCTAssertTrue(fm.fileExists(atPath: folder + "/" + file), "the example did not write \(file)")
        }
    }

    /// The Swift library targets behind `import LSTMKit` (the umbrella and what it re-exports).
    let libraryTargets = ["LSTMKit", "LSTMCore", "LSTMReference", "LSTMCPU", "LSTMOpenCL", "LSTMData", "LSTMNN"]

    /// Compiles `source` as a program's main.swift in `folder`, the way a client of the
    /// package is compiled: only LSTMKit's public (and, when imported so, SPI) interface.
    func compileAgainstLSTMKit(
        _ source: String, in folder: String, executable: String
    ) throws -> (status: Int32, output: String) {
        // The build folder the test bundle lives in (.build/<triple>/debug), with LSTMKit built.
        let build = lstmGPUExecutable.deletingLastPathComponent()
        let modules = build.appendingPathComponent("Modules")
        let fm = FileManager.default
        for target in libraryTargets
        where !fm.fileExists(atPath: modules.appendingPathComponent(target + ".swiftmodule").path) {
            XCTFail("\(target).swiftmodule not found under \(modules.path): build the package first")
            return (1, "")
        }
        let swiftc =
            ["/opt/swift/usr/bin/swiftc", "/usr/bin/swiftc"].first { fm.isExecutableFile(atPath: $0) }
            ?? ProcessInfo.processInfo.environment["PATH"].flatMap { path in
                path.split(separator: ":").map { "\($0)/swiftc" }.first { fm.isExecutableFile(atPath: $0) }
            }
        guard let swiftc else { throw XCTSkip("swiftc not found") }
        let main = folder + "/main.swift"
        try source.write(toFile: main, atomically: true, encoding: .utf8)
        let sources = root.appendingPathComponent("Sources").path
        // LSTMKit's object files and its C targets', as SwiftPM links them into an executable:
        // only those of sources that exist now (a build folder keeps objects of deleted files).
        func objects(_ target: String) throws -> [String] {
            let dir = build.appendingPathComponent(target + ".build")
            let map = dir.appendingPathComponent("output-file-map.json")
            if let data = fm.contents(atPath: map.path),
                let entries = try JSONSerialization.jsonObject(with: data) as? [String: [String: String]]
            {
                return entries.filter { fm.fileExists(atPath: $0.key) }.compactMap { $0.value["object"] }.sorted()
            }
            return try fm.contentsOfDirectory(atPath: dir.path).filter { name in
                name.hasSuffix(".c.o") && fm.fileExists(atPath: sources + "/" + target + "/" + name.dropLast(2))
            }.sorted().map { dir.path + "/" + $0 }
        }
        var arguments = [
            main, "-o", folder + "/" + executable, "-module-name", "Client", "-swift-version", "6",
            "-I", modules.path, "-module-cache-path", folder + "/module-cache",
            "-Xcc", "-fmodule-map-file=\(build.path)/CLSTMKernels.build/module.modulemap",
            "-Xcc", "-I", "-Xcc", sources + "/CLSTMKernels/include",
            "-Xcc", "-fmodule-map-file=\(build.path)/CBLASLoader.build/module.modulemap",
            "-Xcc", "-I", "-Xcc", sources + "/CBLASLoader/include",
            "-Xcc", "-fmodule-map-file=\(sources)/COpenCL/module.modulemap",
            "-lm",
        ]
        // The system libraries' link flags, as the package's pkgConfig entries give them.
        let pkgConfig = ["/usr/bin/pkg-config", "/usr/local/bin/pkg-config"].first { fm.isExecutableFile(atPath: $0) }
        // (OpenBLAS is not linked: LSTMKit loads it at run time.)
        if let pkgConfig, case let flags = try runProcess(pkgConfig, ["--libs", "OpenCL"]), flags.status == 0 {
            arguments += flags.output.split(whereSeparator: \.isWhitespace).map(String.init)
        } else {
            arguments += ["-lOpenCL"]
        }
        arguments += ["-ldl"]
        for target in libraryTargets + ["CLSTMKernels", "CBLASLoader"] { arguments += try objects(target) }
        return try runProcess(swiftc, arguments)
    }

    /// The backend contract's per-direction job types and the raw products are not part of
    /// the public API: a client (a third-party backend) sees them only through
    /// `@_spi(Backend) import LSTMCore`, the target that declares the contract.
    func testBackendInternalsNeedTheSPIImport() throws {
        let use = """
            func width(_ shape: DirectionShape) -> Int { shape.hiddenSize }
            print(MemoryLayout<DirectionForward<CPUBackend>>.size > 0)
            """
        let plain = try compileAgainstLSTMKit("import LSTMKit\n" + use, in: try temporaryFolder(), executable: "plain")
        XCTAssertNotEqual(plain.status, 0, "DirectionShape is public without the SPI import")
        XCTAssertTrue(plain.output.contains("DirectionShape"), plain.output)
        let spi = try compileAgainstLSTMKit(
            "@_spi(Backend) import LSTMCore\nimport LSTMKit\n" + use, in: try temporaryFolder(), executable: "spi")
        XCTAssertEqual(spi.status, 0, spi.output)
    }
}
