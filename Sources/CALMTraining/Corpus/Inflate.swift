import Foundation

/// Errors of the DEFLATE / zlib / gzip decoder.
public enum InflateError: Error, Equatable, CustomStringConvertible {
    /// The input ended inside a block or header.
    case truncated
    /// Block type 3 (reserved).
    case invalidBlockType
    /// A stored block whose LEN and NLEN do not match.
    case invalidStoredLength
    /// An invalid Huffman code description or an undecodable code.
    case invalidCode(String)
    /// A back-reference further back than the output so far.
    case distanceTooFar
    /// A malformed zlib or gzip header.
    case badHeader(String)
    /// Adler-32 (zlib) or CRC-32 / size (gzip) mismatch.
    case checksumMismatch(String)

    public var description: String {
        switch self {
        case .truncated: return "compressed data is truncated"
        case .invalidBlockType: return "invalid DEFLATE block type 3"
        case .invalidStoredLength: return "stored block LEN/NLEN mismatch"
        case .invalidCode(let d): return "invalid Huffman code: \(d)"
        case .distanceTooFar: return "back-reference distance beyond the start of the output"
        case .badHeader(let d): return "bad header: \(d)"
        case .checksumMismatch(let d): return "checksum mismatch: \(d)"
        }
    }
}

/// A small raw DEFLATE (RFC 1951), zlib (RFC 1950) and gzip (RFC 1952) decoder: stored, fixed
/// and dynamic Huffman blocks. Foundation on Linux exposes no zlib, so the corpus tools carry
/// their own.
///
/// ```swift
/// let text = try Inflate.zlib(compressedBytes)      // 78 9C … with Adler-32 check
/// let file = try Inflate.gzip(gzipFileBytes)        // one or more members, CRC-32 checked
/// let (raw, used) = try Inflate.raw(deflateBytes)    // raw stream, bytes consumed
/// ```
public enum Inflate {
    /// Decodes a raw DEFLATE stream; returns the output and the number of input bytes used
    /// (rounded up to a whole byte after the final block).
    public static func raw(_ input: [UInt8], from start: Int = 0, sizeHint: Int = 0) throws
        -> (output: [UInt8], consumed: Int)
    {
        try input.withUnsafeBufferPointer { buffer in
            var decoder = Decoder(input: buffer, position: start)
            decoder.output.reserveCapacity(max(sizeHint, (buffer.count - start) * 3))
            try decoder.run()
            return (decoder.output, decoder.bytePosition - start)
        }
    }

    /// Decodes a zlib stream (2-byte header, DEFLATE data, big-endian Adler-32), checking the
    /// header and the checksum.
    public static func zlib(_ input: [UInt8], sizeHint: Int = 0) throws -> [UInt8] {
        guard input.count >= 6 else { throw InflateError.truncated }
        let cmf = input[0], flg = input[1]
        guard cmf & 0x0F == 8 else { throw InflateError.badHeader("zlib compression method \(cmf & 0x0F) is not deflate") }
        guard cmf >> 4 <= 7 else { throw InflateError.badHeader("zlib window size too large") }
        guard (UInt16(cmf) << 8 | UInt16(flg)) % 31 == 0 else { throw InflateError.badHeader("zlib header check bits") }
        guard flg & 0x20 == 0 else { throw InflateError.badHeader("zlib preset dictionary is not supported") }
        let (output, used) = try raw(input, from: 2, sizeHint: sizeHint)
        let end = 2 + used
        guard end + 4 <= input.count else { throw InflateError.truncated }
        let stored = UInt32(input[end]) << 24 | UInt32(input[end + 1]) << 16 | UInt32(input[end + 2]) << 8 | UInt32(input[end + 3])
        let actual = Checksum.adler32(output)
        guard stored == actual else {
            throw InflateError.checksumMismatch("Adler-32 \(String(actual, radix: 16)) ≠ stored \(String(stored, radix: 16))")
        }
        return output
    }

    /// Decodes a gzip file: every member in turn (dictzip `.dz` files are gzip too), checking
    /// CRC-32 and length of each.
    public static func gzip(_ input: [UInt8]) throws -> [UInt8] {
        var output: [UInt8] = []
        var position = 0
        repeat {
            guard input.count - position >= 18 else { throw InflateError.truncated }
            guard input[position] == 0x1F, input[position + 1] == 0x8B else { throw InflateError.badHeader("not gzip (no 1F 8B magic)") }
            guard input[position + 2] == 8 else { throw InflateError.badHeader("gzip method \(input[position + 2]) is not deflate") }
            let flags = input[position + 3]
            var p = position + 10
            if flags & 0x04 != 0 {  // FEXTRA
                guard p + 2 <= input.count else { throw InflateError.truncated }
                p += 2 + Int(input[p]) | Int(input[p + 1]) << 8
            }
            for bit in [UInt8(0x08), 0x10] where flags & bit != 0 {  // FNAME, FCOMMENT: zero-terminated
                while p < input.count, input[p] != 0 { p += 1 }
                p += 1
            }
            if flags & 0x02 != 0 { p += 2 }  // FHCRC
            guard p < input.count else { throw InflateError.truncated }
            let (member, used) = try raw(input, from: p)
            let end = p + used
            guard end + 8 <= input.count else { throw InflateError.truncated }
            func le32(_ o: Int) -> UInt32 {
                UInt32(input[o]) | UInt32(input[o + 1]) << 8 | UInt32(input[o + 2]) << 16 | UInt32(input[o + 3]) << 24
            }
            guard le32(end) == Checksum.crc32(member) else { throw InflateError.checksumMismatch("gzip CRC-32") }
            guard le32(end + 4) == UInt32(truncatingIfNeeded: member.count) else { throw InflateError.checksumMismatch("gzip ISIZE") }
            output.append(contentsOf: member)
            position = end + 8
            // Trailing zero padding after the last member is tolerated.
            while position < input.count, input[position] == 0 { position += 1 }
        } while position < input.count
        return output
    }

