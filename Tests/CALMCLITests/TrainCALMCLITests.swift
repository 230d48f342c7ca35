import CALMTestSupport
import Foundation
import Testing

/// `calm train` (the CALM energy model) end to end on the built executable: a random tiny CALM
/// folder continued for two steps with a held-out report that carries the energy loss, its gap to
/// the marginal predictor and the engine's Brier scores; `--flop-budget` sets the step count.
@Suite("train CLI (calm subprocess)")
struct TrainCALMCLITests {
    @Test func heldOutEnergyGapAndBrierInTheProgressLog() throws {
        let dir = try TemporaryDirectory("calm-cli-train-calm")
        let model = dir.url.appendingPathComponent("tiny")
        let written = try CLI.run(["random-model", "--shape", "tiny", "--out", model.path])
        #expect(written.status == 0, "\(written.stderr)")
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: model.appendingPathComponent("config.json"))) as? [String: Any]
        let vocab = try #require(config?["vocab_size"] as? Int)
        let bos = (config?["bos_token_id"] as? Int) ?? 1
        var ids: [Int] = []
        for doc in 0..<30 { ids.append(bos); ids += (0..<(10 + doc % 7)).map { (3 * $0 + doc) % min(vocab - 4, 40) + 2 } }
        let data = dir.url.appendingPathComponent("ids.txt")
        try Data(ids.map(String.init).joined(separator: " ").utf8).write(to: data)
        let run = try CLI.run(["train", "--model", model.path, "--data", data.path, "--eval-data", data.path,
                               "--output", dir.url.appendingPathComponent("run").path, "--steps", "2", "--block", "32",
                               "--batch-size", "2", "--targets", "8", "--eval-every", "2", "--eval-batches", "1", "--threads", "1"])
        #expect(run.status == 0, "\(run.stderr)")
        let report = run.stdout.split(separator: "\n").map(String.init).filter { $0.hasPrefix("step 2: held-out energy loss ") }
        #expect(report.count == 1, "\(run.stdout)")
        for field in ["marginal ", "gap ", "positions", "Brier-1 ", "BrierLM ", "tokens)"] {
            #expect(report.first?.contains(field) == true, "\(field): \(run.stdout)")
        }

        // --flop-budget is a common run option: 1.5 steps' worth of compute is 2 steps with the same losses.
        let lines = run.stdout.split(separator: "\n").map(String.init)
        let first = try #require(lines.first { $0.hasPrefix("step 1/2  loss ") })
        let perStep = try #require(Double(first.components(separatedBy: "compute ").last?.components(separatedBy: " ").first ?? ""))
        let budgeted = try CLI.run(["train", "--model", model.path, "--data", data.path, "--output", dir.url.appendingPathComponent("budget").path,
                                    "--flop-budget", String(1.5 * perStep), "--block", "32", "--batch-size", "2", "--targets", "8",
                                    "--threads", "1"])
        #expect(budgeted.status == 0, "\(budgeted.stderr)")
        func loss(_ out: String, _ step: String) -> [String] {
            out.split(separator: "\n").filter { $0.hasPrefix(step) }.map { $0.components(separatedBy: "  lr ").first ?? "" }
        }
        #expect(loss(budgeted.stdout, "step 2/2  loss ") == loss(run.stdout, "step 2/2  loss ") && !loss(run.stdout, "step 2/2  loss ").isEmpty,
                "\(budgeted.stdout)")
    }
}
