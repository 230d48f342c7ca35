import Foundation

/// One merge of a BPE merge list: the ids of the left and right parts.
public struct BPEMerge: Hashable, Sendable {
    /// Left part id.
    public var left: Int
    /// Right part id.
    public var right: Int

    /// Creates a merge of `left` and `right`.
    public init(_ left: Int, _ right: Int) {
        self.left = left
        self.right = right
    }
}

/// A pre-tokenizer step of a Hugging Face byte-level BPE pipeline.
public enum PreTokenizerStep: Sendable, Hashable {
    /// `Split` with a regex (behaviour `Isolated`, not inverted), run by a hand-written scanner.
    case split(PreTokenizationPattern)
    /// `ByteLevel`: optionally prepend a space to each piece not starting with one, and with
    /// `useRegex` split with the GPT-2 pattern.
    case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
}

/// A Unicode normalisation form (Hugging Face `NFC`, `NFD`, `NFKC`, `NFKD` normalizers).
public enum UnicodeNormalization: String, Sendable, Hashable {
    /// Canonical composition.
    case nfc = "NFC"
    /// Canonical decomposition.
    case nfd = "NFD"
    /// Compatibility composition.
    case nfkc = "NFKC"
    /// Compatibility decomposition.
    case nfkd = "NFKD"

    func apply(_ text: String) -> String {
        switch self {
        case .nfc: return text.precomposedStringWithCanonicalMapping
        case .nfd: return text.decomposedStringWithCanonicalMapping
        case .nfkc: return text.precomposedStringWithCompatibilityMapping
        case .nfkd: return text.decomposedStringWithCompatibilityMapping
        }
    }
}

/// Everything a byte-level BPE `tokenizer.json` describes, as plain values: build one in code
/// (e.g. after training BPE), turn it into a tokenizer, or write it as a standard file.
///
/// ```swift
/// var definition = HuggingFaceBPEDefinition(
///     vocabulary: [Array("a".utf8), Array("b".utf8), Array("ab".utf8)],
///     merges: [BPEMerge(0, 1)])
/// definition.preTokenizer = [.byteLevel(addPrefixSpace: false, useRegex: true)]
/// let tokenizer = try HuggingFaceBPETokenizer(definition: definition)
/// try definition.write(to: URL(fileURLWithPath: "out/tokenizer.json"))
/// ```
public struct HuggingFaceBPEDefinition: Sendable, Equatable {
    /// Raw token bytes by id (`nil` for an unused id). Written as GPT-2 byte-level strings.
    public var vocabulary: [[UInt8]?]
    /// Merges in priority order (rank 0 first); each part and the concatenation must be tokens.
    public var merges: [BPEMerge]
    /// Added tokens (special or not), matched in the input before pre-tokenisation.
    public var addedTokens: [AddedToken]
    /// Normalisation applied to ordinary text (empty = none).
    public var normalizers: [UnicodeNormalization]
    /// Pre-tokenizer steps, applied in order (each splits the pieces of the previous one).
    public var preTokenizer: [PreTokenizerStep]
    /// Added-token texts inserted before the sequence by the post-processor (e.g. BOS).
    public var templatePrefix: [String]
    /// Added-token texts appended after the sequence by the post-processor (e.g. EOS).
    public var templateSuffix: [String]
    /// Hugging Face `ignore_merges`: a piece that is a whole token is emitted directly.
    public var ignoreMerges: Bool
    /// Hugging Face `unk_token` (text of a vocabulary or added token).
    public var unknownToken: String?

    /// Creates a definition; the defaults describe a GPT-2 style tokenizer without BOS.
    public init(vocabulary: [[UInt8]?], merges: [BPEMerge], addedTokens: [AddedToken] = [],
                normalizers: [UnicodeNormalization] = [],
                preTokenizer: [PreTokenizerStep] = [.byteLevel(addPrefixSpace: false, useRegex: true)],
                templatePrefix: [String] = [], templateSuffix: [String] = [],
                ignoreMerges: Bool = false, unknownToken: String? = nil) {
        self.vocabulary = vocabulary
        self.merges = merges
        self.addedTokens = addedTokens
        self.normalizers = normalizers
        self.preTokenizer = preTokenizer
        self.templatePrefix = templatePrefix
        self.templateSuffix = templateSuffix
        self.ignoreMerges = ignoreMerges
        self.unknownToken = unknownToken
    }

    /// The Llama 3 pipeline: `Split` with the Llama 3 pattern, then `ByteLevel` without regex.
    public static let llama3PreTokenizer: [PreTokenizerStep] =
        [.split(.llama3), .byteLevel(addPrefixSpace: false, useRegex: false)]
}
