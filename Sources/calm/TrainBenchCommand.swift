import CALMKernels
import CALMModel
import CALMTraining
import Foundation

/// `calm bench-train`: times full training steps (forward, backward, AdamW) of freshly
/// initialised models at a given size and reports tokens/s and the fraction of the measured FMA
/// peak reached in the FLOPs the step needs.
enum TrainBenchCommand {
    static let help = """
    usage: calm bench-train [--model ae|calm|baseline|all] [--steps N] [options]

      Times training steps on random data (one warm-up step, then --steps N, default 3) and prints
      s/step, tokens/s, useful GFLOP/s (matmul products incl. the causal attention triangle) and
      the fraction of the two-thread FMA peak measured by calm_bench_fma_peak.

      autoencoder:  --ae-hidden 256 --ae-intermediate 512 --ae-latent 64 --patch 4 --vocab 8192
                    --ae-tokens 2048 (tokens per step)
      calm/baseline: --hidden 512 --intermediate 1365 --layers 8 --heads 8 --kv-heads 8
                    --head-blocks 2 --noise 64 --samples 8 --targets 100
                    --batch 4 --block 2048 (tokens per sequence; CALM positions = block / patch)
      --threads N (default: all cores)
    """

    static func run(_ raw: [String]) throws {
        if Arguments.wantsHelp(raw) { writeStdout(help + "\n"); return }
        var a = try Arguments(raw, switches: [], values: [
            "model", "steps", "vocab", "patch", "ae-hidden", "ae-intermediate", "ae-latent", "ae-tokens", "hidden", "intermediate",
            "layers", "heads", "kv-heads", "head-blocks", "noise", "samples", "targets", "batch", "block", "threads",
        ])
        let what = a.string("model") ?? "all"
        let steps = try a.int("steps") ?? 3
        let vocab = try a.int("vocab") ?? 8192, k = try a.int("patch") ?? 4
        var ae = AutoencoderConfig()
        ae.vocabSize = vocab; ae.patchSize = k
        ae.hiddenSize = try a.int("ae-hidden") ?? 256
        ae.intermediateSize = try a.int("ae-intermediate") ?? 512
        ae.latentSize = try a.int("ae-latent") ?? 64
        ae.padTokenID = vocab - 1; ae.bosTokenID = vocab - 3; ae.eosTokenID = vocab - 2
        let aeTokens = try a.int("ae-tokens") ?? 2048
        var c = CALMConfig()
        c.vocabSize = vocab; c.patchSize = k; c.latentSize = ae.latentSize
        c.hiddenSize = try a.int("hidden") ?? 512
        c.intermediateSize = try a.int("intermediate") ?? 1365
        c.numHiddenLayers = try a.int("layers") ?? 8
        c.numAttentionHeads = try a.int("heads") ?? 8
        c.numKeyValueHeads = try a.int("kv-heads") ?? c.numAttentionHeads
        c.numMLPLayers = try a.int("head-blocks") ?? 2
        c.noiseSize = try a.int("noise") ?? 64
        c.numSamples = try a.int("samples") ?? 8
        c.padTokenID = ae.padTokenID; c.bosTokenID = ae.bosTokenID; c.eosTokenID = ae.eosTokenID
        let targets = try a.int("targets") ?? 100
        let batch = try a.int("batch") ?? 4, block = try a.int("block") ?? 2048
        let threads = try a.int("threads")
        try a.finish()
        let pool = threads.map { ComputePool(threads: $0) } ?? ComputePool.shared
        let peak = calm_bench_fma_peak(pool.raw, 0.5)
        writeStdout(String(format: "FMA peak (%d threads): %.1f GFLOP/s\n", calm_pool_size(pool.raw), peak))
        let rng = SeededRandomness(seed: 1)
        func ids(_ n: Int) -> [Int] { (0..<n).map { _ in Int(rng.next() % UInt64(vocab - 3)) } }

        func time(_ label: String, _ tokens: Int, _ params: ParameterSet, _ step: (Int) throws -> Void) throws {
            let opt = AdamW(parameters: params, options: .init(learningRate: 1e-4))
            try step(-1); opt.apply()
            Matmul.flopCount = 0
            let start = Date()
            for s in 0..<steps { try step(s); opt.apply() }
            let sec = Date().timeIntervalSince(start) / Double(steps)
            let gflops = Matmul.flopCount / Double(steps) / sec / 1e9
            writeStdout(String(format: "%@: %.3f s/step  %.0f tokens/s  %.1f GFLOP/s useful (%.2f GFLOP/step)  %.1f%% of peak\n",
                               label, sec, Double(tokens) / sec, gflops, Matmul.flopCount / Double(steps) / 1e9, 100 * gflops / peak))
        }

        if what == "gemm" {
            for (m, n, kk) in [(2048, 1365, 512), (2048, 512, 1365), (1365, 512, 2048), (2048, 8192, 256), (8192, 256, 2048), (2048, 256, 8192)] {
                let x = [Float](repeating: 0.5, count: m * kk), w = [Float](repeating: 0.25, count: n * kk)
                let wt = [Float](repeating: 0.25, count: kk * n)
                var y = [Float](repeating: 0, count: m * n)
                for (name, f) in [("nt", { calm_gemm_nt(pool.raw, Int32(m), Int32(n), Int32(kk), x, kk, w, kk, &y, n, 0) }),
                                  ("nn", { calm_gemm_nn(pool.raw, Int32(m), Int32(n), Int32(kk), x, kk, wt, n, &y, n, 0) }),
                                  ("tn", { calm_gemm_tn(pool.raw, Int32(m), Int32(n), Int32(kk), x, m, wt, n, &y, n, 1) })] as [(String, () -> Void)] {
                    f()
                    let start = Date()
                    for _ in 0..<5 { f() }
                    let sec = Date().timeIntervalSince(start) / 5
                    let g = 2 * Double(m * n * kk) / sec / 1e9
                    writeStdout(String(format: "gemm %@ m %d n %d k %d: %.1f GFLOP/s (%.0f%% of peak)\n", name, m, n, kk, g, 100 * g / peak))
                }
            }
        }
        if what == "ae" || what == "all" {
            let m = TrainableAutoencoder.initialized(config: ae, seed: 1)
            let data = ids(aeTokens)
            try time("autoencoder H\(ae.hiddenSize) I\(ae.intermediateSize) z\(ae.latentSize) K\(k) V\(vocab), \(aeTokens) tokens/step",
                     aeTokens, m.parameters) { s in
                _ = try AutoencoderTrainingStep.lossAndGradients(model: m, inputIDs: data, rng: SeededRandomness(seed: UInt64(s + 10)), pool: pool)
            }
        }
        if what == "calm" || what == "all" {
            let m = TrainableCALM.initialized(config: c, autoencoder: TrainableAutoencoder.initialized(config: ae, seed: 1), seed: 2)
            let rows = (0..<batch).map { _ in ids(block) }
            try time("calm H\(c.hiddenSize) I\(c.intermediateSize) L\(c.numHiddenLayers) heads \(c.numAttentionHeads) head-blocks \(c.numMLPLayers), \(batch)×\(block) tokens/step",
                     batch * block, m.parameters) { s in
                _ = try EnergyTrainingStep.lossAndGradients(model: m, inputIDs: rows, rng: SeededRandomness(seed: UInt64(s + 10)),
                                                            targetSamples: targets, pool: pool)
            }
        }
        if what == "baseline" || what == "all" {
            try benchBaseline(c, batch: batch, block: block, ids: ids, time: time)
        }
    }
}

extension TrainBenchCommand {
    static func benchBaseline(_ c: CALMConfig, batch: Int, block: Int, ids: (Int) -> [Int],
                              time: (String, Int, ParameterSet, (Int) throws -> Void) throws -> Void) throws {
        var b = LlamaBaselineConfig()
        b.vocabSize = c.vocabSize; b.hiddenSize = c.hiddenSize; b.intermediateSize = c.intermediateSize
        b.numHiddenLayers = c.numHiddenLayers; b.numAttentionHeads = c.numAttentionHeads; b.numKeyValueHeads = c.kvHeads
        let m = TrainableLlama.initialized(config: b, seed: 3)
        let rows = (0..<batch).map { _ in ids(block) }
        try time("baseline llama H\(b.hiddenSize) I\(b.intermediateSize) L\(b.numHiddenLayers), \(batch)×\(block) tokens/step",
                 batch * block, m.parameters) { _ in
            _ = try CausalLMTrainingStep.lossAndGradients(model: m, inputIDs: rows)
        }
    }
}