    // MARK: - Decoder

    /// A canonical Huffman code as a single lookup table indexed by the next `bits` input bits
    /// (LSB first): entry = symbol << 4 | code length (0 = invalid).
    struct Huffman {
        var table: [UInt32]
        var bits: Int

        init(lengths: ArraySlice<UInt8>) throws {
            var maxLength = 0
            var counts = [Int](repeating: 0, count: 16)
            for l in lengths {
                counts[Int(l)] += 1
                maxLength = max(maxLength, Int(l))
            }
            counts[0] = 0
            // Over-subscription check (incomplete codes are allowed, as zlib allows for one-code trees).
            var left = 1
            for len in 1...15 {
                left <<= 1
                left -= counts[len]
                guard left >= 0 else { throw InflateError.invalidCode("over-subscribed code lengths") }
            }
            bits = max(maxLength, 1)
            table = [UInt32](repeating: 0, count: 1 << bits)
            var next = [Int](repeating: 0, count: 16)
            var code = 0
            for len in 1...15 {
                code = (code + counts[len - 1]) << 1
                next[len] = code
            }
            for (index, l) in lengths.enumerated() where l > 0 {
                let len = Int(l)
                let c = next[len]
                next[len] += 1
                var reversed = 0
                for i in 0..<len where c & (1 << i) != 0 { reversed |= 1 << (len - 1 - i) }
                let entry = UInt32(index) << 4 | UInt32(len)
                var slot = reversed
                while slot < table.count {
                    table[slot] = entry
                    slot += 1 << len
                }
            }
        }
    }

