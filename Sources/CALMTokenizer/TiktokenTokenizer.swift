import Foundation

/// A tiktoken-format byte-level BPE tokenizer (Llama 3's `tokenizer.model`), with special
/// tokens from `tokenizer_config.json`.
///
/// Ids equal ranks; special tokens follow (128000 … 128255 for Llama 3). Pre-tokenisation uses
/// the Llama 3 split pattern by default.
///
/// ```swift
/// let dir = URL(fileURLWithPath: "shared/data/llama3")
/// let tokenizer = try TiktokenTokenizer(directory: dir)
/// tokenizer.encode("Hello world", addBOS: false, allowSpecialTokens: true) // [9906, 1917]
/// ```
public struct TiktokenTokenizer: TextTokenizer {
    let ranks: TokenByteTable
    let byteRanks: [Int32]
    let matcher: AddedTokenMatcher
    let specialByID: [Int: [UInt8]]

    /// The pre-tokenisation pattern.
    public let pattern: PreTokenizationPattern
    public let vocabularySize: Int
    /// Pieces longer than this many bytes merge with a heap (O(n log n)) instead of a scan.
    var heapMergeThreshold = 128
    public let bosTokenID: Int?
    public let eosTokenID: Int?
    public let padTokenID: Int?
    public let addsBOSByDefault: Bool
    public var addedTokens: [AddedToken] { matcher.tokens }
    /// Number of mergeable (ordinary BPE) ranks, holes included.
    public var mergeableRankCount: Int { ranks.count }

