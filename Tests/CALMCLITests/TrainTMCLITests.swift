import CALMTestSupport
import Foundation
import Testing

/// `calm train-tm` end to end on the built executable: a random Llama baseline (llama-tiny), a few
/// steps with a held-out report and checkpoints, an exact resume, `calm export` of the result and
/// `calm inspect` of the exported Token Maturation folder (with gradient accumulation, so its resume
/// is checked too); and the one-line errors of bad flags, the shared schedule flags included.
@Suite("train-tm CLI (calm subprocess)")
struct TrainTMCLITests {
    @Test func trainResumeExportInspect() throws {
        let dir = try TemporaryDirectory("calm-cli-train-tm")
        // laid out like a train-baseline output folder
        let base = dir.url.appendingPathComponent("baseline-run")
        let written = try CLI.run(["random-model", "--shape", "llama-tiny", "--out", base.appendingPathComponent("checkpoint-250").path])
        #expect(written.status == 0, "\(written.stderr)")
        // a pre-laid-out stream: BOS (510) + ids per document
        var ids: [Int] = []
        for doc in 0..<40 { ids.append(510); ids += (0..<(8 + doc % 9)).map { (7 * $0 + doc) % 50 + 1 } }
        let data = dir.url.appendingPathComponent("ids.txt")
        try Data(ids.map(String.init).joined(separator: " ").utf8).write(to: data)
        let common = ["--data", data.path, "--eval-data", data.path, "--steps", "4", "--block", "32", "--batch-size", "2",
                      "--negatives", "16", "--lr", "1e-3", "--warmup", "1", "--checkpoint-every", "2", "--eval-every", "2",
                      "--eval-batches", "1", "--threads", "1", "--accumulate", "2"]
        let out = dir.url.appendingPathComponent("run")
        // --baseline names the training output folder: the largest checkpoint-N inside is used
        let trained = try CLI.run(["train-tm", "--baseline", base.path, "--output", out.path, "--max-tail", "16", "--fit-head", "2"] + common)
        #expect(trained.status == 0, "\(trained.stderr)")
        let lines = trained.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.hasPrefix("head fitted on 124 clean positions: L_reg ") }, "\(trained.stdout)")
        #expect(lines.contains { $0.hasPrefix("token maturation: ") && $0.contains("embeddings frozen") }, "\(trained.stdout)")
        #expect(lines.first == "baseline: " + base.appendingPathComponent("checkpoint-250").path, "\(trained.stdout)")
        #expect(lines.contains { $0.hasPrefix("step 2: held-out loss ") }, "\(trained.stdout)")
        let steps = lines.filter { $0.hasPrefix("step 4/4  loss ") }
        #expect(steps.count == 1, "\(trained.stdout)")

        // repeating the run's shape flag is fine; another value is refused, naming both
        let reshaped = try CLI.run(["train-tm", "--resume", out.appendingPathComponent("checkpoint-2").path, "--max-tail", "8",
                                    "--output", dir.url.appendingPathComponent("reshaped").path] + common)
        #expect(reshaped.status != 0 && reshaped.stderr.contains("--max-tail 8 (the folder has 16) disagrees with"), "\(reshaped.stderr)")
        let resumed = try CLI.run(["train-tm", "--resume", out.appendingPathComponent("checkpoint-2").path, "--max-tail", "16",
                                   "--output", dir.url.appendingPathComponent("resumed").path] + common)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        // same loss at step 4 (the line up to the timing fields)
        func lossPart(_ s: String) -> String { s.components(separatedBy: "  grad-norm").first ?? s }
        let again = resumed.stdout.split(separator: "\n").map(String.init).filter { $0.hasPrefix("step 4/4  loss ") }
        #expect(again.map(lossPart) == steps.map(lossPart), "\(resumed.stdout)")

        let exported = dir.url.appendingPathComponent("export")
        let export = try CLI.run(["export", "--model", out.path + "/checkpoint-4", "--out", exported.path])
        #expect(export.status == 0, "\(export.stderr)")
        let inspect = try CLI.run(["inspect", "--model", exported.path])
        #expect(inspect.status == 0 && inspect.stdout.contains("Token Maturation"), "\(inspect.stdout)\(inspect.stderr)")
        #expect(inspect.stdout.contains("max_tail_length: 16"), "\(inspect.stdout)")
    }

    @Test func badFlagsAreOneLineErrors() throws {
        let dir = try TemporaryDirectory("calm-cli-train-tm-errors")
        func oneLine(_ args: [String], _ fragment: String) throws {
            let r = try CLI.run(["train-tm", "--output", dir.url.appendingPathComponent("o").path] + args)
            #expect(r.status != 0 && r.stderr.hasPrefix("calm: ") && r.stderr.filter { $0 == "\n" }.count == 1, "\(r.stderr)")
            #expect(r.stderr.contains(fragment), "\(r.stderr)")
        }
        try oneLine(["--data", "x.txt"], "give --baseline DIR")
        try oneLine(["--baseline", dir.url.appendingPathComponent("none").path, "--data", "x.txt"], "no such folder")
        try oneLine(["--baseline", dir.url.path, "--data", "x.txt"], "no config.json and no checkpoint-N folder")
        try oneLine(["--baseline", dir.url.path, "--data", "x.txt", "--min-weight", "0"], "--min-weight")
        try oneLine(["--baseline", dir.url.path, "--data", "x.txt", "--lr-schedule", "linear"], "--lr-schedule must be constant or cosine")
        try oneLine(["--baseline", dir.url.path, "--data", "x.txt", "--final-lr-ratio", "2"], "--final-lr-ratio must be in [0, 1]")
        try oneLine(["--baseline", dir.url.path, "--data", "x.txt", "--accumulate", "0"], "--accumulate must be at least 1")
        try oneLine(["--baseline", dir.url.path, "--data", "x.txt", "--fit-head", "-1"], "--fit-head must be ≥ 0")
    }
}

