import CALMKernels
import Foundation
import Testing

/// calm_linear_argmax_screened against calm_linear_argmax: the same index and the same maximum, bit for
/// bit, for every input — random shapes and seeds and the cases built to break a screen (exact and near
/// ties, duplicated rows, quantisation error at its largest, magnitudes at and beyond the screen's range,
/// zero and non-finite values), at every ISA level this CPU has (forced for the test's thread and the
/// pool tasks it starts, as in ISATests).
@Suite(.serialized) struct ScreenedArgmaxTests {
    /// One screened call against the direct kernel at the calling thread's level; returns the stats.
    @discardableResult
    func expectSame(_ pool: OpaquePointer?, x: [Float], m: Int, k: Int, ldx: Int? = nil, w: PackedMatrix,
                    screen: OpaquePointer?, _ label: @autoclosure () -> String) -> calm_screen_stats {
        let ld = ldx ?? k
        var i1 = [Int32](repeating: -7, count: m), i2 = [Int32](repeating: -9, count: m)
        var m1 = [Float](repeating: .nan, count: m), m2 = [Float](repeating: 1, count: m)
        var stats = calm_screen_stats()
        x.withUnsafeBufferPointer { xp in
            withUnsafePointer(to: &w.matrix) { wp in
                calm_linear_argmax(pool, xp.baseAddress, Int32(m), ld, wp, &i1, &m1)
                calm_linear_argmax_screened(pool, xp.baseAddress, Int32(m), ld, wp, screen, &i2, &m2, &stats)
            }
        }
        var bad = 0
        for i in 0..<m where i1[i] != i2[i] || m1[i].bitPattern != m2[i].bitPattern {
            if bad < 3 { Issue.record("\(label()) row \(i): direct \(i1[i]) \(m1[i]) screened \(i2[i]) \(m2[i])") }
            bad += 1
        }
        #expect(bad == 0, "\(label()): \(bad) of \(m) rows differ")
        #expect(stats.rows == Int64(m) && stats.screened_rows + stats.zero_rows + stats.direct_rows == Int64(m), "\(label())")
        #expect(stats.survivors >= stats.screened_rows, "\(label())") // at least the winner of each screened row
        return stats
    }

    func makeScreen(_ pool: OpaquePointer?, _ w: PackedMatrix) -> OpaquePointer? {
        withUnsafePointer(to: &w.matrix) { calm_screen_create(pool, $0) }
    }

    func atEachISA(_ body: (calm_isa) -> Void) {
        defer { calm_isa_force_thread(-1) }
        for isa in allISAs {
            calm_isa_force_thread(Int32(isa.rawValue))
            body(isa)
        }
    }

    /// Random shapes (m not a multiple of any tile, k not a multiple of 4, n across panel edges), all
    /// storage dtypes, one thread and two.
    @Test func randomShapesMatchDirect() {
        let pool2 = calm_pool_create(2)
        defer { calm_pool_destroy(pool2) }
        let shapes: [(m: Int, k: Int, n: Int)] = [(1, 1, 1), (1, 3, 5), (2, 4, 31), (3, 5, 32), (5, 31, 33), (7, 64, 100),
                                                  (13, 100, 517), (1, 257, 1000), (29, 48, 2049), (64, 130, 700)]
        atEachISA { isa in
            let name = String(cString: calm_isa_name(isa))
            for (si, s) in shapes.enumerated() {
                for dtype in [CALM_F32, CALM_BF16, CALM_F16] {
                    // the portable FMA chains are scalar library calls in debug builds: keep them small
                    if isa == CALM_ISA_PORTABLE && s.m * s.k * s.n > 2_000_000 { continue }
                    var rng = TestRNG(UInt64(si * 31 + Int(dtype.rawValue)) + 900)
                    let x = rng.floats(s.m * s.k, scale: 3), wsrc = rng.floats(s.n * s.k)
                    let w = PackedMatrix(n: s.n, k: s.k, dtype: dtype, weights: wsrc)
                    let screen = makeScreen(pool2, w)
                    defer { calm_screen_destroy(screen) }
                    #expect(screen != nil)
                    for pool in [nil, pool2] {
                        expectSame(pool, x: x, m: s.m, k: s.k, w: w, screen: screen, "\(name) \(s) dtype \(dtype.rawValue)")
                    }
                }
            }
        }
    }

