import CALMKernels
import CALMModel
import CALMTensor
import CALMTokenizer
import Foundation

/// The screened vocabulary argmax (calm_linear_argmax_screened) against the direct kernel
/// (calm_linear_argmax): time, GFLOP/s of the equivalent f32 work (2·m·k·n), the share of the FMA peak
/// measured in the same run, how many entries survive the screen, and a check that both give the same
/// indices and maxima.
///   calm-bench argmax-screen [--quick] [--json] [--isa avx512|avx2|portable] [--threads 1,2]
///     [--shapes 800x512x128257,1x768x128256] [--dtypes f32,bf16] [--model DIR] [--steps N] [--samples N]
/// Random weights and activations (uniform) for the shapes; with --model, a CALM model folder (e.g.
/// Sources/CALMDefaultModel/DefaultModel): its decoder's vocabulary projection on real decoder inputs —
/// the hidden states of text chunks reconstructed from their posterior means, and of N head samples per
/// step while generating (the batch approximation's decoder call: N·K rows).
func runScreenedArgmaxBenchmark(_ arguments: [String]) {
    func value(_ name: String) -> String? {
        arguments.firstIndex(of: "--\(name)").flatMap { $0 + 1 < arguments.count ? arguments[$0 + 1] : nil }
    }
    let quick = arguments.contains("--quick")
    let json = arguments.contains("--json")
    if let name = value("isa") {
        let level = calm_isa_parse(name)
        guard level >= 0 else {
            FileHandle.standardError.write(Data("--isa: '\(name)' is not one of portable, avx2, avx512\n".utf8))
            exit(2)
        }
        calm_isa_force(calm_isa(UInt32(level)))
    }
    let threadCounts = (value("threads") ?? "1,2").split(separator: ",").compactMap { Int($0) }
    let shapes: [(m: Int, k: Int, n: Int)] = (value("shapes") ?? "800x512x128257,1x768x128256").split(separator: ",").compactMap {
        let p = $0.split(separator: "x").compactMap { Int($0) }
        return p.count == 3 ? (p[0], p[1], p[2]) : nil
    }
    let dtypes = (value("dtypes") ?? (quick ? "bf16" : "f32,bf16")).split(separator: ",").compactMap { DType(userName: String($0))?.kernelDType }
    let seconds = quick ? 0.3 : 1.0
    var records: [[String: Any]] = []
    func log(_ s: String) { if !json { print(s) } }
    func loadavg() -> String {
        ((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "?").split(separator: " ").prefix(3).joined(separator: " ")
    }
    log("screening kernel: \(String(cString: calm_screen_kernel_name()))   load average at start: \(loadavg())")

    let pools = Dictionary(uniqueKeysWithValues: threadCounts.map { ($0, ComputePool(threads: $0)) })
    var peak: [Int: Double] = [:], stream: [Int: Double] = [:]
    for t in threadCounts {
        peak[t] = calm_bench_fma_peak(pools[t]!.raw, quick ? 0.2 : 0.5)
        stream[t] = calm_bench_stream_triad(pools[t]!.raw, 32 << 20, quick ? 0.3 : 1.0)
        log(String(format: "FMA peak %d thread(s): %7.1f GFLOP/s    STREAM triad: %5.1f GB/s", t, peak[t]!, stream[t]!))
        records.append(["kind": "peak", "threads": t, "gflops": peak[t]!, "stream_gbs": stream[t]!])
    }

    /// Best time of `body` over repetitions filling `seconds` (at least 3).
    func time(_ body: () -> Void) -> Double {
        body()
        var best = Double.infinity, total = 0.0, reps = 0
        while reps < 3 || total < seconds {
            let t0 = DispatchTime.now().uptimeNanoseconds
            body()
            let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            best = min(best, dt)
            total += dt
            reps += 1
        }
        return best
    }

    /// Direct against screened on one layer and one set of rows, every thread count.
    func compare(_ label: String, layer: Linear, x: [Float], rows: Int, extra: [String: Any]) {
        let k = layer.inFeatures, n = layer.outFeatures
        let buildStart = DispatchTime.now().uptimeNanoseconds
        guard layer.prepareArgmaxScreen(pool: pools[threadCounts.last!]!) else {
            log("\(label): the weight cannot be screened"); return
        }
        let buildSeconds = Double(DispatchTime.now().uptimeNanoseconds - buildStart) / 1e9
        let weightBytes = Double(layer.weightBytes), screenBytes = Double(layer.argmaxScreenBytes)
        for t in threadCounts {
            let pool = pools[t]!
            var direct: [Int32] = [], screened: [Int32] = []
            let td = time { direct = layer.argmax(x, rows: rows, pool: pool, path: .direct) }
            _ = Linear.argmaxScreenTotals(reset: true)
            screened = layer.argmax(x, rows: rows, pool: pool, path: .screened)
            let st = Linear.argmaxScreenTotals(reset: true)
            let ts = time { screened = layer.argmax(x, rows: rows, pool: pool, path: .screened) }
            let mismatches = zip(direct, screened).filter { $0 != $1 }.count
            let flops = 2.0 * Double(rows) * Double(k) * Double(n)
            let survivorsPerRow = Double(st.survivors) / Double(max(st.screened_rows, 1))
            var line = String(format: "%@  %d thr: direct %8.2f ms (%6.1f GFLOP/s, %5.1f%% of peak)  screened %8.2f ms (%6.1f, %5.1f%%)  %5.2fx | survivors %.2f/row (%.4f%% of %d), max %lld, direct rows %lld | mismatches %d",
                              label as NSString, t, td * 1e3, flops / td * 1e-9, 100 * flops / td * 1e-9 / peak[t]!, ts * 1e3,
                              flops / ts * 1e-9, 100 * flops / ts * 1e-9 / peak[t]!, td / ts, survivorsPerRow,
                              100 * survivorsPerRow / Double(n), n, st.max_survivors, st.direct_rows, mismatches)
            var rec: [String: Any] = ["kind": "argmax_screen", "case": label, "m": rows, "k": k, "n": n, "threads": t,
                                      "direct_ms": td * 1e3, "screened_ms": ts * 1e3, "speedup": td / ts,
                                      "direct_gflops": flops / td * 1e-9, "screened_gflops_equiv": flops / ts * 1e-9,
                                      "fma_peak_gflops": peak[t]!, "survivors_per_row": survivorsPerRow,
                                      "survivor_rate": survivorsPerRow / Double(n), "max_survivors": st.max_survivors,
                                      "direct_rows": st.direct_rows, "exact_panels": st.exact_panels, "mismatches": mismatches,
                                      "weight_bytes": weightBytes, "screen_bytes": screenBytes, "screen_build_s": buildSeconds,
                                      "isa": String(cString: calm_isa_name(calm_isa_active())),
                                      "screen_kernel": String(cString: calm_screen_kernel_name())]
            if rows == 1 {
                line += String(format: " | weights read: direct %.1f GB/s, screened %.1f GB/s (STREAM %.1f)",
                               weightBytes / td * 1e-9, screenBytes / ts * 1e-9, stream[t]!)
                rec["direct_weights_gbs"] = weightBytes / td * 1e-9
                rec["screened_weights_gbs"] = screenBytes / ts * 1e-9
            }
            log(line)
            records.append(rec.merging(extra) { a, _ in a })
        }
        log(String(format: "   screen: %.1f MB beside %.1f MB of packed weights (%.0f%%), built in %.1f ms",
                   screenBytes / 1e6, weightBytes / 1e6, 100 * screenBytes / weightBytes, buildSeconds * 1e3))
    }

    /// Uniform in [-1, 1): centred, like trained weights and normalised activations (all-positive data,
    /// e.g. [0, 1) as the kernels benchmark uses, leaves about 5 times the survivors).
    func randoms(_ count: Int, seed: UInt64) -> [Float] {
        var state = seed | 1
        return (0..<count).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int32(truncatingIfNeeded: state >> 32)) / Float(1 << 31)
        }
    }

    for s in shapes {
        for dtype in dtypes {
            let dname = dtype == CALM_F32 ? "f32" : dtype == CALM_BF16 ? "bf16" : "f16"
            let layer = Linear(weight: randoms(s.n * s.k, seed: 3), outFeatures: s.n, inFeatures: s.k, bias: nil, storageDType: dtype)
            let x = randoms(s.m * s.k, seed: 5)
            compare(String(format: "random %4d x %4d x %6d %@", s.m, s.k, s.n, dname as NSString), layer: layer, x: x, rows: s.m,
                    extra: ["dtype": dname, "weights": "random"])
        }
    }

    guard let dir = value("model") else {
        finish()
        return
    }
    // A trained CALM model: its decoder's vocabulary projection on real decoder inputs.
    let url = URL(fileURLWithPath: dir)
    let pool = pools[threadCounts.last!]!
    do {
        let model = try CALMModel.load(directory: url, options: LoadOptions(pool: pool))
        let tokenizer = try TokenizerLoader.load(directory: url)
        let ae = model.autoencoder, c = ae.config
        let source = try CheckpointLoader.open(directory: url)
        let headWeight = try ["ae_model.decoder.lm_head_weight", "ae_model.encoder.embed_tokens.weight"].lazy
            .compactMap { name in try? source.tensor(name) }.first ?? source.tensor("decoder.lm_head_weight")
        guard let kdt = headWeight.dtype.kernelDType else { log("unsupported lm_head dtype"); finish(); return }
        let lmHead = headWeight.withUnsafeBytes { raw in
            Linear(weight: raw.baseAddress!, sourceDType: kdt, outFeatures: c.vocabSize, inFeatures: c.hiddenSize, bias: nil, storageDType: kdt)
        }
        log("\nmodel \(dir): decoder vocabulary projection \(c.vocabSize) x \(c.hiddenSize) (\(headWeight.dtype.rawValue)), K = \(c.patchSize)")
        // (a) reconstruction: text chunks through the encoder, posterior means through the decoder trunk
        let text = paragraph
        var ids = tokenizer.encode(text)
        ids = Array(ids.prefix(ids.count / c.patchSize * c.patchSize))
        let chunks = ids.count / c.patchSize
        let latents2 = ae.encode(ids, pool: pool)
        var means = [Float](repeating: 0, count: chunks * c.latentSize)
        for r in 0..<chunks { for j in 0..<c.latentSize { means[r * c.latentSize + j] = latents2[r * 2 * c.latentSize + j] } }
        let hidden = ae.decodeHidden(means, rows: chunks, pool: pool)
        compare("model reconstruction (\(chunks * c.patchSize) rows)", layer: lmHead, x: hidden, rows: chunks * c.patchSize,
                extra: ["weights": "model", "inputs": "reconstruction"])
        // (b) generation: N head samples per step decoded at once (the batch approximation's call)
        let samples = Int(value("samples") ?? "") ?? 200
        let steps = Int(value("steps") ?? "") ?? (quick ? 2 : 4)
        let cache = model.makeCache(blockPositions: 64)
        let rng = SeededRandomness(seed: 7)
        var prompt = tokenizer.encode("Once upon a time")
        let pad = (c.patchSize - prompt.count % c.patchSize) % c.patchSize
        prompt = [Int](repeating: model.padTokenID, count: pad) + prompt
        var h = try model.forward(chunks: [prompt], caches: [cache])
        var rows: [Float] = []
        for _ in 0..<steps {
            let last = Array(h.suffix(model.config.hiddenSize))
            let noise = rng.uniformFloats(count: samples * model.config.noiseSize).map { $0 - 0.5 }
            let lat = model.head.sample(hiddenStates: last, rows: 1, samplesPerRow: samples, noise: noise, pool: pool)
            rows += ae.decodeHidden(lat, rows: samples, pool: pool)
            let chunk = ae.decodeTokens(Array(lat.prefix(c.latentSize)), rows: 1, pool: pool).map(Int.init)
            h = try model.forward(chunks: [chunk], caches: [cache])
        }
        let m = samples * c.patchSize
        for step in 0..<steps {
            let x = Array(rows[(step * m * c.hiddenSize)..<((step + 1) * m * c.hiddenSize)])
            compare("model generation step \(step + 1), \(samples) samples (\(m) rows)", layer: lmHead, x: x, rows: m,
                    extra: ["weights": "model", "inputs": "generation", "step": step + 1, "samples": samples])
        }
    } catch {
        log("--model \(dir): \(error)")
    }
    finish()

    func finish() {
        log("load average at end: \(loadavg())  (other processes on the machine skew wall-clock numbers)")
        if json, let data = try? JSONSerialization.data(withJSONObject: records, options: [.prettyPrinted, .sortedKeys]) {
            print(String(decoding: data, as: UTF8.self))
        }
    }
}

/// A public-domain paragraph (the opening of Genesis, KJV: in the built-in model's corpus).
private let paragraph = """
In the beginning God created the heaven and the earth. And the earth was without form, and void; and darkness was \
upon the face of the deep. And the Spirit of God moved upon the face of the waters. And God said, Let there be light: \
and there was light. And God saw the light, that it was good: and God divided the light from the darkness. And God \
called the light Day, and the darkness he called Night. And the evening and the morning were the first day. And God \
said, Let there be a firmament in the midst of the waters, and let it divide the waters from the waters. And God made \
the firmament, and divided the waters which were under the firmament from the waters which were above the firmament: \
and it was so. And God called the firmament Heaven. And the evening and the morning were the second day. It is a truth \
universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife. Call me \
Ishmael. Some years ago, never mind how long precisely, having little or no money in my purse, and nothing \
particular to interest me on shore, I thought I would sail about a little and see the watery part of the world.
"""