/// `calm train-tm --from-gpt2`: a random `GPT2LMHeadModel` folder (gpt2-tiny) → a few steps →
/// resume → `calm export` → `calm generate`; and the one-line errors of conflicting flags.
extension TrainTMCLITests {
    @Test func fromGPT2TrainResumeExportGenerate() throws {
        let dir = try TemporaryDirectory("calm-cli-train-tm-gpt2")
        let gpt2 = dir.url.appendingPathComponent("gpt2")
        let written = try CLI.run(["random-model", "--shape", "gpt2-tiny", "--out", gpt2.path])
        #expect(written.status == 0, "\(written.stderr)")
        // BOS (511) + ids per document
        var ids: [Int] = []
        for doc in 0..<40 { ids.append(511); ids += (0..<(8 + doc % 9)).map { (7 * $0 + doc) % 50 + 1 } }
        let data = dir.url.appendingPathComponent("ids.txt")
        try Data(ids.map(String.init).joined(separator: " ").utf8).write(to: data)
        let common = ["--data", data.path, "--steps", "4", "--block", "32", "--batch-size", "2", "--negatives", "16",
                      "--lr", "1e-3", "--warmup", "1", "--checkpoint-every", "2", "--threads", "1"]
        let out = dir.url.appendingPathComponent("run")
        let trained = try CLI.run(["train-tm", "--from-gpt2", gpt2.path, "--output", out.path, "--max-tail", "16"] + common)
        #expect(trained.status == 0, "\(trained.stderr)")
        let lines = trained.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first == "gpt2: " + gpt2.path, "\(trained.stdout)")
        #expect(lines.contains { $0.hasPrefix("token maturation: ") && $0.contains("embeddings frozen") }, "\(trained.stdout)")
        let steps = lines.filter { $0.hasPrefix("step 4/4  loss ") }
        #expect(steps.count == 1, "\(trained.stdout)")

        // repeating the run's shape flag is fine; another value is refused, naming both
        let reshaped = try CLI.run(["train-tm", "--resume", out.appendingPathComponent("checkpoint-2").path, "--max-tail", "8",
                                    "--output", dir.url.appendingPathComponent("reshaped").path] + common)
        #expect(reshaped.status != 0 && reshaped.stderr.contains("--max-tail 8 (the folder has 16) disagrees with"), "\(reshaped.stderr)")
        let resumed = try CLI.run(["train-tm", "--resume", out.appendingPathComponent("checkpoint-2").path, "--max-tail", "16",
                                   "--output", dir.url.appendingPathComponent("resumed").path] + common)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        func lossPart(_ s: String) -> String { s.components(separatedBy: "  grad-norm").first ?? s }
        let again = resumed.stdout.split(separator: "\n").map(String.init).filter { $0.hasPrefix("step 4/4  loss ") }
        #expect(again.map(lossPart) == steps.map(lossPart), "\(resumed.stdout)")

        let exported = dir.url.appendingPathComponent("export")
        let export = try CLI.run(["export", "--model", out.appendingPathComponent("checkpoint-4").path, "--out", exported.path])
        #expect(export.status == 0, "\(export.stderr)")
        let inspect = try CLI.run(["inspect", "--model", exported.path])
        #expect(inspect.status == 0 && inspect.stdout.contains("Token Maturation"), "\(inspect.stdout)\(inspect.stderr)")
        let generated = try CLI.run(["generate", "--model", exported.path, "--prompt-ids", "1,2,3", "--max-tokens", "8", "--ids"])
        #expect(generated.status == 0, "\(generated.stderr)")
        let tokens = generated.stdout.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
        #expect(!tokens.isEmpty && tokens.allSatisfy { $0 >= 0 && $0 < 512 }, "\(generated.stdout)")
    }

    @Test func fromGPT2FlagErrorsAreOneLine() throws {
        let dir = try TemporaryDirectory("calm-cli-train-tm-gpt2-errors")
        let gpt2 = dir.url.appendingPathComponent("gpt2")
        #expect(try CLI.run(["random-model", "--shape", "gpt2-tiny", "--out", gpt2.path]).status == 0)
        let data = dir.url.appendingPathComponent("ids.txt")
        try Data((1...300).map { String($0 % 500) }.joined(separator: " ").utf8).write(to: data)
        func oneLine(_ args: [String], _ fragment: String) throws {
            let r = try CLI.run(["train-tm", "--output", dir.url.appendingPathComponent("o").path, "--data", data.path] + args)
            #expect(r.status != 0 && r.stderr.hasPrefix("calm: ") && r.stderr.filter { $0 == "\n" }.count == 1, "\(r.stderr)")
            #expect(r.stderr.contains(fragment), "\(r.stderr)")
        }
        try oneLine(["--from-gpt2", gpt2.path, "--baseline", gpt2.path], "--baseline and --from-gpt2")
        try oneLine(["--from-gpt2", gpt2.path, "--resume", gpt2.path], "--from-gpt2 sets up a new model")
        try oneLine(["--from-gpt2", gpt2.path, "--block", "200"], "n_positions")
        try oneLine(["--from-gpt2", dir.url.appendingPathComponent("none").path], "no such folder")
        // a Llama folder is not a GPT-2: the message names its config.json
        let llama = dir.url.appendingPathComponent("llama")
        #expect(try CLI.run(["random-model", "--shape", "llama-tiny", "--out", llama.path]).status == 0)
        try oneLine(["--from-gpt2", llama.path], "config.json")
    }
}
