import Foundation

/// A minimal read-only ZIP directory over a mapped file (internal; what `torch.save` archives need).
///
/// Reads the end-of-central-directory record (and the ZIP64 record and extra fields, so archives
/// above 4 GiB work), the central directory and each entry's local header. Only stored
/// (uncompressed) entries can be read: each is a byte range of the mapping. Compressed or
/// encrypted entries are listed but reported as `unsupportedFormat` when opened.
struct ZipArchive {
    struct Entry {
        var name: String
        /// Offset of the entry's data in the file (after its local header).
        var dataOffset: Int
        /// Stored size in bytes.
        var size: Int
        /// 0 = stored, 8 = deflate, ...
        var method: UInt16
        var encrypted: Bool
    }

    let file: String
    /// Entries in central-directory order.
    private(set) var names: [String] = []
    private var entries: [String: Entry] = [:]

    static let endSignature: UInt32 = 0x0605_4B50
    static let zip64LocatorSignature: UInt32 = 0x0706_4B50
    static let zip64EndSignature: UInt32 = 0x0606_4B50
    static let centralSignature: UInt32 = 0x0201_4B50
    static let localSignature: UInt32 = 0x0403_4B50

    init(_ mapped: MappedFile, file: String) throws {
        self.file = file
        try mapped.withUnsafeBytes { raw in try parse(raw) }
    }

    func entry(_ name: String) -> Entry? { entries[name] }

    /// The data range of a stored entry.
    ///
    /// - Throws: `unsupportedFormat` for compressed or encrypted entries.
    func storedRange(_ entry: Entry) throws -> Range<Int> {
        guard !entry.encrypted else {
            throw CheckpointError.unsupportedFormat(file: file, detail: "zip entry '\(entry.name)' is encrypted")
        }
        guard entry.method == 0 else {
            let method = entry.method == 8 ? "deflate" : "method \(entry.method)"
            throw CheckpointError.unsupportedFormat(
                file: file,
                detail: "zip entry '\(entry.name)' is compressed (\(method)); only stored (uncompressed) entries are supported, as torch.save writes them")
        }
        return entry.dataOffset ..< entry.dataOffset + entry.size
    }

    private func truncated(_ detail: String) -> CheckpointError { .truncated(file: file, detail: detail) }
    private func malformed(_ detail: String) -> CheckpointError { .malformedHeader(file: file, detail: detail) }

