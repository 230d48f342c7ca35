/// Incremental decoding for generation: feed ids as they are produced and get text back as soon
/// as it forms complete UTF-8 characters.
///
/// An incomplete trailing UTF-8 sequence (e.g. the first bytes of an emoji split across tokens)
/// is held back until the next `append` or `finish`; ill-formed bytes become U+FFFD. The
/// concatenation of all returned strings equals `tokenizer.decode(allIDs)`.
///
/// ```swift
/// var stream = StreamingDetokenizer(tokenizer: tokenizer)
/// for id in generatedIDs { print(stream.append([id]), terminator: "") }
/// print(stream.finish())
/// ```
public struct StreamingDetokenizer: Sendable {
    /// The tokenizer whose token bytes are decoded.
    public let tokenizer: any TextTokenizer
    private var pending: [UInt8] = []

    /// Creates a streaming decoder for `tokenizer`.
    public init(tokenizer: any TextTokenizer) {
        self.tokenizer = tokenizer
    }

    /// Bytes held back because they may begin a character that the next token completes.
    public var pendingByteCount: Int { pending.count }

    /// Adds ids and returns the text that is now complete.
    public mutating func append(_ ids: [Int]) -> String {
        for id in ids {
            if let bytes = tokenizer.tokenBytes(id) { pending.append(contentsOf: bytes) }
        }
        let keep = Self.incompleteSuffixLength(pending)
        if keep == pending.count { return "" }
        let text = String(decoding: pending[..<(pending.count - keep)], as: UTF8.self)
        pending.removeFirst(pending.count - keep)
        return text
    }

    /// Adds one id; see `append(_:)`.
    public mutating func append(_ id: Int) -> String { append([id]) }

    /// Returns everything still held back (an unfinished sequence becomes U+FFFD) and resets.
    public mutating func finish() -> String {
        defer { pending.removeAll(keepingCapacity: true) }
        return String(decoding: pending, as: UTF8.self)
    }

    /// Length of the trailing bytes that form a valid-so-far but unfinished UTF-8 sequence.
    ///
    /// Holding such a suffix back never changes the result: the bytes before it end on a
    /// boundary where a decoder of the whole stream also starts afresh.
    static func incompleteSuffixLength(_ bytes: [UInt8]) -> Int {
        let n = bytes.count
        var back = 1
        while back <= min(3, n) {
            let b = bytes[n - back]
            if b & 0xC0 != 0x80 {
                // Lead byte (or ASCII) found `back` bytes from the end.
                let need: Int
                switch b {
                case 0xC2...0xDF: need = 2
                case 0xE0...0xEF: need = 3
                case 0xF0...0xF4: need = 4
                default: return 0
                }
                guard back < need else { return 0 }
                // The bytes after the lead must be able to continue it.
                if back >= 2 {
                    let second = bytes[n - back + 1]
                    let (low, high): (UInt8, UInt8)
                    switch b {
                    case 0xE0: (low, high) = (0xA0, 0xBF)
                    case 0xED: (low, high) = (0x80, 0x9F)
                    case 0xF0: (low, high) = (0x90, 0xBF)
                    case 0xF4: (low, high) = (0x80, 0x8F)
                    default: (low, high) = (0x80, 0xBF)
                    }
                    guard second >= low, second <= high else { return 0 }
                }
                return back
            }
            back += 1
        }
        return 0
    }
}