    /// Rows of x with padding (ldx > k), and a screen built by a one-thread pool, used on two threads.
    @Test func stridedRows() {
        let pool2 = calm_pool_create(2)
        defer { calm_pool_destroy(pool2) }
        let m = 9, k = 45, n = 300, ldx = 50
        var rng = TestRNG(31)
        var x = [Float](repeating: .nan, count: m * ldx) // the padding is never read
        for i in 0..<m { for kk in 0..<k { x[i * ldx + kk] = rng.float() } }
        let w = PackedMatrix(n: n, k: k, dtype: CALM_BF16, weights: rng.floats(n * k))
        let screen = makeScreen(nil, w)
        defer { calm_screen_destroy(screen) }
        atEachISA { isa in
            let stats = expectSame(pool2, x: x, m: m, k: k, ldx: ldx, w: w, screen: screen, "strided \(isa)")
            #expect(stats.screened_rows == Int64(m))
        }
    }

    /// Exact ties (duplicated weight rows, also straddling panels and thread ranges), near ties (one ulp
    /// apart in one weight), and x equal to a weight row (its own row is the maximum, with copies).
    @Test func tiesAndNearTies() {
        let pool2 = calm_pool_create(2)
        defer { calm_pool_destroy(pool2) }
        let k = 67, n = 3000, m = 20
        var rng = TestRNG(77)
        let base = rng.floats(k)
        for dtype in [CALM_F32, CALM_BF16] {
            var wsrc = rng.floats(n * k, scale: 0.5)
            // exact copies of `base` at these rows (the lowest must win), and one-ulp neighbours
            let copies = [5, 31, 32, 33, 1499, 1500, 2999]
            for j in copies { for kk in 0..<k { wsrc[j * k + kk] = base[kk] } }
            for (t, j) in [40, 900, 2500].enumerated() {
                for kk in 0..<k { wsrc[j * k + kk] = base[kk] }
                let kk = (t * 13) % k
                wsrc[j * k + kk] = t == 1 ? base[kk].nextDown : base[kk].nextUp
            }
            // pairs of rows that differ by a tiny scale
            for j in stride(from: 100, to: 1400, by: 97) {
                let e: Float = 1 + Float(j % 5) * 1e-7
                for kk in 0..<k { wsrc[(j + 1) * k + kk] = wsrc[j * k + kk] * e }
            }
            let w = PackedMatrix(n: n, k: k, dtype: dtype, weights: wsrc)
            let screen = makeScreen(pool2, w)
            defer { calm_screen_destroy(screen) }
            var x = [Float]()
            for i in 0..<m {
                switch i % 4 {
                case 0: x += base
                case 1: x += base.map { $0 * 1e3 }
                case 2: x += Array(wsrc[(100 + 97 * i) * k..<(101 + 97 * i) * k])
                default: x += rng.floats(k)
                }
            }
            atEachISA { isa in
                for pool in [nil, pool2] {
                    expectSame(pool, x: x, m: m, k: k, w: w, screen: screen, "ties \(isa) dtype \(dtype.rawValue)")
                }
            }
        }
    }

