import Foundation

/// A Hugging Face byte-level BPE tokenizer (GPT-2 style `tokenizer.json`; also Llama 3's).
///
/// Supported: model `BPE` (merges as `"a b"` strings or `["a", "b"]` pairs, `ignore_merges`,
/// `unk_token`), added tokens, `NFC`/`NFD`/`NFKC`/`NFKD` normalizers, pre-tokenizers `ByteLevel`
/// (GPT-2 pattern when `use_regex`) and `Split` with the Llama 3 or GPT-2 regex (run by
/// hand-written scanners), post-processors `TemplateProcessing`, `RobertaProcessing`,
/// `BertProcessing`, `ByteLevel`, decoder `ByteLevel`. Anything else is a `TokenizerError`.
///
/// ```swift
/// let tokenizer = try HuggingFaceBPETokenizer(directory: URL(fileURLWithPath: "gpt2"))
/// let ids = tokenizer.encode("Hello world", addBOS: false, allowSpecialTokens: true)
/// tokenizer.decode(ids) // "Hello world"
/// ```
public struct HuggingFaceBPETokenizer: TextTokenizer {
    /// The definition this tokenizer was built from (what `write(to:)` writes).
    public let definition: HuggingFaceBPEDefinition
    let vocabulary: TokenByteTable
    let mergeTable: MergeTable
    let byteIDs: [Int32]
    let matcher: AddedTokenMatcher
    let addedBytes: [Int: [UInt8]]
    let steps: [Step]
    let unknownID: Int

    public let vocabularySize: Int
    /// Pieces longer than this many bytes merge with a heap (O(n log n)) instead of a scan.
    var heapMergeThreshold = 128
    public let bosTokenID: Int?
    public let eosTokenID: Int?
    public let padTokenID: Int?
    public let addsBOSByDefault: Bool
    public var addedTokens: [AddedToken] { matcher.tokens }
    /// Ids the post-processor puts before the sequence (e.g. `[BOS]`).
    public let templatePrefixIDs: [Int]
    /// Ids the post-processor puts after the sequence (e.g. `[EOS]`).
    public let templateSuffixIDs: [Int]

    /// Internal pipeline step.
    enum Step: Equatable {
        case prefixSpace
        case split(PreTokenizationPattern)
    }

    /// Loads `tokenizer.json` and, when present, `tokenizer_config.json` (for BOS/EOS/pad names,
    /// `add_bos_token` and extra added tokens) from `directory`.
    public init(directory: URL) throws {
        let configURL = directory.appendingPathComponent("tokenizer_config.json")
        let config = FileManager.default.fileExists(atPath: configURL.path)
            ? try TokenizerConfig(contentsOf: configURL) : nil
        try self.init(file: directory.appendingPathComponent("tokenizer.json"), config: config)
    }

    /// Loads a `tokenizer.json` file, with optional `tokenizer_config.json` settings.
    public init(file: URL, config: TokenizerConfig? = nil) throws {
        let definition = try HuggingFaceTokenizerParser.parse(file)
        try self.init(definition: definition, config: config, source: file.path)
    }

    /// Builds a tokenizer from a definition (for example one made by BPE training).
    ///
    /// - Parameters:
    ///   - config: optional BOS/EOS/pad names, `add_bos_token` and extra added tokens.
    ///   - source: names the origin in errors.
    public init(definition: HuggingFaceBPEDefinition, config: TokenizerConfig? = nil,
                source: String = "tokenizer.json") throws {
        var definition = definition
        if let config {
            for token in config.addedTokens where !definition.addedTokens.contains(where: { $0.id == token.id }) {
                definition.addedTokens.append(token)
            }
        }
        try TokenizerSupport.checkIDs(of: definition.addedTokens, path: source, key: "added_tokens")
        var duplicate: (first: Int, second: Int)?
        let table = TokenByteTable(tokens: definition.vocabulary, duplicate: &duplicate)
        if let duplicate {
            throw TokenizerError.duplicateToken(
                path: source, line: 0,
                token: "ids \(duplicate.first) and \(duplicate.second) have the same bytes")
        }
        var merged: [(left: Int32, right: Int32, merged: Int32)] = []
        merged.reserveCapacity(definition.merges.count)
        try table.withView { view in
            for (rank, merge) in definition.merges.enumerated() {
                let key = "model.merges[\(rank)]"
                guard let left = table.bytes(of: merge.left) else {
                    throw TokenizerError.unknownToken(path: source, key: key, token: "id \(merge.left)")
                }
                guard let right = table.bytes(of: merge.right) else {
                    throw TokenizerError.unknownToken(path: source, key: key, token: "id \(merge.right)")
                }
                let joined = left + right
                let id = joined.withUnsafeBufferPointer { view.lookup($0.baseAddress!, $0.count) }
                guard id >= 0 else {
                    throw TokenizerError.unknownToken(
                        path: source, key: key, token: ByteLevelMapping.string(for: joined))
                }
                merged.append((Int32(merge.left), Int32(merge.right), Int32(id)))
            }
        }
        var byteIDs = [Int32](repeating: -1, count: 256)
        table.withView { view in
            for b in 0..<256 {
                var byte = UInt8(b)
                byteIDs[b] = Int32(view.lookup(&byte, 1))
            }
        }
        var steps: [Step] = []
        for step in definition.preTokenizer {
            switch step {
            case .split(let pattern): steps.append(.split(pattern))
            case .byteLevel(let addPrefixSpace, let useRegex):
                if addPrefixSpace { steps.append(.prefixSpace) }
                if useRegex { steps.append(.split(.gpt2)) }
            }
        }
        let added = definition.addedTokens.sorted { $0.id < $1.id }
        func resolve(_ text: String, _ key: String) throws -> Int {
            if let token = added.first(where: { $0.content == text }) { return token.id }
            let id = Array(text.utf8).withUnsafeBufferPointer { buffer in
                table.withView { $0.lookup(buffer.baseAddress!, buffer.count) }
            }
            guard id >= 0 else { throw TokenizerError.unknownToken(path: source, key: key, token: text) }
            return id
        }
        let prefix = try definition.templatePrefix.map { try resolve($0, "post_processor") }
        let suffix = try definition.templateSuffix.map { try resolve($0, "post_processor") }
        let unknownID = try definition.unknownToken.map { try resolve($0, "model.unk_token") } ?? -1
        let bos = try config?.bosToken.map { try resolve($0, "bos_token") } ?? prefix.first
        let eos = try config?.eosToken.map { try resolve($0, "eos_token") } ?? suffix.last
        let pad = try config?.padToken.map { try resolve($0, "pad_token") }
        self.init(
            definition: definition, vocabulary: table, mergeTable: MergeTable(merged), byteIDs: byteIDs,
            addedTokens: added, steps: steps, unknownID: unknownID, bosTokenID: bos, eosTokenID: eos,
            padTokenID: pad, addsBOSByDefault: config?.addBOSToken ?? !prefix.isEmpty,
            templatePrefixIDs: prefix, templateSuffixIDs: suffix)
    }

