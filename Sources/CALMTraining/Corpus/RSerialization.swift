import Foundation

/// A value read from R's serialization format (what `saveRDS`, `save` and lazy-load databases
/// write). Only what corpus extraction needs is kept in detail: character, integer, double,
/// logical and generic vectors, pairlists and symbols; the rest is parsed and summarised.
public indirect enum RValue: Sendable, Equatable {
    case null
    case symbol(String)
    /// A character vector (`nil` = `NA_character_`).
    case strings([String?], attributes: [String: RValue])
    case integers([Int32], attributes: [String: RValue])
    case doubles([Double], attributes: [String: RValue])
    case logicals([Int32], attributes: [String: RValue])
    /// A generic vector (`list`).
    case list([RValue], attributes: [String: RValue])
    /// A pairlist / language object: (tag, value) pairs.
    case pairs([(tag: String?, value: RValue)])
    /// Anything else (environments, closures, raw, complex …): its SEXP type.
    case other(type: Int)

    public static func == (a: RValue, b: RValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case let (.symbol(x), .symbol(y)): return x == y
        case let (.strings(x, ax), .strings(y, ay)): return x == y && ax == ay
        case let (.integers(x, ax), .integers(y, ay)): return x == y && ax == ay
        case let (.doubles(x, ax), .doubles(y, ay)): return x == y && ax == ay
        case let (.logicals(x, ax), .logicals(y, ay)): return x == y && ax == ay
        case let (.list(x, ax), .list(y, ay)): return x == y && ax == ay
        case let (.pairs(x), .pairs(y)): return x.count == y.count && zip(x, y).allSatisfy { $0.tag == $1.tag && $0.value == $1.value }
        case let (.other(x), .other(y)): return x == y
        default: return false
        }
    }

    /// The element names (`names` attribute) of a vector, or the tags of a pairlist.
    public var names: [String?] {
        switch self {
        case .strings(_, let a), .integers(_, let a), .doubles(_, let a), .logicals(_, let a), .list(_, let a):
            if case .strings(let n, _)? = a["names"] { return n }
            return []
        case .pairs(let p): return p.map(\.tag)
        default: return []
        }
    }

    /// The element called `name` of a named list or pairlist.
    public subscript(name: String) -> RValue? {
        let names = self.names
        guard let i = names.firstIndex(of: name) else { return nil }
        switch self {
        case .list(let v, _): return i < v.count ? v[i] : nil
        case .pairs(let p): return p[i].value
        default: return nil
        }
    }
}

/// Reader for R's XDR (big-endian binary, format `X\n`) serialization, versions 2 and 3.
///
/// ```swift
/// let value = try RSerialization.read(bytes)      // bytes start with "X\n"
/// if case .strings(let lines, _) = value { print(lines.count) }
/// ```
public struct RSerialization {
    var bytes: [UInt8]
    var p = 0
    var references: [RValue] = []

    /// Parses one serialized object.
    public static func read(_ bytes: [UInt8]) throws -> RValue {
        var r = RSerialization(bytes: bytes)
        guard bytes.count >= 2, bytes[0] == UInt8(ascii: "X"), bytes[1] == 0x0A else {
            throw CorpusError.malformed("R serialization", "not XDR format (expected \"X\\n\")")
        }
        r.p = 2
        let version = try r.int()
        _ = try r.int()  // writer R version
        _ = try r.int()  // minimal reader version
        guard version == 2 || version == 3 else { throw CorpusError.malformed("R serialization", "version \(version)") }
        if version == 3 {
            let n = Int(try r.int())
            r.p += n  // native encoding name
        }
        return try r.item()
    }

    mutating func int() throws -> Int32 {
        guard p + 4 <= bytes.count else { throw CorpusError.malformed("R serialization", "truncated") }
        let v = UInt32(bytes[p]) << 24 | UInt32(bytes[p + 1]) << 16 | UInt32(bytes[p + 2]) << 8 | UInt32(bytes[p + 3])
        p += 4
        return Int32(bitPattern: v)
    }

    mutating func length() throws -> Int {
        let n = try int()
        if n == -1 {  // long vector: two more ints
            let hi = Int(try int()), lo = Int(UInt32(bitPattern: try int()))
            return hi << 32 | lo
        }
        guard n >= 0 else { throw CorpusError.malformed("R serialization", "negative length") }
        return Int(n)
    }

    mutating func take(_ n: Int) throws -> ArraySlice<UInt8> {
        guard n >= 0, p + n <= bytes.count else { throw CorpusError.malformed("R serialization", "truncated") }
        defer { p += n }
        return bytes[p ..< p + n]
    }

