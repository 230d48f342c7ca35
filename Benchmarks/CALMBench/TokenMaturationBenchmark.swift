import CALMEngine
import CALMKernels
import CALMModel
import CALMTensor
import Foundation

/// Token Maturation serving against plain greedy decoding of the same backbone, in the same engine
/// (issue: "Token Maturation, part 1", item 6). Random weights in the paper's shape (GPT-2 Medium)
/// by default; the folders are written once under --dir and reused.
///   calm-bench tm [--shape medium|tiny] [--dtype f32|bf16] [--tails 1,4,16,64] [--scales 1,2]
///                 [--concurrency 1,16] [--tokens 16] [--prompt-tokens 32] [--repeat 1] [--dir /tmp/calm-bench-tm] [--json]
/// Reports, with the FMA peak and STREAM measured in the same run: tokens/s, seconds per decode step
/// (the median time between chunks), rows per step (prefill included), the backbone's GFLOP/s and share of peak, and the TM step's cost over a plain decode step.
/// `--repeat N` runs the whole sequence (greedy, then every TM setting) N times and ends with the
/// median over the rounds of each setting's ratio to the greedy step of the same round: on a shared
/// host one greedy/TM pair can read anywhere from 1.5× to 2.2× for the same build, and only
/// interleaved rounds separate the code from the machine's minute.
func runTokenMaturationBenchmark(_ arguments: [String]) async {
    func value(_ name: String) -> String? {
        arguments.firstIndex(of: "--\(name)").flatMap { $0 + 1 < arguments.count ? arguments[$0 + 1] : nil }
    }
    func list(_ name: String, _ fallback: String) -> [Int] { (value(name) ?? fallback).split(separator: ",").compactMap { Int($0) } }
    let json = arguments.contains("--json")
    let medium = (value("shape") ?? "medium") == "medium"
    let dtype = DType(userName: value("dtype") ?? "f32") ?? .f32
    let tails = list("tails", "1,4,16,64"), scales = (value("scales") ?? "1,2").split(separator: ",").compactMap { Float($0) }
    let levels = list("concurrency", "1,16")
    let tokens = Int(value("tokens") ?? "") ?? 16
    let promptTokens = Int(value("prompt-tokens") ?? "") ?? 32
    let rounds = max(1, Int(value("repeat") ?? "") ?? 1)
    let dir = URL(fileURLWithPath: value("dir") ?? "/tmp/calm-bench-tm")
    func log(_ s: String) { if !json { print(s) } }

    let gpt2Shape: RandomModelWriter.GPT2Shape = medium ? .gpt2Medium : .gpt2Tiny
    let tmShape: RandomModelWriter.TokenMaturationShape = medium ? .tmGPT2Medium : .tmGPT2Tiny
    let gpt2Dir = dir.appendingPathComponent("\(gpt2Shape.rawValue)-\(dtype.rawValue)")
    let tmDir = dir.appendingPathComponent("\(tmShape.rawValue)-\(dtype.rawValue)")
    do {
        if !FileManager.default.fileExists(atPath: gpt2Dir.appendingPathComponent("config.json").path) {
            log("writing \(gpt2Dir.path)…")
            try RandomModelWriter.writeGPT2(config: gpt2Shape.config, dtype: dtype, to: gpt2Dir, seed: 1)
        }
        if !FileManager.default.fileExists(atPath: tmDir.appendingPathComponent("config.json").path) {
            log("writing \(tmDir.path)…")
            try RandomModelWriter.writeTokenMaturation(config: tmShape.config, dtype: dtype, to: tmDir, seed: 1)
        }
    } catch {
        print("tm benchmark: \(error)"); return
    }
    let pool = ComputePool.shared
    let peak = calm_bench_fma_peak(pool.raw, 0.5)
    let stream = calm_bench_stream_triad(pool.raw, 32 << 20, 1.0)
    let config = gpt2Shape.config
    // Multiply-adds of one row through the stack (fused QKV 3d², projection d², MLP 2·d·inner).
    let rowFLOPs = 2.0 * Double(config.nLayer) * Double(4 * config.nEmbd * config.nEmbd + 2 * config.nEmbd * config.innerSize)
    log(String(format: "tm benchmark: %@ backbone, %@, FMA peak %.1f GFLOP/s, STREAM %.1f GB/s (%d threads, %@)",
               gpt2Shape.rawValue, dtype.rawValue, peak, stream, pool.threadCount, String(cString: calm_isa_name(calm_isa_active()))))
    log("| model | K | s | concurrency | tokens/s | s/step | rows/step | backbone GFLOP/s | % of peak | step / plain step |")
    log("|---|---|---|---|---|---|---|---|---|---|")

    var records: [[String: Any]] = []
    var plainStep: [Int: Double] = [:]
    var ratios: [String: [Double]] = [:]   // per TM setting, one step ÷ plain step per round
    var round = 0
    func run(_ engine: CALMEngine, _ parameters: @escaping @Sendable (Int) -> SamplingParameters, concurrency: Int,
             vocab: Int) async -> (tokensPerSecond: Double, stepSeconds: Double, rowsPerStep: Double, backboneGFLOPs: Double) {
        // A warm-up request, then the measured wave (statistics reset in between).
        if let s = try? engine.generate(prompt: .tokens([1, 2, 3]), parameters: { var p = parameters(999); p.maxTokens = 2; return p }()) {
            for await _ in s {}
        }
        engine.resetStatistics()
        let start = DispatchTime.now()
        let infos: [CompletionInfo] = await withTaskGroup(of: CompletionInfo?.self) { group in
            for i in 0..<concurrency {
                let rng = SeededRandomness(seed: UInt64(1000 + i))
                let prompt = (0..<promptTokens).map { _ in Int(rng.uniformDouble() * 1_000_000) % (vocab - 1) }
                guard let s = try? engine.generate(prompt: .tokens(prompt), parameters: parameters(i)) else { continue }
                group.addTask {
                    for await e in s { if case let .completed(info) = e { return info } }
                    return nil
                }
            }
            var all: [CompletionInfo] = []
            for await i in group { if let i { all.append(i) } }
            return all
        }
        let generated = infos.reduce(0) { $0 + $1.generatedTokens }
        // A decode step's time: the median time between chunks (the prompt's prefill step excluded).
        let perChunk = infos.flatMap { $0.chunkSeconds.dropFirst() }.sorted()
        let decodeStep = perChunk.isEmpty ? 0 : perChunk[perChunk.count / 2]
        let wall = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        let stats = engine.statistics
        let steps = max(1, stats.steps)
        return (Double(generated) / wall, decodeStep, Double(stats.backboneRows) / Double(steps),
                stats.backboneSeconds > 0 ? Double(stats.backboneRows) * rowFLOPs / stats.backboneSeconds / 1e9 : 0)
    }
    func record(_ model: String, k: Int, s: Float, concurrency: Int, _ r: (tokensPerSecond: Double, stepSeconds: Double, rowsPerStep: Double, backboneGFLOPs: Double)) {
        let factor = k == 0 ? nil : plainStep[concurrency].map { r.stepSeconds / $0 }   // greedy is the unit
        if k > 0, let factor { ratios["K = \(k), s = \(String(format: "%g", s)), concurrency \(concurrency)", default: []].append(factor) }
        log(String(format: "| %@ | %@ | %@ | %d | %.2f | %.4f | %.1f | %.1f | %.0f%% | %@ |", model, k == 0 ? "–" : "\(k)",
                   k == 0 ? "–" : String(format: "%g", s), concurrency, r.tokensPerSecond, r.stepSeconds, r.rowsPerStep,
                   r.backboneGFLOPs, 100 * r.backboneGFLOPs / peak, factor.map { String(format: "%.2f×", $0) } ?? "1"))
        records.append(["model": model, "tail": k, "guidance": Double(s), "concurrency": concurrency, "tokens_per_s": r.tokensPerSecond,
                        "step_seconds": r.stepSeconds, "rows_per_step": r.rowsPerStep, "backbone_gflops": r.backboneGFLOPs,
                        "percent_of_peak": 100 * r.backboneGFLOPs / peak, "step_over_plain": factor ?? 1,
                        "peak_gflops": peak, "stream_gbs": stream, "dtype": dtype.rawValue, "round": round])
    }
    do {
        let plain = try CALMEngine(directory: gpt2Dir, configuration: EngineConfiguration(kvCacheBytes: 2 << 30))
        let tm = try CALMEngine(directory: tmDir, configuration: EngineConfiguration(kvCacheBytes: 4 << 30))
        for n in 1...rounds {
            round = n
            if rounds > 1 { log("round \(n) of \(rounds)") }
            for c in levels {
                let r = await run(plain, { SamplingParameters(maxTokens: tokens, temperature: 0, seed: UInt64($0), stopAtEndToken: false) },
                                  concurrency: c, vocab: config.vocabSize)
                record("greedy", k: 0, s: 1, concurrency: c, r)
                plainStep[c] = r.stepSeconds
            }
            for k in tails {
                for s in scales {
                    for c in levels {
                        let r = await run(tm, { i in
                            var p = SamplingParameters(maxTokens: tokens, seed: UInt64(i), stopAtEndToken: false)
                            p.maturation = TokenMaturationParameters(tailLength: k, guidanceScale: s)
                            return p
                        }, concurrency: c, vocab: config.vocabSize)
                        record("tm", k: k, s: s, concurrency: c, r)
                    }
                }
            }
        }
    } catch {
        print("tm benchmark: \(error)"); return
    }
    if rounds > 1 {
        log("\nmedian of \(rounds) rounds, TM step ÷ the same round's plain step (each round's ratios in brackets):")
        for (setting, values) in ratios.sorted(by: { $0.key < $1.key }) {
            let sorted = values.sorted()
            log(String(format: "  %@: %.2f× [%@]", setting, sorted[sorted.count / 2], values.map { String(format: "%.2f", $0) }.joined(separator: ", ")))
        }
    }
    if json, let data = try? JSONSerialization.data(withJSONObject: records, options: [.prettyPrinted, .sortedKeys]) {
        print(String(decoding: data, as: UTF8.self))
    }
}
