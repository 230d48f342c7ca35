import CALMModel
import Foundation

/// Preallocated KV-cache blocks under a memory budget, reference-counted so that requests sharing
/// a prompt prefix of whole blocks share those blocks (prefilled once).
///
/// A prefix block is registered under its own token ids plus the pool index of the block before
/// it in the chain (`PrefixKey`), compared exactly, so a match means the whole prefix is equal —
/// no hash can collide. (Whoever holds a block holds every block before it, so a registered
/// block's parent index is never reused while the block is registered.) It is *pending* until its
/// owner has computed it and *ready* afterwards; only ready blocks are shared. A block returns to
/// the free list when its last holder lets go.
///
/// `@unchecked Sendable`: all bookkeeping (free list, reference counts, prefix registry) is in
/// `state`, a `Locked`; the other stored properties are `let`s. `memory` is a raw pointer the pool
/// only does arithmetic on: a block's floats are written by the one cache holding it, and shared
/// prefix blocks are only read once ready.
public final class KVBlockPool: KVBlockSource, @unchecked Sendable {
    public let layout: KVLayout
    public let blockFloats: Int
    public var blockPositions: Int { layout.blockPositions }
    /// Blocks in the pool.
    public let totalBlocks: Int

    private let memory: UnsafeMutablePointer<Float>
    private struct State {
        var free: [Int]
        var refCount: [Int]
        var prefix: [PrefixKey: Int] = [:]     // (parent block, block tokens) → block index
        var keyOf: [Int: PrefixKey] = [:]      // block index → registered key
        var ready: Set<Int> = []
        var peakInUse = 0
    }
    private let state: Locked<State>

    /// A pool of `budgetBytes / blockBytes` blocks (at least one). A budget the machine cannot
    /// allocate is `EngineError.invalidConfiguration("kvCacheBytes")`.
    public init(layout: KVLayout, budgetBytes: Int) throws {
        self.layout = layout
        blockFloats = layout.blockFloats
        let blockBytes = max(1, layout.blockFloats * MemoryLayout<Float>.size)
        totalBlocks = max(1, budgetBytes / blockBytes)
        let (bytes, overflow) = totalBlocks.multipliedReportingOverflow(by: blockBytes)
        guard !overflow, let raw = malloc(bytes) else {
            throw EngineError.invalidConfiguration(name: "kvCacheBytes", reason: "cannot allocate \(budgetBytes) bytes for the KV pool")
        }
        memory = raw.bindMemory(to: Float.self, capacity: totalBlocks * layout.blockFloats)
        state = Locked(State(free: Array((0..<totalBlocks).reversed()), refCount: [Int](repeating: 0, count: totalBlocks)))
    }

    deinit { free(memory) }

    /// Blocks currently free.
    public var freeBlocks: Int { state.withLock { $0.free.count } }
    /// Most blocks ever in use at once.
    public var peakBlocksInUse: Int { state.withLock { $0.peakInUse } }

    func pointer(_ index: Int) -> UnsafeMutablePointer<Float> { memory + index * blockFloats }
    func index(of block: UnsafeMutablePointer<Float>) -> Int { (block - memory) / blockFloats }

    public func takeBlock() -> UnsafeMutablePointer<Float>? {
        state.withLock { s -> UnsafeMutablePointer<Float>? in
            guard let i = s.free.popLast() else { return nil }
            s.refCount[i] = 1
            s.peakInUse = max(s.peakInUse, totalBlocks - s.free.count)
            return pointer(i)
        }
    }

    /// Drops one reference; the block is freed (and unregistered) when none remain.
    public func returnBlock(_ block: UnsafeMutablePointer<Float>) {
        let i = index(of: block)
        state.withLock { s in
            precondition(s.refCount[i] > 0, "KV block \(i) returned twice")
            s.refCount[i] -= 1
            if s.refCount[i] == 0 {
                if let key = s.keyOf.removeValue(forKey: i), s.prefix[key] == i { s.prefix[key] = nil }
                s.ready.remove(i)
                s.free.append(i)
            }
        }
    }

    /// Result of looking up a prompt's shareable prefix.
    enum PrefixLookup {
        /// Ready blocks to share (possibly none).
        case ready([UnsafeMutablePointer<Float>])
        /// A block of the chain is registered but still being computed: wait.
        case pending
    }

    /// Identity of a shareable block: the pool index of the block before it in its chain (−1 for
    /// the first) and its own token ids.
    struct PrefixKey: Hashable {
        var parent: Int
        var tokens: [Int]
    }

    /// Looks up the chain of whole shareable blocks (`blocks[b]`: the token ids of block b) and
    /// takes a reference on every ready block found, stopping at the first miss.
    func acquirePrefix(_ blocks: [[Int]]) -> PrefixLookup {
        state.withLock { s in
            var found: [Int] = []
            var parent = -1
            for tokens in blocks {
                guard let i = s.prefix[PrefixKey(parent: parent, tokens: tokens)] else { break }
                if !s.ready.contains(i) { return .pending }
                found.append(i)
                parent = i
            }
            for i in found { s.refCount[i] += 1 }
            return .ready(found.map { pointer($0) })
        }
    }

    /// Registers freshly taken blocks as the pending prefix blocks holding `tokens` (one id list
    /// per block), chained after `parent` (the last shared block, or nil). A key someone else
    /// registered meanwhile is skipped; the chain then continues from our own (unregistered)
    /// block, which simply leaves the rest unshared.
    func registerPending(_ blocks: [UnsafeMutablePointer<Float>], tokens: [[Int]], after parent: UnsafeMutablePointer<Float>?) {
        state.withLock { s in
            var parentIndex = parent.map { index(of: $0) } ?? -1
            for (b, ids) in zip(blocks, tokens) {
                let i = index(of: b)
                let key = PrefixKey(parent: parentIndex, tokens: ids)
                if s.prefix[key] == nil {
                    s.prefix[key] = i
                    s.keyOf[i] = key
                }
                parentIndex = i
            }
        }
    }

    /// Marks a registered block as computed, so later requests may share it.
    func markReady(_ block: UnsafeMutablePointer<Float>) {
        let i = index(of: block)
        state.withLock { s in if s.keyOf[i] != nil { s.ready.insert(i) } }
    }

    /// The token ids of each of the first `blocks` whole blocks of `ids` (`blockTokens` ids each).
    static func blockTokens(_ ids: [Int], blockTokens: Int, blocks: Int) -> [[Int]] {
        (0..<blocks).map { b in Array(ids[(b * blockTokens)..<((b + 1) * blockTokens)]) }
    }
}
