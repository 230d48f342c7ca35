import CALMTraining
import Foundation

/// `calm train-autoencoder` / `calm train`: AdamW training from a token-id file, with periodic
/// checkpoints in the engine's model-folder format and --resume.
enum TrainCommand {
    static func help(_ name: String, _ what: String) -> String {
        """
        usage: calm \(name) --model DIR --data FILE --output DIR [--resume CHECKPOINT] [options]

          Trains \(what) with AdamW. --model is the starting model folder (ignored with --resume, which
          continues from a checkpoint-N folder written by an earlier run). --data holds token ids:
          whitespace-separated decimals (.txt) or little-endian u32 (any other extension).

          --steps N (100)  --batch-size N (4)  --chunks N per sequence (32)  --lr X (3e-4)
          --warmup N (10)  --weight-decay X (0.1)  --beta1 X (0.9)  --beta2 X (0.95)
          --max-grad-norm X (1.0; 0 disables)  --checkpoint-every N (0: only at the end)  --seed N (0)

          Prints one progress line per step: step, loss, lr, grad norm, tokens/s, ETA.
        """
    }

    static func options(_ a: inout Arguments) throws -> TrainingRunOptions {
        var o = TrainingRunOptions()
        o.steps = try a.int("steps") ?? o.steps
        o.batchSize = try a.int("batch-size") ?? o.batchSize
        o.chunksPerSequence = try a.int("chunks") ?? o.chunksPerSequence
        o.learningRate = Float(try a.double("lr") ?? Double(o.learningRate))
        o.warmupSteps = try a.int("warmup") ?? o.warmupSteps
        o.weightDecay = Float(try a.double("weight-decay") ?? Double(o.weightDecay))
        o.beta1 = Float(try a.double("beta1") ?? Double(o.beta1))
        o.beta2 = Float(try a.double("beta2") ?? Double(o.beta2))
        if let g = try a.double("max-grad-norm") { o.maxGradNorm = g > 0 ? Float(g) : nil }
        o.checkpointEvery = try a.int("checkpoint-every") ?? 0
        o.seed = UInt64(try a.int("seed") ?? 0)
        guard o.steps > 0, o.batchSize > 0, o.chunksPerSequence > 0 else { throw UsageError("--steps, --batch-size and --chunks must be positive") }
        return o
    }

    static func common(_ raw: [String]) throws -> (model: URL?, data: TokenData, output: URL, resume: URL?, options: TrainingRunOptions) {
        var a = try Arguments(raw, switches: [])
        let model = a.string("model").map { URL(fileURLWithPath: $0) }
        let data = try TokenData.load(URL(fileURLWithPath: try a.required("data")))
        let output = URL(fileURLWithPath: try a.required("output"))
        let resume = a.string("resume").map { URL(fileURLWithPath: $0) }
        let o = try options(&a)
        try a.finish()
        guard model != nil || resume != nil else { throw UsageError("give --model (or --resume)") }
        return (model, data, output, resume, o)
    }

    static func autoencoder(_ raw: [String]) throws {
        if raw.contains("--help") || raw.contains("-h") { writeStdout(help("train-autoencoder", "a chunk autoencoder") + "\n"); return }
        let (model, data, output, resume, o) = try common(raw)
        let ae = try TrainableAutoencoder.load(directory: resume ?? model!)
        let last = try Trainer.trainAutoencoder(ae, data: data, options: o, output: output, resume: resume) { writeStdout($0.line + "\n") }
        writeStdout("saved \(last.path)\n")
    }

    static func calm(_ raw: [String]) throws {
        if raw.contains("--help") || raw.contains("-h") { writeStdout(help("train", "a CALM model (energy loss, autoencoder frozen)") + "\n"); return }
        let (model, data, output, resume, o) = try common(raw)
        let m = try TrainableCALM.load(directory: resume ?? model!)
        let last = try Trainer.trainCALM(m, data: data, options: o, output: output, resume: resume) { writeStdout($0.line + "\n") }
        writeStdout("saved \(last.path)\n")
    }
}
