import CALMModel
import Foundation

/// One request's KV memory: its cache, the prefix blocks it shares with other requests, and its
/// own prompt blocks that become shareable once computed. Only `KVBlockPool`'s allocation methods
/// (`admit`, `grow`, `prefilled`, `release`) change it: the one owner of KV allocation.
///
/// `@unchecked Sendable`: `sharedBlocks` and `pendingPrefix` are unsynchronised `var`s that only
/// `KVBlockPool`'s allocation methods below change, and the scheduler actor is their only caller;
/// the compute thread sees just `cache` (through `StepEntry`), during a step while the actor awaits
/// it.
final class SequenceKV: @unchecked Sendable {
    let cache: KVCache
    fileprivate(set) var sharedBlocks: [UnsafeMutablePointer<Float>]
    /// Own blocks registered as shareable prefix blocks, with the position count that completes each.
    fileprivate(set) var pendingPrefix: [(block: UnsafeMutablePointer<Float>, completesAt: Int)] = []

    fileprivate init(cache: KVCache, sharedBlocks: [UnsafeMutablePointer<Float>]) {
        self.cache = cache
        self.sharedBlocks = sharedBlocks
    }
}

extension KVBlockPool {
    /// What admitting a request found.
    enum Admission {
        /// Blocks for the whole request are held (prefix blocks shared where they are ready).
        case admitted(SequenceKV)
        /// Another request is still computing a prefix block this one would share.
        case waitForPrefix
        /// Not enough free blocks now (first in, first served: the caller stops admitting).
        case noMemory
    }

    /// Takes the blocks a request needs for `reservedPositions` positions in all, sharing whole
    /// prompt blocks other requests with the same `sharingKey` have computed (nil: none) and
    /// registering its own as pending. A cache
    /// from here never grows by itself (`growsOnDemand` false): more blocks come only from `grow`.
    func admit(paddedPrompt: [Int], tokensPerPosition unit: Int, promptPositions: Int, reservedPositions: Int,
               sharingKey: Int? = 0) -> Admission {
        let positions = layout.blockPositions
        let shareable = sharingKey == nil ? 0 : max(0, (promptPositions - 1) / positions)
        var blockIDs = Self.blockTokens(paddedPrompt, blockTokens: positions * unit, blocks: shareable)
        // The key joins the first block's ids (a chain shares nothing unless its first block matches);
        // ids are never negative, so a keyed chain never matches an unkeyed one.
        if let key = sharingKey, key != 0, !blockIDs.isEmpty { blockIDs[0].append(-1 - abs(key % Int(Int32.max))) }
        let shared: [UnsafeMutablePointer<Float>]
        switch acquirePrefix(blockIDs) {
        case .pending: return .waitForPrefix
        case let .ready(blocks): shared = blocks
        }
        let needed = (reservedPositions + positions - 1) / positions - shared.count
        let cache = KVCache(layout: layout, source: self, sharedBlocks: shared, positions: shared.count * positions, growsOnDemand: false)
        // Taking blocks can still lose a race with nobody (the scheduler is the only taker), but
        // if it fails the partial reservation goes back and the request waits.
        guard freeBlocks >= needed, cache.reserve(additional: reservedPositions - cache.count) else {
            cache.release()
            for b in shared { returnBlock(b) }
            return .noMemory
        }
        let kv = SequenceKV(cache: cache, sharedBlocks: shared)
        let own = Array(cache.blocks[shared.count..<shareable])
        registerPending(own, tokens: Array(blockIDs[shared.count..<shareable]), after: shared.last)
        kv.pendingPrefix = own.enumerated().map { ($0.element, (shared.count + $0.offset + 1) * positions) }
        return .admitted(kv)
    }

    /// Room for `positions` more positions than the cache holds; false when the pool is out of blocks.
    func grow(_ kv: SequenceKV, toHold positions: Int) -> Bool {
        kv.cache.capacity >= kv.cache.count + positions || kv.cache.reserve(additional: positions)
    }

    /// The request's prompt is computed up to `positions`: its registered prefix blocks that are
    /// complete become shareable.
    func prefilled(_ kv: SequenceKV, positions: Int) {
        while let first = kv.pendingPrefix.first, first.completesAt <= positions {
            markReady(first.block)
            kv.pendingPrefix.removeFirst()
        }
    }

    /// Gives back every block the request holds (shared ones by reference).
    func release(_ kv: SequenceKV) {
        for b in kv.sharedBlocks { returnBlock(b) }
        kv.sharedBlocks = []
        kv.pendingPrefix = []
        kv.cache.release()   // returns the blocks after the shared prefix
    }
}
