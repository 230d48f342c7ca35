/// Merge-list BPE (Hugging Face `BPE` model): the ranked pair (a, b) → merged id table and the
/// per-piece merge loop.
final class MergeTable: Sendable {
    /// Slots of keys `(a << 32 | b) + 1`, 0 = empty.
    let keys: [UInt64]
    /// `rank << 32 | merged id` for each slot.
    let values: [UInt64]
    let mask: Int
    /// The merges in rank order, as (left id, right id, merged id).
    let merges: [(left: Int32, right: Int32, merged: Int32)]

    init(_ merges: [(left: Int32, right: Int32, merged: Int32)]) {
        var capacity = 16
        while capacity < merges.count * 2 { capacity <<= 1 }
        var keys = [UInt64](repeating: 0, count: capacity)
        var values = [UInt64](repeating: 0, count: capacity)
        let mask = capacity - 1
        for (rank, merge) in merges.enumerated() {
            let key = (UInt64(UInt32(merge.left)) << 32 | UInt64(UInt32(merge.right))) + 1
            var slot = Self.slot(key, mask)
            var duplicate = false
            while keys[slot] != 0 {
                if keys[slot] == key { duplicate = true; break }  // first (best) rank wins
                slot = (slot + 1) & mask
            }
            if duplicate { continue }
            keys[slot] = key
            values[slot] = UInt64(rank) << 32 | UInt64(UInt32(merge.merged))
        }
        self.keys = keys
        self.values = values
        self.mask = mask
        self.merges = merges
    }

    @inline(__always)
    static func slot(_ key: UInt64, _ mask: Int) -> Int {
        var h = key &* 0x9E37_79B9_7F4A_7C15
        h ^= h >> 31
        return Int(truncatingIfNeeded: h) & mask
    }
}

/// Pointer view of a `MergeTable` plus the model's byte ids, for the encoding hot loop.
struct MergePieceEncoder {
    let keys: UnsafePointer<UInt64>
    let values: UnsafePointer<UInt64>
    let mask: Int
    /// Id of each single-byte token, -1 when missing.
    let byteIDs: UnsafePointer<Int32>
    /// Whole-piece lookups (used when `ignoreMerges`).
    let view: TokenByteView
    let ignoreMerges: Bool
    let unknownID: Int
    /// Pieces longer than this use the O(n log n) heap merge instead of the quadratic scan.
    let heapThreshold: Int

    /// `rank << 32 | merged`, or `UInt64.max` when (a, b) is not a merge.
    @inline(__always)
    func merge(_ a: Int, _ b: Int) -> UInt64 {
        let key = (UInt64(UInt32(truncatingIfNeeded: a)) << 32 | UInt64(UInt32(truncatingIfNeeded: b))) + 1
        var slot = MergeTable.slot(key, mask)
        while true {
            let k = keys[slot]
            if k == key { return values[slot] }
            if k == 0 { return UInt64.max }
            slot = (slot + 1) & mask
        }
    }

    @inline(__always)
    func encode(_ piece: UnsafePointer<UInt8>, _ n: Int, into out: inout [Int]) {
        if ignoreMerges || n == 1 {
            let whole = view.lookup(piece, n)
            if whole >= 0 {
                out.append(whole)
                return
            }
        }
        mergeAll(piece, n, into: &out)
    }

    @inline(never)
    func mergeAll(_ piece: UnsafePointer<UInt8>, _ n: Int, into out: inout [Int]) {
        withUnsafeTemporaryAllocation(of: Int.self, capacity: 2 * n + 1) { scratch in
            let symbols = scratch.baseAddress!
            let pairs = symbols + n  // merge info of (symbols[i], symbols[i + 1])
            var count = 0
            for i in 0 ..< n {
                let id = Int(byteIDs[Int(piece[i])])
                if id >= 0 {
                    symbols[count] = id
                    count += 1
                } else if unknownID >= 0 {
                    symbols[count] = unknownID
                    count += 1
                }
            }
            guard count > 1 else {
                if count == 1 { out.append(symbols[0]) }
                return
            }
            if count > heapThreshold {
                heapMerge(count: count, initialIDs: symbols, pair: { _, left, _, right in
                    merge(left, right)
                }, into: &out)
                return
            }
            for i in 0 ..< count - 1 {
                pairs[i] = Int(bitPattern: UInt(merge(symbols[i], symbols[i + 1])))
            }
            while count > 1 {
                var best = UInt64.max
                var at = -1
                for i in 0 ..< count - 1 {
                    let value = UInt64(UInt(bitPattern: pairs[i]))
                    if value >> 32 < best >> 32 {
                        best = value
                        at = i
                    }
                }
                if at < 0 { break }
                symbols[at] = Int(best & 0xFFFF_FFFF)
                var k = at + 1
                while k < count - 1 {
                    symbols[k] = symbols[k + 1]
                    pairs[k] = pairs[k + 1]
                    k += 1
                }
                count -= 1
                if at > 0 {
                    pairs[at - 1] = Int(bitPattern: UInt(merge(symbols[at - 1], symbols[at])))
                }
                if at < count - 1 {
                    pairs[at] = Int(bitPattern: UInt(merge(symbols[at], symbols[at + 1])))
                }
            }
            for i in 0 ..< count { out.append(symbols[i]) }
        }
    }
}
