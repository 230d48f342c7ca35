import CALMModel
import CALMTestSupport
import Foundation
import Testing

/// `calm eval-repetition` (Dist-n, Rep-n, Loop % through the engine) and `calm eval` of a Token
/// Maturation folder, on the built executable with tiny random models.
@Suite("eval-repetition and Token Maturation eval (calm subprocess)")
struct EvalRepetitionCLITests {
    static let repositoryRoot = NewUserCLITests.repositoryRoot
    static let builtInModel = NewUserCLITests.builtInModel
    static let builtInModelPresent = NewUserCLITests.builtInModelPresent

    static func json(_ r: CLI.Result) throws -> [String: Any] {
        #expect(r.status == 0, "exit \(r.status): \(r.stderr)")
        return try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "\(r.stdout)")
    }

    static func write(_ text: String, to url: URL) throws -> String {
        try Data(text.utf8).write(to: url)
        return url.path
    }

    /// Greedy decoding of a random Llama loops: Loop % > 0, Rep-3 > 0; the row has every key.
    @Test func greedyRandomLlamaLoops() throws {
        let dir = try TemporaryDirectory("calm-cli-evalrep")
        let model = dir.url.appendingPathComponent("llama").path
        #expect(try CLI.run(["random-model", "--shape", "llama-tiny", "--out", model]).status == 0)
        let ids = try Self.write("1,2,3\n10, 20, 30, 40\n\n500,7\n", to: dir.url.appendingPathComponent("ids.txt"))
        let args = ["eval-repetition", "--model", model, "--prompt-ids-file", ids, "--samples", "2", "--max-tokens", "120",
                    "--temperature", "0"]
        let row = try Self.json(try CLI.run(args + ["--json"]))
        for key in ["dist_1", "dist_2", "rep_2", "rep_3", "loop_percent", "model", "family", "settings", "samples", "tokens", "prompts"] {
            #expect(row[key] != nil, "no \(key) in \(row)")
        }
        #expect(row["samples"] as? Int == 6 && row["prompts"] as? Int == 3 && row["family"] as? String == "llama")
        #expect((row["tokens"] as? Int ?? 0) > 6 * 60)
        #expect((row["loop_percent"] as? Double ?? 0) > 0, "\(row)")
        #expect((row["rep_3"] as? Double ?? 0) > 0)
        let dist2 = row["dist_2"] as? Double ?? -1, rep2 = row["rep_2"] as? Double ?? -1
        #expect(abs(dist2 + rep2 - 1) < 1e-12)
        let settings = row["settings"] as? [String: Any]
        #expect(settings?["temperature"] as? Double == 0 && settings?["max_tokens"] as? Int == 120 && settings?["samples_per_prompt"] as? Int == 2)
        // greedy: every sample of a prompt is the same, so the seeds change nothing; the table says the same
        let table = try CLI.run(args)
        #expect(table.status == 0, "\(table.stderr)")
        for label in ["Dist-1", "Dist-2", "Rep-2", "Rep-3", "Loop %"] { #expect(table.stdout.contains(label), "\(table.stdout)") }
        #expect(table.stdout.contains(String(format: "%.4f", dist2)))
    }

    /// Token Maturation through the engine: seeds S + i make the run reproducible, the settings
    /// name the maturation, and the errors are one typed line naming the flag or file.
    @Test func tokenMaturationRunsReproduciblyAndErrorsAreNamed() throws {
        let dir = try TemporaryDirectory("calm-cli-evalrep-tm")
        let model = dir.url.appendingPathComponent("tm").path
        #expect(try CLI.run(["random-model", "--shape", "tm-tiny", "--out", model]).status == 0)
        let ids = try Self.write("1,2,3\n9,8,7,6,5\n", to: dir.url.appendingPathComponent("ids.txt"))
        let args = ["eval-repetition", "--model", model, "--prompt-ids-file", ids, "--samples", "3", "--max-tokens", "24",
                    "--tail", "4", "--seed", "5", "--json", "--concurrency", "4"]
        let a = try Self.json(try CLI.run(args)), b = try Self.json(try CLI.run(args))
        #expect(a["family"] as? String == "tm" && a["samples"] as? Int == 6)
        for key in ["dist_1", "dist_2", "rep_2", "rep_3", "loop_percent", "tokens"] {
            #expect("\(a[key] ?? "none")" == "\(b[key] ?? "none")", "\(key) differs between two runs")
        }
        let settings = a["settings"] as? [String: Any]
        #expect(settings?["tail"] as? Int == 4 && settings?["seed"] as? Int == 5 && settings?["embryo"] as? Double == 0.1)

        let one = NewUserCLITests()
        one.expectOneLineError(try CLI.run(["eval-repetition", "--family", "llama", "--prompt-ids-file", ids]), status: 2,
                               "option --family: family 'llama' has no built-in model yet (families with one: tm, calm)")
        one.expectOneLineError(try CLI.run(["eval-repetition", "--family", "gpt5", "--prompt-ids-file", ids]), status: 2,
                               "option --family: family 'gpt5' is not one of tm, calm, llama")
        one.expectOneLineError(try CLI.run(["eval-repetition", "--model", model]), status: 2, "--prompts FILE")
        let text = try Self.write("Once upon a time\n", to: dir.url.appendingPathComponent("text.txt"))
        one.expectOneLineError(try CLI.run(["eval-repetition", "--model", model, "--prompts", text]), status: 2, "no tokenizer")
        one.expectOneLineError(try CLI.run(["eval-repetition", "--model", model, "--prompt-ids-file", text]), status: 2,
                               "\(text) line 1: 'Once upon a time' is not a token id")
        let big = try Self.write("1,2\n3,99999\n", to: dir.url.appendingPathComponent("big.txt"))
        one.expectOneLineError(try CLI.run(["eval-repetition", "--model", model, "--prompt-ids-file", big]), status: 2,
                               "\(big) line 2: token id 99999 is outside the model's vocabulary")
        one.expectOneLineError(try CLI.run(["eval-repetition", "--model", model, "--prompt-ids-file", ids, "--samples", "0"]), status: 2,
                               "option --samples: must be at least 1")
        one.expectOneLineError(try CLI.run(["eval-repetition", "--model", model, "--prompt-ids-file", ids, "--tail", "99"]), status: 2,
                               "option --tail")
        one.expectOneLineError(try CLI.run(["eval-repetition", "--model", model, "--prompt-ids-file", ids, "--top-k", "3"]), status: 2,
                               "option --top-k")
    }

    /// `--family calm` is the built-in CALM model, with text prompts and its tokenizer.
    @Test(.enabled(if: builtInModelPresent, "the built-in model's files are not in this checkout"))
    func familyCalmIsTheBuiltInModel() throws {
        let dir = try TemporaryDirectory("calm-cli-evalrep-calm")
        let prompts = try Self.write("Once upon a time\n\nThe sea was\n", to: dir.url.appendingPathComponent("p.txt"))
        let row = try Self.json(try CLI.run(["eval-repetition", "--family", "calm", "--prompts", prompts, "--samples", "2",
                                             "--max-tokens", "8", "--sampler", "single", "--temperature", "1", "--json"]))
        #expect(row["family"] as? String == "calm" && row["model"] as? String == "built-in calm")
        #expect(row["samples"] as? Int == 4 && row["prompt_format"] as? String == "text")
        #expect((row["settings"] as? [String: Any])?["sampler"] as? String == "single")
        // --dictionary: the share of the decoded continuations' words a word list holds
        let words = try Self.write("the\nand\nof\nto\na\nin\nhe\nthat\nit\nwas\n", to: dir.url.appendingPathComponent("words.txt"))
        let withWords = try Self.json(try CLI.run(["eval-repetition", "--family", "calm", "--prompts", prompts, "--samples", "2",
                                                   "--max-tokens", "16", "--sampler", "single", "--temperature", "1", "--dictionary", words, "--json"]))
        let percent = try #require(withWords["real_word_percent"] as? Double)
        #expect(percent >= 0 && percent <= 100 && (withWords["words"] as? Int ?? 0) > 0, "\(withWords)")
        #expect(withWords["dictionary"] as? String == words)
        NewUserCLITests().expectOneLineError(try CLI.run(["eval-repetition", "--family", "calm", "--prompts", prompts,
                                                          "--dictionary", dir.url.appendingPathComponent("none.txt").path]),
                                             status: 2, "option --dictionary: ")
    }

    /// `calm eval` scores a Token Maturation folder (the built-in tokenizer's ids folded into
    /// tm-tiny's 512): two seeded maturation runs per block, continuations for Brier-2…4.
    @Test(.enabled(if: builtInModelPresent, "the built-in model's tokenizer is not in this checkout"))
    func evalScoresATokenMaturationFolder() throws {
        let dir = try TemporaryDirectory("calm-cli-eval-tm")
        let model = dir.url.appendingPathComponent("tm").path
        #expect(try CLI.run(["random-model", "--shape", "tm-tiny", "--out", model]).status == 0)
        var lines = ""
        for i in 0..<8 { lines += "{\"text\": \"Line \(i): the cat sat on the mat, and the dog lay by the door all day.\"}\n" }
        let data = try Self.write(lines, to: dir.url.appendingPathComponent("data.jsonl"))
        let args = ["eval", "--model", model, "--data", data, "--tokenizer", Self.builtInModel.path, "--fold-ids-into-vocab",
                    "--block-size", "32", "--max-blocks", "2", "--quiet", "--tail", "4", "--seed", "3", "--json"]
        let a = try Self.json(try CLI.run(args))
        #expect(a["model_kind"] as? String == "token_maturation" && a["chunk_size"] as? Int == 1)
        #expect(a["blocks"] as? Int == 2 && a["positions"] as? Int == 2 * (32 - 1 - 4))
        let brier = a["brier"] as? [Double] ?? []
        #expect(brier.count == 4 && brier.allSatisfy { $0 >= -1 && $0 <= 2 })
        #expect(a["brierlm_meaningful"] as? Bool == brier.allSatisfy { $0 > 0 })
        #expect((a["backbone_rows"] as? Int ?? 0) >= 2 * 2 * 31 * 4)
        let b = try Self.json(try CLI.run(args))
        #expect(a["brier"] as? [Double] == b["brier"] as? [Double])
        // the block must fit the model's 512 positions with its tail
        NewUserCLITests().expectOneLineError(try CLI.run(["eval", "--model", model, "--data", data, "--tokenizer", Self.builtInModel.path,
                                                          "--fold-ids-into-vocab", "--block-size", "600", "--quiet"]),
                                             status: 2, "option --block-size: 600 ids plus a tail of 16 exceed the model's 512 positions")
    }
}
