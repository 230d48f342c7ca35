@testable import CALMDefaultModel
import CALMEngine
import CALMModel
import CALMTokenizer
import Foundation
import Testing

/// The built-in model ships inside the package, so these tests never skip: a clone that cannot
/// load it, reconstruct English through its autoencoder, or generate from it is broken.
@Suite struct DefaultModelTests {
    static let paragraph = """
        The old man walked slowly down to the harbour, where the boats were drawn up on the shingle. \
        He stood for a long while looking at the sea, and then he turned and went back to the house, \
        for the wind was rising and the light was beginning to fail.
        """

    @Test func loadsFromTheResourceBundleWithAMatchingTokenizer() throws {
        let dir = try DefaultModel.directory()
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("model.safetensors").path))
        let model = try DefaultModel.load()
        let tokenizer = try DefaultModel.tokenizer()
        #expect(model.patchSize == 4)
        #expect(tokenizer.vocabularySize == model.config.vocabSize)
        // The folder must stay within the size the package promises (README: ≤ 40 MB).
        let files = try FileManager.default.contentsOfDirectory(at: dir, includingPropertiesForKeys: [.fileSizeKey])
        let bytes = try files.reduce(0) { $0 + (try $1.resourceValues(forKeys: [.fileSizeKey]).fileSize ?? 0) }
        #expect(bytes <= 40_000_000, "built-in model folder is \(bytes) bytes")
    }

    /// `--family` resolves through `DefaultModel.directory(family:)`: calm is the built-in model,
    /// tm its Token Maturation sibling, the family without one is a typed error naming it, unknown
    /// names another.
    @Test func familiesResolveThroughOneFunction() throws {
        #expect(try DefaultModel.directory(family: .calm) == DefaultModel.directory())
        #expect(try DefaultModel.directory(family: .tokenMaturation).lastPathComponent == "TokenMaturationModel")
        #expect(try BuiltInFamily(name: "tm") == .tokenMaturation && BuiltInFamily.allCases.map(\.rawValue) == ["tm", "calm", "llama"])
        #expect(DefaultModel.hasBuiltInModel(.calm) && DefaultModel.hasBuiltInModel(.tokenMaturation) && !DefaultModel.hasBuiltInModel(.llama))
        #expect(throws: BuiltInModelError.notAvailable(family: .llama)) { try DefaultModel.directory(family: .llama) }
        #expect("\(BuiltInModelError.notAvailable(family: .llama))" == "family 'llama' has no built-in model yet (families with one: tm, calm)")
        #expect(throws: BuiltInModelError.unknownFamily("gpt5")) { try BuiltInFamily(name: "gpt5") }
    }

    /// The package promises ≤ 80 MB of built-in model files in all, and one tokenizer: the Token
    /// Maturation folder carries a byte-identical copy of the CALM model's tokenizer files, so
    /// either folder works alone as `--model`.
    @Test func builtInModelsShareOneTokenizerAndStayWithinTheBudget() throws {
        let fm = FileManager.default
        var total = 0
        for family in BuiltInFamily.allCases where DefaultModel.hasBuiltInModel(family) {
            let files = try fm.contentsOfDirectory(at: DefaultModel.directory(family: family), includingPropertiesForKeys: [.fileSizeKey])
            total += try files.reduce(0) { $0 + (try $1.resourceValues(forKeys: [.fileSizeKey]).fileSize ?? 0) }
        }
        #expect(total <= 80_000_000, "built-in model folders hold \(total) bytes")
        let calm = try DefaultModel.directory(), tm = try DefaultModel.directory(family: .tokenMaturation)
        for name in ["tokenizer.json", "tokenizer_config.json"] {
            let a = try Data(contentsOf: calm.appendingPathComponent(name)), b = try Data(contentsOf: tm.appendingPathComponent(name))
            #expect(a == b, "\(name) differs between the built-in models")
        }
    }

    /// The Token Maturation built-in: one call to an engine, words from its tokenizer, the same
    /// text for the same seed and different text for different seeds (its only randomness is the
    /// embryos), and mostly real words.
    @Test func tokenMaturationModelGeneratesAndItsSeedsDiffer() async throws {
        let engine = try DefaultModel.engine(family: .tokenMaturation, configuration: EngineConfiguration(kvCacheBytes: 32 << 20))
        #expect(engine.family.name == "tm")
        func run(seed: UInt64) async throws -> String {
            var parameters = SamplingParameters(maxTokens: 24, seed: seed)
            parameters.maturation = TokenMaturationParameters(tailLength: 4)
            var text = ""
            for await event in try engine.generate(prompt: "Once upon a time", parameters: parameters) {
                if case let .chunk(c) = event { text += c.text }
            }
            return text
        }
        let first = try await run(seed: 1), again = try await run(seed: 1), other = try await run(seed: 2)
        #expect(first == again)
        #expect(first != other, "seeds 1 and 2 both gave: \(first)")
        let words = (first + " " + other).split(whereSeparator: \.isWhitespace)
        let wordLike = words.filter { w in w.contains(where: \.isLetter) && w.allSatisfy { $0.isLetter || $0.isPunctuation } }
        #expect(words.count >= 8 && Double(wordLike.count) >= 0.7 * Double(words.count), "generated: \(first) | \(other)")
    }

    @Test func autoencoderReconstructsUnseenEnglish() throws {
        let model = try DefaultModel.load()
        let tokenizer = try DefaultModel.tokenizer()
        var ids = tokenizer.encode(Self.paragraph, addBOS: false, allowSpecialTokens: false)
        let k = model.patchSize
        while ids.count % k != 0 { ids.append(model.padTokenID) }
        let stats = model.autoencoder.encode(ids, pool: model.pool)
        let z = model.autoencoder.config.latentSize, chunks = ids.count / k
        var means = [Float](repeating: 0, count: chunks * z)
        for c in 0..<chunks { for j in 0..<z { means[c * z + j] = stats[c * 2 * z + j] } }
        let decoded = model.autoencoder.decodeTokens(means, rows: chunks, pool: model.pool).map(Int.init)
        let correct = zip(decoded, ids).filter { $0 == $1 }.count
        #expect(Double(correct) / Double(ids.count) >= 0.97, "reconstructed \(correct) of \(ids.count) tokens")
    }

    @Test func generatesTheSameTextForTheSameSeed() async throws {
        let engine = try DefaultModel.engine(configuration: EngineConfiguration(kvCacheBytes: 32 << 20))
        // Few head samples: the test runs in debug builds, where every head sample is expensive.
        var parameters = SamplingParameters(maxTokens: 32, temperature: 0.5, seed: 7)
        parameters.sampler = .batchApproximation(samples: 16)
        func run() async throws -> (String, CompletionInfo?) {
            var text = "", info: CompletionInfo?
            for await event in try engine.generate(prompt: "Once upon a time", parameters: parameters) {
                switch event {
                case let .chunk(c): text += c.text
                case let .completed(i): info = i
                }
            }
            return (text, info)
        }
        let (first, info) = try await run()
        let (second, _) = try await run()
        #expect(first == second)
        #expect(info?.generatedTokens ?? 0 > 0)
        #expect(!first.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
        // Words, not byte salad: most whitespace-separated pieces are letters with punctuation.
        let words = first.split(whereSeparator: \.isWhitespace)
        let wordLike = words.filter { w in w.contains(where: \.isLetter) && w.allSatisfy { $0.isLetter || $0.isPunctuation } }
        #expect(Double(wordLike.count) >= 0.7 * Double(words.count), "generated: \(first)")
    }
}

