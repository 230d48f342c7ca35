import CALMKernels
import CALMModel
import CALMTensor
import Foundation

/// Time of one T = 1 decode step (backbone step over one chunk + one head sample + decoder with
/// the vocabulary argmax) for a random-weight model of CALM-M's shape, against its bandwidth floor
/// (bytes of weights the step must read ÷ STREAM triad bandwidth measured in the same run).
///   calm-bench decode [--dtype f32|bf16] [--shape calm-m|tiny] [--steps N] [--context N] [--threads N] [--json]
func runDecodeBenchmark(_ arguments: [String]) {
    func value(_ name: String) -> String? {
        arguments.firstIndex(of: "--\(name)").flatMap { $0 + 1 < arguments.count ? arguments[$0 + 1] : nil }
    }
    let json = arguments.contains("--json")
    let dtypes = (value("dtype").map { [$0] } ?? ["f32", "bf16"]).compactMap { DType(userName: $0) }
    let shape = RandomModelWriter.Shape(rawValue: value("shape") ?? "calm-m") ?? .calmM
    let steps = Int(value("steps") ?? "") ?? 20
    let context = Int(value("context") ?? "") ?? 64
    let threads = Int(value("threads") ?? "") ?? 2
    let pool = ComputePool(threads: threads)
    let streamGBs = calm_bench_stream_triad(pool.raw, 32 << 20, 1.0)
    let peak = calm_bench_fma_peak(pool.raw, 0.5)
    var records: [[String: Any]] = []
    if !json {
        print(String(format: "machine: STREAM triad %.1f GB/s, FMA peak %.1f GFLOP/s (%d threads, %@)", streamGBs, peak, threads,
                     String(cString: calm_isa_name(calm_isa_active()))))
    }
    for dtype in dtypes {
        let (c, a) = shape.configs
        let source = RandomTensorSource(model: c, autoencoder: a, dtype: dtype, seed: 1)
        let loadStart = DispatchTime.now()
        let model: CALMModel
        do {
            let options = LoadOptions(pool: pool)
            let ae = try Autoencoder(config: a, source: source, prefix: "ae_model.", options: options)
            model = try CALMModel(config: c, autoencoder: ae, source: source, options: options)
        } catch {
            print("failed to build the model: \(error)")
            return
        }
        let loadSeconds = Double(DispatchTime.now().uptimeNanoseconds - loadStart.uptimeNanoseconds) / 1e9
        // A context of `context` chunks, then timed single-chunk steps.
        let cache = model.makeCache(blockPositions: 64)
        let rng = SeededRandomness(seed: 3)
        let prompt = (0..<(context * c.patchSize)).map { _ in Int(rng.uniformDouble() * 1000) }
        var hidden = try! model.forward(chunks: [prompt], caches: [cache])
        var chunk = [Int](prompt.suffix(c.patchSize))
        var times: [Double] = []
        var phase = (backbone: 0.0, head: 0.0, decoder: 0.0)
        for _ in 0..<steps {
            let t0 = DispatchTime.now().uptimeNanoseconds
            hidden = try! model.forward(chunks: [chunk], caches: [cache])
            let t1 = DispatchTime.now().uptimeNanoseconds
            let noise = rng.uniformFloats(count: c.noiseSize).map { $0 - 0.5 }
            let latent = model.head.sample(hiddenStates: Array(hidden.suffix(c.hiddenSize)), rows: 1, samplesPerRow: 1, noise: noise, pool: pool)
            let t2 = DispatchTime.now().uptimeNanoseconds
            chunk = model.autoencoder.decodeTokens(latent, rows: 1, pool: pool).map(Int.init)
            let t3 = DispatchTime.now().uptimeNanoseconds
            times.append(Double(t3 - t0) / 1e9)
            phase.backbone += Double(t1 - t0) / 1e9; phase.head += Double(t2 - t1) / 1e9; phase.decoder += Double(t3 - t2) / 1e9
        }
        let sorted = times.sorted()
        let median = sorted[sorted.count / 2]
        let bytes = Double(model.decodeStepWeightBytes)
        let floor = bytes / (streamGBs * 1e9)
        let record: [String: Any] = [
            "shape": shape.rawValue, "dtype": dtype.rawValue, "threads": threads, "context_chunks": context,
            "weight_bytes_per_step": bytes, "stream_gbs": streamGBs, "fma_peak_gflops": peak,
            "step_ms_median": median * 1e3, "step_ms_min": sorted[0] * 1e3, "floor_ms": floor * 1e3,
            "ratio_to_floor": median / floor, "effective_gbs": bytes / median / 1e9,
            "backbone_ms": phase.backbone / Double(steps) * 1e3, "head_ms": phase.head / Double(steps) * 1e3,
            "decoder_ms": phase.decoder / Double(steps) * 1e3, "load_s": loadSeconds,
        ]
        records.append(record)
        if !json {
            print(String(format: "%@ %@: step %.2f ms (min %.2f) | floor %.2f ms (%.0f MB ÷ %.1f GB/s) → %.2f× floor | %.1f GB/s effective | backbone %.2f, head %.2f, decoder %.2f ms",
                         shape.rawValue, dtype.rawValue, median * 1e3, sorted[0] * 1e3, floor * 1e3, bytes / 1e6, streamGBs,
                         median / floor, bytes / median / 1e9, record["backbone_ms"] as! Double, record["head_ms"] as! Double,
                         record["decoder_ms"] as! Double))
        }
    }
    if json, let data = try? JSONSerialization.data(withJSONObject: records.map { $0.merging(["isa": KernelISA.active.rawValue]) { a, _ in a } }, options: [.sortedKeys]) {
        print(String(decoding: data, as: UTF8.self))
    }
}
