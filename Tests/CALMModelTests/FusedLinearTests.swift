import CALMKernels
import CALMModel
import Testing

/// `Linear.fused`: one multiply gives every part's outputs bit for bit, and the parts are layers
/// of their own over the shared packing.
@Suite struct FusedLinearTests {
    func floats(_ n: Int, seed: UInt64) -> [Float] {
        var s = seed
        return (0..<n).map { _ in
            s = s &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int32(truncatingIfNeeded: s >> 33)) / Float(1 << 31)
        }
    }

    @Test(arguments: [CALM_F32, CALM_BF16])
    func fusedMatchesSeparateLayers(dtype: calm_dtype) {
        let inF = 50, outs = [64, 32, 45], rows = 7
        let weights = outs.enumerated().map { floats($0.element * inF, seed: UInt64($0.offset + 1)) }
        let separate = zip(weights, outs).map { Linear(weight: $0.0, outFeatures: $0.1, inFeatures: inF, bias: nil, storageDType: dtype) }
        let x = floats(rows * inF, seed: 9)
        let pool = ComputePool(threads: 2)
        let fusedPair: (fused: Linear, parts: [Linear])? = weights[0].withUnsafeBytes { w0 in
            weights[1].withUnsafeBytes { w1 in
                weights[2].withUnsafeBytes { w2 in
                    Linear.fused([(w0.baseAddress!, CALM_F32, outs[0], nil), (w1.baseAddress!, CALM_F32, outs[1], nil),
                                  (w2.baseAddress!, CALM_F32, outs[2], nil)], inFeatures: inF, storageDType: dtype)
                }
            }
        }
        guard let (fused, parts) = fusedPair else { Issue.record("fusing failed"); return }
        #expect(fused.outFeatures == outs.reduce(0, +))
        let all = fused(x, rows: rows, pool: pool)
        var first = 0
        for (i, part) in parts.enumerated() {
            let alone = separate[i](x, rows: rows, pool: pool)
            #expect(part(x, rows: rows, pool: pool).map(\.bitPattern) == alone.map(\.bitPattern), "part \(i)")
            for r in 0..<rows {
                let slice = Array(all[(r * fused.outFeatures + first)..<(r * fused.outFeatures + first + outs[i])])
                #expect(slice.map(\.bitPattern) == Array(alone[(r * outs[i])..<((r + 1) * outs[i])]).map(\.bitPattern),
                        "part \(i) row \(r)")
            }
            first += outs[i]
        }
        // strided input rows give the same outputs
        var padded = [Float](repeating: .nan, count: rows * (inF + 6))
        for r in 0..<rows { for c in 0..<inF { padded[r * (inF + 6) + c] = x[r * inF + c] } }
        var strided = [Float](repeating: 0, count: rows * fused.outFeatures)
        padded.withUnsafeBufferPointer { p in
            strided.withUnsafeMutableBufferPointer { fused.apply(p.baseAddress!, rows: rows, inputStride: inF + 6, into: $0.baseAddress!, pool: pool) }
        }
        #expect(strided.map(\.bitPattern) == all.map(\.bitPattern))
    }

    @Test func partsNotInWholePanelsAreNotFused() {
        let w = floats(40 * 8, seed: 3)
        let r = w.withUnsafeBytes { p in
            Linear.fused([(p.baseAddress!, CALM_F32, 40, nil), (p.baseAddress!, CALM_F32, 40, nil)], inFeatures: 8, storageDType: CALM_F32)
        }
        #expect(r == nil)
    }
}