    init(definition: HuggingFaceBPEDefinition, vocabulary: TokenByteTable, mergeTable: MergeTable,
         byteIDs: [Int32], addedTokens: [AddedToken], steps: [Step], unknownID: Int, bosTokenID: Int?,
         eosTokenID: Int?, padTokenID: Int?, addsBOSByDefault: Bool, templatePrefixIDs: [Int],
         templateSuffixIDs: [Int]) {
        self.definition = definition
        self.vocabulary = vocabulary
        self.mergeTable = mergeTable
        self.byteIDs = byteIDs
        matcher = AddedTokenMatcher(addedTokens)
        var addedBytes: [Int: [UInt8]] = [:]
        for token in addedTokens { addedBytes[token.id] = Array(token.content.utf8) }
        self.addedBytes = addedBytes
        self.steps = steps
        self.unknownID = unknownID
        vocabularySize = max(vocabulary.count, (addedTokens.map(\.id).max() ?? -1) + 1)
        self.bosTokenID = bosTokenID
        self.eosTokenID = eosTokenID
        self.padTokenID = padTokenID
        self.addsBOSByDefault = addsBOSByDefault
        self.templatePrefixIDs = templatePrefixIDs
        self.templateSuffixIDs = templateSuffixIDs
    }

    public func encode(_ text: String, addBOS: Bool, allowSpecialTokens: Bool) -> [Int] {
        var out: [Int] = []
        out.reserveCapacity(text.utf8.count / 3 + 2)
        if addBOS, let bosTokenID { out.append(bosTokenID) }
        var text = text
        text.withUTF8 { buffer in
            guard let base = buffer.baseAddress, !buffer.isEmpty else { return }
            vocabulary.withView { view in
                byteIDs.withUnsafeBufferPointer { byteIDs in
                    mergeTable.keys.withUnsafeBufferPointer { keys in
                        mergeTable.values.withUnsafeBufferPointer { values in
                            ScalarClassTable.shared.bmp.withUnsafeBufferPointer { table in
                                let encoder = MergePieceEncoder(
                                    keys: keys.baseAddress!, values: values.baseAddress!, mask: mergeTable.mask,
                                    byteIDs: byteIDs.baseAddress!, view: view,
                                    ignoreMerges: definition.ignoreMerges, unknownID: unknownID,
                                    heapThreshold: heapMergeThreshold)
                                var sink = PipelineEncoder(
                                    base: base, bmp: table.baseAddress!, steps: steps,
                                    normalizers: definition.normalizers, encoder: encoder, out: out)
                                out = []
                                matcher.split(buffer, allowSpecial: allowSpecialTokens, into: &sink)
                                out = sink.out
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    /// Encodes like the Hugging Face pipeline with its post-processor: template prefix ids
    /// (e.g. BOS), the text with special tokens recognised, template suffix ids.
    public func encodeWithPostProcessor(_ text: String) -> [Int] {
        templatePrefixIDs + encode(text, addBOS: false, allowSpecialTokens: true) + templateSuffixIDs
    }

    public func decode(_ ids: [Int]) -> String {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(ids.count * 4)
        vocabulary.storage.withUnsafeBufferPointer { storage in
            for id in ids {
                if let added = addedBytes[id] {
                    buffer.append(contentsOf: added)
                } else if id >= 0, id < vocabulary.count, vocabulary.lengths[id] >= 0 {
                    let start = Int(vocabulary.starts[id])
                    buffer.append(contentsOf: storage[start ..< start + Int(vocabulary.lengths[id])])
                }
            }
        }
        return String(decoding: buffer, as: UTF8.self)
    }

    public func tokenBytes(_ id: Int) -> [UInt8]? { addedBytes[id] ?? vocabulary.bytes(of: id) }

    public func tokenID(forSpecial text: String) -> Int? { matcher.id(for: text) }

    /// A copy that switches to the heap merge above `threshold` bytes per piece (for tests).
    @_spi(Testing) public func settingHeapMergeThreshold(_ threshold: Int) -> Self {
        var copy = self
        copy.heapMergeThreshold = threshold
        return copy
    }

    public func addingSpecialTokens(_ texts: [String]) -> HuggingFaceBPETokenizer {
        let (tokens, _) = TokenizerSupport.appending(texts, to: addedTokens, vocabularySize: vocabularySize)
        var definition = definition
        definition.addedTokens = tokens
        return HuggingFaceBPETokenizer(
            definition: definition, vocabulary: vocabulary, mergeTable: mergeTable, byteIDs: byteIDs,
            addedTokens: tokens, steps: steps, unknownID: unknownID, bosTokenID: bosTokenID,
            eosTokenID: eosTokenID, padTokenID: padTokenID, addsBOSByDefault: addsBOSByDefault,
            templatePrefixIDs: templatePrefixIDs, templateSuffixIDs: templateSuffixIDs)
    }

    public func settingPadToken(_ id: Int?) -> HuggingFaceBPETokenizer {
        HuggingFaceBPETokenizer(
            definition: definition, vocabulary: vocabulary, mergeTable: mergeTable, byteIDs: byteIDs,
            addedTokens: addedTokens, steps: steps, unknownID: unknownID, bosTokenID: bosTokenID,
            eosTokenID: eosTokenID, padTokenID: id, addsBOSByDefault: addsBOSByDefault,
            templatePrefixIDs: templatePrefixIDs, templateSuffixIDs: templateSuffixIDs)
    }

    /// Writes this tokenizer as a standard `tokenizer.json` (see `HuggingFaceBPEDefinition.write`).
    public func write(to url: URL) throws { try definition.write(to: url) }
}

/// Runs normalisation and the pre-tokenizer steps on each ordinary segment, then merge-BPE.
struct PipelineEncoder: SegmentSink {
    let base: UnsafePointer<UInt8>
    let bmp: UnsafePointer<UInt8>
    let steps: [HuggingFaceBPETokenizer.Step]
    let normalizers: [UnicodeNormalization]
    let encoder: MergePieceEncoder
    var out: [Int]

    /// Encodes each piece directly as the scanner finds it (the last split step).
    struct DirectSink: PieceSink {
        let base: UnsafePointer<UInt8>
        let encoder: MergePieceEncoder
        var out: [Int]
        @inline(__always)
        mutating func piece(_ start: Int, _ end: Int) { encoder.encode(base + start, end - start, into: &out) }
    }

    struct CollectSink: PieceSink {
        var ranges: [(Int, Int)] = []
        mutating func piece(_ start: Int, _ end: Int) { ranges.append((start, end)) }
    }

    mutating func text(_ start: Int, _ end: Int) {
        if normalizers.isEmpty {
            process(base + start, end - start, step: 0)
        } else {
            var text = String(decoding: UnsafeBufferPointer(start: base + start, count: end - start), as: UTF8.self)
            for form in normalizers { text = form.apply(text) }
            text.withUTF8 { buffer in
                if let p = buffer.baseAddress, !buffer.isEmpty { process(p, buffer.count, step: 0) }
            }
        }
    }

    mutating func token(_ id: Int) { out.append(id) }

    mutating func process(_ p: UnsafePointer<UInt8>, _ n: Int, step: Int) {
        guard n > 0 else { return }
        if step == steps.count {
            encoder.encode(p, n, into: &out)
            return
        }
        switch steps[step] {
        case .prefixSpace:
            if p[0] == 0x20 {
                process(p, n, step: step + 1)
            } else {
                var copy = [UInt8](repeating: 0x20, count: n + 1)
                copy.withUnsafeMutableBufferPointer { buffer in
                    buffer.baseAddress!.advanced(by: 1).update(from: p, count: n)
                }
                copy.withUnsafeBufferPointer { process($0.baseAddress!, n + 1, step: step + 1) }
            }
        case .split(let pattern):
            let text = ClassifiedUTF8(base: p, count: n, bmp: bmp)
            if step + 1 == steps.count {
                var sink = DirectSink(base: p, encoder: encoder, out: out)
                out = []
                pattern.scan(text, into: &sink)
                out = sink.out
            } else {
                var sink = CollectSink()
                pattern.scan(text, into: &sink)
                for (s, e) in sink.ranges { process(p + s, e - s, step: step + 1) }
            }
        }
    }
}
