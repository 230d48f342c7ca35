import Foundation

/// Where a sequence's key/value blocks come from. The engine's pool hands out preallocated
/// blocks under a memory budget; standalone use allocates from the heap.
public protocol KVBlockSource: AnyObject, Sendable {
    /// Floats in one block (all layers, keys and values, `blockPositions` positions).
    var blockFloats: Int { get }
    /// Positions (chunks) one block holds.
    var blockPositions: Int { get }
    /// A block, or nil when none is free.
    func takeBlock() -> UnsafeMutablePointer<Float>?
    /// Gives a block back.
    func returnBlock(_ block: UnsafeMutablePointer<Float>)
}

/// Geometry of a KV cache for one backbone.
public struct KVLayout: Sendable, Equatable {
    public let layers: Int
    public let kvHeads: Int
    public let headDim: Int
    public let blockPositions: Int
    public var kvDim: Int { kvHeads * headDim }
    /// Floats in one block: for each layer, keys then values, `blockPositions` rows of kvDim.
    public var blockFloats: Int { layers * 2 * blockPositions * kvDim }
    public init(layers: Int, kvHeads: Int, headDim: Int, blockPositions: Int) {
        self.layers = layers; self.kvHeads = kvHeads; self.headDim = headDim; self.blockPositions = blockPositions
    }
}

/// Heap-backed block source with no budget (single-sequence use, tests).
public final class HeapKVBlockSource: KVBlockSource, Sendable {
    public let blockFloats: Int
    public let blockPositions: Int
    public init(layout: KVLayout) { blockFloats = layout.blockFloats; blockPositions = layout.blockPositions }
    public func takeBlock() -> UnsafeMutablePointer<Float>? {
        let p = UnsafeMutablePointer<Float>.allocate(capacity: blockFloats)
        return p
    }
    public func returnBlock(_ block: UnsafeMutablePointer<Float>) { block.deallocate() }
}

/// The rotated keys and values of one sequence, in blocks of `layout.blockPositions` positions.
///
/// `@unchecked Sendable`: `blocks`, `count` and `sharedPrefixBlocks` are unsynchronised `var`s; a
/// cache belongs to one sequence and is used by one thread at a time (its caller when standalone;
/// in the engine the scheduler actor between steps and the compute thread during a step, while the
/// actor awaits it). Taking and returning blocks goes through `source`, which is `Sendable`; shared
/// prefix blocks are only read.
public final class KVCache: @unchecked Sendable {
    public let layout: KVLayout
    let source: KVBlockSource
    /// Block base pointers, in position order.
    public private(set) var blocks: [UnsafeMutablePointer<Float>] = []
    /// How many leading blocks are shared with other caches (not returned on release).
    public var sharedPrefixBlocks = 0
    /// Positions stored.
    public internal(set) var count = 0
    /// Whether a forward pass may take blocks as it needs them (standalone caches). An engine's
    /// caches are sized by their owner at admission and never grow behind its back.
    public let growsOnDemand: Bool

    public init(layout: KVLayout, source: KVBlockSource, growsOnDemand: Bool = true) {
        self.layout = layout
        self.source = source
        self.growsOnDemand = growsOnDemand
    }

    /// Starts from blocks already filled by another sequence (prefix sharing); they stay owned by their source's accounting.
    public init(layout: KVLayout, source: KVBlockSource, sharedBlocks: [UnsafeMutablePointer<Float>], positions: Int,
                growsOnDemand: Bool = true) {
        self.layout = layout
        self.source = source
        self.growsOnDemand = growsOnDemand
        self.blocks = sharedBlocks
        self.sharedPrefixBlocks = sharedBlocks.count
        self.count = positions
    }

    deinit { release() }

    /// Positions the current blocks can hold.
    public var capacity: Int { blocks.count * layout.blockPositions }

    /// Makes room for `positions` more positions; false when the block source ran out.
    public func reserve(additional positions: Int) -> Bool {
        while capacity < count + positions {
            guard let block = source.takeBlock() else { return false }
            blocks.append(block)
        }
        return true
    }

    /// Makes sure `rows` more positions fit before a pass writes them: a standalone cache takes
    /// blocks as needed; an engine cache must already have them (its owner reserved them).
    public func prepare(rows: Int) throws {
        if capacity >= count + rows { return }
        guard growsOnDemand, reserve(additional: rows) else {
            throw ModelError.invalidParameter(name: "kvCache", reason: growsOnDemand
                ? "out of KV-cache blocks for \(rows) more positions after \(count)"
                : "\(rows) more positions after \(count) exceed the \(capacity) reserved for this sequence")
        }
    }

    /// Returns every owned block to the source and empties the cache.
    public func release() {
        for block in blocks.dropFirst(sharedPrefixBlocks) { source.returnBlock(block) }
        blocks.removeAll()
        sharedPrefixBlocks = 0
        count = 0
    }

    @inline(__always)
    func keyRow(layer: Int, position: Int) -> UnsafeMutablePointer<Float> {
        let b = position / layout.blockPositions, r = position % layout.blockPositions
        return blocks[b] + (layer * 2) * layout.blockPositions * layout.kvDim + r * layout.kvDim
    }

    @inline(__always)
    func valueRow(layer: Int, position: Int) -> UnsafeMutablePointer<Float> {
        let b = position / layout.blockPositions, r = position % layout.blockPositions
        return blocks[b] + (layer * 2 + 1) * layout.blockPositions * layout.kvDim + r * layout.kvDim
    }

    /// Per-block base pointers of one layer's keys (or values) for KV head `head`.
    func blockPointers(layer: Int, values: Bool, head: Int) -> [UnsafePointer<Float>?] {
        let offset = (layer * 2 + (values ? 1 : 0)) * layout.blockPositions * layout.kvDim + head * layout.headDim
        return blocks.map { UnsafePointer($0 + offset) }
    }
}
