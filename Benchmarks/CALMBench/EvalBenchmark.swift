import CALMEvaluation
import CALMModel
import CALMTensor
import Foundation

/// BrierLM evaluation throughput on a random-weight model of CALM-M's shape (built in memory),
/// over blocks of random token ids, with the FLOPs the evaluation needs and the fraction of the
/// two-thread FMA peak that reaches.
///
///     swift run -c release calm-bench eval [--block-sizes 2048,8192] [--blocks N] [--dtype bf16|f32]
///                                           [--shape calm-m] [--peak GFLOPS]
func runEvalBenchmark(_ arguments: [String]) {
    func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data((message + "\n").utf8))
        exit(1)
    }
    var blockSizes = [2048, 8192]
    var blocks = 1
    var dtype = DType.bf16
    var shape = RandomModelWriter.Shape.calmM
    // Two threads × 2 FMA units × 8 f32 lanes × 2 flops × ~3.6 GHz (AVX2); override with --peak.
    var peak = 232.0
    var index = 0
    while index < arguments.count {
        let argument = arguments[index]
        let value = index + 1 < arguments.count ? arguments[index + 1] : ""
        switch argument {
        case "--block-sizes": blockSizes = value.split(separator: ",").compactMap { Int($0) }; index += 2
        case "--blocks": blocks = max(1, Int(value) ?? 1); index += 2
        case "--dtype": dtype = DType(userName: value) ?? { fail("eval benchmark: --dtype f32|f16|bf16") }(); index += 2
        case "--shape": shape = RandomModelWriter.Shape(rawValue: value) ?? { fail("eval benchmark: unknown shape \(value)") }(); index += 2
        case "--peak": peak = Double(value) ?? peak; index += 2
        default: fail("eval benchmark: unknown option \(argument)")
        }
    }
    let (c, a) = shape.configs
    let loadStart = Date()
    let model: CALMModel
    do {
        let source = RandomTensorSource(model: c, autoencoder: a, dtype: dtype)
        let ae = try Autoencoder(config: a, source: source, prefix: "ae_model.")
        model = try CALMModel(config: c, autoencoder: ae, source: source)
    } catch { fail("eval benchmark: \(error)") }
    print(String(format: "model %@ (%@ weights), built in %.1f s; threads %d", shape.rawValue, dtype.rawValue,
                 Date().timeIntervalSince(loadStart), model.pool.threadCount))
    print("block  blocks  seconds  tokens/s  GFLOP/token  GFLOP/s  %peak  (embed/backbone/attn/head/decoder GFLOP per block)")
    for blockSize in blockSizes {
        var random = SystemRandomNumberGenerator()
        let ordinary = c.bosTokenID ?? (c.vocabSize - 1)
        let data = (0..<blocks).map { _ in (0..<blockSize).map { _ in Int.random(in: 0..<ordinary, using: &random) } }
        let evaluator = BrierLMEvaluator(model: .calm(model), options: EvaluationOptions(seed: 1))
        let result: EvaluationResult
        do { result = try evaluator.evaluate(data) } catch { fail("eval benchmark: \(error)") }
        let cost = EvaluationCost.calm(c, autoencoder: a, blockSize: blockSize)
        let flops = cost.total * Double(blocks)
        let rate = flops / result.seconds / 1e9
        print(String(format: "%5d  %6d  %7.2f  %8.1f  %11.3f  %7.1f  %5.1f  (%.0f/%.0f/%.0f/%.0f/%.0f)",
                     blockSize, blocks, result.seconds, result.tokensPerSecond, cost.total / Double(blockSize) / 1e9,
                     rate, 100 * rate / peak, cost.embedding / 1e9, cost.backboneLinear / 1e9, cost.attention / 1e9,
                     cost.head / 1e9, cost.decoder / 1e9))
    }
    print(String(format: "peak used: %.0f GFLOP/s (two-thread FMA; --peak to override)", peak))
}
