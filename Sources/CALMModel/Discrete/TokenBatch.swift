/// The token-id side of a batched pass of a discrete causal LM (Llama, GPT-2): checks the ids,
/// reserves each cache's room and lays the sequences out as backbone slices.
enum TokenBatch {
    /// `tokens[i]` goes to `caches[i]`: returns every id in order and one slice per sequence.
    /// Ids outside the vocabulary are `ModelError.invalidPrompt`; a cache without room (`KVCache.prepare`) is
    /// `ModelError.invalidParameter("kvCache")`.
    static func prepare(tokens: [[Int]], caches: [KVCache], vocabSize: Int) throws -> (ids: [Int], slices: [BackboneSlice]) {
        guard tokens.count == caches.count else {
            throw ModelError.invalidParameter(name: "caches", reason: "\(caches.count) caches for \(tokens.count) sequences")
        }
        var ids: [Int] = []
        var slices: [BackboneSlice] = []
        for (t, cache) in zip(tokens, caches) {
            for id in t where id < 0 || id >= vocabSize {
                throw ModelError.invalidPrompt(reason: "token id \(id) is outside the vocabulary (size \(vocabSize))")
            }
            ids += t
            slices.append(BackboneSlice(cache: cache, rows: t.count))
            try cache.prepare(rows: t.count)
        }
        return (ids, slices)
    }
}
