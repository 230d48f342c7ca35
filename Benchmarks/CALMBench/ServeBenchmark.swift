import CALMEngine
import CALMKernels
import CALMModel
import CALMTensor
import Foundation

/// Engine throughput under concurrent load on a random-weight model (CALM-M's shape or tiny):
/// aggregate chunks/s and tokens/s at several concurrency levels and temperatures, time to first
/// chunk and time per chunk (p50, p99), and where each step's time goes.
///   calm-bench serve [--shape calm-m|tiny] [--dtype f32|bf16] [--concurrency 1,4,16,64]
///                    [--temperatures 1,0.5] [--samples 200] [--tokens-t1 32] [--tokens-tlow 8] [--json]
func runServeBenchmark(_ arguments: [String]) async {
    func value(_ name: String) -> String? {
        arguments.firstIndex(of: "--\(name)").flatMap { $0 + 1 < arguments.count ? arguments[$0 + 1] : nil }
    }
    let json = arguments.contains("--json")
    let shape = RandomModelWriter.Shape(rawValue: value("shape") ?? "calm-m") ?? .calmM
    let dtype = DType(userName: value("dtype") ?? "bf16") ?? .bf16
    let levels = (value("concurrency") ?? "1,4,16,64").split(separator: ",").compactMap { Int($0) }
    let temperatures = (value("temperatures") ?? "1,0.5").split(separator: ",").compactMap { Double($0) }
    let samples = Int(value("samples") ?? "") ?? 200
    let tokensT1 = Int(value("tokens-t1") ?? "") ?? 32
    let tokensLow = Int(value("tokens-tlow") ?? "") ?? 8
    let promptTokens = Int(value("prompt-tokens") ?? "") ?? 32

    let pool = ComputePool.shared
    let peak = calm_bench_fma_peak(pool.raw, 0.5)
    let (c, a) = shape.configs
    let source = RandomTensorSource(model: c, autoencoder: a, dtype: dtype, seed: 1)
    let model: CALMModel
    do {
        let ae = try Autoencoder(config: a, source: source, prefix: "ae_model.")
        model = try CALMModel(config: c, autoencoder: ae, source: source)
    } catch {
        print("failed to build the model: \(error)"); return
    }
    if !json {
        print(String(format: "serve benchmark: %@ %@, FMA peak %.1f GFLOP/s (%d threads, %@)", shape.rawValue, dtype.rawValue, peak,
                     pool.threadCount, String(cString: calm_isa_name(calm_isa_active()))))
    }
    var records: [[String: Any]] = []
    for t in temperatures {
        var singleTokensPerSecond = 0.0
        for concurrency in levels {
            let engine: CALMEngine
            do { engine = try CALMEngine(model: model, configuration: EngineConfiguration(kvCacheBytes: 2 << 30)) } catch {
                print("engine: \(error)"); return
            }
            let maxTokens = t == 1 ? tokensT1 : tokensLow
            let parameters = { (i: Int) in
                SamplingParameters(maxTokens: maxTokens, temperature: t, seed: UInt64(i), stopAtEndToken: false,
                                   sampler: t == 1 ? .single : .batchApproximation(samples: samples))
            }
            let start = DispatchTime.now()
            let infos: [CompletionInfo] = await withTaskGroup(of: CompletionInfo?.self) { group in
                for i in 0..<concurrency {
                    let rng = SeededRandomness(seed: UInt64(1000 + i))
                    let prompt = (0..<promptTokens).map { _ in Int(rng.uniformDouble() * 100_000) % (c.vocabSize - 300) }
                    guard let stream = try? engine.generate(prompt: .tokens(prompt), parameters: parameters(i)) else { continue }
                    group.addTask {
                        for await e in stream { if case let .completed(info) = e { return info } }
                        return nil
                    }
                }
                var r: [CompletionInfo] = []
                for await i in group { if let i { r.append(i) } }
                return r
            }
            let wall = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
            let stats = engine.statistics
            let tokens = infos.reduce(0) { $0 + $1.generatedTokens }
            let chunks = infos.reduce(0) { $0 + $1.chunks }
            let ttfc = infos.compactMap(\.timeToFirstChunk)
            let perChunk = infos.flatMap { $0.chunkSeconds.dropFirst() }
            let samplingFLOPs = model.samplingFLOPs(samples: stats.samplesDecoded, rows: chunks, argmaxRows: stats.argmaxRows)
            let samplingGFLOPs = stats.samplingSeconds > 0 ? samplingFLOPs / stats.samplingSeconds / 1e9 : 0
            let tps = Double(tokens) / wall
            if concurrency == 1 { singleTokensPerSecond = tps }
            let record: [String: Any] = [
                "shape": shape.rawValue, "dtype": dtype.rawValue, "temperature": t, "samples": t == 1 ? 1 : samples,
                "concurrency": concurrency, "requests_completed": infos.count,
                "aggregate_tokens_per_s": tps, "aggregate_chunks_per_s": Double(chunks) / wall,
                "speedup_vs_single": singleTokensPerSecond > 0 ? tps / singleTokensPerSecond : 0.0,
                "ttfc_p50_s": percentile(ttfc, 0.5), "ttfc_p99_s": percentile(ttfc, 0.99),
                "time_per_chunk_p50_s": percentile(perChunk, 0.5), "time_per_chunk_p99_s": percentile(perChunk, 0.99),
                "wall_s": wall, "steps": stats.steps,
                "backbone_share": stats.backboneSeconds / wall, "sampling_share": stats.samplingSeconds / wall,
                "other_share": max(0, 1 - (stats.backboneSeconds + stats.samplingSeconds) / wall),
                "sampling_gflops": samplingGFLOPs, "sampling_fraction_of_peak": samplingGFLOPs / peak,
            ]
            records.append(record)
            if !json {
                print(String(format: "T=%.2f C=%3d: %8.1f tok/s %7.2f chunks/s (×%.1f vs C=1) | TTFC p50 %.3f p99 %.3f s | chunk p50 %.3f p99 %.3f s | time: backbone %.0f%%, sampling %.0f%% (%.1f GFLOP/s = %.0f%% of peak), other %.0f%%",
                             t, concurrency, tps, Double(chunks) / wall, record["speedup_vs_single"] as! Double,
                             percentile(ttfc, 0.5), percentile(ttfc, 0.99), percentile(perChunk, 0.5), percentile(perChunk, 0.99),
                             100 * (record["backbone_share"] as! Double), 100 * (record["sampling_share"] as! Double), samplingGFLOPs,
                             100 * samplingGFLOPs / peak, 100 * (record["other_share"] as! Double)))
            }
        }
    }
    if json, let data = try? JSONSerialization.data(withJSONObject: records.map { $0.merging(["isa": KernelISA.active.rawValue]) { a, _ in a } }, options: [.sortedKeys]) {
        print(String(decoding: data, as: UTF8.self))
    }
}

func percentile(_ values: [Double], _ q: Double) -> Double {
    guard !values.isEmpty else { return 0 }
    let s = values.sorted()
    return s[min(s.count - 1, Int((Double(s.count - 1) * q).rounded()))]
}
