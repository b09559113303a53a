import Foundation
import LSTMCommandLine

/// What `lstm-gpu --version` prints.
///
/// The version is a constant, bumped by hand with each release. SwiftPM has no portable way
/// to stamp the git commit into a binary at build time (a build-tool plugin would run on
/// every build and needs git in the sandbox), so the commit is looked up at run time, and
/// only for `--version`: when the executable lies inside a checkout (`<root>/.build/…` with
/// `<root>/Package.swift` and `<root>/.git`), `git -C <root> describe --always --dirty`
/// names the commit of the source tree, which is the commit it was built from unless the
/// tree changed since the build. An installed or bundled binary prints the version alone.
enum LSTMGPUVersion {
    static let version = "0.2.0"

    static func describe() -> String {
        guard let (root, commit) = checkoutCommit() else { return "lstm-gpu \(version)" }
        return "lstm-gpu \(version) (git \(commit), checkout \(root))"
    }

    /// The checkout the running executable was built in, and its commit.
    static func checkoutCommit() -> (root: String, commit: String)? {
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        let components = executable.pathComponents
        guard let build = components.lastIndex(of: ".build"), build > 0 else { return nil }
        let root = NSString.path(withComponents: Array(components[..<build]))
        let fm = FileManager.default
        guard fm.fileExists(atPath: root + "/Package.swift"), fm.fileExists(atPath: root + "/.git") else { return nil }
        guard
            let git = ["/usr/bin/git", "/usr/local/bin/git", "/opt/homebrew/bin/git"].first(where: {
                fm.isExecutableFile(atPath: $0)
            })
        else { return nil }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: git)
        process.arguments = ["-C", root, "describe", "--always", "--dirty", "--abbrev=12"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return nil }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let commit = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard process.terminationStatus == 0, !commit.isEmpty else { return nil }
        return (root, commit)
    }
}
