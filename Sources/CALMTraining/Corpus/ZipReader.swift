import Foundation

/// A minimal ZIP reader (Python wheels): central directory, stored and deflated entries,
/// CRC-32 checked. No ZIP64, no encryption.
///
/// ```swift
/// let zip = try ZipReader(bytes: Array(try Data(contentsOf: wheelURL)))
/// for name in zip.names where name.hasSuffix(".md") { let text = try zip.read(name) }
/// ```
public struct ZipReader: Sendable {
    struct Entry: Sendable {
        var method: UInt16
        var flags: UInt16
        var crc: UInt32
        var compressedSize: Int
        var size: Int
        var localHeader: Int
    }

    public let bytes: [UInt8]
    /// Entry names in central-directory order.
    public private(set) var names: [String] = []
    private var entries: [String: Entry] = [:]

    /// Parses the central directory of `bytes`.
    public init(bytes: [UInt8]) throws {
        self.bytes = bytes
        let n = bytes.count
        func u16(_ o: Int) -> Int { Int(bytes[o]) | Int(bytes[o + 1]) << 8 }
        func u32(_ o: Int) -> Int { u16(o) | u16(o + 2) << 16 }
        guard n >= 22 else { throw CorpusError.malformed("zip", "too short") }
        var eocd = n - 22
        while eocd >= max(0, n - 22 - 0xFFFF), u32(eocd) != 0x0605_4B50 { eocd -= 1 }
        guard eocd >= 0, u32(eocd) == 0x0605_4B50 else { throw CorpusError.malformed("zip", "no end-of-central-directory record") }
        let count = u16(eocd + 10)
        var p = u32(eocd + 16)
        for _ in 0..<count {
            guard p + 46 <= n, u32(p) == 0x0201_4B50 else { throw CorpusError.malformed("zip", "bad central directory entry") }
            let nameLength = u16(p + 28), extraLength = u16(p + 30), commentLength = u16(p + 32)
            guard p + 46 + nameLength <= n else { throw CorpusError.malformed("zip", "truncated central directory") }
            let name = String(decoding: bytes[p + 46 ..< p + 46 + nameLength], as: UTF8.self)
            let entry = Entry(method: UInt16(u16(p + 10)), flags: UInt16(u16(p + 8)), crc: UInt32(u32(p + 16)),
                              compressedSize: u32(p + 20), size: u32(p + 24), localHeader: u32(p + 42))
            names.append(name)
            entries[name] = entry
            p += 46 + nameLength + extraLength + commentLength
        }
    }

    /// The uncompressed bytes of entry `name`.
    public func read(_ name: String) throws -> [UInt8] {
        guard let e = entries[name] else { throw CorpusError.malformed("zip", "no entry \(name)") }
        guard e.flags & 1 == 0 else { throw CorpusError.malformed("zip", "\(name) is encrypted") }
        let h = e.localHeader
        guard h + 30 <= bytes.count else { throw CorpusError.malformed("zip", "truncated local header") }
        let start = h + 30 + (Int(bytes[h + 26]) | Int(bytes[h + 27]) << 8) + (Int(bytes[h + 28]) | Int(bytes[h + 29]) << 8)
        guard start + e.compressedSize <= bytes.count else { throw CorpusError.malformed("zip", "truncated entry \(name)") }
        let data: [UInt8]
        switch e.method {
        case 0: data = Array(bytes[start ..< start + e.compressedSize])
        case 8: data = try Inflate.raw(Array(bytes[start ..< start + e.compressedSize]), sizeHint: e.size).output
        default: throw CorpusError.malformed("zip", "\(name): compression method \(e.method) unsupported")
        }
        guard data.count == e.size, Checksum.crc32(data) == e.crc else {
            throw CorpusError.malformed("zip", "\(name): size or CRC-32 mismatch")
        }
        return data
    }
}

/// Errors of the corpus tools.
public enum CorpusError: Error, CustomStringConvertible {
    /// A file did not have the expected structure: (format, detail).
    case malformed(String, String)
    /// An external command failed: (command line, status, stderr).
    case commandFailed(String, Int32, String)
    /// A source produced no text.
    case emptySource(String)
    /// Anything else.
    case other(String)

    public var description: String {
        switch self {
        case .malformed(let format, let detail): return "malformed \(format): \(detail)"
        case .commandFailed(let command, let status, let stderr):
            return "command failed (status \(status)): \(command)\n\(stderr)"
        case .emptySource(let name): return "source \(name) produced no text"
        case .other(let message): return message
        }
    }
}
