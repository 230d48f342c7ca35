import Foundation

/// A text tokenizer: text ⇄ token ids.
///
/// Implemented by `TiktokenTokenizer` (Llama 3 `tokenizer.model`) and `HuggingFaceBPETokenizer`
/// (`tokenizer.json`); `TokenizerLoader` picks one for a directory.
///
/// ```swift
/// let tokenizer = try TokenizerLoader.load(directory: URL(fileURLWithPath: "llama3"))
/// let ids = tokenizer.encode("Hello world", addBOS: true, allowSpecialTokens: true)
/// // [128000, 9906, 1917]
/// let text = tokenizer.decode(ids) // "<|begin_of_text|>Hello world"
/// ```
public protocol TextTokenizer: Sendable {
    /// Number of ids, including special and added tokens (one past the largest id).
    var vocabularySize: Int { get }
    /// The beginning-of-sequence id, if the tokenizer has one.
    var bosTokenID: Int? { get }
    /// The end-of-sequence id, if the tokenizer has one.
    var eosTokenID: Int? { get }
    /// The padding id, if the tokenizer has one (see `addingPadTokenIfMissing`).
    var padTokenID: Int? { get }
    /// Whether `encode(_:)` (the Hugging Face `tokenizer(text)` equivalent) prepends BOS.
    var addsBOSByDefault: Bool { get }
    /// All added/special tokens, in id order.
    var addedTokens: [AddedToken] { get }

    /// Encodes text.
    ///
    /// - Parameters:
    ///   - addBOS: prepend `bosTokenID` (when there is one).
    ///   - allowSpecialTokens: recognise special-token text (e.g. `"<|eot_id|>"`) as its id;
    ///     when false it is encoded as ordinary text.
    func encode(_ text: String, addBOS: Bool, allowSpecialTokens: Bool) -> [Int]

    /// Decodes ids to text: joins the tokens' bytes and decodes UTF-8, replacing ill-formed
    /// sequences with U+FFFD. Special tokens decode to their text; unknown ids are skipped.
    func decode(_ ids: [Int]) -> String

    /// The raw bytes of one token (a special token's text for special tokens), or `nil`.
    func tokenBytes(_ id: Int) -> [UInt8]?

    /// The id of an added/special token given its exact text, e.g. `"<|eot_id|>"` → 128009.
    func tokenID(forSpecial text: String) -> Int?

    /// A copy with extra special tokens appended at ids `vocabularySize`, `vocabularySize + 1`, …
    /// (texts that already are added tokens keep their id).
    func addingSpecialTokens(_ texts: [String]) -> Self

    /// A copy whose `padTokenID` is `id`.
    func settingPadToken(_ id: Int?) -> Self
}

extension TextTokenizer {
    /// Encodes like Hugging Face `tokenizer(text)`: BOS when `addsBOSByDefault`, special-token
    /// text recognised.
    ///
    /// ```swift
    /// tokenizer.encode("Hello world") // [128000, 9906, 1917] for Llama 3
    /// ```
    public func encode(_ text: String) -> [Int] {
        encode(text, addBOS: addsBOSByDefault, allowSpecialTokens: true)
    }

    /// A copy with a pad token, as the CALM training scripts do: when there is no pad token,
    /// `text` (default `"[PAD]"`) is added as a special token with id `vocabularySize`
    /// (128256 for Llama 3, making the vocabulary 128,257).
    ///
    /// ```swift
    /// let padded = tokenizer.addingPadTokenIfMissing()
    /// padded.padTokenID // 128256
    /// padded.encode("[PAD]", addBOS: false, allowSpecialTokens: true) // [128256]
    /// ```
    public func addingPadTokenIfMissing(_ text: String = "[PAD]") -> Self {
        if padTokenID != nil { return self }
        let added = addingSpecialTokens([text])
        return added.settingPadToken(added.tokenID(forSpecial: text))
    }

    /// Decodes one token to text (lossy for tokens that are partial UTF-8 sequences).
    public func decode(_ id: Int) -> String { decode([id]) }
}

/// Shared implementation helpers for the concrete tokenizers.
enum TokenizerSupport {
    /// Every id (tiktoken rank, vocabulary id, added-token id) is below 2^24: tables are indexed by
    /// id, so a larger one would let a file of a few bytes allocate gigabytes, and
    /// `vocabularySize` (largest id + 1) always exists.
    static let idLimit = 1 << 24

    /// Throws `invalidValue` naming `key` for an added token whose id is outside `0 ..< idLimit`.
    static func checkIDs(of tokens: [AddedToken], path: String, key: String) throws {
        if let bad = tokens.first(where: { $0.id < 0 || $0.id >= idLimit }) {
            throw TokenizerError.invalidValue(path: path, key: key, reason: "token '\(bad.content)' has id \(bad.id), outside 0..<2^24")
        }
    }

    /// Appends new special tokens after `vocabularySize`; returns the new list and size.
    static func appending(_ texts: [String], to tokens: [AddedToken], vocabularySize: Int)
        -> (tokens: [AddedToken], vocabularySize: Int)
    {
        var tokens = tokens
        var size = vocabularySize
        for text in texts where !tokens.contains(where: { $0.content == text }) {
            tokens.append(AddedToken(id: size, content: text))
            size += 1
        }
        return (tokens, size)
    }

    /// Concatenated bytes of `ids` decoded with U+FFFD replacement.
    static func decode(_ ids: [Int], bytes: (Int) -> [UInt8]?) -> String {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(ids.count * 4)
        for id in ids {
            if let b = bytes(id) { buffer.append(contentsOf: b) }
        }
        return String(decoding: buffer, as: UTF8.self)
    }
}
