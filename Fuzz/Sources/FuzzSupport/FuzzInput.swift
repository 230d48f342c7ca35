/// Typed values read from a fuzzer's bytes, front to back (zeros once the bytes run out), in the
/// spirit of LLVM's `FuzzedDataProvider`. Integers and floating-point numbers are drawn from a mix
/// of boundary values (0, ±1, `Int.max`, `Int.min`, NaN, ±∞, denormals, …), small values and raw
/// bit patterns, so that short inputs already reach the edges of every range.
public struct FuzzInput {
    public let bytes: [UInt8]
    public private(set) var position = 0

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public init(_ data: UnsafePointer<UInt8>?, _ size: Int) {
        bytes = (data != nil && size > 0) ? Array(UnsafeBufferPointer(start: data, count: size)) : []
    }

    /// Whether every byte has been read.
    public var isExhausted: Bool { position >= bytes.count }

    public mutating func byte() -> UInt8 {
        guard position < bytes.count else { return 0 }
        defer { position += 1 }
        return bytes[position]
    }

    public mutating func bool() -> Bool { byte() & 1 == 1 }

    /// `n` bytes, little-endian.
    public mutating func raw(_ n: Int) -> UInt64 {
        var v: UInt64 = 0
        for i in 0..<n { v |= UInt64(byte()) << (8 * UInt64(i)) }
        return v
    }

    public mutating func uint64() -> UInt64 { raw(8) }

    /// One of `choices`.
    public mutating func pick<T>(_ choices: [T]) -> T { choices[Int(byte()) % choices.count] }

    /// An integer: a boundary value, a small one (−8…247), one in 0..<2¹⁶, or any 64-bit pattern.
    public mutating func int() -> Int {
        let selector = byte()
        switch selector % 4 {
        case 0:
            let edges = [0, 1, -1, 2, Int.max, Int.min, Int.max - 1, Int.min + 1, Int(Int32.max), Int(Int32.min),
                         Int(UInt32.max), 1 << 20, 1 << 26, 1 << 30, 1 << 31, 1 << 32, 1 << 40, 1 << 53, 1 << 62,
                         4095, 4096, 4097, 64, 65, 200, 4_000_000, 1_000_000, 1_000_001, Int.max / 2, Int.max / 4 + 1]
            return edges[Int(selector / 4) % edges.count]
        case 1: return Int(byte()) - 8
        case 2: return Int(raw(2))
        default: return Int(truncatingIfNeeded: uint64())
        }
    }

    /// An integer in `range` (uniform over the next bytes).
    public mutating func int(in range: ClosedRange<Int>) -> Int {
        let span = UInt64(bitPattern: Int64(range.upperBound &- range.lowerBound))
        if span == UInt64.max { return Int(truncatingIfNeeded: uint64()) }
        let n = span < 256 ? raw(1) : span < 65536 ? raw(2) : uint64()
        return range.lowerBound &+ Int(truncatingIfNeeded: n % (span + 1))
    }

    /// A double: a special value, a simple fraction, or any 64-bit pattern.
    public mutating func double() -> Double {
        let selector = byte()
        switch selector % 4 {
        case 0:
            let specials: [Double] = [0, -0.0, 1, -1, 0.5, 2, Double.nan, -Double.nan, Double.signalingNaN,
                                      Double.infinity, -Double.infinity, Double.leastNonzeroMagnitude,
                                      -Double.leastNonzeroMagnitude, Double.leastNormalMagnitude,
                                      Double.greatestFiniteMagnitude, -Double.greatestFiniteMagnitude, Double(sign: .plus, exponent: -1063, significand: 1), 1e-20,
                                      1e-7, 1e-6, (1e-6).nextDown, (1e-6).nextUp, (1.0).nextUp, (1.0).nextDown, 0.01,
                                      1e6, 1e300, Double(Float.leastNonzeroMagnitude),
                                      Double(Float.greatestFiniteMagnitude) * 2]
            return specials[Int(selector / 4) % specials.count]
        case 1: return Double(Int(byte()) - 128) / Double(max(1, Int(byte())))
        case 2: return Double(Int(raw(2))) * 1e-4
        default: return Double(bitPattern: uint64())
        }
    }

    /// A float: a special value, a simple fraction, or any 32-bit pattern.
    public mutating func float() -> Float {
        let selector = byte()
        switch selector % 3 {
        case 0:
            let specials: [Float] = [0, -0.0, 1, -1, 0.5, 2, 0.999_999_94, Float.nan, Float.signalingNaN,
                                     Float.infinity, -Float.infinity, Float.leastNonzeroMagnitude,
                                     Float.leastNormalMagnitude, Float.greatestFiniteMagnitude,
                                     -Float.greatestFiniteMagnitude, 1e-30, 1e30, 64, 65]
            return specials[Int(selector / 3) % specials.count]
        case 1: return Float(Int(byte()) - 128) / Float(max(1, Int(byte())))
        default: return Float(bitPattern: UInt32(truncatingIfNeeded: raw(4)))
        }
    }

    /// An optional: nil when the next byte is even.
    public mutating func optional<T>(_ value: (inout FuzzInput) -> T) -> T? {
        bool() ? value(&self) : nil
    }

    /// Text of up to `maxBytes` bytes (invalid UTF-8 repaired, as Swift strings always are).
    public mutating func string(maxBytes: Int = 32) -> String {
        let n = Int(byte()) % (maxBytes + 1)
        var b: [UInt8] = []
        for _ in 0..<n where !isExhausted { b.append(byte()) }
        return String(decoding: b, as: UTF8.self)
    }

    /// Every byte not read yet.
    public mutating func rest() -> [UInt8] {
        defer { position = bytes.count }
        return position < bytes.count ? Array(bytes[position...]) : []
    }
}

/// Writes bytes that `FuzzInput` reads back as the given values (for hand-made seeds).
public struct FuzzInputWriter {
    public private(set) var bytes: [UInt8] = []
    public init() {}
    public mutating func byte(_ b: UInt8) { bytes.append(b) }
    public mutating func bool(_ v: Bool) { bytes.append(v ? 1 : 0) }
    /// An `int()` of −8…247.
    public mutating func int(_ v: Int) {
        precondition((-8...247).contains(v), "FuzzInputWriter.int takes −8…247")
        bytes += [1, UInt8(v + 8)]
    }
    /// Any `int()`, as a raw 64-bit pattern.
    public mutating func anyInt(_ v: Int) {
        bytes.append(3)
        bytes += withUnsafeBytes(of: UInt64(bitPattern: Int64(v)).littleEndian) { Array($0) }
    }
    /// An `int(in:)` whose range spans fewer than 256 values: `v` counted from the range's start.
    public mutating func offset(_ v: Int) { bytes.append(UInt8(v)) }
    /// A `double()` equal to `numerator / denominator` (−128…127 over 1…255).
    public mutating func double(_ numerator: Int, over denominator: Int = 1) {
        bytes += [1, UInt8(numerator + 128), UInt8(denominator)]
    }
    /// Any `double()`, as raw bits.
    public mutating func anyDouble(_ v: Double) {
        bytes.append(3)
        bytes += withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) }
    }
    /// A `float()` equal to `numerator / denominator`.
    public mutating func float(_ numerator: Int, over denominator: Int = 1) {
        bytes += [1, UInt8(numerator + 128), UInt8(denominator)]
    }
    /// A `string(maxBytes:)` (at most 255 bytes and `maxBytes`).
    public mutating func string(_ s: String) {
        let b = Array(s.utf8)
        bytes.append(UInt8(b.count))
        bytes += b
    }
}