    /// Meta's Llama 3 special tokens: `<|begin_of_text|>` … `<|reserved_special_token_250|>` at
    /// 128000 … 128255 (used when a directory has no `tokenizer_config.json`).
    public static func llama3SpecialTokens(startingAt first: Int = 128_000) -> [AddedToken] {
        var names = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
                     "<|reserved_special_token_1|>", "<|reserved_special_token_2|>",
                     "<|reserved_special_token_3|>", "<|start_header_id|>", "<|end_header_id|>",
                     "<|reserved_special_token_4|>", "<|eot_id|>"]
        names += (5...250).map { "<|reserved_special_token_\($0)|>" }
        return names.enumerated().map { AddedToken(id: first + $0.offset, content: $0.element) }
    }

    /// Loads `tokenizer.model` and (when present) `tokenizer_config.json` from `directory`.
    ///
    /// Without a config the Llama 3 special tokens are used, with BOS `<|begin_of_text|>` and
    /// EOS `<|end_of_text|>`.
    public init(directory: URL, pattern: PreTokenizationPattern = .llama3) throws {
        let model = directory.appendingPathComponent("tokenizer.model")
        let configURL = directory.appendingPathComponent("tokenizer_config.json")
        let config: TokenizerConfig?
        if FileManager.default.fileExists(atPath: configURL.path) {
            config = try TokenizerConfig(contentsOf: configURL)
        } else {
            config = nil
        }
        try self.init(modelFile: model, config: config, pattern: pattern)
    }

    /// Loads a tiktoken rank file with the special tokens and BOS/EOS/pad of `config` (the Llama 3
    /// defaults when `config` is nil).
    public init(modelFile: URL, config: TokenizerConfig?, pattern: PreTokenizationPattern = .llama3) throws {
        let data = try JSONFile.read(modelFile)
        let bytes = [UInt8](data)
        if let first = bytes.first, first < 0x20 || first >= 0x80 {
            throw TokenizerError.unsupportedModelType(
                path: modelFile.path, type: "binary (SentencePiece protobuf?), not tiktoken text")
        }
        let table = try TiktokenRanks.parse(bytes, path: modelFile.path)
        let config = config ?? TokenizerConfig(
            addedTokens: Self.llama3SpecialTokens(startingAt: max(table.count, 128_000)),
            bosToken: "<|begin_of_text|>", eosToken: "<|end_of_text|>")
        let configPath = modelFile.deletingLastPathComponent().appendingPathComponent("tokenizer_config.json").path
        try TokenizerSupport.checkIDs(of: config.addedTokens, path: configPath, key: "added_tokens_decoder")
        func resolve(_ text: String?, _ key: String) throws -> Int? {
            guard let text else { return nil }
            if let token = config.addedTokens.first(where: { $0.content == text }) { return token.id }
            throw TokenizerError.unknownToken(path: configPath, key: key, token: text)
        }
        let bos = try resolve(config.bosToken, "bos_token")
        self.init(
            ranks: table, addedTokens: config.addedTokens, bosTokenID: bos,
            eosTokenID: try resolve(config.eosToken, "eos_token"),
            padTokenID: try resolve(config.padToken, "pad_token"),
            addsBOSByDefault: config.addBOSToken ?? (bos != nil), pattern: pattern)
    }

    init(ranks: TokenByteTable, addedTokens: [AddedToken], bosTokenID: Int?, eosTokenID: Int?,
         padTokenID: Int?, addsBOSByDefault: Bool, pattern: PreTokenizationPattern) {
        self.ranks = ranks
        var byteRanks = [Int32](repeating: -1, count: 256)
        ranks.withView { view in
            for b in 0..<256 {
                var byte = UInt8(b)
                byteRanks[b] = Int32(view.lookup(&byte, 1))
            }
        }
        self.byteRanks = byteRanks
        let sorted = addedTokens.sorted { $0.id < $1.id }
        matcher = AddedTokenMatcher(sorted)
        var specialByID: [Int: [UInt8]] = [:]
        for token in sorted { specialByID[token.id] = Array(token.content.utf8) }
        self.specialByID = specialByID
        self.pattern = pattern
        vocabularySize = max(ranks.count, (sorted.map(\.id).max() ?? -1) + 1)
        self.bosTokenID = bosTokenID
        self.eosTokenID = eosTokenID
        self.padTokenID = padTokenID
        self.addsBOSByDefault = addsBOSByDefault
    }

    public func encode(_ text: String, addBOS: Bool, allowSpecialTokens: Bool) -> [Int] {
        var out: [Int] = []
        out.reserveCapacity(text.utf8.count / 3 + 2)
        if addBOS, let bosTokenID { out.append(bosTokenID) }
        var text = text
        text.withUTF8 { buffer in
            guard let base = buffer.baseAddress, !buffer.isEmpty else { return }
            ranks.withView { view in
                byteRanks.withUnsafeBufferPointer { byteRanks in
                    ScalarClassTable.shared.bmp.withUnsafeBufferPointer { table in
                        var sink = SegmentEncoder(
                            base: base, bmp: table.baseAddress!, pattern: pattern,
                            encoder: TiktokenPieceEncoder(
                                view: view, byteRanks: byteRanks.baseAddress!, heapThreshold: heapMergeThreshold),
                            out: out)
                        out = []
                        matcher.split(buffer, allowSpecial: allowSpecialTokens, into: &sink)
                        out = sink.out
                    }
                }
            }
        }
        return out
    }

    public func decode(_ ids: [Int]) -> String {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(ids.count * 4)
        ranks.storage.withUnsafeBufferPointer { storage in
            for id in ids {
                if id >= 0, id < ranks.count, ranks.lengths[id] >= 0 {
                    let start = Int(ranks.starts[id])
                    buffer.append(contentsOf: storage[start ..< start + Int(ranks.lengths[id])])
                } else if let special = specialByID[id] {
                    buffer.append(contentsOf: special)
                }
            }
        }
        return String(decoding: buffer, as: UTF8.self)
    }

    public func tokenBytes(_ id: Int) -> [UInt8]? {
        ranks.bytes(of: id) ?? specialByID[id]
    }

    public func tokenID(forSpecial text: String) -> Int? { matcher.id(for: text) }

    /// A copy that switches to the heap merge above `threshold` bytes per piece (for tests).
    @_spi(Testing) public func settingHeapMergeThreshold(_ threshold: Int) -> Self {
        var copy = self
        copy.heapMergeThreshold = threshold
        return copy
    }

    public func addingSpecialTokens(_ texts: [String]) -> TiktokenTokenizer {
        let (tokens, _) = TokenizerSupport.appending(texts, to: addedTokens, vocabularySize: vocabularySize)
        return TiktokenTokenizer(
            ranks: ranks, addedTokens: tokens, bosTokenID: bosTokenID, eosTokenID: eosTokenID,
            padTokenID: padTokenID, addsBOSByDefault: addsBOSByDefault, pattern: pattern)
    }

    public func settingPadToken(_ id: Int?) -> TiktokenTokenizer {
        TiktokenTokenizer(
            ranks: ranks, addedTokens: addedTokens, bosTokenID: bosTokenID, eosTokenID: eosTokenID,
            padTokenID: id, addsBOSByDefault: addsBOSByDefault, pattern: pattern)
    }
}

/// Encodes the ordinary segments of an input: scan into pieces, BPE each piece.
struct SegmentEncoder: SegmentSink, PieceSink {
    let base: UnsafePointer<UInt8>
    let bmp: UnsafePointer<UInt8>
    let pattern: PreTokenizationPattern
    let encoder: TiktokenPieceEncoder
    var out: [Int]
    var segmentBase: UnsafePointer<UInt8>? = nil

    init(base: UnsafePointer<UInt8>, bmp: UnsafePointer<UInt8>, pattern: PreTokenizationPattern,
         encoder: TiktokenPieceEncoder, out: [Int]) {
        self.base = base
        self.bmp = bmp
        self.pattern = pattern
        self.encoder = encoder
        self.out = out
    }

    mutating func text(_ start: Int, _ end: Int) {
        let segment = base + start
        segmentBase = segment
        pattern.scan(ClassifiedUTF8(base: segment, count: end - start, bmp: bmp), into: &self)
    }

    mutating func token(_ id: Int) { out.append(id) }

    @inline(__always)
    mutating func piece(_ start: Int, _ end: Int) {
        encoder.encode(segmentBase! + start, end - start, into: &out)
    }
}