    /// Reads a CHARSXP body (after its flags): `nil` for NA.
    mutating func charsxp(flags: Int32) throws -> String? {
        let n = try int()
        if n == -1 { return nil }
        let raw = try take(Int(n))
        let latin1 = (flags >> 12) & 4 != 0  // LATIN1_MASK in the levels
        if latin1 { return String(raw.map { Character(Unicode.Scalar($0)) }) }
        return String(decoding: raw, as: UTF8.self)
    }

    mutating func attributes(_ hasAttributes: Bool) throws -> [String: RValue] {
        guard hasAttributes else { return [:] }
        var out: [String: RValue] = [:]
        if case .pairs(let list) = try item() {
            for (tag, value) in list { if let tag { out[tag] = value } }
        }
        return out
    }

    mutating func item() throws -> RValue {
        let flags = try int()
        let type = Int(flags & 0xFF)
        let hasAttributes = flags & (1 << 9) != 0
        let hasTag = flags & (1 << 10) != 0
        switch type {
        case 254, 242, 253, 241, 251, 252, 247:  // NILVALUE, EMPTYENV, GLOBALENV, BASEENV, MISSINGARG, UNBOUNDVALUE, BASENAMESPACE
            return type == 254 ? .null : .other(type: type)
        case 255:  // REFSXP
            var index = Int(flags >> 8)
            if index == 0 { index = Int(try int()) }
            guard index >= 1, index <= references.count else { throw CorpusError.malformed("R serialization", "bad reference \(index)") }
            return references[index - 1]
        case 250, 249:  // PACKAGESXP, NAMESPACESXP: a STRSXP-like persistent name
            _ = try int()  // 0
            let n = try length()
            for _ in 0..<n { _ = try item() }
            let v = RValue.other(type: type)
            references.append(v)
            return v
        case 1:  // SYMSXP: a CHARSXP follows
            let name = try item()
            var s = ""
            if case .strings(let x, _) = name, let first = x.first { s = first ?? "NA" }
            let v = RValue.symbol(s)
            references.append(v)
            return v
        case 9:  // CHARSXP on its own
            return .strings([try charsxp(flags: flags)], attributes: [:])
        case 2, 6, 17, 5, 239, 240:  // LISTSXP, LANGSXP, DOTSXP, PROMSXP, ATTRLISTSXP, ATTRLANGSXP
            var list: [(tag: String?, value: RValue)] = []
            var f = flags
            while true {
                _ = try attributes(f & (1 << 9) != 0)
                var tag: String? = nil
                if f & (1 << 10) != 0, case .symbol(let s) = try item() { tag = s }
                list.append((tag, try item()))
                // The CDR: another cell of the same kind continues the list.
                let next = try int()
                let nt = Int(next & 0xFF)
                if nt == 254 { break }
                if [2, 6, 17, 5, 239, 240].contains(nt) { f = next; continue }
                p -= 4
                list.append((nil, try item()))  // dotted pair
                break
            }
            return .pairs(list)
        case 4:  // ENVSXP
            let placeholder = RValue.other(type: 4)
            references.append(placeholder)
            _ = try int()  // locked
            _ = try item()  // enclosure
            _ = try item()  // frame
            _ = try item()  // hash table
            _ = try item()  // attributes
            return placeholder
        case 3:  // CLOSXP: attributes, environment, formals, body
            _ = try attributes(hasAttributes)
            _ = try item(); _ = try item(); _ = try item()
            return .other(type: 3)
        case 7, 8:  // SPECIALSXP, BUILTINSXP
            let n = Int(try int())
            _ = try take(n)
            return .other(type: type)
        case 238:  // ALTREP_SXP: class info, state, attributes
            _ = try item()
            _ = try item()
            _ = try item()
            return .other(type: 238)
        case 10, 13:  // LGLSXP, INTSXP
            let n = try length()
            var v: [Int32] = []
            v.reserveCapacity(n)
            for _ in 0..<n { v.append(try int()) }
            let a = try attributes(hasAttributes)
            return type == 10 ? .logicals(v, attributes: a) : .integers(v, attributes: a)
        case 14:  // REALSXP
            let n = try length()
            var v: [Double] = []
            v.reserveCapacity(n)
            for _ in 0..<n {
                let hi = UInt64(UInt32(bitPattern: try int())), lo = UInt64(UInt32(bitPattern: try int()))
                v.append(Double(bitPattern: hi << 32 | lo))
            }
            return .doubles(v, attributes: try attributes(hasAttributes))
        case 15:  // CPLXSXP
            let n = try length()
            _ = try take(n * 16)
            _ = try attributes(hasAttributes)
            return .other(type: 15)
        case 24:  // RAWSXP
            let n = try length()
            _ = try take(n)
            _ = try attributes(hasAttributes)
            return .other(type: 24)
        case 16:  // STRSXP: CHARSXPs
            let n = try length()
            var v: [String?] = []
            v.reserveCapacity(n)
            for _ in 0..<n {
                let f = try int()
                guard f & 0xFF == 9 else { throw CorpusError.malformed("R serialization", "STRSXP element of type \(f & 0xFF)") }
                v.append(try charsxp(flags: f))
            }
            return .strings(v, attributes: try attributes(hasAttributes))
        case 19, 20:  // VECSXP, EXPRSXP
            let n = try length()
            var v: [RValue] = []
            v.reserveCapacity(n)
            for _ in 0..<n { v.append(try item()) }
            return .list(v, attributes: try attributes(hasAttributes))
        case 25:  // S4SXP
            _ = try attributes(hasAttributes)
            return .other(type: 25)
        case 21, 22, 23:  // BCODESXP, EXTPTRSXP, WEAKREFSXP: not needed for data
            throw CorpusError.malformed("R serialization", "unsupported SEXP type \(type)")
        default:
            _ = hasTag
            throw CorpusError.malformed("R serialization", "unknown SEXP type \(type)")
        }
    }
}

