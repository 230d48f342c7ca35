import CALMKernels
@testable import CALMModel
import Testing

/// One multiply by the fused [q | k | v] packing gives every output bit for bit what the three
/// layers give alone (biases included, rows across the streaming path's tile heights and the
/// one-row kernel), in f32 and bf16 storage.
@Suite struct QKVProjectionTests {
    func floats(_ n: Int, seed: UInt64) -> [Float] {
        var s = seed
        return (0..<n).map { _ in
            s = s &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int32(truncatingIfNeeded: s >> 33)) / Float(1 << 31)
        }
    }

    @Test(arguments: [CALM_F32, CALM_BF16])
    func fusedEqualsSeparateLayers(dtype: calm_dtype) throws {
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
