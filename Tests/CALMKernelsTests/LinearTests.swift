import CALMKernels
import Testing

private func makeCase(m: Int, k: Int, n: Int, seed: UInt64) -> (x: [Float], w: [Float], bias: [Float]) {
    var rng = TestRNG(seed)
    return (rng.floats(m * k), rng.floats(n * k, scale: 0.5), rng.floats(n))
}

@Suite struct LinearTests {
    @Test(arguments: [(1, 1, 1), (1, 37, 5), (3, 64, 32), (5, 300, 33), (13, 17, 100), (16, 260, 64), (25, 3, 70)])
    func matchesDoubleReference(shape: (Int, Int, Int)) {
        let (m, k, n) = shape
        let c = makeCase(m: m, k: k, n: n, seed: UInt64(m * 1000 + k * 10 + n))
        for dtype in [CALM_F32, CALM_F16, CALM_BF16] {
            let w = PackedMatrix(n: n, k: k, dtype: dtype, weights: c.w)
            let rows = (0..<n).map { w.row($0) }
            let ref = referenceLinear(x: c.x, m: m, k: k, w: rows, bias: c.bias)
            let y = runLinear(nil, x: c.x, m: m, k: k, w: w, bias: c.bias)
            var worst = 0.0
            for i in 0..<(m * n) {
                worst = max(worst, abs(Double(y[i]) - ref.y[i]) / (ref.scale[i] + 1e-30))
            }
            #expect(worst < 1e-5, "dtype \(dtype) shape \(shape) worst \(worst)")
        }
    }

    @Test func packRoundTripAndPadding() {
        var rng = TestRNG(3)
        let n = 45, k = 7
        let wsrc = rng.floats(n * k)
        for dtype in [CALM_F32, CALM_F16, CALM_BF16] {
            let w = PackedMatrix(n: n, k: k, dtype: dtype, weights: wsrc)
            for j in 0..<n {
                let row = w.row(j)
                for kk in 0..<k {
                    let v = wsrc[j * k + kk]
                    let expect: Float = dtype == CALM_F32 ? v : dtype == CALM_F16 ? Float(Float16(v))
                        : Float(bitPattern: UInt32(ConvertTests.refBF16(v)) << 16)
                    #expect(row[kk] == expect)
                }
            }
            // padding columns 45..63 of panel 1 are zero
            let es = Int(calm_dtype_size(dtype))
            let panel1 = w.raw + k * 32 * es
            for kk in 0..<k {
                for c in 13..<32 {
                    let p = panel1 + (kk * 32 + c) * es
                    #expect(es == 4 ? p.load(as: UInt32.self) == 0 : p.load(as: UInt16.self) == 0)
                }
            }
        }
        // 16-bit sources pack directly, and a row stride is honoured
        let half = wsrc.map { Float16($0) }
        var m16 = calm_matrix(n: Int32(n), k: Int32(k - 2), dtype: CALM_F16, data: nil)
        let raw = UnsafeMutableRawPointer.allocate(byteCount: calm_matrix_packed_bytes(m16.n, m16.k, CALM_F16), alignment: 64)
        defer { raw.deallocate() }
        m16.data = raw
        half.withUnsafeBufferPointer { calm_matrix_pack(&m16, $0.baseAddress, CALM_F16, k) }
        var out = [Float](repeating: 0, count: k - 2)
        calm_matrix_unpack_row(&m16, 44, &out)
        #expect(out == (0..<(k - 2)).map { Float(half[44 * k + $0]) })
    }

