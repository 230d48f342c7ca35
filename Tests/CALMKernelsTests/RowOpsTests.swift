import CALMKernels
import Foundation
import Testing

func relErr(_ a: [Float], _ b: [Double]) -> Double {
    var worst = 0.0
    for i in a.indices {
        let d = abs(Double(a[i]) - b[i]) / max(abs(b[i]), 1e-6)
        worst = max(worst, d)
    }
    return worst
}

/// Row ops at the active ISA (tolerance-based, so they do not depend on which ISA is active).
@Suite struct RowOpsTests {
    static let sizes = [1, 7, 16, 33, 100, 257]

    @Test(arguments: sizes) func rmsnorm(n: Int) {
        var rng = TestRNG(UInt64(n))
        let rows = 3
        let x = rng.floats(rows * n, scale: 4), w = rng.floats(n)
        var y = [Float](repeating: 0, count: rows * n)
        calm_rmsnorm(x, w, &y, Int32(rows), Int32(n), 1e-5)
        var ref = [Double]()
        for r in 0..<rows {
            let xr = x[(r * n)..<((r + 1) * n)].map(Double.init)
            let ms = xr.reduce(0) { $0 + $1 * $1 } / Double(n)
            ref += (0..<n).map { xr[$0] / (ms + 1e-5).squareRoot() * Double(w[$0]) }
        }
        #expect(relErr(y, ref) < 1e-5)
        var inPlace = x
        calm_rmsnorm(inPlace, w, &inPlace, Int32(rows), Int32(n), 1e-5)
        #expect(inPlace == y)
    }