    private mutating func parse(_ raw: UnsafeRawBufferPointer) throws {
        let size = raw.count
        func u16(_ o: Int) -> UInt16 { UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: o, as: UInt16.self)) }
        func u32(_ o: Int) -> UInt32 { UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: o, as: UInt32.self)) }
        func u64(_ o: Int) -> UInt64 { UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: o, as: UInt64.self)) }
        func int(_ v: UInt64, _ what: String) throws -> Int {
            guard v <= UInt64(Int.max / 2) else { throw malformed("zip \(what) \(v) is out of range") }
            return Int(v)
        }

        guard size >= 22 else { throw truncated("\(size) bytes, too short for a zip archive") }
        // End of central directory: the last signature whose comment ends exactly at the end of file.
        var eocd = -1
        var candidate = size - 22
        let lowest = max(0, size - 22 - 0xFFFF)
        while candidate >= lowest {
            if u32(candidate) == ZipArchive.endSignature && candidate + 22 + Int(u16(candidate + 20)) == size {
                eocd = candidate
                break
            }
            candidate -= 1
        }
        guard eocd >= 0 else {
            throw truncated("no zip end-of-central-directory record in the last \(size - lowest) bytes (archive cut short?)")
        }

        var entryCount = Int(u16(eocd + 10))
        var directorySize = Int(u32(eocd + 12))
        var directoryOffset = Int(u32(eocd + 16))
        var directoryEnd = eocd
        guard u16(eocd + 4) == 0, u16(eocd + 6) == 0 else {
            throw CheckpointError.unsupportedFormat(file: file, detail: "multi-disk zip archives are not supported")
        }
        // ZIP64: a locator right before the end record points at the ZIP64 end record.
        if eocd >= 20 && u32(eocd - 20) == ZipArchive.zip64LocatorSignature {
            let recordOffset = try int(u64(eocd - 20 + 8), "ZIP64 end record offset")
            guard recordOffset + 56 <= eocd - 20 else {
                throw malformed("ZIP64 end record offset \(recordOffset) lies outside the archive")
            }
            guard u32(recordOffset) == ZipArchive.zip64EndSignature else {
                throw malformed("no ZIP64 end record at offset \(recordOffset)")
            }
            entryCount = try int(u64(recordOffset + 32), "entry count")
            directorySize = try int(u64(recordOffset + 40), "central directory size")
            directoryOffset = try int(u64(recordOffset + 48), "central directory offset")
            directoryEnd = recordOffset
        }
        guard directoryOffset <= directoryEnd, directorySize <= directoryEnd - directoryOffset else {
            throw truncated("central directory [\(directoryOffset), +\(directorySize)) runs past its end record at offset \(directoryEnd)")
        }
        guard entryCount <= directorySize / 46 else {
            throw malformed("\(entryCount) entries cannot fit in a \(directorySize)-byte central directory")
        }

        var position = directoryOffset
        let end = directoryOffset + directorySize
        for index in 0..<entryCount {
            guard position + 46 <= end, u32(position) == ZipArchive.centralSignature else {
                throw malformed("central directory entry \(index) at offset \(position) is invalid")
            }
            let flags = u16(position + 8)
            let method = u16(position + 10)
            var compressedSize = UInt64(u32(position + 20))
            var uncompressedSize = UInt64(u32(position + 24))
            let nameLength = Int(u16(position + 28))
            let extraLength = Int(u16(position + 30))
            let commentLength = Int(u16(position + 32))
            var localOffset = UInt64(u32(position + 42))
            let recordEnd = position + 46 + nameLength + extraLength + commentLength
            guard recordEnd <= end else {
                throw malformed("central directory entry \(index) at offset \(position) runs past the directory")
            }
            let name = String(decoding: raw[position + 46 ..< position + 46 + nameLength], as: UTF8.self)

            // ZIP64 extended information: 64-bit values for the fields saturated at 0xFFFFFFFF, in order.
            var extra = position + 46 + nameLength
            let extraEnd = extra + extraLength
            while extra + 4 <= extraEnd {
                let id = u16(extra)
                let length = Int(u16(extra + 2))
                guard extra + 4 + length <= extraEnd else {
                    throw malformed("zip entry '\(name)': extra field runs past its record")
                }
                if id == 0x0001 {
                    var field = extra + 4
                    let fieldEnd = field + length
                    func next() throws -> UInt64 {
                        guard field + 8 <= fieldEnd else { throw malformed("zip entry '\(name)': ZIP64 extra field too short") }
                        defer { field += 8 }
                        return u64(field)
                    }
                    if uncompressedSize == 0xFFFF_FFFF { uncompressedSize = try next() }
                    if compressedSize == 0xFFFF_FFFF { compressedSize = try next() }
                    if localOffset == 0xFFFF_FFFF { localOffset = try next() }
                }
                extra += 4 + length
            }

            let offset = try int(localOffset, "local header offset")
            let stored = try int(compressedSize, "entry size")
            guard offset + 30 <= directoryOffset, u32(offset) == ZipArchive.localSignature else {
                throw malformed("zip entry '\(name)': no local header at offset \(offset)")
            }
            let dataOffset = offset + 30 + Int(u16(offset + 26)) + Int(u16(offset + 28))
            guard dataOffset <= directoryOffset, stored <= directoryOffset - dataOffset else {
                throw truncated("zip entry '\(name)' data [\(dataOffset), +\(stored)) runs past the data area (\(directoryOffset) bytes)")
            }
            if method == 0 && compressedSize != uncompressedSize {
                throw malformed("stored zip entry '\(name)' has sizes \(compressedSize) and \(uncompressedSize)")
            }
            guard entries[name] == nil else { throw malformed("duplicate zip entry '\(name)'") }
            entries[name] = Entry(name: name, dataOffset: dataOffset, size: stored, method: method, encrypted: flags & 1 != 0)
            names.append(name)
            position = recordEnd
        }
    }
}
