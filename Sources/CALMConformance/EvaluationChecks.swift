import CALMEvaluation
import CALMModel
import Foundation

/// `eval.*`: the evaluation forward (energy loss and Brier-1…4) with injected head noise and
/// posterior noise.
enum EvaluationChecks {
    static func run(_ model: CALMModel, keys: [String], _ ctx: GoldenContext) {
        do {
            let ids = try ctx.ints("eval.input_ids")
            let uniform = try ctx.floats("eval.head_uniform")
            let samples = ctx.shape("eval.head_uniform").first ?? model.config.numSamples
            let targetEps = ctx.has("eval.energy_target_eps") ? try ctx.floats("eval.energy_target_eps") : nil
            let m = ctx.shape("eval.energy_target_eps").first ?? 100
            let result = try model.evaluateTeacherForced(ids: ids, samples: samples, headUniform: uniform,
                                                         targetNoise: targetEps, posteriorSamples: m)
            var checked: Set<String> = ["eval.input_ids", "eval.head_uniform", "eval.energy_target_eps"]
            if ctx.has("eval.head_noise") { ctx.check("eval.head_noise", floats: uniform.map { $0 - 0.5 }); checked.insert("eval.head_noise") }
            if ctx.has("eval.loss") {
                let ref = Double(try ctx.floats("eval.loss")[0])
                let diff = abs(result.loss - ref)
                ctx.emit(ConformanceCheck(file: ctx.file, name: "eval.loss", passed: diff <= 1e-4 * max(1, abs(ref)),
                                          detail: String(format: "%.6f vs %.6f (|Δ| %.1e)", result.loss, ref, diff)))
                checked.insert("eval.loss")
            }
            if ctx.has("eval.brier") {
                let ref = try ctx.floats("eval.brier")
                let ours = result.brier.map { Float($0) }
                let ok = ours == ref
                ctx.emit(ConformanceCheck(file: ctx.file, name: "eval.brier", passed: ok, detail: "\(ours) vs \(ref)"))
                checked.insert("eval.brier")
            }
            ctx.reportUnchecked(keys, checked: checked)
        } catch { ctx.fail("eval.*", "\(error)") }
        runEvaluator(model, ctx)
    }

    /// The same goldens through the batched BrierLM evaluator (`CALMEvaluation`), replaying the
    /// recorded head and posterior noise.
    static func runEvaluator(_ model: CALMModel, _ ctx: GoldenContext) {
        guard ctx.has("eval.brier") || ctx.has("eval.loss") else { return }
        do {
            let ids = try ctx.ints("eval.input_ids")
            let uniform = try ctx.floats("eval.head_uniform")
            let samples = ctx.shape("eval.head_uniform").first ?? model.config.numSamples
            let targetEps = ctx.has("eval.energy_target_eps") ? try ctx.floats("eval.energy_target_eps") : nil
            let m = ctx.shape("eval.energy_target_eps").first ?? 100
            let adapter = CALMBrierModel(model: model, energyLoss: targetEps != nil, posteriorSamples: m)
            guard adapter.samples == samples else {
                ctx.fail("eval.brier (evaluator)", "head_uniform has \(samples) samples per position, the evaluator draws \(adapter.samples)")
                return
            }
            let noise = RecordedEvaluationNoise(uniforms: uniform, normals: targetEps ?? [])
            // K < 4 replays the reference's window-by-window continuation noise order.
            let evaluation = try BrierLMEvaluator(adapter: adapter, kind: "calm", options: EvaluationOptions(continuationGroup: 1))
                .evaluate([ids], noise: noise)
            if ctx.has("eval.brier") {
                let ref = try ctx.floats("eval.brier")
                let ours = evaluation.report.brier.map { Float($0) }
                let consumed = noise.fullyConsumed
                ctx.emit(ConformanceCheck(file: ctx.file, name: "eval.brier (evaluator)", passed: ours == ref && consumed,
                                          detail: "\(ours) vs \(ref)" + (consumed ? "" : "; the recorded noise was not used exactly")))
            }
            if ctx.has("eval.loss") {
                let ref = Double(try ctx.floats("eval.loss")[0])
                let loss = evaluation.energyLoss ?? .nan
                let diff = abs(loss - ref)
                ctx.emit(ConformanceCheck(file: ctx.file, name: "eval.loss (evaluator)", passed: diff <= 1e-4 * max(1, abs(ref)),
                                          detail: String(format: "%.6f vs %.6f (|Δ| %.1e)", loss, ref, diff)))
            }
        } catch { ctx.fail("eval.brier (evaluator)", "\(error)") }
    }
}