    @Test(arguments: sizes) func layernorm(n: Int) {
        var rng = TestRNG(UInt64(n) + 100)
        let rows = 2
        let x = rng.floats(rows * n, scale: 3).map { $0 + 5 }, w = rng.floats(n), b = rng.floats(n)
        var y = [Float](repeating: 0, count: rows * n)
        calm_layernorm(x, w, b, &y, Int32(rows), Int32(n), 1e-5)
        var ref = [Double]()
        for r in 0..<rows {
            let xr = x[(r * n)..<((r + 1) * n)].map(Double.init)
            let mean = xr.reduce(0, +) / Double(n)
            let v = xr.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(n)
            ref += (0..<n).map { (xr[$0] - mean) / (v + 1e-5).squareRoot() * Double(w[$0]) + Double(b[$0]) }
        }
        // absolute error relative to the output scale (outputs near zero are ill-conditioned)
        for i in y.indices { #expect(abs(Double(y[i]) - ref[i]) < 1e-5 * (1 + abs(ref[i])) * 4) }
    }

    @Test func activationsAndAdd() {
        var rng = TestRNG(5)
        var x = rng.floats(1000, scale: 20)
        x += [0, -0, 88, -88, 100, -100, -1e-3, 1e-30]
        let up = rng.floats(x.count)
        var y = [Float](repeating: 0, count: x.count)
        calm_silu(x, &y, x.count)
        let silu = x.map { Double($0) / (1 + exp(-Double($0))) }
        #expect(relErr(y, silu) < 2e-6)
        calm_swiglu(x, up, &y, x.count)
        #expect(relErr(y, x.indices.map { silu[$0] * Double(up[$0]) }) < 2e-6)
        calm_add(x, up, &y, x.count)
        #expect(y == x.indices.map { x[$0] + up[$0] })
    }

    @Test func geluTanh() {
        var rng = TestRNG(9)
        var x = rng.floats(1000, scale: 8)
        x += [0, -0, 1e-30, -1e-3, 3, -3, 10, -10, 20, -20, 1e20, -1e20]
        var y = [Float](repeating: .nan, count: x.count)
        calm_gelu_tanh(x, &y, x.count)
        // transformers' gelu_new, in double precision
        let ref = x.map { v -> Double in
            let d = Double(v)
            return 0.5 * d * (1 + tanh((2 / Double.pi).squareRoot() * (d + 0.044715 * d * d * d)))
        }
        // Relative 2e-6, plus an absolute 1e-7·|x|: for x ≪ 0 the result is x·e^(−t) with t ≈ 1.6·|x|³·0.045,
        // so any f32 evaluation of t (transformers' too) carries a relative error ~t·2⁻²⁴ there.
        for i in x.indices {
            #expect(abs(Double(y[i]) - ref[i]) <= 2e-6 * abs(ref[i]) + 1e-7 * abs(Double(x[i])), "gelu(\(x[i])) = \(y[i]), expected \(ref[i])")
        }
        // every length's tail goes through the same code as full vectors; in place is the same
        for n in [1, 7, 9, 17] {
            var part = Array(x.prefix(n))
            calm_gelu_tanh(part, &part, n)
            #expect(part == Array(y.prefix(n)))
        }
    }

    @Test(arguments: sizes) func softmaxArgmaxDotAxpy(n: Int) {
        var rng = TestRNG(UInt64(n) * 7)
        var x = rng.floats(n, scale: 10)
        let ref = { () -> [Double] in
            let mx = x.max()!
            let e = x.map { exp(Double($0 - mx)) }
            let s = e.reduce(0, +)
            return e.map { $0 / s }
        }()
        let orig = x
        calm_softmax(&x, Int32(n))
        #expect(relErr(x, ref) < 1e-5)
        #expect(calm_argmax(orig, Int32(n)) == Int32(orig.firstIndex(of: orig.max()!)!))
        let b = rng.floats(n)
        let dot = calm_dot(orig, b, Int32(n))
        let refDot = orig.indices.reduce(0.0) { $0 + Double(orig[$1]) * Double(b[$1]) }
        let mag = orig.indices.reduce(0.0) { $0 + abs(Double(orig[$1]) * Double(b[$1])) }
        #expect(abs(Double(dot) - refDot) <= 1e-6 * mag + 1e-12)
        var y = b
        calm_axpy(0.75, orig, &y, Int32(n))
        #expect(relErr(y, b.indices.map { Double(b[$0]) + 0.75 * Double(orig[$0]) }) < 1e-5)
    }

    @Test func argmaxFirstMaxNaNAndRows() {
        #expect(calm_argmax([1, 3, 3, 2], 4) == 1)
        #expect(calm_argmax([-.infinity, -.infinity], 2) == 0)
        #expect(calm_argmax([1, .nan, 5, .nan], 4) == 1)
        let big = (0..<100).map { Float($0 % 37) }
        #expect(calm_argmax(big, 100) == 36)
        var out = [Int32](repeating: 0, count: 3)
        calm_argmax_rows([0, 1, 5, 5, 2, 1, 0, 0, 0], 3, 3, &out)
        #expect(out == [2, 0, 0])
    }

    @Test func ropeHalf() {
        var rng = TestRNG(9)
        let heads = 3, d = 10
        var x = rng.floats(heads * d)
        let cs = rng.floats(d), sn = rng.floats(d)
        var ref = [Double]()
        for h in 0..<heads {
            let v = x[(h * d)..<((h + 1) * d)].map(Double.init)
            let rot = (0..<d).map { $0 < d / 2 ? -v[$0 + d / 2] : v[$0 - d / 2] }
            ref += (0..<d).map { v[$0] * Double(cs[$0]) + rot[$0] * Double(sn[$0]) }
        }
        calm_rope_half(&x, Int32(heads), Int32(d), cs, sn)
        for i in x.indices { #expect(abs(Double(x[i]) - ref[i]) < 1e-6) }
    }

    @Test(arguments: [1, 5, 16, 37]) func attentionHead(nKeys: Int) {
        var rng = TestRNG(UInt64(nKeys))
        let d = 24, blockLen = 4, stride = 3 * d // three heads interleaved per position
        let nBlocks = (nKeys + blockLen - 1) / blockLen
        let q = rng.floats(d)
        let kb = (0..<nBlocks).map { _ in rng.floats(blockLen * stride) }
        let vb = (0..<nBlocks).map { _ in rng.floats(blockLen * stride) }
        let scale: Float = 1 / Float(d).squareRoot()
        var scores = [Double](repeating: 0, count: nKeys)
        for t in 0..<nKeys {
            let row = kb[t / blockLen][((t % blockLen) * stride + d)...]
            scores[t] = (0..<d).reduce(0.0) { $0 + Double(q[$1]) * Double(row[row.startIndex + $1]) } * Double(scale)
        }
        let mx = scores.max()!
        let e = scores.map { exp($0 - mx) }
        let s = e.reduce(0, +)
        var ref = [Double](repeating: 0, count: d)
        for t in 0..<nKeys {
            let row = vb[t / blockLen][((t % blockLen) * stride + d)...]
            for j in 0..<d { ref[j] += e[t] / s * Double(row[row.startIndex + j]) }
        }
        var out = [Float](repeating: 0, count: d)
        var scratch = [Float](repeating: 0, count: nKeys)
        let kPtrs = kb.map { a -> UnsafeMutablePointer<Float> in
            let p = UnsafeMutablePointer<Float>.allocate(capacity: a.count)
            p.initialize(from: a, count: a.count)
            return p
        }
        let vPtrs = vb.map { a -> UnsafeMutablePointer<Float> in
            let p = UnsafeMutablePointer<Float>.allocate(capacity: a.count)
            p.initialize(from: a, count: a.count)
            return p
        }
        defer { (kPtrs + vPtrs).forEach { $0.deallocate() } }
        let kp: [UnsafePointer<Float>?] = kPtrs.map { UnsafePointer($0 + d) }
        let vp: [UnsafePointer<Float>?] = vPtrs.map { UnsafePointer($0 + d) }
        calm_attention_head(q, Int32(d), scale, kp, vp, Int32(blockLen), stride, Int32(nKeys), &scratch, &out)
        for j in 0..<d { #expect(abs(Double(out[j]) - ref[j]) < 1e-5) }
    }
}
