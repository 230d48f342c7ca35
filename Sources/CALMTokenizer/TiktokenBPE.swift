/// tiktoken's byte-pair merge: inside one piece, repeatedly merge the adjacent pair of parts
/// whose concatenation has the lowest rank (leftmost on ties) until no concatenation is a token.
/// A piece that is itself a token is emitted directly (tiktoken checks this first).
struct TiktokenPieceEncoder {
    let view: TokenByteView
    /// Rank of each single byte, -1 when the byte has no token.
    let byteRanks: UnsafePointer<Int32>
    /// Pieces longer than this use the O(n log n) heap merge instead of the quadratic scan.
    let heapThreshold: Int

    @inline(__always)
    func encode(_ piece: UnsafePointer<UInt8>, _ n: Int, into out: inout [Int]) {
        if n == 1 {
            let id = byteRanks[Int(piece[0])]
            if id >= 0 { out.append(Int(id)) }
            return
        }
        let whole = view.lookup(piece, n)
        if whole >= 0 {
            out.append(whole)
            return
        }
        merge(piece, n, into: &out)
    }

    @inline(never)
    func merge(_ piece: UnsafePointer<UInt8>, _ n: Int, into out: inout [Int]) {
        if n > heapThreshold {
            withUnsafeTemporaryAllocation(of: Int.self, capacity: n) { ids in
                for i in 0 ..< n { ids[i] = Int(byteRanks[Int(piece[i])]) }
                heapMerge(count: n, initialIDs: ids.baseAddress!, pair: { start, _, end, _ in
                    let r = view.lookup(piece + start, end - start)
                    return r < 0 ? UInt64.max : UInt64(r) << 32 | UInt64(r)
                }, into: &out)
            }
            return
        }
        withUnsafeTemporaryAllocation(of: Int.self, capacity: 3 * (n + 1)) { scratch in
            let starts = scratch.baseAddress!
            let ranks = starts + (n + 1)
            let ids = ranks + (n + 1)
            for i in 0...n { starts[i] = i }
            for i in 0 ..< n { ids[i] = Int(byteRanks[Int(piece[i])]) }
            let none = Int.max
            for i in 0 ..< n - 1 {
                let r = view.lookup(piece + i, 2)
                ranks[i] = r < 0 ? none : r
            }
            ranks[n - 1] = none
            ranks[n] = none
            var count = n + 1  // number of boundaries, parts = count - 1
            @inline(__always) func rank(after i: Int) -> Int {
                // Rank of part i joined with the part after the one being merged into it.
                guard i + 3 < count else { return none }
                let r = view.lookup(piece + starts[i], starts[i + 3] - starts[i])
                return r < 0 ? none : r
            }
            while true {
                var best = none
                var at = -1
                for i in 0 ..< count - 1 where ranks[i] < best {
                    best = ranks[i]
                    at = i
                }
                if at < 0 { break }
                if at > 0 { ranks[at - 1] = rank(after: at - 1) }
                ranks[at] = rank(after: at)
                ids[at] = best
                // Remove boundary at + 1.
                var k = at + 1
                while k < count - 1 {
                    starts[k] = starts[k + 1]
                    ranks[k] = ranks[k + 1]
                    ids[k] = ids[k + 1]
                    k += 1
                }
                count -= 1
            }
            for i in 0 ..< count - 1 where ids[i] >= 0 { out.append(ids[i]) }
        }
    }
}
