import Foundation

/// An immutable block of bytes that tensors point into (a mapped file or an in-memory buffer).
///
/// Conforming types must never change their bytes and must keep the pointer passed to
/// `withUnsafeBytes` stable for their whole lifetime, so that tensors can be read from any thread.
public protocol ByteStorage: AnyObject, Sendable {
    /// Calls `body` with all the bytes.
    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R
}

/// In-memory bytes with a stable address (used for tensors built in memory, e.g. in tests).
///
/// `@unchecked Sendable`: after `init` nothing is written: the bytes live in memory this object
/// allocated, filled once inside `init` before the object is published, and then only read through
/// `withUnsafeBytes`; `count` is a `let`.
public final class MemoryStorage: ByteStorage, @unchecked Sendable {
    private let pointer: UnsafeMutableRawPointer
    /// Number of bytes.
    public let count: Int

    /// Copies `bytes` into a new 64-byte-aligned buffer.
    public init<Bytes: Collection>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        count = bytes.count
        pointer = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 64)
        let buffer = UnsafeMutableRawBufferPointer(start: pointer, count: count)
        buffer.copyBytes(from: bytes)
    }

    /// Allocates `count` bytes and lets `fill` write them once (the storage is immutable afterwards).
    public init(count: Int, fill: (UnsafeMutableRawBufferPointer) throws -> Void) rethrows {
        self.count = count
        pointer = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 64)
        do {
            try fill(UnsafeMutableRawBufferPointer(start: pointer, count: count))
        } catch {
            pointer.deallocate()
            throw error
        }
    }

    deinit { pointer.deallocate() }

    /// Calls `body` with all the bytes (stable address, 64-byte aligned).
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: pointer, count: count))
    }
}
