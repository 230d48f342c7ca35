import CALMKernels
import Foundation
import Testing

/// The element-wise kernels Token Maturation's tail arithmetic uses, and the top-k selection of its
/// diagnostics.
@Suite struct TokenMaturationKernelTests {
    @Test func lerpIsOneFMAPerElement() {
        var rng = TestRNG(5)
        for n in [1, 7, 64, 129] {
            let target = rng.floats(n, scale: 3)
            let start = rng.floats(n, scale: 3)
            for t: Float in [0, 0.25, 1, 2] {
                var y = start
                calm_lerp(target, t, &y, n)
                #expect(y == start.indices.map { fmaf(t, target[$0] - start[$0], start[$0]) })
            }
        }
        var y: [Float] = [1, -2, 4]
        calm_scale(0.5, &y, 3)
        #expect(y == [0.5, -1, 2])
    }

    @Test func scaleShiftRowsAppliesThePerChannelAffine() {
        var x: [Float] = [1, 2, 3, 4, 5, 6]
        calm_scale_shift_rows(&x, 2, 3, [1, 2, 0.5], [0, 1, -1])
        #expect(x == [1, 5, 0.5, 4, 11, 2])
    }

    @Test(arguments: [1, 2, 5, 50, 300])
    func topKMatchesASortWithLowerIndexFirstOnTies(k: Int) {
        var rng = TestRNG(UInt64(k))
        // values on a coarse grid, so ties are common
        let x = (0..<257).map { _ in (rng.float() * 8).rounded() }
        var out = [Int32](repeating: -1, count: k)
        let got = Int(calm_top_k(x, Int32(x.count), Int32(k), &out))
        let expected = x.indices.sorted { x[$0] != x[$1] ? x[$0] > x[$1] : $0 < $1 }.prefix(min(k, x.count))
        #expect(got == expected.count)
        #expect(out.prefix(got).map(Int.init) == Array(expected))
        #expect(calm_top_k(x, 0, Int32(k), &out) == 0)
    }
}
