import CALMKernels
import CALMModel
import Foundation

/// The parts of one batched decode step of a discrete model (what `calm bench-serve` runs per step
/// through the engine), timed separately at each batch size: the backbone over R new rows (one per
/// sequence, after a prompt of `context` tokens each), the vocabulary projection of the R rows, and
/// R `TokenSampler` draws (T = 1, in parallel on the pool as the engine does). The FMA peak and the
/// STREAM triad bandwidth are measured in the same run, before and after.
///   calm-bench discrete-step --model DIR [--rows 1,16] [--context 48] [--steps 12] [--threads 2] [--cpu-time] [--json]
/// --cpu-time (with --threads 1): time with the thread's CPU clock, which other processes on a
/// shared machine do not advance (memory bandwidth and caches are still shared).
func runDiscreteStepBenchmark(_ arguments: [String]) {
    func value(_ name: String) -> String? {
        arguments.firstIndex(of: "--\(name)").flatMap { $0 + 1 < arguments.count ? arguments[$0 + 1] : nil }
    }
    let json = arguments.contains("--json")
    guard let dir = value("model") else {
        FileHandle.standardError.write(Data("calm-bench discrete-step: --model DIR is required (e.g. calm random-model --shape llama-s)\n".utf8))
        exit(2)
    }
    let rowCounts = (value("rows") ?? "1,16").split(separator: ",").compactMap { Int($0) }
    let context = Int(value("context") ?? "") ?? 48
    let steps = Int(value("steps") ?? "") ?? 12
    let threads = Int(value("threads") ?? "") ?? 2
    let pool = ComputePool(threads: threads)
    let cpuTime = arguments.contains("--cpu-time") && threads == 1
    func now() -> UInt64 {
        if !cpuTime { return DispatchTime.now().uptimeNanoseconds }
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
    func machine() -> (peak: Double, stream: Double) {
        (calm_bench_fma_peak(pool.raw, 0.3), calm_bench_stream_triad(pool.raw, 32 << 20, 0.5))
    }
    let model: LlamaCausalLM
    do {
        model = try LlamaCausalLM.load(directory: URL(fileURLWithPath: dir), options: LoadOptions(pool: pool))
    } catch {
        FileHandle.standardError.write(Data("calm-bench discrete-step: \(error)\n".utf8))
        exit(1)
    }
    let before = machine()
    let h = model.hiddenSize, v = model.vocabSize
    let backboneBytes = Double(model.backbone.weightBytes), headBytes = Double(model.lmHead.weightBytes)
    // 2 FLOPs per weight per row (the matrices; attention is extra)
    let backboneFlopsPerRow = 2 * backboneBytes / Double(calm_dtype_size(model.lmHead.dtype))
    let headFlopsPerRow = 2 * Double(h * v)
    if !json {
        print(String(format: "model %@: backbone %.0f MB, lm_head %.0f MB of weights; %d threads%@, %@",
                     dir, backboneBytes / 1e6, headBytes / 1e6, threads, cpuTime ? " (thread CPU time)" : "", KernelISA.selection))
        print(String(format: "machine before: FMA peak %.1f GFLOP/s, STREAM triad %.1f GB/s", before.peak, before.stream))
    }
    var records: [[String: Any]] = []
    for rows in rowCounts {
        let rng = SeededRandomness(seed: 11)
        let caches = (0..<rows).map { _ in model.makeCache() }
        defer { for c in caches { c.release() } }
        let prompts = (0..<rows).map { _ in (0..<context).map { _ in Int(rng.uniformDouble() * Double(min(v, 100_000))) } }
        let p0 = now()
        var hidden = try! model.forward(tokens: prompts, caches: caches)
        let prefill = Double(now() - p0) / 1e9
        var last = (0..<rows).map { prompts[$0].last! }
        let randomness = (0..<rows).map { SeededRandomness(seed: UInt64(100 + $0)) }
        let sampler = TokenSampler(temperature: 1)
        var times: [(backbone: Double, head: Double, sampling: Double)] = []
        for _ in 0..<steps {
            let t0 = now()
            hidden = try! model.forward(tokens: last.map { [$0] }, caches: caches)
            let t1 = now()
            var logits = model.logits(hidden, rows: rows)
            let t2 = now()
            var next = [Int](repeating: 0, count: rows)
            logits.withUnsafeMutableBufferPointer { all in
                next.withUnsafeMutableBufferPointer { out in
                    pool.parallelFor(rows) { r in
                        let row = UnsafeMutableBufferPointer(rebasing: all[(r * v)..<((r + 1) * v)])
                        out[r] = sampler.sample(logits: row, history: [], outputStart: 0, randomness: randomness[r]) ?? 0
                    }
                }
            }
            let t3 = now()
            last = next
            times.append((Double(t1 - t0) / 1e9, Double(t2 - t1) / 1e9, Double(t3 - t2) / 1e9))
        }
        func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }
        let bb = median(times.map(\.backbone)), hd = median(times.map(\.head)), sp = median(times.map(\.sampling))
        let step = median(times.map { $0.backbone + $0.head + $0.sampling })
        // the fastest step of each part: the figure least disturbed by other processes on the machine
        let best = (times.map(\.backbone).min()!, times.map(\.head).min()!, times.map(\.sampling).min()!)
        let record: [String: Any] = [
            "rows": rows, "context": context, "threads": threads, "prefill_rows": rows * context, "prefill_s": prefill,
            "backbone_ms": bb * 1e3, "lm_head_ms": hd * 1e3, "sampling_ms": sp * 1e3, "step_ms": step * 1e3,
            "backbone_gflops": backboneFlopsPerRow * Double(rows) / bb * 1e-9, "lm_head_gflops": headFlopsPerRow * Double(rows) / hd * 1e-9,
            "backbone_weight_gbs": backboneBytes / bb * 1e-9, "lm_head_weight_gbs": headBytes / hd * 1e-9,
            "tokens_per_s": Double(rows) / step,
            "best_backbone_ms": best.0 * 1e3, "best_lm_head_ms": best.1 * 1e3, "best_sampling_ms": best.2 * 1e3,
            "prefill_gflops": backboneFlopsPerRow * Double(rows * context) / prefill * 1e-9,
        ]
        records.append(record)
        if !json {
            print(String(format: "rows %3d: step %.1f ms (%.1f tokens/s) = backbone %.1f ms (%.1f GFLOP/s, %.1f GB/s of weights) + lm_head %.1f ms (%.1f GFLOP/s, %.1f GB/s) + sampling %.2f ms | prefill of %d rows %.3f s (%.1f GFLOP/s)",
                         rows, step * 1e3, Double(rows) / step, bb * 1e3, record["backbone_gflops"] as! Double, record["backbone_weight_gbs"] as! Double,
                         hd * 1e3, record["lm_head_gflops"] as! Double, record["lm_head_weight_gbs"] as! Double, sp * 1e3,
                         rows * context, prefill, record["prefill_gflops"] as! Double))
            print(String(format: "          fastest of %d steps: backbone %.1f ms, lm_head %.1f ms, sampling %.2f ms", steps,
                         best.0 * 1e3, best.1 * 1e3, best.2 * 1e3))
        }
    }
    let after = machine()
    if json {
        let out: [String: Any] = ["model": dir, "isa": KernelISA.active.rawValue, "threads": threads,
                                  "fma_peak_gflops": [before.peak, after.peak], "stream_gbs": [before.stream, after.stream],
                                  "results": records]
        if let data = try? JSONSerialization.data(withJSONObject: out, options: [.sortedKeys]) { print(String(decoding: data, as: UTF8.self)) }
    } else {
        print(String(format: "machine after:  FMA peak %.1f GFLOP/s, STREAM triad %.1f GB/s", after.peak, after.stream))
    }
}