    /// Rows are bit-identical whatever m, the other rows, the pool size or the path.
    @Test(arguments: [CALM_F32, CALM_BF16, CALM_F16])
    func rowsAreBitIdenticalAcrossShapesAndPools(dtype: calm_dtype) {
        let m = 64, k = 300, n = 100
        let c = makeCase(m: m, k: k, n: n, seed: 11)
        let w = PackedMatrix(n: n, k: k, dtype: dtype, weights: c.w)
        let pool2 = calm_pool_create(2)
        defer { calm_pool_destroy(pool2) }
        let full = bits(runLinear(nil, x: c.x, m: m, k: k, w: w, bias: c.bias))
        #expect(bits(runLinear(pool2, x: c.x, m: m, k: k, w: w, bias: c.bias)) == full)
        for sub in [1, 3, 13] {
            for start in stride(from: 0, to: m - sub + 1, by: 17) {
                let xs = Array(c.x[(start * k)..<((start + sub) * k)])
                for pool in [nil, pool2] {
                    let y = bits(runLinear(pool, x: xs, m: sub, k: k, w: w, bias: c.bias))
                    #expect(y == Array(full[(start * n)..<((start + sub) * n)]), "m=\(sub) start=\(start)")
                }
            }
        }
        // other rows replaced by garbage: row 5 unchanged
        var g = TestRNG(99)
        var x2 = g.floats(m * k, scale: 100)
        for kk in 0..<k { x2[5 * k + kk] = c.x[5 * k + kk] }
        let y2 = bits(runLinear(pool2, x: x2, m: m, k: k, w: w, bias: c.bias))
        let got: [UInt32] = Array(y2[(5 * n)..<(6 * n)])
        let want: [UInt32] = Array(full[(5 * n)..<(6 * n)])
        #expect(got == want)
    }

    /// K long enough that a panel is cut into several K blocks (the streaming path of the SIMD tiles
    /// keeps <= 128 KB of a panel per block): every row still follows the one FMA chain from k = 0,
    /// alone or batched, on one or two threads, with bias and accumulation.
    @Test(arguments: [(CALM_F32, 2500), (CALM_BF16, 4500)])
    func longKBlocksFollowTheFMAChain(dtype: calm_dtype, k: Int) {
        let n = 70
        let pool2 = calm_pool_create(2)
        defer { calm_pool_destroy(pool2) }
        let c = makeCase(m: 40, k: k, n: n, seed: UInt64(k))
        var rng = TestRNG(77)
        let yOld = rng.floats(40 * n, scale: 3)
        let w = PackedMatrix(n: n, k: k, dtype: dtype, weights: c.w)
        let rows = (0..<n).map { w.row($0) }
        var chain = [Float](repeating: 0, count: 40 * n)
        for i in 0..<40 {
            for j in 0..<n {
                var acc: Float = 0
                for kk in 0..<k { acc = acc.addingProduct(c.x[i * k + kk], rows[j][kk]) }
                chain[i * n + j] = acc
            }
        }
        for m in [1, 2, 3, 7, 16, 40] {
            let x = Array(c.x[0..<(m * k)])
            for pool in [nil, pool2] {
                let y = runLinear(pool, x: x, m: m, k: k, w: w, bias: nil)
                #expect(bits(y) == bits(Array(chain[0..<(m * n)])), "m=\(m)")
                let ya = runLinear(pool, x: x, m: m, k: k, w: w, bias: c.bias, yInit: Array(yOld[0..<(m * n)]), accumulate: true)
                let want = (0..<(m * n)).map { yOld[$0] + (chain[$0] + c.bias[$0 % n]) }
                #expect(bits(ya) == bits(want), "m=\(m) accumulate")
            }
        }
    }

    @Test func fewPanelsManyRowsSplitsRows() {
        let m = 64, k = 40, n = 20
        let c = makeCase(m: m, k: k, n: n, seed: 5)
        let w = PackedMatrix(n: n, k: k, dtype: CALM_F32, weights: c.w)
        let pool2 = calm_pool_create(2)
        defer { calm_pool_destroy(pool2) }
        let a = bits(runLinear(nil, x: c.x, m: m, k: k, w: w, bias: nil))
        #expect(bits(runLinear(pool2, x: c.x, m: m, k: k, w: w, bias: nil)) == a)
        let one = bits(runLinear(nil, x: Array(c.x[(7 * k)..<(8 * k)]), m: 1, k: k, w: w, bias: nil))
        #expect(one == Array(a[(7 * n)..<(8 * n)]))
    }

