import Foundation

extension TiktokenTokenizer {
    /// Converts this tokenizer to a Hugging Face byte-level BPE definition (the standard
    /// tiktoken → `tokenizer.json` conversion): the vocabulary is the ranks as GPT-2 byte-level
    /// strings, and each token of rank r gets the merge found by re-running BPE on its bytes with
    /// only ranks below r. Special tokens become added tokens; BOS becomes a
    /// `TemplateProcessing` prefix; `ignore_merges` is on, as in Llama 3's `tokenizer.json`.
    ///
    /// ```swift
    /// let definition = try TiktokenTokenizer(directory: llama3Dir).huggingFaceDefinition()
    /// try definition.write(to: outDir.appendingPathComponent("tokenizer.json"))
    /// ```
    public func huggingFaceDefinition() -> HuggingFaceBPEDefinition {
        let count = ranks.count
        var vocabulary = [[UInt8]?](repeating: nil, count: count)
        var merges: [BPEMerge] = []
        merges.reserveCapacity(count)
        ranks.withView { view in
            for rank in 0..<count {
                guard let token = ranks.bytes(of: rank) else { continue }
                vocabulary[rank] = token
                guard token.count >= 2 else { continue }
                let parts = token.withUnsafeBufferPointer {
                    Self.bytePairParts($0.baseAddress!, $0.count, maxRank: rank, view: view)
                }
                guard parts.count == 3 else { continue }
                let left = token.withUnsafeBufferPointer { view.lookup($0.baseAddress!, parts[1]) }
                let right = token.withUnsafeBufferPointer { view.lookup($0.baseAddress! + parts[1], parts[2] - parts[1]) }
                if left >= 0, right >= 0 { merges.append(BPEMerge(left, right)) }
            }
        }
        let prefix = bosTokenID.flatMap { id in addedTokens.first { $0.id == id }?.content }
        let pattern: [PreTokenizerStep] = self.pattern == .llama3
            ? HuggingFaceBPEDefinition.llama3PreTokenizer
            : [.byteLevel(addPrefixSpace: false, useRegex: true)]
        return HuggingFaceBPEDefinition(
            vocabulary: vocabulary, merges: merges, addedTokens: addedTokens, preTokenizer: pattern,
            templatePrefix: addsBOSByDefault ? (prefix.map { [$0] } ?? []) : [],
            ignoreMerges: true)
    }

    /// Part boundaries of BPE over `bytes` using only ranks below `maxRank` (plain O(n²) loop;
    /// not the encoding hot path).
    static func bytePairParts(_ bytes: UnsafePointer<UInt8>, _ n: Int, maxRank: Int, view: TokenByteView) -> [Int] {
        var bounds = Array(0...n)
        while bounds.count > 2 {
            var best = Int.max
            var at = -1
            for i in 0 ..< bounds.count - 2 {
                let r = view.lookup(bytes + bounds[i], bounds[i + 2] - bounds[i])
                if r >= 0, r < best {
                    best = r
                    at = i
                }
            }
            if at < 0 || best >= maxRank { break }
            bounds.remove(at: at + 1)
        }
        return bounds
    }
}
