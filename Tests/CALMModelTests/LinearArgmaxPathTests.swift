import CALMKernels
import CALMModel
import Testing

/// `Linear.argmax`: the automatic, direct and screened paths give the same indices (and the first
/// maximum of `apply`'s output), across the automatic threshold, row blocks, dtypes and fused parts.
@Suite struct LinearArgmaxPathTests {
    func floats(_ n: Int, seed: UInt64, scale: Float = 1) -> [Float] {
        var s = seed
        return (0..<n).map { _ in
            s = s &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int32(truncatingIfNeeded: s >> 33)) / Float(1 << 31) * scale
        }
    }

    func firstMax(_ y: [Float], rows: Int, n: Int) -> [Int32] {
        (0..<rows).map { r in
            let row = y[(r * n)..<((r + 1) * n)]
            return Int32(row.firstIndex(of: row.max()!)! - r * n)
        }
    }

    @Test(arguments: [CALM_F32, CALM_BF16])
    func pathsAgree(dtype: calm_dtype) {
        let pool = ComputePool(threads: 2)
        for (out, inF, rows) in [(Linear.screenMinOutFeatures - 1, 24, 5), (Linear.screenMinOutFeatures + 37, 40, 9), (300, 33, 1)] {
            let w = floats(out * inF, seed: UInt64(out + inF))
            var x = floats(rows * inF, seed: UInt64(rows), scale: 2)
            // weight row 7, scaled up to win, copied to two later rows, and x's row 0 along it: the tie goes to 7
            for k in 0..<inF { x[k] = w[7 * inF + k] }
            var wd = w
            for j in [7, out / 2, out - 1] { for k in 0..<inF { wd[j * inF + k] = 3 * w[7 * inF + k] } }
            let layer = Linear(weight: wd, outFeatures: out, inFeatures: inF, bias: nil, storageDType: dtype)
            let reference = firstMax(layer(x, rows: rows, pool: pool), rows: rows, n: out)
            for path in Linear.ArgmaxPath.allCases {
                #expect(layer.argmax(x, rows: rows, pool: pool, path: path) == reference, "\(out) x \(inF), \(path)")
            }
            #expect(reference[0] == 7)
            // the screen exists once a screened path ran, and its size is the 7-bit copy plus per-row figures
            #expect(layer.argmaxScreenBytes >= out * inF)
        }
    }

    /// More rows than one row block (1024): blocks of the screened path join up.
    @Test func rowBlocksAndPrepare() {
        let pool = ComputePool(threads: 2)
        let out = 5000, inF = 16, rows = 1030
        let layer = Linear(weight: floats(out * inF, seed: 3), outFeatures: out, inFeatures: inF, bias: nil, storageDType: CALM_BF16)
        #expect(layer.argmaxScreenBytes == 0)
        #expect(layer.prepareArgmaxScreen(pool: pool))
        #expect(layer.argmaxScreenBytes > 0)
        let x = floats(rows * inF, seed: 4)
        let before = Linear.argmaxScreenTotals()
        let screened = layer.argmax(x, rows: rows, pool: pool, path: .screened)
        let after = Linear.argmaxScreenTotals()
        #expect(screened == layer.argmax(x, rows: rows, pool: pool, path: .direct))
        // other suites may screen at the same time: the totals grew by at least this call's rows
        #expect(after.rows - before.rows >= Int64(rows))
    }

    /// A weight that cannot be screened (a NaN) falls back to the direct kernel: same answers, no screen.
    @Test func unscreenableWeightFallsBack() {
        let pool = ComputePool(threads: 2)
        let out = 4500, inF = 8
        var w = floats(out * inF, seed: 11)
        w[77] = .nan
        let layer = Linear(weight: w, outFeatures: out, inFeatures: inF, bias: nil)
        let x = floats(3 * inF, seed: 12)
        #expect(!layer.prepareArgmaxScreen(pool: pool))
        #expect(layer.argmax(x, rows: 3, pool: pool, path: .screened) == layer.argmax(x, rows: 3, pool: pool, path: .direct))
        #expect(layer.argmaxScreenBytes == 0)
    }

    /// Fused parts are layers of their own: each screens its own outputs.
    @Test func fusedPartScreens() {
        let pool = ComputePool(threads: 2)
        let inF = 20, outs = [4096, 4100]
        let weights = outs.enumerated().map { floats($0.element * inF, seed: UInt64($0.offset + 21)) }
        let pair: (fused: Linear, parts: [Linear])? = weights[0].withUnsafeBytes { w0 in
            weights[1].withUnsafeBytes { w1 in
                Linear.fused([(w0.baseAddress!, CALM_F32, outs[0], nil), (w1.baseAddress!, CALM_F32, outs[1], nil)],
                             inFeatures: inF, storageDType: CALM_BF16)
            }
        }
        guard let (fused, parts) = pair else { Issue.record("fusing failed"); return }
        let x = floats(6 * inF, seed: 30)
        for layer in [fused] + parts {
            #expect(layer.argmax(x, rows: 6, pool: pool, path: .screened) == layer.argmax(x, rows: 6, pool: pool, path: .direct))
        }
    }
}
