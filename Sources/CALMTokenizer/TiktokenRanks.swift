import Foundation

/// Parsing of tiktoken BPE rank files ("base64(token bytes) rank" per line).
enum TiktokenRanks {
    /// Parses rank-file bytes into a table indexed by rank (= token id).
    ///
    /// Empty lines are skipped; lines may end in `\r\n`. Ranks may have holes.
    static func parse(_ data: [UInt8], path: String) throws -> TokenByteTable {
        var decode = [UInt8](repeating: 0xFF, count: 256)
        for (value, char) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() {
            decode[Int(char)] = UInt8(value)
        }
        var storage: [UInt8] = []
        storage.reserveCapacity(data.count / 2)
        var starts: [Int32] = []
        var lengths: [Int32] = []
        var lineOfRank: [Int32] = []
        let maxRank = TokenizerSupport.idLimit
        // Ranks may have holes, but the table is allocated up to the largest one: a rank far beyond
        // the number of lines would cost memory for nothing (one line of rank 2^24 - 1: ~200 MB).
        // Real files are dense (cl100k, o200k, Llama 3); twice the line count, or 65,536, is room.
        let lineCount = data.reduce(into: 1) { n, b in if b == 0x0A { n += 1 } }
        let rankLimit = min(maxRank, max(2 * lineCount, 1 << 16))

        func lineText(_ start: Int, _ end: Int) -> String {
            String(decoding: data[start ..< min(end, start + 80)], as: UTF8.self)
        }

        try data.withUnsafeBufferPointer { buffer in
            let n = buffer.count
            var i = 0
            var line = 0
            while i < n {
                line += 1
                let lineStart = i
                var lineEnd = i
                while lineEnd < n, buffer[lineEnd] != 0x0A { lineEnd += 1 }
                i = lineEnd + 1
                var end = lineEnd
                if end > lineStart, buffer[end - 1] == 0x0D { end -= 1 }
                if end == lineStart { continue }
                // Token field.
                var space = lineStart
                while space < end, buffer[space] != 0x20 { space += 1 }
                guard space < end, space > lineStart else {
                    throw TokenizerError.malformedLine(path: path, line: line, text: lineText(lineStart, end))
                }
                let tokenStart = storage.count
                var accumulator: UInt32 = 0
                var bits = 0
                var padding = 0
                for k in lineStart ..< space {
                    let c = buffer[k]
                    if c == UInt8(ascii: "=") {
                        padding += 1
                        continue
                    }
                    let v = decode[Int(c)]
                    guard v != 0xFF, padding == 0 else {
                        storage.removeSubrange(tokenStart...)
                        throw TokenizerError.invalidBase64(path: path, line: line, text: lineText(lineStart, space))
                    }
                    accumulator = accumulator << 6 | UInt32(v)
                    bits += 6
                    if bits >= 8 {
                        bits -= 8
                        storage.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
                    }
                }
                let characters = space - lineStart
                guard characters % 4 == 0, padding <= 2, bits < 6,
                      accumulator & ((1 << UInt32(bits)) - 1) == 0 || bits == 0,
                      storage.count > tokenStart
                else {
                    throw TokenizerError.invalidBase64(path: path, line: line, text: lineText(lineStart, space))
                }
                // Rank field (a single space, then digits).
                var rank = 0
                var k = space + 1
                guard k < end else {
                    throw TokenizerError.invalidRank(path: path, line: line, text: "")
                }
                while k < end {
                    let c = buffer[k]
                    guard c >= 0x30, c <= 0x39, rank < maxRank else {
                        throw TokenizerError.invalidRank(
                            path: path, line: line, text: lineText(space + 1, end))
                    }
                    rank = rank * 10 + Int(c - 0x30)
                    k += 1
                }
                guard rank < maxRank else {
                    throw TokenizerError.invalidRank(path: path, line: line, text: lineText(space + 1, end))
                }
                guard rank < rankLimit else {
                    throw TokenizerError.rankOutOfRange(path: path, line: line, rank: rank, limit: rankLimit)
                }
                if rank >= lengths.count {
                    let grow = rank + 1 - lengths.count
                    starts.append(contentsOf: repeatElement(0, count: grow))
                    lengths.append(contentsOf: repeatElement(-1, count: grow))
                    lineOfRank.append(contentsOf: repeatElement(0, count: grow))
                }
                guard lengths[rank] < 0 else {
                    throw TokenizerError.duplicateRank(path: path, line: line, rank: rank)
                }
                starts[rank] = Int32(tokenStart)
                lengths[rank] = Int32(storage.count - tokenStart)
                lineOfRank[rank] = Int32(line)
            }
        }
        var duplicate: (first: Int, second: Int)?
        let table = TokenByteTable(storage: storage, starts: starts, lengths: lengths, duplicate: &duplicate)
        if let duplicate {
            let bytes = table.bytes(of: duplicate.second) ?? []
            throw TokenizerError.duplicateToken(
                path: path, line: Int(lineOfRank[duplicate.second]),
                token: String(decoding: bytes, as: UTF8.self))
        }
        return table
    }
}
