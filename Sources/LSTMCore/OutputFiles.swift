import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes `data` to `path` so that readers see either the old file or the whole new one:
/// a temporary file `.NAME.tmp-PID-RANDOM` in the same folder, fsync, rename over `path`,
/// fsync of the folder. On any failure `path` is untouched and the temporary file removed.
/// Temporary files of `path` left by writers that died (their PID no longer runs) are removed
/// first.
/// - Throws: `LSTMError.io` naming `path` and the failing step.
public func writeAtomically(_ data: Data, to path: String) throws {
    let url = URL(fileURLWithPath: path)
    let folder = url.deletingLastPathComponent().path
    removeStaleTemporaries(of: url)
    let temporary = folder + "/." + url.lastPathComponent + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL, 0o644)
    guard fd >= 0 else {
        throw LSTMError.io(path: path, reason: "cannot create \(temporary): \(String(cString: strerror(errno)))")
    }
    var failure: String?
    data.withUnsafeBytes { raw in
        if let message = writeAll(fd, raw) { failure = "write failed: \(message)" }
    }
    if failure == nil, fsync(fd) != 0 { failure = "fsync failed: \(String(cString: strerror(errno)))" }
    close(fd)
    if failure == nil, rename(temporary, path) != 0 { failure = "rename failed: \(String(cString: strerror(errno)))" }
    if let failure {
        unlink(temporary)
        throw LSTMError.io(path: path, reason: failure)
    }
    let dirfd = open(folder, O_RDONLY)
    if dirfd >= 0 { fsync(dirfd); close(dirfd) }
}

/// Writes every byte of `raw` to `fd` (retrying short writes and EINTR); the error text, or nil.
func writeAll(_ fd: Int32, _ raw: UnsafeRawBufferPointer) -> String? {
    var written = 0
    while written < raw.count {
        let n = write(fd, raw.baseAddress! + written, raw.count - written)
        if n < 0 {
            if errno == EINTR { continue }
            return String(cString: strerror(errno))
        }
        written += n
    }
    return nil
}

/// Removes `.NAME.tmp-PID-*` files beside `url` whose writer process no longer exists.
private func removeStaleTemporaries(of url: URL) {
    let folder = url.deletingLastPathComponent().path
    let prefix = "." + url.lastPathComponent + ".tmp-"
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return }
    for name in names where name.hasPrefix(prefix) {
        guard let pid = Int32(name.dropFirst(prefix.count).prefix { $0 != "-" }), pid > 0 else { continue }
        if kill(pid, 0) != 0, errno == ESRCH { unlink(folder + "/" + name) }
    }
}

/// Checks, before any work is done, that a file can be written at `path`: its folder is
/// created when missing, must be a writable folder, and `path` must not be a folder or
/// another non-regular file. `option` names the path in errors (e.g. "--checkpoint").
/// - Throws: `LSTMError.io` saying what is wrong with which path.
public func prepareOutputPath(_ path: String, option: String) throws {
    let url = URL(fileURLWithPath: path)
    let folder = url.deletingLastPathComponent().path
    func refuse(_ reason: String) -> LSTMError { .io(path: path, reason: "\(option): \(reason)") }
    guard !path.isEmpty else { throw LSTMError.io(path: "''", reason: "\(option): needs a file name") }
    guard !path.hasSuffix("/") else { throw refuse("names a folder (it ends with '/'); give a file name") }
    var info = stat()
    if stat(path, &info) == 0 {
        switch info.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFDIR: throw refuse("is a directory, not a file")
        default: throw refuse("is not a regular file")
        }
    }
    if let failure = makeFolders(folder) { throw refuse("cannot create the folder \(folder): \(failure)") }
    // A probe file tells more than access(2) (read-only mounts, quotas, root on a read-only folder).
    let probe = folder + "/." + url.lastPathComponent + ".probe-\(getpid())"
    let fd = open(probe, O_WRONLY | O_CREAT | O_EXCL, 0o600)
    guard fd >= 0 else { throw refuse("cannot write in \(folder): \(String(cString: strerror(errno)))") }
    close(fd)
    unlink(probe)
}