    /// Every weight row the same: every entry ties, too many survive, and the rows go to the direct kernel
    /// (index 0 wins). Half the rows equal except a few: those few decide.
    @Test func allEqualRowsGoDirect() {
        let pool2 = calm_pool_create(2)
        defer { calm_pool_destroy(pool2) }
        let k = 16, n = 9000, m = 6
        var rng = TestRNG(5)
        let row = rng.floats(k)
        var wsrc = Array([[Float]](repeating: row, count: n).joined())
        let w = PackedMatrix(n: n, k: k, dtype: CALM_F32, weights: wsrc)
        let screen = makeScreen(pool2, w)
        defer { calm_screen_destroy(screen) }
        let x = rng.floats(m * k)
        atEachISA { isa in
            let stats = expectSame(pool2, x: x, m: m, k: k, w: w, screen: screen, "all equal \(isa)")
            #expect(stats.direct_rows == Int64(m), "\(stats)")
        }
        // a few rows stand out: screened again
        for j in [17, 4000, 8999] { for kk in 0..<k { wsrc[j * k + kk] = row[kk] * 1.5 } }
        let w2 = PackedMatrix(n: n, k: k, dtype: CALM_F32, weights: wsrc)
        let screen2 = makeScreen(pool2, w2)
        defer { calm_screen_destroy(screen2) }
        let xs = Array([[Float]](repeating: row, count: m).joined())
        atEachISA { isa in
            let stats = expectSame(pool2, x: xs, m: m, k: k, w: w2, screen: screen2, "standouts \(isa)")
            #expect(stats.screened_rows == Int64(m), "\(stats)")
        }
        // 200 equal rows first (more than the 70 survivors a row may have, fewer than a task keeps while
        // its lower bound is still low), the winner far later: pruned at the merge, screened
        var w3src = rng.floats(n * k, scale: 0.1)
        for j in 0..<200 { for kk in 0..<k { w3src[j * k + kk] = row[kk] } }
        for kk in 0..<k { w3src[8000 * k + kk] = row[kk] * 2 }
        let w3 = PackedMatrix(n: n, k: k, dtype: CALM_BF16, weights: w3src)
        let screen3 = makeScreen(pool2, w3)
        defer { calm_screen_destroy(screen3) }
        atEachISA { isa in
            for pool in [nil, pool2] {
                let stats = expectSame(pool, x: xs, m: m, k: k, w: w3, screen: screen3, "late winner \(isa)")
                #expect(stats.screened_rows == Int64(m), "\(stats)")
            }
        }
    }