    static let lengthBase: [Int] = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258]
    static let lengthExtra: [Int] = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0]
    static let distanceBase: [Int] = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577]
    static let distanceExtra: [Int] = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13]
    static let codeLengthOrder: [Int] = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]

    static let fixedCodes: (literal: Huffman, distance: Huffman) = {
        var lengths = [UInt8](repeating: 8, count: 288)
        for i in 144..<256 { lengths[i] = 9 }
        for i in 256..<280 { lengths[i] = 7 }
        let distances = [UInt8](repeating: 5, count: 30)
        return (try! Huffman(lengths: lengths[...]), try! Huffman(lengths: distances[...]))
    }()

    struct Decoder {
        let input: UnsafeBufferPointer<UInt8>
        var position: Int
        var bitBuffer: UInt64 = 0
        var bitCount = 0
        /// Bits consumed past the end of the input (zero padding); > 0 at the end means truncation.
        var overrun = 0
        var output: [UInt8] = []

        init(input: UnsafeBufferPointer<UInt8>, position: Int) {
            self.input = input
            self.position = position
        }

        /// Byte position after the last consumed bit.
        var bytePosition: Int { position - bitCount / 8 }

        @inline(__always)
        mutating func refill() {
            while bitCount <= 56 {
                if position < input.count {
                    bitBuffer |= UInt64(input[position]) << UInt64(bitCount)
                } else {
                    overrun += 1
                }
                position += 1
                bitCount += 8
            }
        }

        @inline(__always)
        mutating func bits(_ n: Int) throws -> Int {
            if n == 0 { return 0 }
            if bitCount < n { refill() }
            let v = Int(bitBuffer & ((1 << UInt64(n)) - 1))
            bitBuffer >>= UInt64(n)
            bitCount -= n
            try checkOverrun()
            return v
        }

        @inline(__always)
        func checkOverrun() throws {
            // Bytes read past the end that are still needed, i.e. not just sitting in the buffer.
            if overrun > 0, position - input.count > bitCount / 8 { throw InflateError.truncated }
        }

        @inline(__always)
        mutating func decode(_ h: borrowing Huffman) throws -> Int {
            if bitCount < h.bits { refill() }
            let entry = h.table[Int(bitBuffer & ((1 << UInt64(h.bits)) - 1))]
            let length = Int(entry & 15)
            guard length > 0 else { throw InflateError.invalidCode("undecodable bit pattern") }
            bitBuffer >>= UInt64(length)
            bitCount -= length
            try checkOverrun()
            return Int(entry >> 4)
        }

        mutating func run() throws {
            var last = false
            while !last {
                last = try bits(1) == 1
                switch try bits(2) {
                case 0: try stored()
                case 1: try huffmanBlock(Inflate.fixedCodes.literal, Inflate.fixedCodes.distance)
                case 2:
                    let (literal, distance) = try dynamicCodes()
                    try huffmanBlock(literal, distance)
                default: throw InflateError.invalidBlockType
                }
            }
            // Give back whole unused bytes sitting in the bit buffer.
            let drop = bitCount % 8
            bitBuffer >>= UInt64(drop)
            bitCount -= drop
        }

        mutating func stored() throws {
            let drop = bitCount % 8
            bitBuffer >>= UInt64(drop)
            bitCount -= drop
            let length = try bits(16)
            let complement = try bits(16)
            guard length == (~complement & 0xFFFF) else { throw InflateError.invalidStoredLength }
            // Drain whole bytes still in the bit buffer first, then copy directly.
            var remaining = length
            while remaining > 0, bitCount >= 8 {
                output.append(UInt8(truncatingIfNeeded: try bits(8)))
                remaining -= 1
            }
            let start = bytePosition
            guard start + remaining <= input.count else { throw InflateError.truncated }
            output.append(contentsOf: UnsafeBufferPointer(rebasing: input[start ..< start + remaining]))
            position = start + remaining
            bitBuffer = 0
            bitCount = 0
        }

        mutating func dynamicCodes() throws -> (Huffman, Huffman) {
            let literalCount = try bits(5) + 257
            let distanceCount = try bits(5) + 1
            let codeLengthCount = try bits(4) + 4
            guard literalCount <= 286, distanceCount <= 30 else { throw InflateError.invalidCode("too many length or distance codes") }
            var codeLengths = [UInt8](repeating: 0, count: 19)
            for i in 0..<codeLengthCount { codeLengths[Inflate.codeLengthOrder[i]] = UInt8(try bits(3)) }
            let lengthCode = try Huffman(lengths: codeLengths[...])
            var lengths = [UInt8](repeating: 0, count: literalCount + distanceCount)
            var i = 0
            while i < lengths.count {
                let symbol = try decode(lengthCode)
                if symbol < 16 {
                    lengths[i] = UInt8(symbol)
                    i += 1
                    continue
                }
                var repeatValue: UInt8 = 0
                var count: Int
                switch symbol {
                case 16:
                    guard i > 0 else { throw InflateError.invalidCode("repeat with no previous length") }
                    repeatValue = lengths[i - 1]
                    count = 3 + (try bits(2))
                case 17: count = 3 + (try bits(3))
                default: count = 11 + (try bits(7))
                }
                guard i + count <= lengths.count else { throw InflateError.invalidCode("code lengths overflow") }
                for _ in 0..<count {
                    lengths[i] = repeatValue
                    i += 1
                }
            }
            guard lengths[256] > 0 else { throw InflateError.invalidCode("no end-of-block code") }
            return (try Huffman(lengths: lengths[0..<literalCount]),
                    try Huffman(lengths: lengths[literalCount...]))
        }

        mutating func huffmanBlock(_ literal: Huffman, _ distance: Huffman) throws {
            while true {
                let symbol = try decode(literal)
                if symbol < 256 {
                    output.append(UInt8(symbol))
                    continue
                }
                if symbol == 256 { return }
                let lengthIndex = symbol - 257
                guard lengthIndex < 29 else { throw InflateError.invalidCode("length symbol \(symbol)") }
                let length = Inflate.lengthBase[lengthIndex] + (try bits(Inflate.lengthExtra[lengthIndex]))
                let distanceSymbol = try decode(distance)
                guard distanceSymbol < 30 else { throw InflateError.invalidCode("distance symbol \(distanceSymbol)") }
                let back = Inflate.distanceBase[distanceSymbol] + (try bits(Inflate.distanceExtra[distanceSymbol]))
                guard back <= output.count else { throw InflateError.distanceTooFar }
                // Byte by byte: the source may overlap the bytes being written, and appending a
                // slice of `output` to itself would copy the whole array each time.
                var from = output.count - back
                for _ in 0..<length {
                    output.append(output[from])
                    from += 1
                }
            }
        }
    }
}

/// Adler-32 and CRC-32 checksums.
public enum Checksum {
    /// Adler-32 (zlib trailer).
    public static func adler32(_ bytes: [UInt8]) -> UInt32 {
        var a: UInt32 = 1, b: UInt32 = 0
        var i = 0
        let n = bytes.count
        while i < n {
            let end = min(i + 5552, n)
            while i < end {
                a &+= UInt32(bytes[i])
                b &+= a
                i += 1
            }
            a %= 65521
            b %= 65521
        }
        return b << 16 | a
    }

    static let crcTable: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    /// CRC-32 (IEEE 802.3; gzip and zip).
    public static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        crcTable.withUnsafeBufferPointer { table in
            for b in bytes { c = table[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        }
        return c ^ 0xFFFF_FFFF
    }
}
