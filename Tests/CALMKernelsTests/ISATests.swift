import CALMKernels
import Foundation
import Testing

/// Everything that forces an ISA level lives here, serialised, and forces it for the test's own
/// thread (and the pool tasks it starts) only: suites running beside it keep the process's level.
@Suite(.serialized) struct ISATests {
    func atEachISA(_ body: (calm_isa) -> Void) {
        defer { calm_isa_force_thread(-1) }
        for isa in allISAs {
            calm_isa_force_thread(Int32(isa.rawValue))
            #expect(calm_isa_active() == isa)
            body(isa)
        }
    }

    /// The start-up choice is one of the levels that passed their self-check, and says how it was made.
    @Test func startupChoiceIsReported() {
        let names = ["portable", "avx2", "avx512"]
        let skipped = names.filter { calm_isa_parse($0) > Int32(calm_isa_detected().rawValue) }
        print("ISA levels tested here: \(allISAs.map { String(cString: calm_isa_name($0)) }); skipped (not on this CPU): \(skipped)")
        #expect(calm_isa_default().rawValue <= calm_isa_detected().rawValue)
        let selection = String(cString: calm_isa_selection())
        #expect(selection.hasPrefix(String(cString: calm_isa_name(calm_isa_default())) + " ("), "\(selection)")
        for name in names { #expect(calm_isa_parse(name) >= 0) }
        #expect(calm_isa_parse("avx") == -1 && calm_isa_parse("") == -1)
        // the multiply the choice times runs on every level (and the SIMD ones are the candidates)
        for isa in allISAs {
            let ms = calm_isa_time_ms(isa)
            #expect(ms > 0 && ms.isFinite, "\(isa): \(ms) ms")
        }
    }

    @Test func dispatchBasics() {
        #expect(String(cString: calm_isa_name(CALM_ISA_AVX512)) == "avx512")
        #expect(String(cString: calm_isa_name(CALM_ISA_AVX2)) == "avx2")
        #expect(String(cString: calm_isa_name(CALM_ISA_PORTABLE)) == "portable")
        calm_isa_force_thread(Int32(CALM_ISA_AVX512.rawValue))
        #expect(calm_isa_active() == calm_isa_detected()) // clamped
        calm_isa_force_thread(-1)
        #expect(calm_isa_thread_override() == -1)
    }

    /// Every ISA computes the same FMA chain, so linear outputs are bit-identical across ISAs,
    /// across m (all tile heights and the K-blocked path) and across pool sizes.
    @Test(arguments: [CALM_F32, CALM_F16, CALM_BF16])
    func linearIsBitIdenticalAcrossISAs(dtype: calm_dtype) {
        let k = 270, n = 77, mMax = 29
        var rng = TestRNG(UInt64(dtype.rawValue) + 40)
        let x = rng.floats(mMax * k), wsrc = rng.floats(n * k), bias = rng.floats(n)
        let yOld = rng.floats(mMax * n)
        let w = PackedMatrix(n: n, k: k, dtype: dtype, weights: wsrc)
        let pool = calm_pool_create(2)
        defer { calm_pool_destroy(pool) }
        var reference: [UInt32]? = nil
        var refAcc: [UInt32]? = nil
        atEachISA { isa in
            let full = bits(runLinear(pool, x: x, m: mMax, k: k, w: w, bias: bias))
            let acc = bits(runLinear(nil, x: x, m: mMax, k: k, w: w, bias: bias, yInit: yOld, accumulate: true))
            if reference == nil { reference = full; refAcc = acc }
            #expect(full == reference, "isa \(isa)")
            #expect(acc == refAcc, "isa \(isa)")
            for m in [1, 2, 3, 5, 6, 7, 12, 13] {
                let start = (m * 5) % (mMax - m + 1)
                let xs = Array(x[(start * k)..<((start + m) * k)])
                let y = bits(runLinear(nil, x: xs, m: m, k: k, w: w, bias: bias))
                let want: [UInt32] = Array(full[(start * n)..<((start + m) * n)])
                #expect(y == want, "isa \(isa) m \(m)")
            }
            let (idx, mx) = runArgmax(pool, x: x, m: mMax, k: k, w: w)
            let y0 = runLinear(nil, x: x, m: mMax, k: k, w: w, bias: nil)
            for i in 0..<mMax {
                let row = Array(y0[(i * n)..<((i + 1) * n)])
                let best = row.max()!
                #expect(idx[i] == Int32(row.firstIndex(of: best)!) && mx[i] == best, "isa \(isa) row \(i)")
            }
        }
    }

    @Test func conversionsAtEachISA() {
        let all = (0..<65536).map { UInt16($0) }
        atEachISA { isa in
            var f = [Float](repeating: 0, count: all.count)
            var b = [Float](repeating: 0, count: all.count)
            all.withUnsafeBufferPointer { calm_convert_to_f32($0.baseAddress, CALM_F16, &f, all.count) }
            all.withUnsafeBufferPointer { calm_convert_to_f32($0.baseAddress, CALM_BF16, &b, all.count) }
            var bad = 0
            for i in all.indices {
                let ref = Float(Float16(bitPattern: all[i]))
                if ref.isNaN ? !f[i].isNaN : f[i].bitPattern != ref.bitPattern { bad += 1 }
                if b[i].bitPattern != UInt32(all[i]) << 16 { bad += 1 }
            }
            #expect(bad == 0, "isa \(isa)")
            let v = ConvertTests.narrowingInputs()
            var h = [UInt16](repeating: 0, count: v.count), hb = h
            v.withUnsafeBufferPointer { calm_convert_from_f32($0.baseAddress, &h, CALM_F16, v.count) }
            v.withUnsafeBufferPointer { calm_convert_from_f32($0.baseAddress, &hb, CALM_BF16, v.count) }
            bad = 0
            for i in v.indices {
                if v[i].isNaN {
                    if !Float16(bitPattern: h[i]).isNaN || !Float(bitPattern: UInt32(hb[i]) << 16).isNaN { bad += 1 }
                } else if h[i] != Float16(v[i]).bitPattern || hb[i] != ConvertTests.refBF16(v[i]) {
                    bad += 1
                }
            }
            #expect(bad == 0, "isa \(isa)")
        }
    }

    @Test func rowOpsAtEachISA() {
        var rng = TestRNG(77)
        let n = 203, rows = 3
        let x = rng.floats(rows * n, scale: 6), w = rng.floats(n), bb = rng.floats(n)
        var wide = rng.floats(1000, scale: 30)
        wide += [0, -0, 88.7, -88.7, 89, -104, -150, 1e-30, -1e-7, .infinity, -.infinity]
        wide += (0..<20001).map { Float($0 - 10000) * 0.0107 } // dense sweep of [-107, 107]
        atEachISA { isa in
            // rmsnorm
            var y = [Float](repeating: 0, count: rows * n)
            calm_rmsnorm(x, w, &y, Int32(rows), Int32(n), 1e-6)
            var ref = [Double]()
            for r in 0..<rows {
                let xr = x[(r * n)..<((r + 1) * n)].map(Double.init)
                let ms = xr.reduce(0) { $0 + $1 * $1 } / Double(n)
                ref += (0..<n).map { xr[$0] / (ms + 1e-6).squareRoot() * Double(w[$0]) }
            }
            #expect(relErr(y, ref) < 1e-5, "rmsnorm \(isa)")
            // layernorm
            calm_layernorm(x, w, bb, &y, Int32(rows), Int32(n), 1e-5)
            ref = []
            for r in 0..<rows {
                let xr = x[(r * n)..<((r + 1) * n)].map(Double.init)
                let mean = xr.reduce(0, +) / Double(n)
                let v = xr.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(n)
                ref += (0..<n).map { (xr[$0] - mean) / (v + 1e-5).squareRoot() * Double(w[$0]) + Double(bb[$0]) }
            }
            var lnBad = 0
            for i in y.indices where abs(Double(y[i]) - ref[i]) > 4e-5 * (1 + abs(ref[i])) { lnBad += 1 }
            #expect(lnBad == 0, "layernorm \(isa)")
            // silu / swiglu (finite inputs; relative 1e-6 plus a tiny absolute floor)
            let finite = wide.filter { $0.isFinite }
            var s = [Float](repeating: 0, count: finite.count)
            calm_silu(finite, &s, finite.count)
            var siluBad = 0
            for i in finite.indices {
                let r = Double(finite[i]) / (1 + exp(-Double(finite[i])))
                if abs(Double(s[i]) - r) > 1.5e-6 * abs(r) + 1e-30 { siluBad += 1 }
            }
            #expect(siluBad == 0, "silu \(isa)")
            var inf = [Float](repeating: 0, count: 2)
            calm_silu([.infinity, -.infinity], &inf, 2)
            #expect(inf[0] == .infinity, "silu inf \(isa)") // silu(-inf) is NaN, as x / (1 + exp(-x)) is in PyTorch
            let up = (0..<finite.count).map { Float($0 % 7) - 3 }
            calm_swiglu(finite, up, &s, finite.count)
            var swBad = 0
            for i in finite.indices {
                let r = Double(finite[i]) / (1 + exp(-Double(finite[i]))) * Double(up[i])
                if abs(Double(s[i]) - r) > 2e-6 * abs(r) + 1e-30 { swBad += 1 }
            }
            #expect(swBad == 0, "swiglu \(isa)")
            // add, axpy, dot
            calm_add(x, x, &y, x.count)
            #expect(y == x.map { $0 + $0 })
            var ax = x
            calm_axpy(-0.5, w, &ax, Int32(n))
            #expect(Array(ax[0..<n]) == (0..<n).map { x[$0].addingProduct(-0.5, w[$0]) }, "axpy \(isa)")
            let d = calm_dot(x, w, Int32(n))
            let rd = (0..<n).reduce(0.0) { $0 + Double(x[$1]) * Double(w[$1]) }
            let mag = (0..<n).reduce(0.0) { $0 + abs(Double(x[$1]) * Double(w[$1])) }
            #expect(abs(Double(d) - rd) <= 2e-7 * mag * 4, "dot \(isa)")
            // softmax incl. -inf and large values
            for len in [1, 5, 16, 17, 203] {
                var sm = Array(wide[0..<len])
                if len > 3 { sm[2] = -.infinity }
                let mx = sm.max()!
                let e = sm.map { exp(Double($0 - mx)) }
                let tot = e.reduce(0, +)
                calm_softmax(&sm, Int32(len))
                var smBad = 0
                for i in 0..<len where abs(Double(sm[i]) - e[i] / tot) > 2e-6 * (e[i] / tot) + 1e-30 { smBad += 1 }
                #expect(smBad == 0, "softmax \(isa) \(len)")
            }
            // argmax
            for len in [1, 7, 8, 9, 33, 100] {
                var a = (0..<len).map { Float(($0 * 37) % 11) }
                #expect(calm_argmax(a, Int32(len)) == Int32(a.firstIndex(of: a.max()!)!), "argmax \(isa)")
                if len > 5 {
                    a[len - 2] = .nan
                    a[len - 1] = .nan
                    #expect(calm_argmax(a, Int32(len)) == Int32(len - 2), "argmax NaN \(isa)")
                }
            }
        }
    }
}
