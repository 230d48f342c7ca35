import CALMTestSupport
import Foundation
import Testing

/// `calm train-baseline` end to end on the built executable with the shared run flags: a tiny fresh
/// Llama, gradient accumulation, the cosine schedule (the last step's learning rate is the floor)
/// and the held-out cross-entropy line; a resume repeats the uninterrupted run's last loss and
/// compute count; a FLOP budget sets the step count and the cosine decay's end.
@Suite("train-baseline CLI (calm subprocess)")
struct TrainBaselineCLITests {
    @Test func heldOutCrossEntropyCosineScheduleAndAccumulation() throws {
        let dir = try TemporaryDirectory("calm-cli-train-baseline")
        var ids: [Int] = []
        for doc in 0..<40 { ids.append(60); ids += (0..<(8 + doc % 9)).map { (5 * $0 + doc) % 50 + 1 } }
        let data = dir.url.appendingPathComponent("ids.txt")
        try Data(ids.map(String.init).joined(separator: " ").utf8).write(to: data)
        let common = ["--data", data.path, "--eval-data", data.path, "--vocab", "64", "--hidden", "16", "--intermediate", "24",
                      "--layers", "1", "--heads", "2", "--steps", "4", "--block", "16", "--batch-size", "2", "--accumulate", "2",
                      "--lr", "1e-2", "--warmup", "1", "--lr-schedule", "cosine", "--final-lr-ratio", "0.25",
                      "--checkpoint-every", "2", "--eval-every", "2", "--eval-batches", "2", "--threads", "1"]
        let run = try CLI.run(["train-baseline", "--output", dir.url.appendingPathComponent("run").path] + common)
        #expect(run.status == 0, "\(run.stderr)")
        let lines = run.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first?.contains("held-out tokens") == true, "\(run.stdout)")
        for step in [2, 4] {
            #expect(lines.contains { $0.hasPrefix("step \(step): held-out cross-entropy ") && $0.contains("perplexity") }, "\(run.stdout)")
        }
        // 1e-2 peak, floor 0.25 of it at the last step
        let last = lines.filter { $0.hasPrefix("step 4/4  loss ") }
        #expect(last.count == 1 && last[0].contains("lr 2.50e-03"), "\(run.stdout)")

        let resumed = try CLI.run(["train-baseline", "--resume", dir.url.appendingPathComponent("run/checkpoint-2").path,
                                   "--output", dir.url.appendingPathComponent("resumed").path] + common)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        func lossPart(_ s: String) -> String { s.components(separatedBy: "  grad-norm").first ?? s }
        let again = resumed.stdout.split(separator: "\n").map(String.init).filter { $0.hasPrefix("step 4/4  loss ") }
        #expect(again.map(lossPart) == last.map(lossPart), "\(resumed.stdout)")
        let heldOut = { (out: String) in out.split(separator: "\n").filter { $0.hasPrefix("step 4: held-out") } }
        #expect(heldOut(resumed.stdout) == heldOut(run.stdout), "\(resumed.stdout)")

        // The compute count continues across the resume: the resumed run's last line is the uninterrupted one's.
        func computePart(_ s: String) -> String? { s.components(separatedBy: "  compute ").dropFirst().first }
        #expect(again.map(computePart) == last.map(computePart) && computePart(last.first ?? "") != nil, "\(resumed.stdout)")

        // --flop-budget with a cosine decay: 3.5 steps' worth of compute is 4 steps, and the schedule
        // ends on the 4th exactly as with --steps 4 (same loss, same floor learning rate), resumed too.
        let firstStep = lines.first { $0.hasPrefix("step 1/4  loss ") }.flatMap(computePart)
        let perStep = try #require(firstStep.flatMap { Double($0.components(separatedBy: " ").first ?? "") })
        var budgetFlags = common
        let stepsFlag = try #require(budgetFlags.firstIndex(of: "--steps"))
        budgetFlags.removeSubrange(stepsFlag...(stepsFlag + 1))
        budgetFlags += ["--flop-budget", String(3.5 * perStep)]
        let budgeted = try CLI.run(["train-baseline", "--output", dir.url.appendingPathComponent("budget").path] + budgetFlags)
        #expect(budgeted.status == 0, "\(budgeted.stderr)")
        let budgetLast = budgeted.stdout.split(separator: "\n").map(String.init).filter { $0.hasPrefix("step 4/4  loss ") }
        #expect(budgetLast.map(lossPart) == last.map(lossPart), "\(budgeted.stdout)")
        let budgetResumed = try CLI.run(["train-baseline", "--resume", dir.url.appendingPathComponent("budget/checkpoint-2").path,
                                         "--output", dir.url.appendingPathComponent("budget-resumed").path] + budgetFlags)
        #expect(budgetResumed.status == 0, "\(budgetResumed.stderr)")
        let budgetAgain = budgetResumed.stdout.split(separator: "\n").map(String.init).filter { $0.hasPrefix("step 4/4  loss ") }
        #expect(budgetAgain.map(lossPart) == last.map(lossPart) && budgetAgain.map(computePart) == last.map(computePart),
                "\(budgetResumed.stdout)")
        let refused = try CLI.run(["train-baseline", "--output", dir.url.appendingPathComponent("x").path, "--data", data.path,
                                   "--vocab", "64", "--flop-budget", "0"])
        #expect(refused.status != 0 && refused.stderr.contains("--flop-budget"), "\(refused.stderr)")

        // the resume above repeated the run's shape flags (fine); a different shape is an error, not ignored
        let reshaped = try CLI.run(["train-baseline", "--resume", dir.url.appendingPathComponent("run/checkpoint-2").path,
                                    "--output", dir.url.appendingPathComponent("reshaped").path] + common + ["--layers", "2"])
        #expect(reshaped.status != 0 && reshaped.stderr.contains("--layers 2 (the folder has 1)"), "\(reshaped.stderr)")
    }
}
