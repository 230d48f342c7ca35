import CALMKernels
import CALMModel
@testable import CALMTraining
import Testing

@Suite struct GemmKernelTests {
    /// Reference products in Double.
    func naive(_ m: Int, _ n: Int, _ k: Int, a: (Int, Int) -> Float, b: (Int, Int) -> Float) -> [Double] {
        var c = [Double](repeating: 0, count: m * n)
        for i in 0..<m { for j in 0..<n { for kk in 0..<k { c[i * n + j] += Double(a(i, kk)) * Double(b(kk, j)) } } }
        return c
    }

    func close(_ ours: [Float], _ ref: [Double], _ label: String) {
        let scale = max(ref.map(abs).max() ?? 0, 1e-6)
        let err = zip(ours, ref).map { abs(Double($0) - $1) }.max() ?? 0
        #expect(err <= 1e-5 * scale, "\(label): max error \(err) (scale \(scale))")
    }

    @Test(arguments: [(1, 1, 1), (3, 5, 2), (4, 16, 8), (5, 19, 7), (9, 33, 40), (37, 70, 29), (64, 96, 48)])
    func productsMatchNaive(_ shape: (Int, Int, Int)) {
        let (m, n, k) = shape
        var rng = TestRNG(UInt64(m * 1000 + n * 10 + k))
        let pools: [ComputePool?] = [nil, .shared]
        for pool in pools {
            // nn: A m×k, B k×n
            let a = rng.floats(m * k), b = rng.floats(k * n)
            var c = [Float](repeating: 0, count: m * n)
            calm_gemm_nn(pool?.raw, Int32(m), Int32(n), Int32(k), a, k, b, n, &c, n, 0)
            close(c, naive(m, n, k, a: { a[$0 * k + $1] }, b: { b[$0 * n + $1] }), "nn \(shape)")
            // accumulate adds
            let before = rng.floats(m * n)
            c = before
            calm_gemm_nn(pool?.raw, Int32(m), Int32(n), Int32(k), a, k, b, n, &c, n, 1)
            close(c, zip(naive(m, n, k, a: { a[$0 * k + $1] }, b: { b[$0 * n + $1] }), before).map { $0 + Double($1) }, "nn acc \(shape)")
            // tn: A k×m
            let at = rng.floats(k * m)
            calm_gemm_tn(pool?.raw, Int32(m), Int32(n), Int32(k), at, m, b, n, &c, n, 0)
            close(c, naive(m, n, k, a: { at[$1 * m + $0] }, b: { b[$0 * n + $1] }), "tn \(shape)")
            // nt: B n×k
            let bt = rng.floats(n * k)
            calm_gemm_nt(pool?.raw, Int32(m), Int32(n), Int32(k), a, k, bt, k, &c, n, 0)
            close(c, naive(m, n, k, a: { a[$0 * k + $1] }, b: { bt[$1 * k + $0] }), "nt \(shape)")
        }
    }

    @Test func zeroInnerDimensionClearsOrKeeps() {
        var c: [Float] = [1, 2, 3, 4]
        let a: [Float] = [0], b: [Float] = [0]
        calm_gemm_nn(nil, 2, 2, 0, a, 1, b, 2, &c, 2, 1)
        #expect(c == [1, 2, 3, 4])
        calm_gemm_nn(nil, 2, 2, 0, a, 1, b, 2, &c, 2, 0)
        #expect(c == [0, 0, 0, 0])
    }

    @Test func threadedEqualsSerialBitForBit() {
        var rng = TestRNG(99)
        let m = 48, n = 160, k = 64
        let a = rng.floats(m * k), b = rng.floats(n * k)
        var c1 = [Float](repeating: 0, count: m * n), c2 = c1
        calm_gemm_nt(nil, Int32(m), Int32(n), Int32(k), a, k, b, k, &c1, n, 0)
        calm_gemm_nt(ComputePool.shared.raw, Int32(m), Int32(n), Int32(k), a, k, b, k, &c2, n, 0)
        #expect(c1 == c2)
    }
}
