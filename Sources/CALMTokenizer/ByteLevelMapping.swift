/// The GPT-2 byte ⇄ unicode mapping used by byte-level BPE vocabularies (`bytes_to_unicode`).
///
/// Printable bytes `!`…`~`, `¡`…`¬`, `®`…`ÿ` map to themselves; the other 68 bytes map to
/// U+0100… in byte order (so the space 0x20 is `Ġ` U+0120 and `\n` is `Ċ` U+010A).
///
/// ```swift
/// ByteLevelMapping.string(for: Array(" hello".utf8)) // "Ġhello"
/// ByteLevelMapping.bytes(for: "Ġhello")             // [32, 104, 101, 108, 108, 111]
/// ```
public enum ByteLevelMapping {
    /// The scalar for each byte.
    public static let byteToScalar: [Unicode.Scalar] = {
        var mapped = [UInt32](repeating: 0, count: 256)
        var isPrintable = [Bool](repeating: false, count: 256)
        for range in [0x21...0x7E, 0xA1...0xAC, 0xAE...0xFF] {
            for b in range { isPrintable[b] = true }
        }
        var next: UInt32 = 256
        for b in 0..<256 {
            if isPrintable[b] {
                mapped[b] = UInt32(b)
            } else {
                mapped[b] = next
                next += 1
            }
        }
        return mapped.map { Unicode.Scalar($0)! }
    }()

    /// The byte for each scalar value below 324, or -1.
    static let scalarToByte: [Int16] = {
        var table = [Int16](repeating: -1, count: 324)
        for (b, scalar) in byteToScalar.enumerated() { table[Int(scalar.value)] = Int16(b) }
        return table
    }()

    /// The vocabulary string for raw token bytes.
    public static func string(for bytes: [UInt8]) -> String {
        var scalars = String.UnicodeScalarView()
        for b in bytes { scalars.append(byteToScalar[Int(b)]) }
        return String(scalars)
    }

    /// The raw bytes of a vocabulary string; scalars outside the mapping contribute their own
    /// UTF-8 (as the Hugging Face ByteLevel decoder does).
    public static func bytes(for string: String) -> [UInt8] { decode(string).bytes }

    /// `bytes(for:)` plus whether every scalar was in the mapping.
    static func decode(_ string: String) -> (bytes: [UInt8], isByteLevel: Bool) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(string.utf8.count)
        var isByteLevel = true
        scalarToByte.withUnsafeBufferPointer { table in
            for scalar in string.unicodeScalars {
                let value = Int(scalar.value)
                if value < 324, table[value] >= 0 {
                    bytes.append(UInt8(table[value]))
                } else {
                    isByteLevel = false
                    bytes.append(contentsOf: String(scalar).utf8)
                }
            }
        }
        return (bytes, isByteLevel)
    }
}
