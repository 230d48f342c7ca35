import CALMKernels
import Foundation

/// Causal multi-head attention of a batch's new rows over their own sequences' paged KV caches:
/// the part of a decoder layer that Llama and GPT-2 share (they differ in what happens to q and k
/// before it: RoPE or nothing). Row `i` of a slice is stored at cache slot `cache.count + i` and
/// sees slots `0 … cache.count + i`.
struct BlockAttention {
    /// Query heads, key/value heads (grouped-query when fewer) and the width of a head.
    let heads: Int, kvHeads: Int, headDim: Int

    /// Floats in a query (and output) row.
    var queryWidth: Int { heads * headDim }
    /// Floats in a key (and value) row.
    var kvDim: Int { kvHeads * headDim }

    /// Writes every new row's key and value (rows × kvDim each, slices' rows in order) into its
    /// sequence's cache at `cache.count + i`. The caches must have room (`KVCache.reserve`).
    func store(layer l: Int, keys k: UnsafePointer<Float>, values v: UnsafePointer<Float>, slices: [BackboneSlice]) {
        var row = 0
        for s in slices {
            for i in 0..<s.rows {
                let pos = s.cache.count + i
                s.cache.keyRow(layer: l, position: pos).update(from: k + row * kvDim, count: kvDim)
                s.cache.valueRow(layer: l, position: pos).update(from: v + row * kvDim, count: kvDim)
                row += 1
            }
        }
    }

    /// Attention of every new row (`q`: rows × queryWidth) over its sequence's cache, written to
    /// `out` (same shape). Work units are row tiles of one sequence, each for all heads at once
    /// (the cached rows read whole, in order) while a tile's scores stay small (decode, short
    /// prompts), else (row tile, head); split across the pool. A tile's keys and values are read
    /// once for all its rows. Every path gives each row the same result.
    func run(layer l: Int, q: [Float], slices: [BackboneSlice], out: inout [Float], pool: ComputePool) {
        let hidden = queryWidth
        let group = heads / kvHeads
        let scale = 1 / Float(headDim).squareRoot()
        let tileRows = 32
        // (first row, rows, keys visible to the first row, slice) per tile
        var tiles: [(row: Int, rows: Int, firstKeys: Int, slice: Int)] = []
        var row = 0
        var work = 0
        for (si, s) in slices.enumerated() {
            var i = 0
            while i < s.rows {
                let n = min(tileRows, s.rows - i)
                tiles.append((row + i, n, s.cache.count + i + 1, si))
                work += n * (s.cache.count + i + n)
                i += n
            }
            row += s.rows
        }
        let scratchHeads = tiles.map { min($0.rows, 8) * heads * ($0.firstKeys + $0.rows - 1) }.max() ?? 1
        // one task for all heads reads each key row once for every head; but with fewer tasks than
        // threads (one sequence's Token Maturation tail, a single prompt) it leaves threads idle, and
        // the per-head tasks spread the same work over them
        let allHeads = scratchHeads <= 1 << 15 && (tiles.count >= pool.threadCount || pool.threadCount == 1)
        var tasks: [AttentionTask] = []
        tasks.reserveCapacity(tiles.count)
        var pointers: [Int: ([[UnsafePointer<Float>?]], [[UnsafePointer<Float>?]])] = [:]
        for t in tiles {
            let (kPtrs, vPtrs): ([[UnsafePointer<Float>?]], [[UnsafePointer<Float>?]])
            if let p = pointers[t.slice] {
                (kPtrs, vPtrs) = p
            } else {
                let cache = slices[t.slice].cache
                // all heads: head 0's pointers (the kernel adds each head's offset)
                let n = allHeads ? 1 : kvHeads
                kPtrs = (0..<n).map { cache.blockPointers(layer: l, values: false, head: $0) }
                vPtrs = (0..<n).map { cache.blockPointers(layer: l, values: true, head: $0) }
                pointers[t.slice] = (kPtrs, vPtrs)
            }
            tasks.append(AttentionTask(row: t.row, rows: t.rows, firstKeys: t.firstKeys, keyBlocks: kPtrs, valueBlocks: vPtrs,
                                       blockPositions: slices[t.slice].cache.layout.blockPositions))
        }
        let maxScratch = allHeads ? scratchHeads : tasks.map { min($0.rows, 8) * ($0.firstKeys + $0.rows - 1) }.max() ?? 1
        let job = AttentionJob(tasks: tasks, heads: heads, kvHeads: kvHeads, group: group, headDim: headDim, hidden: hidden,
                               scale: scale,
                               kvDim: kvDim, scratchPerThread: maxScratch, threads: pool.threadCount, allHeads: allHeads)
        q.withUnsafeBufferPointer { qp in
            out.withUnsafeMutableBufferPointer { op in
                job.q = qp.baseAddress!
                job.out = op.baseAddress!
                let units = allHeads ? tasks.count : tasks.count * heads
                if work * heads * headDim < 1 << 16 || pool.threadCount == 1 || units == 1 {
                    for u in 0..<units { job.run(unit: u, thread: 0) }
                } else {
                    let ctx = Unmanaged.passUnretained(job).toOpaque()
                    calm_pool_run(pool.raw, Int32(units), { ctx, unit, thread in
                        Unmanaged<AttentionJob>.fromOpaque(ctx!).takeUnretainedValue().run(unit: Int(unit), thread: Int(thread))
                    }, ctx)
                }
            }
        }
    }
}

