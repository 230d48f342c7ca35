/// BPE merging for long pieces in O(n log n): a doubly linked list of parts and a binary heap
/// of candidate merges keyed by (rank, start). Pops the lowest rank, leftmost on ties, exactly
/// like the quadratic scan it replaces (stale heap entries are skipped).
///
/// `pair(leftStart, leftID, rightEnd, rightID)` returns `rank << 32 | merged id` for the merge
/// of two adjacent parts, or `UInt64.max` when they do not merge.
@inline(__always)
func heapMerge(count n: Int, initialIDs: UnsafePointer<Int>,
               pair: (_ leftStart: Int, _ leftID: Int, _ rightEnd: Int, _ rightID: Int) -> UInt64,
               into out: inout [Int]) {
    var next = [Int](0..<n).map { $0 + 1 }
    var prev = [Int](0..<n).map { $0 - 1 }
    var ends = next
    var ids = [Int](UnsafeBufferPointer(start: initialIDs, count: n))
    var ranks = [UInt64](repeating: UInt64.max, count: n)
    var heap = MinHeap()
    heap.storage.reserveCapacity(n)
    next[n - 1] = -1
    for i in 0 ..< n - 1 {
        let value = pair(i, ids[i], ends[i + 1], ids[i + 1])
        ranks[i] = value
        if value != UInt64.max { heap.push((value & 0xFFFF_FFFF_0000_0000) | UInt64(i)) }
    }
    while let top = heap.pop() {
        let i = Int(top & 0xFFFF_FFFF)
        let rank = top >> 32
        let j = next[i]
        // Stale: part i was absorbed (its rank is reset) or its pair changed.
        guard j >= 0, ranks[i] != UInt64.max, ranks[i] >> 32 == rank else { continue }
        ids[i] = Int(ranks[i] & 0xFFFF_FFFF)
        ends[i] = ends[j]
        next[i] = next[j]
        if next[j] >= 0 { prev[next[j]] = i }
        ranks[j] = UInt64.max
        if next[i] >= 0 {
            let k = next[i]
            ranks[i] = pair(i, ids[i], ends[k], ids[k])
            if ranks[i] != UInt64.max { heap.push((ranks[i] & 0xFFFF_FFFF_0000_0000) | UInt64(i)) }
        } else {
            ranks[i] = UInt64.max
        }
        let p = prev[i]
        if p >= 0 {
            ranks[p] = pair(p, ids[p], ends[i], ids[i])
            if ranks[p] != UInt64.max { heap.push((ranks[p] & 0xFFFF_FFFF_0000_0000) | UInt64(p)) }
        }
    }
    var i = 0
    while i >= 0 {
        if ids[i] >= 0 { out.append(ids[i]) }
        i = next[i]
    }
}

/// A binary min-heap of `UInt64`.
struct MinHeap {
    var storage: [UInt64] = []

    mutating func push(_ value: UInt64) {
        storage.append(value)
        var child = storage.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            if storage[parent] <= storage[child] { break }
            storage.swapAt(parent, child)
            child = parent
        }
    }

    mutating func pop() -> UInt64? {
        guard let first = storage.first else { return nil }
        let last = storage.removeLast()
        if !storage.isEmpty {
            storage[0] = last
            var parent = 0
            let count = storage.count
            while true {
                let left = 2 * parent + 1
                if left >= count { break }
                let right = left + 1
                let child = right < count && storage[right] < storage[left] ? right : left
                if storage[parent] <= storage[child] { break }
                storage.swapAt(parent, child)
                parent = child
            }
        }
        return first
    }
}