    /// The exact pass pays per touched 32-column panel: 600 tied entries packed into 19 of 282 panels are
    /// recomputed there (screened; a count limit of max(64, n / 128) = 70 sent them direct), while 282
    /// tied entries one per panel touch every panel and go direct.
    @Test func survivorsOnFewPanelsAreScreened() {
        let pool2 = calm_pool_create(2)
        defer { calm_pool_destroy(pool2) }
        let k = 24, n = 9000, m = 3
        var rng = TestRNG(11)
        let row = rng.floats(k)
        let xs = Array([[Float]](repeating: row, count: m).joined())
        var packed = rng.floats(n * k, scale: 0.01)
        for j in 2000..<2600 { for kk in 0..<k { packed[j * k + kk] = row[kk] } }
        var spread = rng.floats(n * k, scale: 0.01)
        for j in stride(from: 5, to: n, by: 32) { for kk in 0..<k { spread[j * k + kk] = row[kk] } }
        for (name, weights, screened) in [("packed", packed, true), ("spread", spread, false)] {
            let w = PackedMatrix(n: n, k: k, dtype: CALM_F32, weights: weights)
            let screen = makeScreen(pool2, w)
            defer { calm_screen_destroy(screen) }
            atEachISA { isa in
                for pool in [nil, pool2] {
                    let stats = expectSame(pool, x: xs, m: m, k: k, w: w, screen: screen, "\(name) \(isa)")
                    #expect(stats.screened_rows == (screened ? Int64(m) : 0), "\(name): \(stats)")
                    if screened { #expect(stats.max_survivors >= 600 && stats.exact_panels <= 20, "\(stats)") }
                }
            }
        }
    }

    /// Weights where quantisation loses the most: every value half a step from the grid, one outlier per
    /// row that sets a coarse step, rows scaled over 2^±20, rows below the smallest step (all residual),
    /// zero rows, and bf16 rounding on top.
    @Test func worstCaseQuantisation() {
        let pool2 = calm_pool_create(2)
        defer { calm_pool_destroy(pool2) }
        let k = 96, n = 2100, m = 17
        var rng = TestRNG(123)
        var wsrc = [Float](repeating: 0, count: n * k)
        for j in 0..<n {
            let scale = Float(sign: .plus, exponent: Int(rng.next() % 41) - 20, significand: 1)
            for kk in 0..<k {
                switch j % 6 {
                case 0: // half a step off the grid everywhere (the max at kk = 0 sets the step to scale / 64)
                    wsrc[j * k + kk] = kk == 0 ? scale : (Float(Int(rng.next() % 127) - 64) + 0.5) / 64 * scale
                case 1: wsrc[j * k + kk] = kk == j % k ? 100 * scale : rng.float() * scale // one outlier
                case 2: wsrc[j * k + kk] = rng.float() * 0x1p-45 // below the step floor: all residual
                case 3: wsrc[j * k + kk] = 0 // a zero row
                default: wsrc[j * k + kk] = rng.float() * scale
                }
            }
        }
        var x = rng.floats(m * k, scale: 2)
        for kk in 0..<k { x[3 * k + kk] = (Float(Int(rng.next() % 252) - 126) + 0.5) / 126 } // half steps in x
        for kk in 0..<k { x[4 * k + kk] = kk == 7 ? 1e4 : rng.float() } // an outlier in x
        for kk in 0..<k { x[5 * k + kk] = abs(x[5 * k + kk]) + 10 } // all positive, far from 0
        for kk in 0..<k { x[6 * k + kk] = -abs(x[6 * k + kk]) - 10 } // all negative
        for kk in 0..<k { x[7 * k + kk] = kk % 9 == 0 ? 0x1p-140 : x[7 * k + kk] } // subnormals among normals
        for dtype in [CALM_F32, CALM_BF16] {
            let w = PackedMatrix(n: n, k: k, dtype: dtype, weights: wsrc)
            let screen = makeScreen(pool2, w)
            defer { calm_screen_destroy(screen) }
            #expect(screen != nil)
            atEachISA { isa in
                let stats = expectSame(pool2, x: x, m: m, k: k, w: w, screen: screen, "worst case \(isa) \(dtype.rawValue)")
                #expect(stats.direct_rows == 0, "\(stats)")
            }
        }
    }

    /// Magnitudes: x from 2^-60 to 2^60 (outside 2^-40..2^40 the rows go direct, inside they screen), zero
    /// rows (+0 at index 0), non-finite x (direct), weights near the 2^40 norm limit and beyond (no
    /// screen: every row direct), NaN and infinite weights (no screen).
    @Test func magnitudesAndNonFinite() {
        let pool2 = calm_pool_create(2)
        defer { calm_pool_destroy(pool2) }
        let k = 40, n = 700
        var rng = TestRNG(9)
        let wsrc = rng.floats(n * k)
        let base = rng.floats(k)
        var x = [Float]()
        var expectDirect = 0, expectZero = 0
        for e in stride(from: -60, through: 60, by: 5) {
            x += base.map { $0 * Float(sign: .plus, exponent: e, significand: 1) }
            if e < -40 || e > 36 { expectDirect += 1 } // ||x|| of 40 values up to 1 is below 2^3
        }
        x += [Float](repeating: 0, count: k); expectZero += 1
        x += [Float](repeating: -0.0, count: k); expectZero += 1
        var withNaN = base; withNaN[3] = .nan; x += withNaN; expectDirect += 1
        var withInf = base; withInf[0] = -.infinity; x += withInf; expectDirect += 1
        var tiny = [Float](repeating: 0, count: k); tiny[5] = 0x1p-149; x += tiny; expectDirect += 1 // subnormal only
        let m = x.count / k
        atEachISA { isa in
            for dtype in [CALM_F32, CALM_BF16] {
                let w = PackedMatrix(n: n, k: k, dtype: dtype, weights: wsrc)
                let screen = makeScreen(pool2, w)
                defer { calm_screen_destroy(screen) }
                let stats = expectSame(pool2, x: x, m: m, k: k, w: w, screen: screen, "magnitudes \(isa)")
                #expect(stats.zero_rows == Int64(expectZero) && stats.direct_rows <= Int64(expectDirect + 2), "\(stats)")
            }
            // weights at 2^30 (screened) and 2^45 (not screenable: every row direct, same answers)
            for (e, screenable) in [(30, true), (45, false), (-35, true)] {
                let scaled = wsrc.map { $0 * Float(sign: .plus, exponent: e, significand: 1) }
                let w = PackedMatrix(n: n, k: k, dtype: CALM_F32, weights: scaled)
                let screen = makeScreen(pool2, w)
                defer { calm_screen_destroy(screen) }
                #expect((screen != nil) == screenable, "2^\(e)")
                expectSame(pool2, x: Array(x.prefix(20 * k)), m: 20, k: k, w: w, screen: screen, "weights 2^\(e) \(isa)")
            }
            for bad in [Float.nan, .infinity] {
                var ws = wsrc
                ws[123] = bad
                let w = PackedMatrix(n: n, k: k, dtype: CALM_F32, weights: ws)
                let screen = makeScreen(pool2, w)
                #expect(screen == nil)
                expectSame(pool2, x: Array(x.prefix(10 * k)), m: 10, k: k, w: w, screen: screen, "weights \(bad) \(isa)")
            }
        }
    }

    /// A screen used with a matrix it was not built from is ignored (direct), and the stats say so.
    @Test func mismatchedScreenIsIgnored() {
        var rng = TestRNG(8)
        let k = 20, n = 100, m = 3
        let a = PackedMatrix(n: n, k: k, dtype: CALM_F32, weights: rng.floats(n * k))
        let b = PackedMatrix(n: n, k: k, dtype: CALM_F32, weights: rng.floats(n * k))
        let screen = makeScreen(nil, a)
        defer { calm_screen_destroy(screen) }
        #expect(calm_screen_bytes(screen) >= n * k)
        let stats = expectSame(nil, x: rng.floats(m * k), m: m, k: k, w: b, screen: screen, "mismatch")
        #expect(stats.direct_rows == Int64(m))
        // m = 0 writes nothing
        var idx: [Int32] = [42]
        withUnsafePointer(to: &a.matrix) { calm_linear_argmax_screened(nil, nil, 0, 1, $0, screen, &idx, nil, nil) }
        #expect(idx == [42])
    }

    /// Many seeds of a mid-size vocabulary (the shape class the model uses, scaled down for debug builds),
    /// with the survivors reported: they must be few on random data.
    @Test func manySeedsAndSurvivors() {
        let pool2 = calm_pool_create(2)
        defer { calm_pool_destroy(pool2) }
        let k = 128, n = 4099
        atEachISA { isa in
            if isa == CALM_ISA_PORTABLE { return } // covered by the smaller cases above
            var total = calm_screen_stats()
            for seed in 0..<12 {
                var rng = TestRNG(UInt64(seed) + 4000)
                let m = [1, 3, 8, 33][seed % 4]
                let w = PackedMatrix(n: n, k: k, dtype: seed % 2 == 0 ? CALM_BF16 : CALM_F32, weights: rng.floats(n * k))
                let screen = makeScreen(pool2, w)
                defer { calm_screen_destroy(screen) }
                let s = expectSame(pool2, x: rng.floats(m * k, scale: Float(seed + 1)), m: m, k: k, w: w, screen: screen,
                                   "seed \(seed) \(isa)")
                total.screened_rows += s.screened_rows
                total.survivors += s.survivors
            }
            let perRow = Double(total.survivors) / Double(max(total.screened_rows, 1))
            print("screened argmax [\(String(cString: calm_screen_kernel_name()))]: \(total.screened_rows) rows, \(String(format: "%.2f", perRow)) survivors per row of \(n)")
            #expect(perRow < 40, "survivors per row \(perRow)")
        }
    }

    /// Every (row, entry) of random and adversarial inputs lies inside its screened [L, U], and on inputs
    /// built so that Cauchy–Schwarz is nearly an equality the exact value comes within 2% of the bound's
    /// edge: the bound is valid, and a bound too small by even a few percent would fail here.
    @Test func boundsHoldAndAreTight() {
        let pool2 = calm_pool_create(2)
        defer { calm_pool_destroy(pool2) }
        let k = 64, n = 40
        var rng = TestRNG(2024)
        // (a) activation residuals aligned with a weight row of equal magnitudes: x_k = n_k + 0.49 sign_k
        //     on the grid of step 1 that x_0 = 63, x_1 = -63 fix (7-bit scheme), w_A = sign
        var signs = [Float](repeating: 0, count: k)
        for kk in 2..<k { signs[kk] = rng.next() & 1 == 0 ? 1 : -1 }
        var xa = [Float](repeating: 0, count: k)
        xa[0] = 63; xa[1] = -63
        for kk in 2..<k { xa[kk] = Float(Int(rng.next() % 121) - 60) + 0.49 * signs[kk] }
        // (b) weight residuals aligned with an activation row of equal magnitudes: x = +-63 (on the grid),
        //     w_k = (q_k + 0.49 sign(x_k)) / 64 with max |w| = 1 (the 7-bit weight grid: step exactly 1/64)
        var xb = [Float](repeating: 0, count: k)
        for kk in 0..<k { xb[kk] = rng.next() & 1 == 0 ? 63 : -63 }
        var wsrc = rng.floats(n * k)
        for kk in 0..<k { wsrc[0 * k + kk] = signs[kk] }
        wsrc[1 * k + 0] = 1
        for kk in 1..<k { wsrc[1 * k + kk] = (Float(Int(rng.next() % 121) - 60) + 0.49 * (xb[kk] > 0 ? 1 : -1)) / 64 }
        let x = xa + xb + rng.floats(6 * k, scale: 5)
        let m = x.count / k
        let w = PackedMatrix(n: n, k: k, dtype: CALM_F32, weights: wsrc)
        let screen = makeScreen(nil, w)
        defer { calm_screen_destroy(screen) }
        atEachISA { isa in
            var slack = [Float](repeating: -1, count: m)
            let violations = x.withUnsafeBufferPointer { xp in
                withUnsafePointer(to: &w.matrix) { calm_screen_check_bounds(xp.baseAddress, Int32(m), k, $0, screen, &slack) }
            }
            #expect(violations == 0, "\(isa)")
            #expect(slack.allSatisfy { $0 >= 0 && $0 <= 1 }, "\(isa): \(slack)")
            if String(cString: calm_screen_kernel_name()) != "avx512-vnni" { // the constructions target the 7-bit scheme
                #expect(slack[0] > 0.98 && slack[1] > 0.98, "\(isa): slack \(slack[0]) \(slack[1])")
            }
            expectSame(pool2, x: x, m: m, k: k, w: w, screen: screen, "constructed \(isa)")
        }
        // random and adversarial matrices: no violation anywhere
        for (si, dtype) in [CALM_F32, CALM_BF16, CALM_F16].enumerated() {
            var r2 = TestRNG(UInt64(si) + 77)
            let k2 = 50, n2 = 300, m2 = 8
            var ws = r2.floats(n2 * k2)
            for j in stride(from: 0, to: n2, by: 7) { for kk in 0..<k2 { ws[j * k2 + kk] *= Float(sign: .plus, exponent: j % 30 - 15, significand: 1) } }
            for j in stride(from: 3, to: n2, by: 11) { for kk in 0..<k2 { ws[j * k2 + kk] = (Float(Int(r2.next() % 128) - 64) + 0.5) / 64 } }
            // rows whose squares underflow in f32 (2^-80, 2^-70) or are subnormal (2^-66): all residual
            for (j, e) in [(5, -80), (18, -70), (31, -66), (44, -80)] {
                for kk in 0..<k2 { ws[j * k2 + kk] = r2.float() * Float(sign: .plus, exponent: e, significand: 1) }
            }
            let w2 = PackedMatrix(n: n2, k: k2, dtype: dtype, weights: ws)
            let s2 = makeScreen(nil, w2)
            defer { calm_screen_destroy(s2) }
            var xs = r2.floats(m2 * k2, scale: 4)
            for kk in 0..<k2 { xs[kk] = abs(xs[kk]) + 3 }
            for kk in 0..<k2 { xs[k2 + kk] *= 0x1p34 } // large x: the tiny rows' exact values are not negligible
            atEachISA { isa in
                var slack = [Float](repeating: -1, count: m2)
                let violations = xs.withUnsafeBufferPointer { xp in
                    withUnsafePointer(to: &w2.matrix) { calm_screen_check_bounds(xp.baseAddress, Int32(m2), k2, $0, s2, &slack) }
                }
                #expect(violations == 0 && slack.allSatisfy { $0 <= 1 }, "\(isa) dtype \(dtype.rawValue): \(slack)")
            }
        }
    }
}
