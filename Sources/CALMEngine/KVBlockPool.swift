import CALMModel
import Foundation
import Synchronization

/// Preallocated KV-cache blocks under a memory budget, reference-counted so that requests sharing
/// a prompt prefix of whole blocks share those blocks (prefilled once).
///
/// A prefix block is registered under a hash chained over the token ids of every block up to it
/// (so equal hashes mean equal whole prefixes). It is *pending* until its owner has computed it and
/// *ready* afterwards; only ready blocks are shared. A block returns to the free list when its last
/// holder lets go.
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
        var prefix: [UInt64: Int] = [:]        // chain hash → block index
        var hashOf: [Int: UInt64] = [:]        // block index → registered hash
        var ready: Set<Int> = []
        var peakInUse = 0
    }
    private let state: Mutex<State>

    /// A pool of `budgetBytes / blockBytes` blocks (at least one).
    public init(layout: KVLayout, budgetBytes: Int) {
        self.layout = layout
        blockFloats = layout.blockFloats
        totalBlocks = max(1, budgetBytes / (layout.blockFloats * MemoryLayout<Float>.size))
        memory = .allocate(capacity: totalBlocks * layout.blockFloats)
        state = Mutex(State(free: Array((0..<totalBlocks).reversed()), refCount: [Int](repeating: 0, count: totalBlocks)))
    }

    deinit { memory.deallocate() }

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
                if let h = s.hashOf.removeValue(forKey: i), s.prefix[h] == i { s.prefix[h] = nil }
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

    /// Looks up the chain `hashes` (one per whole shareable block) and takes a reference on every
    /// ready block found, stopping at the first miss.
    func acquirePrefix(_ hashes: [UInt64]) -> PrefixLookup {
        state.withLock { s in
            var found: [Int] = []
            for h in hashes {
                guard let i = s.prefix[h] else { break }
                if !s.ready.contains(i) { return .pending }
                found.append(i)
            }
            for i in found { s.refCount[i] += 1 }
            return .ready(found.map { pointer($0) })
        }
    }

    /// Registers freshly taken blocks as the pending prefix blocks for `hashes` (skipping hashes
    /// someone else registered meanwhile).
    func registerPending(_ blocks: [UnsafeMutablePointer<Float>], hashes: [UInt64]) {
        state.withLock { s in
            for (b, h) in zip(blocks, hashes) where s.prefix[h] == nil {
                let i = index(of: b)
                s.prefix[h] = i
                s.hashOf[i] = h
            }
        }
    }

    /// Marks a registered block as computed, so later requests may share it.
    func markReady(_ block: UnsafeMutablePointer<Float>) {
        let i = index(of: block)
        state.withLock { s in if s.hashOf[i] != nil { s.ready.insert(i) } }
    }

    /// Chain hashes of the whole blocks of `ids` (`blockTokens` ids each; FNV-1a over the previous
    /// hash and the block's ids).
    static func chainHashes(_ ids: [Int], blockTokens: Int, blocks: Int) -> [UInt64] {
        var hashes: [UInt64] = []
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in 0..<blocks {
            for id in ids[(b * blockTokens)..<((b + 1) * blockTokens)] {
                var v = UInt64(bitPattern: Int64(id))
                for _ in 0..<8 { h = (h ^ (v & 0xFF)) &* 0x0000_0100_0000_01B3; v >>= 8 }
            }
            hashes.append(h)
        }
        return hashes
    }
}
