import CALMKernels
import CALMModel
import Foundation

/// Matrix-kernel GFLOP/s, FMA peak and STREAM bandwidth.
///   calm-bench kernels [--quick] [--json] [--isa avx512|avx2|portable] [--only peak|linear|argmax]
///   [--m-min N] (only linear shapes with m >= N)
///   [--compare-isas] (every shape on every available SIMD level, then the start-up choice's speed
///   against the best level per shape)
///   [--cpu-time] (time one-thread runs with the thread's CPU clock: steadier on a shared machine)
func runKernelBenchmarks(_ arguments: [String]) {
    let quick = arguments.contains("--quick")
    let json = arguments.contains("--json")
    if let i = arguments.firstIndex(of: "--isa"), i + 1 < arguments.count {
        let level = calm_isa_parse(arguments[i + 1])
        guard level >= 0 else {
            FileHandle.standardError.write(Data("--isa: '\(arguments[i + 1])' is not one of portable, avx2, avx512\n".utf8))
            exit(2)
        }
        calm_isa_force(calm_isa(UInt32(level)))
        if calm_isa_active().rawValue != UInt32(level) {
            FileHandle.standardError.write(Data("--isa \(arguments[i + 1]): not available here; using \(KernelISA.active.rawValue)\n".utf8))
        }
    }
    let compare = arguments.contains("--compare-isas")
    let levels = compare ? KernelISA.available.filter { $0 != .portable } : [KernelISA.active]
    let seconds = quick ? 0.15 : 0.5
    var only: String? = nil
    if let i = arguments.firstIndex(of: "--only"), i + 1 < arguments.count { only = arguments[i + 1] }
    var mMin = 0
    if let i = arguments.firstIndex(of: "--m-min"), i + 1 < arguments.count { mMin = Int(arguments[i + 1]) ?? 0 }
    var pad = 0 // extra floats per x row (ldx = k + pad), to study cache-set aliasing of power-of-two strides
    if let i = arguments.firstIndex(of: "--pad"), i + 1 < arguments.count { pad = Int(arguments[i + 1]) ?? 0 }
    func enabled(_ part: String) -> Bool { only == nil || only == part }
    var records: [[String: Any]] = []
    func log(_ s: String) { if !json { print(s) } }

    let pools: [Int: OpaquePointer?] = [1: nil, 2: calm_pool_create(2)]
    defer { calm_pool_destroy(pools[2]!) }
    func loadavg() -> String {
        ((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "?").split(separator: " ").prefix(3)
            .joined(separator: " ")
    }
    log("ISA: \(String(cString: calm_isa_name(calm_isa_active())))   load average at start: \(loadavg())")
    defer { log("load average at end: \(loadavg())  (other processes on the machine skew wall-clock numbers)") }

    var peak: [Int: Double] = [:], stream: [Int: Double] = [:]
    for t in [1, 2] {
        peak[t] = calm_bench_fma_peak(pools[t]!, quick ? 0.2 : 0.5)
        stream[t] = calm_bench_stream_triad(pools[t]!, 32 << 20, quick ? 0.3 : 1.0)
        log(String(format: "FMA peak %d thread(s): %7.1f GFLOP/s    STREAM triad: %5.1f GB/s", t, peak[t]!, stream[t]!))
        records.append(["kind": "peak", "threads": t, "gflops": peak[t]!, "stream_gbs": stream[t]!])
    }

    let cpuTime = arguments.contains("--cpu-time")
    func clock(_ threads: Int) -> Double {
        var ts = timespec()
        clock_gettime(cpuTime && threads == 1 ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
    func time(threads: Int = 2, _ body: () -> Void) -> Double {
        body()
        var best = Double.infinity, total = 0.0, reps = 0
        while reps < 3 || total < seconds {
            let t0 = clock(threads)
            body()
            let dt = clock(threads) - t0
            best = min(best, dt)
            total += dt
            reps += 1
        }
        return best
    }

    func packed(n: Int, k: Int, dtype: calm_dtype, seed: UInt64) -> (calm_matrix, UnsafeMutableRawPointer) {
        var state = seed | 1
        var src = [Float](repeating: 0, count: n * k)
        for i in src.indices {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            src[i] = Float(Int32(truncatingIfNeeded: state >> 33)) / Float(1 << 31)
        }
        let bytes = calm_matrix_packed_bytes(Int32(n), Int32(k), dtype)
        let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        var m = calm_matrix(n: Int32(n), k: Int32(k), dtype: dtype, data: raw)
        src.withUnsafeBufferPointer { calm_matrix_pack(&m, $0.baseAddress, CALM_F32, k) }
        return (m, raw)
    }

    for level in levels {
    if compare {
        KernelISA.force(level)
        log("\n== \(level.rawValue)")
    }
    log("\ncalm_linear (m x k x n)       dtype  thr   GFLOP/s  %peak   weights GB/s  %STREAM")
    let shapes = [(1, 4096, 4096), (1, 8192, 8192), (1, 2048, 2048), (16, 2048, 2048), (64, 2048, 2048), (128, 2048, 2048),
                  (256, 2048, 2048)]
    for (m, k, n) in shapes where enabled("linear") && m >= mMin {
        var gbs: [String: Double] = [:]
        let ldx = k + pad
        let x = (0..<(m * ldx)).map { Float(($0 * 7919) % 1000) / 1000 - 0.5 }
        var y = [Float](repeating: 0, count: m * n)
        for dtype in [CALM_F32, CALM_BF16] {
            var (w, raw) = packed(n: n, k: k, dtype: dtype, seed: UInt64(n))
            defer { raw.deallocate() }
            let dname = dtype == CALM_F32 ? "f32" : "bf16"
            for t in [1, 2] {
                let pool = pools[t]!
                let dt = x.withUnsafeBufferPointer { xp in
                    time(threads: t) { calm_linear(pool, xp.baseAddress, Int32(m), ldx, &w, nil, &y, n, 0) }
                }
                let gflops = 2.0 * Double(m * n * k) / dt * 1e-9
                var line = String(format: "%4d x %4d x %5d  %12@ %5d  %8.1f  %5.1f%%", m, k, n, dname as NSString,
                                  t, gflops, 100 * gflops / peak[t]!)
                var rec: [String: Any] = ["isa": level.rawValue, "kind": "linear", "m": m, "k": k, "n": n, "dtype": dname, "threads": t,
                                          "seconds": dt, "gflops": gflops, "pct_peak": 100 * gflops / peak[t]!]
                if m == 1 {
                    let bytes = Double(calm_matrix_packed_bytes(Int32(n), Int32(k), dtype))
                    let g = bytes / dt * 1e-9
                    gbs["\(dname)\(t)"] = dt
                    line += String(format: "   %10.1f  %6.1f%%", g, 100 * g / stream[t]!)
                    rec["weights_gbs"] = g
                    rec["pct_stream"] = 100 * g / stream[t]!
                }
                log(line)
                records.append(rec)
            }
        }
        if m == 1 {
            for t in [1, 2] {
                let ratio = gbs["f321"].map { _ in gbs["f32\(t)"]! / gbs["bf16\(t)"]! } ?? 0
                log(String(format: "   bf16 / f32 speed (weights per second), %d thread(s): %.2fx", t, ratio))
                records.append(["kind": "bf16_ratio", "m": m, "k": k, "n": n, "threads": t, "ratio": ratio])
            }
        }
    }

    // Decoder vocabulary projection: 200 samples x K=4 rows, hidden 512, 128257 tokens.
    let (am, ak, an) = (800, 512, 128257)
    log("\ncalm_linear_argmax \(am) x \(ak) x \(an)")
    let ax = (0..<(am * ak)).map { Float(($0 * 104729) % 2000) / 1000 - 1 }
    var idx = [Int32](repeating: 0, count: am)
    for dtype in quick ? [CALM_BF16] : [CALM_F32, CALM_BF16] where enabled("argmax") {
        var (w, raw) = packed(n: an, k: ak, dtype: dtype, seed: 3)
        defer { raw.deallocate() }
        let dname = dtype == CALM_F32 ? "f32" : "bf16"
        for t in [1, 2] {
            let pool = pools[t]!
            let dt = ax.withUnsafeBufferPointer { xp in
                time(threads: t) { calm_linear_argmax(pool, xp.baseAddress, Int32(am), ak, &w, &idx, nil) }
            }
            let gflops = 2.0 * Double(am) * Double(ak) * Double(an) / dt * 1e-9
            log(String(format: "  %5@ %d thread(s): %8.1f ms  %7.1f GFLOP/s  %5.1f%% of peak", dname as NSString, t,
                       dt * 1e3, gflops, 100 * gflops / peak[t]!))
            records.append(["isa": level.rawValue, "kind": "linear_argmax", "m": am, "k": ak, "n": an, "dtype": dname, "threads": t,
                            "seconds": dt, "gflops": gflops])
        }
    }
    }
    if compare { compareLevels(records, peak: peak, log: log) }
    records = records.map { $0["isa"] == nil ? $0.merging(["isa": KernelISA.active.rawValue]) { a, _ in a } : $0 }
    if json, let data = try? JSONSerialization.data(withJSONObject: records, options: [.prettyPrinted, .sortedKeys]) {
        print(String(decoding: data, as: UTF8.self))
    }
}

/// The start-up ISA choice against the best level, shape by shape (the "never the slower code" check).
private func compareLevels(_ records: [[String: Any]], peak: [Int: Double], log: (String) -> Void) {
    let chosen = KernelISA.startupChoice
    KernelISA.force(chosen)
    log("\nstart-up choice: \(KernelISA.selection)")
    log("shape                              dtype thr  " + KernelISA.available.filter { $0 != .portable }
        .map { $0.rawValue.padding(toLength: 16, withPad: " ", startingAt: 0) }.joined() + "choice/best")
    var keys: [String] = []
    var table: [String: [String: Double]] = [:]
    for r in records {
        guard let isa = r["isa"] as? String, let g = r["gflops"] as? Double, let kind = r["kind"] as? String,
              let m = r["m"] as? Int, let k = r["k"] as? Int, let n = r["n"] as? Int, let d = r["dtype"] as? String,
              let t = r["threads"] as? Int else { continue }
        let key = String(format: "%-14@ %4d x %4d x %6d  %-5@ %d", kind as NSString, m, k, n, d as NSString, t)
        if table[key] == nil { keys.append(key) }
        table[key, default: [:]][isa] = g
    }
    var worst = 1.0
    for key in keys {
        let row = table[key]!
        let t = Int(key.split(separator: " ").last.map(String.init) ?? "1") ?? 1
        let best = row.values.max() ?? 0
        let mine = row[chosen.rawValue] ?? 0
        worst = min(worst, best > 0 ? mine / best : 1)
        let cells = KernelISA.available.filter { $0 != .portable }.map { isa in
            row[isa.rawValue].map { String(format: "%6.1f (%3.0f%%)   ", $0, 100 * $0 / (peak[t] ?? 1)) } ?? "      -         "
        }.joined()
        log("\(key)  \(cells)\(String(format: "%5.1f%%", 100 * mine / max(best, 1e-9)))")
    }
    log(String(format: "slowest shape for the start-up choice: %.1f%% of the best level", 100 * worst))
}
