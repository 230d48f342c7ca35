import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A read-only memory map of a whole file, unmapped when the object is released.
///
/// Tensors read from a checkpoint keep their `MappedFile` alive, so their bytes stay valid for as
/// long as any tensor uses them. The mapping is private and read-only, so the class is safe to
/// share between threads.
///
/// ```swift
/// let file = try MappedFile(url: URL(fileURLWithPath: "model.safetensors"))
/// let magic = file.withUnsafeBytes { Array($0.prefix(8)) }
/// ```
///
/// `@unchecked Sendable`: every stored property is a `let` (`base` points at a `PROT_READ`,
/// `MAP_PRIVATE` mapping this object owns and unmaps in `deinit`), so nothing is ever written after
/// `init` and any number of threads may read the bytes at once.
public final class MappedFile: @unchecked Sendable {
    /// The mapped file.
    public let url: URL
    /// Size of the file in bytes (the length of the mapping).
    public let count: Int
    private let base: UnsafeRawPointer?

    /// Maps `url` read-only.
    ///
    /// - Throws: `CheckpointError.fileNotFound` when nothing exists at `url`,
    ///   `CheckpointError.unreadable` for a directory, missing permission or a failed `mmap`.
    public init(url: URL) throws {
        self.url = url
        let path = url.path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            let code = errno
            if code == ENOENT || code == ENOTDIR { throw CheckpointError.fileNotFound(path: path) }
            throw CheckpointError.unreadable(file: path, reason: String(cString: strerror(code)))
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw CheckpointError.unreadable(file: path, reason: String(cString: strerror(errno)))
        }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            throw CheckpointError.unreadable(file: path, reason: "is a directory")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw CheckpointError.unreadable(file: path, reason: "not a regular file")
        }
        let size = Int(info.st_size)
        count = size
        if size == 0 {
            base = nil
            return
        }
        let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let mapped, mapped != MAP_FAILED else {
            throw CheckpointError.unreadable(file: path, reason: "mmap failed: \(String(cString: strerror(errno)))")
        }
        base = UnsafeRawPointer(mapped)
    }

    deinit {
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), count) }
    }

    /// Calls `body` with the whole mapping (empty for an empty file).
    ///
    /// The pointer is valid only inside `body` unless the caller keeps this object alive.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: base, count: count))
    }

    /// Copies `range` of the file into an array (for small headers).
    public func bytes(_ range: Range<Int>) -> [UInt8] {
        precondition(range.lowerBound >= 0 && range.upperBound <= count, "range outside the mapping")
        return withUnsafeBytes { Array($0[range]) }
    }
}

extension MappedFile: ByteStorage {}