    /// Exact FMA chain from 0, then + bias, then y_old + that.
    @Test func followsTheFMAChainContract() {
        let m = 3, k = 29, n = 35
        let c = makeCase(m: m, k: k, n: n, seed: 21)
        var rng = TestRNG(8)
        let yOld = rng.floats(m * n, scale: 3)
        for dtype in [CALM_F32, CALM_BF16] {
            let w = PackedMatrix(n: n, k: k, dtype: dtype, weights: c.w)
            let rows = (0..<n).map { w.row($0) }
            let y = runLinear(nil, x: c.x, m: m, k: k, w: w, bias: c.bias, yInit: yOld, accumulate: true)
            let y0 = runLinear(nil, x: c.x, m: m, k: k, w: w, bias: nil)
            for i in 0..<m {
                for j in 0..<n {
                    var acc: Float = 0
                    for kk in 0..<k { acc = acc.addingProduct(c.x[i * k + kk], rows[j][kk]) }
                    #expect(y0[i * n + j].bitPattern == acc.bitPattern)
                    let expect = yOld[i * n + j] + (acc + c.bias[j])
                    #expect(y[i * n + j].bitPattern == expect.bitPattern)
                }
            }
        }
    }

    @Test func degenerateShapes() {
        let w = PackedMatrix(n: 3, k: 1, dtype: CALM_F32, weights: [1, 2, 3])
        #expect(runLinear(nil, x: [2], m: 1, k: 1, w: w, bias: [0.5, 0, -1]) == [2.5, 4, 5])
        // m = 0 leaves y alone
        var y: [Float] = [42]
        withUnsafePointer(to: &w.matrix) { calm_linear(nil, nil, 0, 1, $0, nil, &y, 1, 0) }
        #expect(y == [42])
        var idx: [Int32] = [9]
        withUnsafePointer(to: &w.matrix) { calm_linear_argmax(nil, nil, 0, 1, $0, &idx, nil) }
        #expect(idx == [9])
    }

    @Test(arguments: [CALM_F32, CALM_BF16])
    func argmaxMatchesLinear(dtype: calm_dtype) {
        let k = 33, n = 1000
        let pool2 = calm_pool_create(2)
        defer { calm_pool_destroy(pool2) }
        for m in [1, 5, 40] {
            let c = makeCase(m: m, k: k, n: n, seed: UInt64(m))
            let w = PackedMatrix(n: n, k: k, dtype: dtype, weights: c.w)
            let y = runLinear(nil, x: c.x, m: m, k: k, w: w, bias: nil)
            for pool in [nil, pool2] {
                let (idx, mx) = runArgmax(pool, x: c.x, m: m, k: k, w: w)
                for i in 0..<m {
                    let row = Array(y[(i * n)..<((i + 1) * n)])
                    let best = row.max()!
                    #expect(idx[i] == Int32(row.firstIndex(of: best)!))
                    #expect(mx[i].bitPattern == best.bitPattern)
                }
            }
        }
    }

    @Test func argmaxTiesAndNaN() {
        // duplicate columns: ties resolve to the smallest index, across panels and threads
        let k = 8, n = 200
        var rng = TestRNG(4)
        let base = rng.floats(k)
        var wsrc = [Float](repeating: 0, count: n * k)
        for j in [37, 150, 199] { for kk in 0..<k { wsrc[j * k + kk] = base[kk] } }
        let w = PackedMatrix(n: n, k: k, dtype: CALM_F32, weights: wsrc)
        let pool2 = calm_pool_create(2)
        defer { calm_pool_destroy(pool2) }
        let x = base // dot with itself: the largest
        #expect(runArgmax(nil, x: x, m: 1, k: k, w: w).0 == [37])
        let xs = [Float](repeating: 0, count: 0) + Array(repeating: x, count: 50).flatMap { $0 }
        #expect(runArgmax(pool2, x: xs, m: 50, k: k, w: w).0 == [Int32](repeating: 37, count: 50))
        // all-zero products: index 0
        #expect(runArgmax(pool2, x: [Float](repeating: 0, count: 50 * k), m: 50, k: k, w: w).0
            == [Int32](repeating: 0, count: 50))
        // a NaN column wins (first NaN), like calm_argmax
        wsrc[120 * k] = .nan
        wsrc[160 * k] = .nan
        let wn = PackedMatrix(n: n, k: k, dtype: CALM_F32, weights: wsrc)
        let (i1, m1) = runArgmax(pool2, x: xs, m: 50, k: k, w: wn)
        #expect(i1 == [Int32](repeating: 120, count: 50))
        #expect(m1.allSatisfy { $0.isNaN })
        let y = runLinear(nil, x: x, m: 1, k: k, w: wn, bias: nil)
        #expect(calm_argmax(y, Int32(n)) == 120)
    }
}


