import CALMTestSupport
import Foundation
import Testing

/// `--decoding lazy|full`: the same tokens either way; `--stats` reports the argmax rows.
@Suite("calm generate --decoding")
struct DecodingCLITests {
    @Test func lazyAndFullGiveTheSameTokens() throws {
        let dir = try TemporaryDirectory("calm-cli-decoding")
        let made = try CLI.run(["random-model", "--shape", "tiny", "--out", dir.url.path])
        #expect(made.status == 0, "\(made.stderr)")
        func generate(_ decoding: String) throws -> (ids: String, stats: [String: Any]) {
            let r = try CLI.run(["generate", "--model", dir.url.path, "--prompt-ids", "5,6,7", "--max-tokens", "16",
                                 "--temperature", "1/2", "--samples", "24", "--seed", "3", "--ids", "--stats", "--decoding", decoding])
            #expect(r.status == 0, "\(r.stderr)")
            let line = r.stderr.split(separator: "\n").last.map(String.init) ?? ""
            return (r.stdout, (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] ?? [:])
        }
        let full = try generate("full"), lazy = try generate("lazy")
        #expect(full.ids == lazy.ids && !full.ids.isEmpty)
        let samples = full.stats["samples_drawn"] as? Int ?? 0   // 24 a step (fewer steps if a chunk ends the text)
        #expect(samples > 0 && samples % 24 == 0 && lazy.stats["samples_drawn"] as? Int == samples, "\(full.stats)")
        #expect(full.stats["argmax_rows"] as? Int == samples * 4, "\(full.stats)")
        #expect((lazy.stats["argmax_rows"] as? Int ?? .max) < samples * 4, "\(lazy.stats)")

        // The repetitive case: a head whose noise is switched off draws 24 equal samples a step, so
        // lazy decoding must take every position of every sample, as the full decode does.
        let quiet = try TemporaryDirectory("calm-cli-decoding-quiet")
        let madeQuiet = try CLI.run(["random-model", "--shape", "tiny", "--head-noise-scale", "0", "--out", quiet.url.path, "--force"])
        #expect(madeQuiet.status == 0, "\(madeQuiet.stderr)")
        let repeated = try CLI.run(["generate", "--model", quiet.url.path, "--prompt-ids", "5,6,7", "--max-tokens", "8",
                                    "--temperature", "1/2", "--samples", "24", "--seed", "3", "--ids", "--stats"])
        let repeatedStats = (try? JSONSerialization.jsonObject(with: Data((repeated.stderr.split(separator: "\n").last.map(String.init) ?? "").utf8))) as? [String: Any] ?? [:]
        let drawn = repeatedStats["samples_drawn"] as? Int ?? 0
        #expect(drawn > 0 && repeatedStats["argmax_rows"] as? Int == drawn * 4, "\(repeatedStats)")
        // --stats counts the steps by cascade level: 24 equal samples reach level 2 (T = 1/2) every step
        let steps = repeatedStats["steps"] as? Int ?? 0
        #expect(steps > 0 && repeatedStats["cascade_levels"] as? [String: Int] == ["2": steps], "\(repeatedStats)")
        let levels = full.stats["cascade_levels"] as? [String: Int] ?? [:]
        #expect(levels.values.reduce(0, +) == full.stats["steps"] as? Int && levels.keys.allSatisfy { $0 == "1" || $0 == "2" },
                "\(full.stats)")
        let llamaNoise = try CLI.run(["random-model", "--shape", "llama-tiny", "--head-noise-scale", "0.1", "--out", quiet.url.path, "--force"])
        #expect(llamaNoise.status == 2 && llamaNoise.stderr.contains("--head-noise-scale: only CALM shapes"), "\(llamaNoise.stderr)")
        let negative = try CLI.run(["random-model", "--shape", "tiny", "--head-noise-scale", "-1", "--out", quiet.url.path, "--force"])
        #expect(negative.status == 2 && negative.stderr.contains("--head-noise-scale: '-1' is not a finite number ≥ 0"), "\(negative.stderr)")

        let bad = try CLI.run(["generate", "--model", dir.url.path, "--prompt-ids", "5", "--decoding", "eager"])
        #expect(bad.status == 2 && bad.stderr == "calm: option --decoding: 'eager' is not lazy or full\n", "\(bad.stderr)")
    }
}