/// Where `DefaultModel.directory()` looks, with the environment and folders injected.
@Suite struct DefaultModelLookupTests {
    let empty = FileManager.default.temporaryDirectory.appendingPathComponent("calm-no-bundle-\(UUID().uuidString)")

    /// Each family has its own folder and variable: CALM_DEFAULT_TM_MODEL moves the TM model only.
    @Test func tokenMaturationHasItsOwnFolderAndOverride() throws {
        let tm = try DefaultModel.directory(family: .tokenMaturation)
        let found = try DefaultModel.resolve(environment: ["CALM_DEFAULT_TM_MODEL": tm.path, "CALM_DEFAULT_MODEL": empty.path],
                                             mainBundle: empty, sourceFolder: empty, moduleBundle: { empty },
                                             folderName: "TokenMaturationModel", environmentOverride: "CALM_DEFAULT_TM_MODEL")
        #expect(found.path == tm.path)
        #expect(BuiltInFamily.tokenMaturation.builtInFolder?.environmentOverride == "CALM_DEFAULT_TM_MODEL")
        #expect(BuiltInFamily.calm.builtInFolder?.environmentOverride == DefaultModel.environmentOverride)
    }

    @Test func environmentOverrideWinsAndIsChecked() throws {
        let real = try DefaultModel.directory()
        let found = try DefaultModel.resolve(environment: ["CALM_DEFAULT_MODEL": real.path], mainBundle: empty,
                                             sourceFolder: empty, moduleBundle: { Issue.record("bundle asked"); return empty })
        #expect(found.path == real.path)
        #expect(throws: ModelError.self) {
            try DefaultModel.resolve(environment: ["CALM_DEFAULT_MODEL": empty.path], mainBundle: empty,
                                     sourceFolder: real, moduleBundle: { empty })
        }
    }

    @Test func missingBundleGivesATypedErrorNotATrap() throws {
        // No resources next to the "executable" and no source folder: Bundle.module must not be
        // touched (it would trap); the error names the override variable.
        do {
            _ = try DefaultModel.resolve(environment: [:], mainBundle: empty, sourceFolder: empty,
                                         moduleBundle: { Issue.record("Bundle.module asked without a bundle"); return empty })
            Issue.record("expected an error")
        } catch let ModelError.unknownModel(_, reason) {
            #expect(reason.contains("CALM_DEFAULT_MODEL"))
        }
        // A source checkout alone is enough.
        let real = try DefaultModel.directory()
        let found = try DefaultModel.resolve(environment: [:], mainBundle: empty, sourceFolder: real, moduleBundle: { empty })
        #expect(found == real)
    }
}
