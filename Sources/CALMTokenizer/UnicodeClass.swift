/// Character classes used by the pre-tokenisation scanners, as bit flags.
///
/// The classes mirror the regex classes in the Llama 3 and GPT-2 split patterns:
/// `\p{L}` (general category L*), `\p{N}` (Nd, Nl, No), `\s` (the Unicode `White_Space`
/// property) and `[\r\n]`.
@usableFromInline
enum ScalarClass {
    @usableFromInline static let letter: UInt8 = 1
    @usableFromInline static let number: UInt8 = 2
    @usableFromInline static let whitespace: UInt8 = 4
    /// `\r` or `\n` (always also `whitespace`).
    @usableFromInline static let newline: UInt8 = 8

    /// Classifies one scalar value from its Unicode properties (slow path; see `ScalarClassTable`).
    static func compute(_ value: UInt32) -> UInt8 {
        guard let scalar = Unicode.Scalar(value) else { return 0 }
        var flags: UInt8 = 0
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            flags |= letter
        case .decimalNumber, .letterNumber, .otherNumber:
            flags |= number
        default:
            break
        }
        if scalar.properties.isWhitespace { flags |= whitespace }
        if value == 0x0A || value == 0x0D { flags |= newline }
        return flags
    }
}

/// A lazily built table of `ScalarClass` flags for the Basic Multilingual Plane.
///
/// Scalars above U+FFFF are classified on the fly from their properties.
final class ScalarClassTable: Sendable {
    /// The shared table (built once, about 64 KiB).
    static let shared = ScalarClassTable()

    /// One flag byte per BMP scalar value (surrogates classify as 0).
    let bmp: [UInt8]

    private init() {
        var table = [UInt8](repeating: 0, count: 0x10000)
        for value in 0..<UInt32(0x10000) { table[Int(value)] = ScalarClass.compute(value) }
        bmp = table
    }
}