/// Creates `folder` and the folders above it that are missing (mkdir -p); the system's
/// reason (strerror) when one cannot be made, else nil.
func makeFolders(_ folder: String) -> String? {
    var path = folder.hasPrefix("/") ? "" : "."
    for part in folder.split(separator: "/") {
        path += "/" + part
        var info = stat()
        if stat(path, &info) == 0 {
            if info.st_mode & S_IFMT != S_IFDIR { return "\(path) is not a folder" }
            continue
        }
        if mkdir(path, 0o755) != 0, errno != EEXIST { return "\(path): \(String(cString: strerror(errno)))" }
    }
    return nil
}

/// Refuses, before any work is done, an output that is also an input or another output (the
/// data overwritten by a checkpoint, a model destroyed by a log): paths are compared resolved
/// (symbolic links and `..` followed, the missing part appended), and existing files also by
/// identity (device and inode, so a hard link is caught too).
/// - Parameters: `inputs` and `outputs` as (option, path), e.g. ("--data", "x.csv").
/// - Throws: `LSTMError.io` naming both options.
public func requireDistinctPaths(
    inputs: [(option: String, path: String)], outputs: [(option: String, path: String)]
)
    throws
{
    func resolved(_ path: String, hops: Int = 0) -> String {
        // A symbolic link is followed even when what it names does not exist yet (a write
        // through it would create that file).
        let link = URL(fileURLWithPath: path).standardizedFileURL
        var linkInfo = stat()
        if hops < 40, lstat(link.path, &linkInfo) == 0, linkInfo.st_mode & S_IFMT == S_IFLNK,
            let target = try? FileManager.default.destinationOfSymbolicLink(atPath: link.path)
        {
            return resolved(
                target.hasPrefix("/") ? target : link.deletingLastPathComponent().path + "/" + target, hops: hops + 1)
        }
        var url = link
        var missing: [String] = []
        while !FileManager.default.fileExists(atPath: url.path), url.path != "/" {
            missing.insert(url.lastPathComponent, at: 0)
            url.deleteLastPathComponent()
        }
        var base = url.resolvingSymlinksInPath().path
        for part in missing { base = (base == "/" ? "" : base) + "/" + part }
        return base
    }
    func identity(_ path: String) -> String? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return "\(info.st_dev):\(info.st_ino)"
    }
    let all = inputs.map { ($0, false) } + outputs.map { ($0, true) }
    for (i, (a, aIsOutput)) in all.enumerated() {
        for (b, bIsOutput) in all[(i + 1)...] where aIsOutput || bIsOutput {
            let same =
                resolved(a.path) == resolved(b.path)
                || (identity(a.path) != nil && identity(a.path) == identity(b.path))
            guard same else { continue }
            let what = aIsOutput && bIsOutput ? "both outputs" : "an output would overwrite an input"
            throw LSTMError.io(
                path: b.path, reason: "\(a.option) and \(b.option) name the same file (\(what)): give another path")
        }
    }
}

/// An advisory lock held on a file for the life of this object (flock on a hidden
/// `.NAME.lock` beside it, holding the owner's PID), so two runs cannot write one checkpoint.
public final class FileLock {
    private let fd: Int32

    /// Takes the lock for `path` or throws `LSTMError.io` "`what` PATH is in use by process N".
    public init(for path: String, what: String = "file") throws {
        let url = URL(fileURLWithPath: path)
        let lockPath = url.deletingLastPathComponent().path + "/." + url.lastPathComponent + ".lock"
        fd = open(lockPath, O_RDWR | O_CREAT, 0o644)
        guard fd >= 0 else {
            throw LSTMError.io(
                path: path, reason: "cannot create the lock file \(lockPath): \(String(cString: strerror(errno)))")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            var buffer = [UInt8](repeating: 0, count: 32)
            let n = pread(fd, &buffer, buffer.count, 0)
            close(fd)
            let owner =
                n > 0
                ? String(decoding: buffer.prefix(n), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                : "?"
            throw LSTMError.inUse("\(what) \(path) is in use by process \(owner) (lock file \(lockPath))")
        }
        ftruncate(fd, 0)
        let pid = Array("\(getpid())\n".utf8)
        _ = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
    }

    deinit {
        flock(fd, LOCK_UN)
        close(fd)
    }
}