struct AttentionTask {
    /// First batch row of the tile, and how many consecutive rows (of one sequence) it has.
    let row: Int
    let rows: Int
    /// Keys visible to the tile's first row.
    let firstKeys: Int
    /// Block pointers per KV head (only head 0's when the job runs all heads at once).
    let keyBlocks: [[UnsafePointer<Float>?]]
    let valueBlocks: [[UnsafePointer<Float>?]]
    /// Positions per block of this sequence's cache (caches of one batch may differ: Token
    /// Maturation's private guidance caches sit beside the engine's).
    let blockPositions: Int
}

/// Shared state of one layer's attention, split into row tiles (all heads at once) or
/// (row tile, head) units across the pool.
///
/// `@unchecked Sendable`: `q` and `out` are set by the calling thread before `calm_pool_run`
/// publishes the job (its atomics order the writes) and only read afterwards; tasks write disjoint
/// ranges of `out`, and each running task uses the `scratch` slice of its pool thread index, which
/// is unique among tasks running at the same time. The job does not outlive `run`.
final class AttentionJob: @unchecked Sendable {
    let tasks: [AttentionTask]
    let heads, kvHeads, group, headDim, hidden, kvDim: Int
    let scale: Float
    let allHeads: Bool
    var q: UnsafePointer<Float>!
    var out: UnsafeMutablePointer<Float>!
    let scratch: UnsafeMutablePointer<Float>
    let scratchPerThread: Int

    init(tasks: [AttentionTask], heads: Int, kvHeads: Int, group: Int, headDim: Int, hidden: Int, scale: Float,
         kvDim: Int, scratchPerThread: Int, threads: Int, allHeads: Bool) {
        self.tasks = tasks; self.heads = heads; self.kvHeads = kvHeads; self.group = group; self.headDim = headDim
        self.hidden = hidden; self.scale = scale; self.kvDim = kvDim
        self.allHeads = allHeads
        self.scratchPerThread = max(scratchPerThread, 1)
        scratch = .allocate(capacity: self.scratchPerThread * max(threads, 1))
    }

    deinit { scratch.deallocate() }

    func run(unit: Int, thread: Int) {
        if allHeads {
            let task = tasks[unit]
            task.keyBlocks[0].withUnsafeBufferPointer { kb in
                task.valueBlocks[0].withUnsafeBufferPointer { vb in
                    calm_attention_rows_heads(q + task.row * hidden, hidden, Int32(task.rows), Int32(heads), Int32(kvHeads),
                                              Int32(headDim), scale, kb.baseAddress!, vb.baseAddress!, Int32(kb.count),
                                              Int32(task.blockPositions), kvDim, Int32(task.firstKeys),
                                              scratch + thread * scratchPerThread, out + task.row * hidden, hidden)
                }
            }
            return
        }
        let task = tasks[unit / heads]
        let h = unit % heads
        let g = h / group
        task.keyBlocks[g].withUnsafeBufferPointer { kb in
            task.valueBlocks[g].withUnsafeBufferPointer { vb in
                calm_attention_rows(q + task.row * hidden + h * headDim, hidden, Int32(task.rows), Int32(headDim), scale,
                                    kb.baseAddress!, vb.baseAddress!, Int32(task.blockPositions), kvDim, Int32(task.firstKeys),
                                    scratch + thread * scratchPerThread, out + task.row * hidden + h * headDim, hidden)
            }
        }
    }
}
