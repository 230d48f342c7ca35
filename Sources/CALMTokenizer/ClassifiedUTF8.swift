/// A read-only view of UTF-8 bytes that yields the `ScalarClass` flags of the scalar at a byte
/// offset, with a one-table-lookup fast path for ASCII.
///
/// Ill-formed bytes (which cannot come from a Swift `String`) classify as one-byte scalars with
/// no flags, so scanning never reads out of bounds.
@usableFromInline
struct ClassifiedUTF8 {
    @usableFromInline let base: UnsafePointer<UInt8>
    @usableFromInline let count: Int
    @usableFromInline let bmp: UnsafePointer<UInt8>

    @inlinable
    init(base: UnsafePointer<UInt8>, count: Int, bmp: UnsafePointer<UInt8>) {
        self.base = base
        self.count = count
        self.bmp = bmp
    }

    /// The class flags and byte length of the scalar starting at byte `i` (`i < count`).
    @inlinable @inline(__always)
    func scalar(at i: Int) -> (flags: UInt8, length: Int) {
        let b0 = base[i]
        if b0 < 0x80 { return (bmp[Int(b0)], 1) }
        return decodeNonASCII(at: i)
    }

    /// Class flags only, for the ASCII fast path in run loops.
    @usableFromInline @inline(never)
    func decodeNonASCII(at i: Int) -> (flags: UInt8, length: Int) {
        let b0 = base[i]
        var value: UInt32
        let length: Int
        if b0 & 0xE0 == 0xC0 {
            length = 2; value = UInt32(b0 & 0x1F)
        } else if b0 & 0xF0 == 0xE0 {
            length = 3; value = UInt32(b0 & 0x0F)
        } else if b0 & 0xF8 == 0xF0 {
            length = 4; value = UInt32(b0 & 0x07)
        } else {
            return (0, 1)
        }
        if i + length > count { return (0, 1) }
        for k in 1..<length {
            let c = base[i + k]
            if c & 0xC0 != 0x80 { return (0, 1) }
            value = value << 6 | UInt32(c & 0x3F)
        }
        if value < 0x10000 { return (bmp[Int(value)], length) }
        return (ScalarClass.compute(value), length)
    }

    /// End of the run of scalars, starting at `i`, whose flags intersect `mask`.
    @inlinable @inline(__always)
    func runEnd(from i: Int, matching mask: UInt8) -> Int {
        var j = i
        while j < count {
            let b = base[j]
            if b < 0x80 {
                if bmp[Int(b)] & mask == 0 { return j }
                j += 1
            } else {
                let (flags, length) = decodeNonASCII(at: j)
                if flags & mask == 0 { return j }
                j += length
            }
        }
        return j
    }

    /// End of the run of scalars, starting at `i`, whose flags do not intersect `mask`.
    @inlinable @inline(__always)
    func runEnd(from i: Int, notMatching mask: UInt8) -> Int {
        var j = i
        while j < count {
            let b = base[j]
            if b < 0x80 {
                if bmp[Int(b)] & mask != 0 { return j }
                j += 1
            } else {
                let (flags, length) = decodeNonASCII(at: j)
                if flags & mask != 0 { return j }
                j += length
            }
        }
        return j
    }

    /// End of the run of `\r` / `\n` bytes starting at `i`.
    @inlinable @inline(__always)
    func newlineRunEnd(from i: Int) -> Int {
        var j = i
        while j < count, base[j] == 0x0A || base[j] == 0x0D { j += 1 }
        return j
    }
}
