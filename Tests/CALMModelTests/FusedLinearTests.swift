import CALMKernels
@testable import CALMModel
import Testing

/// `Linear.fused` (and `QKVProjection` over it): one multiply gives every part's outputs bit for bit,
/// and the parts are layers of their own over the shared packing.
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

    /// `QKVProjection` over a fused packing: one multiply gives q, k and v bit for bit what the three
    /// layers give alone (biases included, rows across the streaming path's tile heights and the
    /// one-row kernel), in f32 and bf16 storage.
    @Test(arguments: [CALM_F32, CALM_BF16])
    func qkvProjectionMatchesThreeLayers(dtype: calm_dtype) throws {
        let pool = ComputePool(threads: 2)
        let inF = 72, widths = [64, 32, 32]
        let weights = widths.enumerated().map { floats($0.element * inF, seed: UInt64(10 + $0.offset)) }
        let biases = widths.enumerated().map { floats($0.element, seed: UInt64(20 + $0.offset)) }
        let fusedPair: (fused: Linear, parts: [Linear])? = weights[0].withUnsafeBytes { w0 in
            weights[1].withUnsafeBytes { w1 in
                weights[2].withUnsafeBytes { w2 in
                    Linear.fused([(w0.baseAddress!, CALM_F32, widths[0], biases[0]), (w1.baseAddress!, CALM_F32, widths[1], biases[1]),
                                  (w2.baseAddress!, CALM_F32, widths[2], biases[2])], inFeatures: inF, storageDType: dtype)
                }
            }
        }
        let (fused, views) = try #require(fusedPair)
        let separate = (0..<3).map { Linear(weight: weights[$0], outFeatures: widths[$0], inFeatures: inF, bias: biases[$0], storageDType: dtype) }
        let one = QKVProjection(q: views[0], k: views[1], v: views[2], fused: fused)
        let three = QKVProjection(q: separate[0], k: separate[1], v: separate[2], fused: nil)
        for rows in [1, 2, 5, 16, 17, 40] {
            let x = floats(rows * inF, seed: UInt64(rows))
            var scratch: [Float] = []
            var q1 = [Float](repeating: 0, count: rows * 64), k1 = [Float](repeating: 0, count: rows * 32), v1 = k1
            var q3 = q1, k3 = k1, v3 = v1
            one.apply(x, rows: rows, q: &q1, k: &k1, v: &v1, scratch: &scratch, pool: pool)
            three.apply(x, rows: rows, q: &q3, k: &k3, v: &v3, scratch: &scratch, pool: pool)
            #expect(q1.map(\.bitPattern) == q3.map(\.bitPattern), "q, \(rows) rows")
            #expect(k1.map(\.bitPattern) == k3.map(\.bitPattern), "k, \(rows) rows")
            #expect(v1.map(\.bitPattern) == v3.map(\.bitPattern), "v, \(rows) rows")
        }
    }
}
