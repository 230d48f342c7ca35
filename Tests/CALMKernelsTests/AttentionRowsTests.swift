import CALMKernels
import Testing

/// Tiled causal attention gives every row exactly what the one-row kernel gives it.
@Test func attentionRowsMatchOneRowKernelBitForBit() {
    let headDim = 16, blockLen = 5, posStride = 24, keys = 37, rows = 19
    let firstKeys = keys - rows + 1
    var rng: UInt64 = 7
    func next() -> Float {
        rng = rng &* 6364136223846793005 &+ 1442695040888963407
        return Float(Int32(truncatingIfNeeded: rng >> 33)) / Float(1 << 31)
    }
    let blocks = (keys + blockLen - 1) / blockLen
    let kStore = (0..<(blocks * blockLen * posStride)).map { _ in next() }
    let vStore = (0..<(blocks * blockLen * posStride)).map { _ in next() }
    let q = (0..<(rows * headDim)).map { _ in next() }
    kStore.withUnsafeBufferPointer { kp in
        vStore.withUnsafeBufferPointer { vp in
            let kb: [UnsafePointer<Float>?] = (0..<blocks).map { kp.baseAddress! + $0 * blockLen * posStride + 3 }
            let vb: [UnsafePointer<Float>?] = (0..<blocks).map { vp.baseAddress! + $0 * blockLen * posStride + 3 }
            var tiled = [Float](repeating: .nan, count: rows * headDim)
            var scratch = [Float](repeating: 0, count: 8 * keys)
            kb.withUnsafeBufferPointer { kbp in
                vb.withUnsafeBufferPointer { vbp in
                    calm_attention_rows(q, headDim, Int32(rows), Int32(headDim), 0.25, kbp.baseAddress!, vbp.baseAddress!,
                                        Int32(blockLen), posStride, Int32(firstKeys), &scratch, &tiled, headDim)
                    for r in 0..<rows {
                        var single = [Float](repeating: .nan, count: headDim)
                        var s = [Float](repeating: 0, count: keys)
                        q.withUnsafeBufferPointer { qp in
                            calm_attention_head(qp.baseAddress! + r * headDim, Int32(headDim), 0.25, kbp.baseAddress!, vbp.baseAddress!,
                                                Int32(blockLen), posStride, Int32(firstKeys + r), &s, &single)
                        }
                        #expect(Array(tiled[(r * headDim)..<((r + 1) * headDim)]) == single, "row \(r)")
                    }
                }
            }
        }
    }
}

/// All heads at once (grouped-query included) give every head of every row exactly what the
/// one-row, one-head kernel gives it.
@Test(arguments: [(64, 6, 2, 1), (64, 6, 2, 11), (20, 4, 4, 9), (32, 8, 1, 3)])
func attentionRowsAllHeadsMatchOneHeadKernelBitForBit(shape: (Int, Int, Int, Int)) {
    let (headDim, heads, kvHeads, rows) = shape
    let blockLen = 4, keys = 23, group = heads / kvHeads
    let posStride = kvHeads * headDim + 5, qStride = heads * headDim + 3
    let firstKeys = keys - rows + 1
    var rng: UInt64 = 11
    func next() -> Float {
        rng = rng &* 6364136223846793005 &+ 1442695040888963407
        return Float(Int32(truncatingIfNeeded: rng >> 33)) / Float(1 << 31)
    }
    let blocks = (keys + blockLen - 1) / blockLen
    let kStore = (0..<(blocks * blockLen * posStride + 8)).map { _ in next() }
    let vStore = (0..<(blocks * blockLen * posStride + 8)).map { _ in next() }
    let q = (0..<(rows * qStride)).map { _ in next() }
    do {
        kStore.withUnsafeBufferPointer { kp in
            vStore.withUnsafeBufferPointer { vp in
                // blocks 2 floats in, so rows are not vector-aligned
                let kb: [UnsafePointer<Float>?] = (0..<blocks).map { kp.baseAddress! + $0 * blockLen * posStride + 2 }
                let vb: [UnsafePointer<Float>?] = (0..<blocks).map { vp.baseAddress! + $0 * blockLen * posStride + 2 }
                var all = [Float](repeating: .nan, count: rows * qStride)
                var scratch = [Float](repeating: 0, count: min(rows, 8) * heads * keys)
                kb.withUnsafeBufferPointer { kbp in
                    vb.withUnsafeBufferPointer { vbp in
                        calm_attention_rows_heads(q, qStride, Int32(rows), Int32(heads), Int32(kvHeads), Int32(headDim), 0.125,
                                                  kbp.baseAddress!, vbp.baseAddress!, Int32(blocks), Int32(blockLen), posStride,
                                                  Int32(firstKeys), &scratch, &all, qStride)
                    }
                }
                for h in 0..<heads {
                    let off = (h / group) * headDim
                    let kh: [UnsafePointer<Float>?] = kb.map { $0! + off }
                    let vh: [UnsafePointer<Float>?] = vb.map { $0! + off }
                    for r in 0..<rows {
                        var single = [Float](repeating: .nan, count: headDim)
                        var s = [Float](repeating: 0, count: keys)
                        kh.withUnsafeBufferPointer { khp in
                            vh.withUnsafeBufferPointer { vhp in
                                q.withUnsafeBufferPointer { qp in
                                    calm_attention_head(qp.baseAddress! + r * qStride + h * headDim, Int32(headDim), 0.125,
                                                        khp.baseAddress!, vhp.baseAddress!, Int32(blockLen), posStride,
                                                        Int32(firstKeys + r), &s, &single)
                                }
                            }
                        }
                        let got = Array(all[(r * qStride + h * headDim)..<(r * qStride + (h + 1) * headDim)])
                        #expect(got.map(\.bitPattern) == single.map(\.bitPattern), "head \(h) row \(r)")
                    }
                }
            }
        }
    }
}
