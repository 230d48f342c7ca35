import Foundation

extension KVCache {
    /// A new cache holding the first `positions` positions of this one, for branching a sequence
    /// (evaluation continuations, prefix trees). Whole blocks are shared read-only (they stay
    /// owned by this cache, which must outlive the fork); a partial last block is copied into a
    /// fresh block from `source` (default: this cache's source), so appending to the fork never
    /// touches this cache. Returns nil when the source has no free block.
    public func fork(prefix positions: Int, source: KVBlockSource? = nil) -> KVCache? {
        precondition(positions >= 0 && positions <= count, "fork prefix \(positions) beyond \(count) cached positions")
        let source = source ?? self.source
        precondition(source.blockPositions == layout.blockPositions, "a fork's blocks must have the same geometry")
        let full = positions / layout.blockPositions
        let partial = positions % layout.blockPositions
        let fork = KVCache(layout: layout, source: source, sharedBlocks: Array(blocks[0..<full]),
                           positions: full * layout.blockPositions)
        guard partial > 0 else { return fork }
        guard fork.reserve(additional: partial) else { return nil }
        // Copy the rows 0..<partial of every layer's keys and values.
        let rowFloats = layout.kvDim, stride = layout.blockPositions * rowFloats
        let from = blocks[full], to = fork.blocks[full]
        for part in 0..<(layout.layers * 2) {
            (to + part * stride).update(from: from + part * stride, count: partial * rowFloats)
        }
        fork.count = positions
        return fork
    }
}