@Suite struct LinearStrideTests {
    /// Row strides ldx > k and ldy > n: same rows, padding of y untouched.
    @Test(arguments: [1, 4, 20])
    func stridedRowsMatchContiguous(m: Int) {
        let k = 45, n = 70, ldx = k + 3, ldy = n + 5
        var rng = TestRNG(UInt64(m) + 500)
        let x = rng.floats(m * k), wsrc = rng.floats(n * k), bias = rng.floats(n)
        let w = PackedMatrix(n: n, k: k, dtype: CALM_BF16, weights: wsrc)
        let dense = runLinear(nil, x: x, m: m, k: k, w: w, bias: bias)
        var xs = [Float](repeating: .nan, count: m * ldx)
        for i in 0..<m { for kk in 0..<k { xs[i * ldx + kk] = x[i * k + kk] } }
        var y = [Float](repeating: -123, count: m * ldy)
        let pool = calm_pool_create(2)
        defer { calm_pool_destroy(pool) }
        xs.withUnsafeBufferPointer { xp in
            withUnsafePointer(to: &w.matrix) { wp in
                calm_linear(pool, xp.baseAddress, Int32(m), ldx, wp, bias, &y, ldy, 0)
            }
        }
        for i in 0..<m {
            for j in 0..<ldy {
                if j < n { #expect(y[i * ldy + j].bitPattern == dense[i * n + j].bitPattern) }
                else { #expect(y[i * ldy + j] == -123) }
            }
        }
        var idx = [Int32](repeating: 0, count: m)
        xs.withUnsafeBufferPointer { xp in
            withUnsafePointer(to: &w.matrix) { wp in calm_linear_argmax(pool, xp.baseAddress, Int32(m), ldx, wp, &idx, nil) }
        }
        let plain = runLinear(nil, x: x, m: m, k: k, w: w, bias: nil)
        for i in 0..<m {
            let row = Array(plain[(i * n)..<((i + 1) * n)])
            #expect(idx[i] == Int32(row.firstIndex(of: row.max()!)!))
        }
    }

    @Test func packFromSixteenBitSources() {
        var rng = TestRNG(12)
        let n = 40, k = 9
        let v = rng.floats(n * k)
        let bf: [UInt16] = v.map { ConvertTests.refBF16($0) }
        for dst in [CALM_F32, CALM_BF16, CALM_F16] {
            var m = calm_matrix(n: Int32(n), k: Int32(k), dtype: dst, data: nil)
            let raw = UnsafeMutableRawPointer.allocate(byteCount: calm_matrix_packed_bytes(m.n, m.k, dst), alignment: 64)
            defer { raw.deallocate() }
            m.data = raw
            bf.withUnsafeBufferPointer { calm_matrix_pack(&m, $0.baseAddress, CALM_BF16, k) }
            var out = [Float](repeating: 0, count: k)
            for j in [0, 31, 32, 39] {
                calm_matrix_unpack_row(&m, Int32(j), &out)
                for kk in 0..<k {
                    let wide = Float(bitPattern: UInt32(bf[j * k + kk]) << 16)
                    let want: Float = dst == CALM_F16 ? Float(Float16(wide)) : wide
                    #expect(out[kk] == want)
                }
            }
        }
    }
}
