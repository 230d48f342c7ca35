import CALMModel
import CALMTestSupport
import Foundation
import Testing

/// What a new user hit ("What a new user hit" issue), checked on the built `calm` executable:
/// help for every command, unknown options named as unknown, `--`, refusing to overwrite a
/// folder, file-system errors in one line, Llama folders from `random-model` that `inspect`
/// reads, the built-in model as the default of `tokenize`/`inspect`, and sampler hints that name
/// the command-line flags. Every error is one line on stderr.
@Suite("New-user CLI behaviour (calm subprocess)")
struct NewUserCLITests {
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let builtInModel = repositoryRoot.appendingPathComponent("Sources/CALMDefaultModel/DefaultModel")
    /// The built-in model ships in the source tree; a checkout without its files (an LFS pointer
    /// instead of the weights, say) skips the tests that need it.
    static let builtInModelPresent: Bool = {
        let fm = FileManager.default
        let weights = builtInModel.appendingPathComponent("model.safetensors").path
        let size = (try? fm.attributesOfItem(atPath: weights))?[.size] as? Int ?? 0
        return size > 1_000_000 && fm.fileExists(atPath: builtInModel.appendingPathComponent("tokenizer.json").path)
    }()

    /// `calm` failed with `status` and exactly one line on stderr ("calm: …") containing `fragment`.
    func expectOneLineError(_ r: CLI.Result, status: Int32, _ fragment: String,
                            sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.status == status, "exit \(r.status), stderr: \(r.stderr)", sourceLocation: sourceLocation)
        #expect(r.stderr.hasPrefix("calm: ") && r.stderr.hasSuffix("\n"), "\(r.stderr)", sourceLocation: sourceLocation)
        #expect(r.stderr.filter { $0 == "\n" }.count == 1, "not one line: \(r.stderr)", sourceLocation: sourceLocation)
        #expect(r.stderr.contains(fragment), "\(r.stderr)", sourceLocation: sourceLocation)
        for dump in ["NSCocoaErrorDomain", "NSPOSIXErrorDomain", "UserInfo=", "Fatal error", "Stack dump"] {
            #expect(!r.stderr.contains(dump), "\(r.stderr)", sourceLocation: sourceLocation)
        }
    }

    // MARK: help and commands

    /// The command names of `main.swift`'s table, read from the source.
    static func commandsInMainSwift() throws -> [String] {
        let source = try String(contentsOf: repositoryRoot.appendingPathComponent("Sources/calm/main.swift"), encoding: .utf8)
        return source.split(separator: "\n").compactMap { line -> String? in
            let t = line.trimmingCharacters(in: .whitespaces)
            guard t.hasPrefix("\""), let end = t.dropFirst().firstIndex(of: "\""), t[end...].hasPrefix("\": (") else { return nil }
            return String(t[t.index(after: t.startIndex)..<end])
        }.sorted()
    }

    @Test func everyCommandHasHelpWithAUsageLine() throws {
        let commands = try Self.commandsInMainSwift()
        #expect(commands.count >= 15, "\(commands)")
        let top = try CLI.run(["--help"])
        #expect(top.status == 0)
        let listed = top.stdout.split(separator: "\n").drop { $0 != "commands:" }.dropFirst()
            .compactMap { $0.split(separator: " ").first.map(String.init) }.sorted()
        #expect(listed == commands, "calm --help lists \(listed), main.swift has \(commands)")
        for command in commands {
            let r = try CLI.run([command, "--help"])
            #expect(r.status == 0, "calm \(command) --help: exit \(r.status), \(r.stderr)")
            #expect(r.stdout.hasPrefix("usage: calm \(command)"), "calm \(command) --help: \(r.stdout.prefix(80))")
            #expect(r.stderr.isEmpty, "calm \(command) --help: \(r.stderr)")
        }
    }

    @Test func noArgumentsAndUnknownCommandsExitTwo() throws {
        let bare = try CLI.run([])
        #expect(bare.status == 2)
        #expect(bare.stdout.contains("usage: calm <command>"))
        expectOneLineError(try CLI.run(["frobnicate"]), status: 2, "unknown command 'frobnicate'")
    }

    // MARK: options

    @Test(arguments: ["inspect", "random-model", "export", "tokenize", "detokenize", "eval", "eval-repetition", "conformance", "corpus",
                      "train", "train-autoencoder", "train-baseline", "train-tm", "train-tokenizer", "bench-train", "generate"])
    func unknownOptionsAreNamedAsUnknown(command: String) throws {
        // generate reads its model folder before it looks at the rest; give it one that need not exist
        let base = command == "generate" ? [command, "--model", "/nonexistent"] : [command]
        // at the end, where "needs a value" used to be reported, and before a value
        let last = try CLI.run(base + ["--frobnicate"])
        expectOneLineError(last, status: 2, "unknown option --frobnicate")
        #expect(!last.stderr.contains("needs a value"))
        expectOneLineError(try CLI.run(base + ["--frobnicate", "x"]), status: 2, "unknown option --frobnicate")
    }

    @Test func aKnownOptionWithoutItsValueSaysSo() throws {
        expectOneLineError(try CLI.run(["inspect", "--model"]), status: 2, "option --model needs a value")
        expectOneLineError(try CLI.run(["random-model", "--shape", "tiny", "--out"]), status: 2, "option --out needs a value")
        expectOneLineError(try CLI.run(["inspect", "--json=yes"]), status: 2, "option --json takes no value")
        // and a stray argument is not silently dropped (inspect would fall back to the built-in model)
        expectOneLineError(try CLI.run(["inspect", "some/model"]), status: 2, "unexpected argument 'some/model'")
    }

    @Test func trainingConfigKeysAreChecked() throws {
        let dir = try TemporaryDirectory("calm-cli-config")
        let config = dir.url.appendingPathComponent("run.json")
        try Data(#"{"frobnicate": 3}"#.utf8).write(to: config)
        expectOneLineError(try CLI.run(["train-baseline", "--config=\(config.path)", "--output", dir.url.path]),
                           status: 2, "--config \(config.path): unknown key 'frobnicate'")
    }

    @Test func doubleDashEndsTheOptions() throws {
        // after --, "--model" is an argument, not an option
        expectOneLineError(try CLI.run(["inspect", "--", "--model"]), status: 2, "unexpected argument '--model'")
    }

    @Test(.enabled(if: builtInModelPresent, "the built-in model's files are not in this checkout"))
    func doubleDashLetsAPromptStartWithDashes() throws {
        let prompt = "--weird prompt"
        let ids = try CLI.run(["tokenize", "--bos"], input: prompt)
        #expect(ids.status == 0, "\(ids.stderr)")
        let promptTokens = ids.stdout.split(separator: "\n").count
        let r = try CLI.run(["generate", "--max-tokens", "4", "--sampler", "single", "--temperature", "1", "--seed", "1",
                             "--stats", "--ids", "--", prompt])
        #expect(r.status == 0, "\(r.stderr)")
        // the statistics line counts the prompt's tokens: the text after -- was the prompt
        let statsLine = r.stderr.split(separator: "\n").last.map(String.init) ?? ""
        let stats = (try? JSONSerialization.jsonObject(with: Data(statsLine.utf8))) as? [String: Any]
        #expect(stats?["prompt_tokens"] as? Int == promptTokens, "\(r.stderr)")
        #expect(stats?["generated_tokens"] as? Int == 4, "\(r.stderr)")
    }

    // MARK: random-model and file errors

    @Test func randomModelRefusesANonEmptyFolderUnlessForced() throws {
        let dir = try TemporaryDirectory("calm-cli-force")
        let keep = dir.url.appendingPathComponent("notes.txt")
        try Data("mine".utf8).write(to: keep)
        let refused = try CLI.run(["random-model", "--shape", "tiny", "--out", dir.url.path])
        expectOneLineError(refused, status: 2, "\(dir.url.path) is not empty; pass --force")
        #expect(!FileManager.default.fileExists(atPath: dir.url.appendingPathComponent("config.json").path))

        let forced = try CLI.run(["random-model", "--shape", "tiny", "--out", dir.url.path, "--force"])
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(FileManager.default.fileExists(atPath: dir.url.appendingPathComponent("model.safetensors").path))
        #expect(try String(contentsOf: keep, encoding: .utf8) == "mine")

        // an empty or absent folder needs no --force
        let fresh = dir.url.appendingPathComponent("fresh")
        #expect(try CLI.run(["random-model", "--shape", "tiny", "--out", fresh.path]).status == 0)
        let file = try CLI.run(["random-model", "--shape", "tiny", "--out", keep.path, "--force"])
        expectOneLineError(file, status: 2, "\(keep.path) is a file, not a folder")
    }

    @Test func fileSystemErrorsAreOneReadableLine() throws {
        let r = try CLI.run(["random-model", "--shape", "tiny", "--out", "/proc/nope"])
        expectOneLineError(r, status: 1, "cannot write /proc/nope: ")
        let dir = try TemporaryDirectory("calm-cli-read")
        let missing = dir.url.appendingPathComponent("absent.json").path
        expectOneLineError(try CLI.run(["random-model", "--config", missing, "--out", dir.url.appendingPathComponent("m").path]),
                           status: 2, "option --config: cannot read \(missing): No such file or directory")
    }

    @Test func exportOfAMissingFolderNamesIt() throws {
        let dir = try TemporaryDirectory("calm-cli-export")
        let missing = dir.url.appendingPathComponent("nonexistent").path
        let r = try CLI.run(["export", "--model", missing, "--out", dir.url.appendingPathComponent("out").path])
        expectOneLineError(r, status: 1, "\(missing): model folder does not exist")
        #expect(!r.stderr.contains("config key"))
    }

    // MARK: Llama folders

    @Test func inspectReportsARandomLlamaFolder() throws {
        let dir = try TemporaryDirectory("calm-cli-llama")
        let out = dir.url.appendingPathComponent("llama")
        let made = try CLI.run(["random-model", "--shape", "llama-tiny", "--dtype", "bf16", "--out", out.path])
        #expect(made.status == 0, "\(made.stderr)")
        let config = RandomModelWriter.LlamaShape.llamaTiny.config
        let tensors = RandomModelWriter.llamaTensors(config)
        let total = tensors.reduce(0) { $0 + $1.1.reduce(1, *) }

        let text = try CLI.run(["inspect", "--model", out.path])
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stdout.contains("(Llama causal LM)"), "\(text.stdout)")
        #expect(text.stdout.contains("lm_head: \(config.vocabSize * config.hiddenSize)"), "\(text.stdout)")
        #expect(text.stdout.contains("total: \(total)"), "\(text.stdout)")
        #expect(text.stdout.contains("BF16 × \(tensors.count)"), "\(text.stdout)")

        let json = try CLI.run(["inspect", "--model", out.path, "--json"])
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        #expect(object?["kind"] as? String == "llama")
        #expect(object?["total_parameters"] as? Int == total)
        #expect((object?["bytes_on_disk"] as? Int ?? 0) > 2 * total)

        // the folder is one the discrete generate path runs
        let generated = try CLI.run(["generate", "--model", out.path, "--prompt-ids", "510,5,6", "--max-tokens", "3", "--seed", "1"])
        #expect(generated.status == 0, "\(generated.stderr)")
        let ids = generated.stdout.split(whereSeparator: \.isWhitespace).map { Int($0) }
        #expect((1...3).contains(ids.count) && ids.allSatisfy { $0.map { (0..<config.vocabSize).contains($0) } ?? false },
                "\(generated.stdout)")
    }

    // MARK: Token Maturation folders

    @Test func inspectReportsARandomTokenMaturationFolder() throws {
        let dir = try TemporaryDirectory("calm-cli-tm")
        let out = dir.url.appendingPathComponent("tm")
        let made = try CLI.run(["random-model", "--shape", "tm-tiny", "--out", out.path])
        #expect(made.status == 0, "\(made.stderr)")
        let tensors = try RandomModelWriter.tokenMaturationTensors(RandomModelWriter.TokenMaturationShape.tmTiny.config)
        let total = tensors.reduce(0) { $0 + $1.1.reduce(1, *) }
        let text = try CLI.run(["inspect", "--model", out.path])
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stdout.contains("(Token Maturation model)"), "\(text.stdout)")
        #expect(text.stdout.contains("total: \(total)"), "\(text.stdout)")
        let json = try CLI.run(["inspect", "--model", out.path, "--json"])
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        #expect(object?["kind"] as? String == "token_maturation")
        // a Token Maturation option on another family is one typed line naming it
        let llama = dir.url.appendingPathComponent("llama")
        #expect(try CLI.run(["random-model", "--shape", "llama-tiny", "--out", llama.path]).status == 0)
        expectOneLineError(try CLI.run(["generate", "--model", llama.path, "--prompt-ids", "5,6", "--tail", "4"]), status: 2, "Token Maturation settings")
        expectOneLineError(try CLI.run(["generate", "--model", out.path, "--prompt-ids", "5,6", "--tail", "65"]), status: 2, "--tail")
        expectOneLineError(try CLI.run(["random-model", "--shape", "tm-tiny", "--embed-autoencoder", "--out", dir.url.appendingPathComponent("x").path]),
                           status: 2, "a Token Maturation shape has no autoencoder")
    }

    /// The issue's acceptance: seeded TM generation is reproducible, another seed changes it, and
    /// 64 requests at 16 concurrent all complete with no mismatch against their solo runs.
    @Test func tokenMaturationGeneratesReproduciblyAndServesConcurrently() throws {
        let dir = try TemporaryDirectory("calm-cli-tm-gen")
        let out = dir.url.appendingPathComponent("tm")
        #expect(try CLI.run(["random-model", "--shape", "tm-tiny", "--out", out.path]).status == 0)
        func ids(_ seed: Int) throws -> String {
            let r = try CLI.run(["generate", "--model", out.path, "--prompt-ids", "1,2,3", "--tail", "16", "--cfg-scale", "2",
                                 "--seed", "\(seed)", "--max-tokens", "64", "--ids"])
            #expect(r.status == 0, "\(r.stderr)")
            return r.stdout
        }
        let first = try ids(5)
        #expect(first.split(whereSeparator: \.isWhitespace).count == 64 || first.contains("511"))
        #expect(try ids(5) == first)
        #expect(try ids(6) != first)
        let diagnostics = try CLI.run(["generate", "--model", out.path, "--prompt-ids", "1,2,3", "--tail", "4", "--seed", "1",
                                       "--max-tokens", "5", "--diagnostics"])
        #expect(diagnostics.status == 0, "\(diagnostics.stderr)")
        let lines = diagnostics.stdout.split(separator: "\n").filter { $0.hasPrefix("{") }
        #expect(lines.count == 5, "\(diagnostics.stdout)")
        for line in lines {
            let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(o?["entropy"] is Double && o?["lock_step"] is Int && o?["token"] is Int, "\(line)")
        }
        let bench = try CLI.run(["bench-serve", "--model", out.path, "--requests", "64", "--concurrency", "16", "--max-tokens", "16",
                                 "--verify", "--json"])
        #expect(bench.status == 0, "\(bench.stderr)")
        let o = try JSONSerialization.jsonObject(with: Data(bench.stdout.utf8)) as? [String: Any]
        #expect(o?["completed"] as? Int == 64)
        #expect(o?["verify_mismatches"] as? Int == 0)
    }

    // MARK: the built-in model as default

    @Test(.enabled(if: builtInModelPresent, "the built-in model's files are not in this checkout"))
    func tokenizeDetokenizeAndInspectDefaultToTheBuiltInModel() throws {
        let text = "Once upon a time, in the land of Moab."
        let implicit = try CLI.run(["tokenize"], input: text)
        let explicit = try CLI.run(["tokenize", "--tokenizer", Self.builtInModel.path], input: text)
        #expect(implicit.status == 0, "\(implicit.stderr)")
        #expect(!implicit.stdout.isEmpty && implicit.stdout == explicit.stdout)
        let back = try CLI.run(["detokenize"], input: implicit.stdout)
        #expect(back.status == 0, "\(back.stderr)")
        #expect(back.stdout == text)

        let inspect = try CLI.run(["inspect"])
        #expect(inspect.status == 0, "\(inspect.stderr)")
        #expect(inspect.stdout.contains("DefaultModel  (CALM energy transformer)"), "\(inspect.stdout.prefix(200))")
    }

    /// `--family tm` is the Token Maturation built-in model in every command that takes a model:
    /// generate (seeded, so two seeds differ), inspect and eval name it; `--model` with `--family`
    /// is one typed line.
    @Test(.enabled(if: builtInModelPresent, "the built-in model's files are not in this checkout"))
    func familyTmIsTheBuiltInTokenMaturationModel() throws {
        func generate(_ seed: String) throws -> String {
            let r = try CLI.run(["generate", "--family", "tm", "Once upon a time", "--max-tokens", "16", "--tail", "4", "--seed", seed])
            #expect(r.status == 0, "\(r.stderr)")
            return r.stdout
        }
        let one = try generate("1"), again = try generate("1"), two = try generate("2")
        #expect(!one.isEmpty && one == again)
        #expect(one != two, "seeds 1 and 2 both gave: \(one)")
        let inspect = try CLI.run(["inspect", "--family", "tm", "--json"])
        #expect(inspect.status == 0, "\(inspect.stderr)")
        #expect(inspect.stdout.contains("TokenMaturationModel"), "\(inspect.stdout.prefix(300))")
        expectOneLineError(try CLI.run(["inspect", "--family", "tm", "--model", Self.builtInModel.path]), status: 2,
                           "give either --model or --family, not both")
        expectOneLineError(try CLI.run(["eval", "--family", "llama", "--data", "x.jsonl"]), status: 2,
                           "option --family: family 'llama' has no built-in model yet")
    }

    // MARK: sampler hints

    @Test(.enabled(if: builtInModelPresent, "the built-in model's files are not in this checkout"))
    func samplerHintsNameTheFlags() throws {
        let single = try CLI.run(["generate", "--sampler", "single", "--temperature", "0.5", "--prompt-ids", "1,2"])
        expectOneLineError(single, status: 2, "--sampler batch --samples N")
        #expect(single.stderr.contains("--sampler exact") && single.stderr.contains("--temperature 0.5"), "\(single.stderr)")
        let batch = try CLI.run(["generate", "--temperature", "0.4", "--prompt-ids", "1,2"])
        expectOneLineError(batch, status: 2, "option --temperature: ")
        #expect(batch.stderr.contains("--sampler exact"), "\(batch.stderr)")
        expectOneLineError(try CLI.run(["generate", "--max-tokens", "0", "--prompt-ids", "1,2"]), status: 2,
                           "option --max-tokens: must be at least 1, got 0")
        for r in [single, batch] {
            for swiftName in [".batchApproximation", ".exactRejection", ".single", "SamplingParameters", "maxTokens"] {
                #expect(!r.stderr.contains(swiftName), "\(r.stderr)")
            }
        }
    }
}
