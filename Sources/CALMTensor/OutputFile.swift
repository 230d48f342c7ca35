import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

#if canImport(Glibc)
private func posixWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int { Glibc.write(fd, p, n) }
#else
private func posixWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int { Darwin.write(fd, p, n) }
#endif

/// A file written through a temporary sibling that replaces the destination on `commit()`
/// (internal: used by the writers so that a failed write never leaves a partial file behind).
final class OutputFile {
    let destination: URL
    let temporaryPath: String
    private var fd: Int32

    init(destination: URL) throws {
        self.destination = destination
        let directory = destination.deletingLastPathComponent().path
        temporaryPath = directory + "/." + destination.lastPathComponent + ".tmp-" + UUID().uuidString
        fd = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw CheckpointError.writeFailed(file: destination.path, reason: String(cString: strerror(errno)))
        }
    }

    deinit { abandon() }

    func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    /// Writes all of `bytes`, retrying short writes and EINTR.
    func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard var pointer = bytes.baseAddress else { return }
        var remaining = bytes.count
        while remaining > 0 {
            let n = posixWrite(fd, pointer, min(remaining, 1 << 30))
            if n < 0 {
                if errno == EINTR { continue }
                throw CheckpointError.writeFailed(file: destination.path, reason: String(cString: strerror(errno)))
            }
            pointer += n
            remaining -= n
        }
    }

    /// Closes the temporary file and renames it over the destination.
    func commit() throws {
        guard fd >= 0 else { return }
        let result = close(fd)
        fd = -1
        guard result == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporaryPath)
            throw CheckpointError.writeFailed(file: destination.path, reason: reason)
        }
        guard rename(temporaryPath, destination.path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporaryPath)
            throw CheckpointError.writeFailed(file: destination.path, reason: reason)
        }
    }

    /// Closes and deletes the temporary file (no-op after `commit()`).
    func abandon() {
        guard fd >= 0 else { return }
        close(fd)
        fd = -1
        unlink(temporaryPath)
    }
}