/// An R lazy-load database (`Rdata.rdx` index + `Rdata.rdb` data), as in `data/` of installed
/// R packages.
///
/// ```swift
/// let db = try RLazyLoadDB(index: rdxBytes, data: rdbBytes)
/// db.variables                          // ["emma", "mansfieldpark", …]
/// let emma = try db.value(of: "emma")    // .strings([...lines...])
/// ```
public struct RLazyLoadDB {
    public let variables: [String]
    let positions: [String: (offset: Int, length: Int)]
    let compression: Int
    let data: [UInt8]

    /// Parses the index (gzip- or zlib-compressed, or plain, serialized list with
    /// `variables`, `references`, `compressed`).
    public init(index: [UInt8], data: [UInt8]) throws {
        let raw: [UInt8]
        if index.starts(with: [0x1F, 0x8B]) {
            raw = try Inflate.gzip(index)
        } else if index.count > 4, index[4] == 0x78 {
            raw = try Inflate.zlib(Array(index[4...]))
        } else {
            raw = index
        }
        let value = try RSerialization.read(raw)
        guard let variables = value["variables"] else { throw CorpusError.malformed("R lazy-load index", "no 'variables'") }
        var positions: [String: (Int, Int)] = [:]
        var names: [String] = []
        if case .list(let items, _) = variables {
            for (name, item) in zip(variables.names, items) {
                guard let name, case .integers(let v, _) = item, v.count == 2 else { continue }
                positions[name] = (Int(v[0]), Int(v[1]))
                names.append(name)
            }
        }
        self.variables = names
        self.positions = positions
        switch value["compressed"] {
        case .logicals(let v, _)?: compression = Int(v.first ?? 1)
        case .integers(let v, _)?: compression = Int(v.first ?? 1)
        case .doubles(let v, _)?: compression = Int(v.first ?? 1)
        default: compression = 1
        }
        self.data = data
    }

    /// Decompresses and parses the value of `name`.
    public func value(of name: String) throws -> RValue {
        guard let (offset, length) = positions[name], offset >= 0, offset + length <= data.count, length >= 5 else {
            throw CorpusError.malformed("R lazy-load data", "no value \(name)")
        }
        let chunk = Array(data[offset ..< offset + length])
        let size = Int(chunk[0]) << 24 | Int(chunk[1]) << 16 | Int(chunk[2]) << 8 | Int(chunk[3])
        let bytes: [UInt8]
        if compression == 1 || compression == 0 && chunk[4] == 0x78 {
            bytes = try Inflate.zlib(Array(chunk[4...]), sizeHint: size)
        } else {
            switch chunk[4] {
            case UInt8(ascii: "Z"): bytes = try Inflate.zlib(Array(chunk[5...]), sizeHint: size)
            case UInt8(ascii: "0"): bytes = Array(chunk[5...])
            default: throw CorpusError.malformed("R lazy-load data", "compression '\(Character(Unicode.Scalar(chunk[4])))' unsupported (only zlib)")
            }
        }
        return try RSerialization.read(bytes)
    }
}
