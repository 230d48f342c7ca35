import CALMKernels
@testable import CALMModel
import CALMTensor
import CALMTestSupport
import Foundation
import Testing

/// Token Maturation on real (random) Llama and GPT-2 backbones: loading, cached vs full recomputation,
/// guidance passes, history noise, seeds, batching and typed errors (spec §6.7).
@Suite("Token Maturation (tm-tiny)")
struct TokenMaturationModelTests {
    static let prompt = [5, 17, 99, 3, 250, 42]

    static func parameters(_ maxTokens: Int = 10, tail: Int? = nil, scale: Float? = nil, seed: UInt64 = 7,
                           _ edit: (inout TokenMaturationParameters) -> Void = { _ in }) -> TokenMaturationParameters {
        var p = TokenMaturationParameters(maxTokens: maxTokens, tailLength: tail, guidanceScale: scale, seed: seed)
        p.stopAtEndToken = false
        edit(&p)
        return p
    }

    @Test func randomModelWritesLoadsInspectsAndGenerates() throws {
        let dir = try TemporaryDirectory("tm-tiny")
        let config = RandomModelWriter.TokenMaturationShape.tmTiny.config
        try RandomModelWriter.writeTokenMaturation(config: config, dtype: .bf16, to: dir.url, seed: 2)
        #expect(try ModelLoader.kind(directory: dir.url) == .tokenMaturation)
        guard case .tokenMaturation(let loaded) = try ModelLoader.load(directory: dir.url) else {
            Issue.record("ModelLoader.load did not give a Token Maturation model"); return
        }
        #expect(loaded.config == (try TokenMaturationModel.load(directory: dir.url)).config)
        #expect(throws: ModelError.self) { try LlamaCausalLM.load(directory: dir.url) }
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.url.appendingPathComponent("config.json"))) as? [String: Any]
        for key in ["model_type", "backbone", "maturity_max", "maturation_rate", "embryo_scale", "prediction_alignment", "tail_length",
                    "max_tail_length", "guidance_scale", "alpha_embedding_channels", "hidden_size", "eos_token_id"] {
            #expect(json?[key] != nil, "config.json lacks \(key)")
        }
        #expect(json?["embedding_radius"] == nil)   // the default: the mean row norm

        let inspection = try ModelInspection(directory: dir.url)
        #expect(inspection.kind == .tokenMaturation)
        var expected: [String: Int] = [:]
        for (name, shape) in try RandomModelWriter.tokenMaturationTensors(config) {
            let part = name.hasPrefix("tm.") ? "token_maturation" : name.hasPrefix("model.embed_tokens") ? "token_embedding" : "backbone"
            expected[part, default: 0] += shape.reduce(1, *)
        }
        #expect(inspection.parameters == expected)

        let model = try TokenMaturationModel.load(directory: dir.url)
        #expect(model.config.backbone == .llama && model.hidden == 64 && model.config.vocabSize == 512)
        #expect(model.config.tailLength == 16 && model.config.maturityMax == 0.5 && model.config.eosTokenIDs == [511])
        // N(0, 1) rows of width 64 have norms close to 8
        #expect(abs(model.embedding.radius - 8) < 0.3)
        let e = model.embedding.vector(3)
        #expect(abs(e.reduce(0) { $0 + $1 * $1 }.squareRoot() - model.embedding.radius) < 1e-3)
        let r = try model.generate(prompt: Self.prompt, parameters: Self.parameters(8))
        #expect(r.tokens.count == 8 && r.stopReason == .maxTokens)
        #expect(r.tokens.allSatisfy { $0 >= 0 && $0 < 512 })
    }

    static let cachedCases: [TokenMaturationParameters] = [
        parameters(),
        parameters(tail: 4, scale: 2),
        parameters(tail: 3, scale: 2) { $0.alignment = .same },
        parameters(tail: 1, scale: 2),
        parameters(tail: 1, scale: 2) { $0.alignment = .same; $0.innerIterations = 2 },
        parameters(tail: 5, scale: 1.5) { $0.innerIterations = 3 },
        parameters(tail: 4) {
            $0.targetEMA = 0.5; $0.historyEMA = 0.3; $0.tailNoise = 0.2; $0.renormalizeTail = true; $0.diagnostics = true
            $0.diagnosticsTopK = 20
        },
        parameters(tail: 4, scale: 2) { $0.historyNoise = 0.05; $0.innerIterations = 2 },
    ]

    /// Keys/values of committed positions reused across steps give exactly what recomputing the
    /// whole sequence every forward gives (the kernels' rows don't depend on the batch).
    @Test(arguments: TMFixtures.tinyShapes, cachedCases.indices)
    func cachedDecodingEqualsFullRecomputation(shape: RandomModelWriter.TokenMaturationShape, index: Int) throws {
        let model = try TMFixtures.tiny(shape: shape)
        var p = Self.cachedCases[index]
        // the statistics are functions of the exact front vectors: equal statistics, equal vectors
        p.diagnostics = true
        let cached = try model.generate(prompt: Self.prompt, parameters: p)
        let full = try model.referenceGenerate(prompt: Self.prompt, parameters: p)
        #expect(cached.tokens == full.tokens)
        #expect(cached.diagnostics == full.diagnostics)
        #expect(cached.tokens.count == 10 && cached.diagnostics.count == 10)
        // the full path really does more work
        #expect(full.backboneRows > cached.backboneRows || p.historyNoise > 0)
    }

    /// Under the tail-only mask the tail rows can't see the prefix: with s = 0 (unconditional
    /// predictions only) two different prompts of one length leave bitwise-identical tails.
    @Test(arguments: TMFixtures.tinyShapes, [TokenMaturationAlignment.shift, .same])
    func unconditionalPassIgnoresThePrefix(shape: RandomModelWriter.TokenMaturationShape, alignment: TokenMaturationAlignment) throws {
        let model = try TMFixtures.tiny(shape: shape)
        func tailAfterOneStep(_ prompt: [Int], scale: Float) throws -> [Float] {
            let s = try model.makeSequence(prompt: prompt, parameters: Self.parameters(tail: 4, scale: scale) { $0.alignment = alignment })
            _ = try model.step([s])
            return s.tail.vectors
        }
        let a = [1, 2, 3, 4, 5], b = [400, 300, 200, 100, 50]
        let ua = try tailAfterOneStep(a, scale: 0), ub = try tailAfterOneStep(b, scale: 0)
        // (with shift, the committed front came from the committed row; every slot left is tail-only)
        #expect(ua.map(\.bitPattern) == ub.map(\.bitPattern))
        #expect(ua.count == 4 * model.hidden)
        #expect(try tailAfterOneStep(a, scale: 1) != tailAfterOneStep(b, scale: 1))
    }

    /// s = 1 runs the conditional pass alone: no second slice, K rows per step, and the tail-only
    /// rows' output (poisoned here) is never read. With s ≠ 1 it is.
    @Test func guidanceOffSkipsTheSecondPass() throws {
        let tiny = try TMFixtures.tiny()
        let recording = RecordingBackbone(tiny.backbone)
        recording.poisonDisplaced = true
        let model = try TMFixtures.rebuilt(tiny, backbone: recording)
        let k = 4, steps = 6, n0 = Self.prompt.count
        let off = try model.generate(prompt: Self.prompt, parameters: Self.parameters(steps, tail: k, scale: 1))
        #expect(recording.forwards.count == steps && recording.forwards.allSatisfy { $0.count == 1 })
        #expect(off.backboneRows == (n0 + k - 1) + (steps - 1) * k)
        #expect(off.tokens == (try tiny.generate(prompt: Self.prompt, parameters: Self.parameters(steps, tail: k, scale: 1))).tokens)

        #expect {
            _ = try model.generate(prompt: Self.prompt, parameters: Self.parameters(steps, tail: k, scale: 2))
        } throws: { error in
            if case ModelError.nonFinite = error { return true }
            return false
        }
        recording.poisonDisplaced = false
        let on = try model.generate(prompt: Self.prompt, parameters: Self.parameters(steps, tail: k, scale: 2))
        #expect(on.backboneRows == off.backboneRows + steps * (k - 1))
    }

    /// History noise re-draws the committed inputs every forward, so every step recomputes the whole
    /// prefix on a private cache; the sequence's own cache still gets each committed position once.
    @Test func historyNoiseDisablesThePrefixCache() throws {
        let tiny = try TMFixtures.tiny()
        let recording = RecordingBackbone(tiny.backbone)
        let model = try TMFixtures.rebuilt(tiny, backbone: recording)
        let k = 3
        let s = try model.makeSequence(prompt: Self.prompt, parameters: Self.parameters(5, tail: k) { $0.historyNoise = 0.1 })
        let own = ObjectIdentifier(s.cache)
        for t in 0..<5 {
            let n = s.ids.count
            _ = try model.step([s])
            guard let slices = recording.forwards.last else { Issue.record("no forward"); return }
            let full = slices.filter { $0.cache != own }
            #expect(full.count == 1 && full[0].rows == n + k - 1 && full[0].firstPosition == 0 && full[0].persist == 0, "step \(t)")
            let clean = slices.filter { $0.cache == own }
            #expect(clean.count == 1 && clean[0].rows == (t == 0 ? n : 1) && clean[0].persist == clean[0].rows, "step \(t)")
            #expect(s.cache.count == s.ids.count - 1)
        }
        let noisy = try model.generate(prompt: Self.prompt, parameters: Self.parameters(5, tail: k) { $0.historyNoise = 0.1 })
        #expect(noisy.backboneRows == (0..<5).reduce(0) { $0 + (Self.prompt.count + $1 + k - 1) } + Self.prompt.count + 4)
    }

    @Test func seedsOnlyChangeTheEmbryos() throws {
        let model = try TMFixtures.tiny()
        let k = 4, d = model.hidden
        let a = try model.generate(prompt: Self.prompt, parameters: Self.parameters(tail: k) { $0.diagnostics = true })
        let b = try model.generate(prompt: Self.prompt, parameters: Self.parameters(tail: k) { $0.diagnostics = true })
        #expect(a.tokens == b.tokens && a.diagnostics == b.diagnostics)

        // every random draw is an embryo's: K at the start, one per commit but the last
        let counting = CountingRandomness(seed: 3)
        let c = try model.generate(prompt: Self.prompt, parameters: Self.parameters(tail: k), randomness: counting)
        #expect(counting.doubles == (k + c.tokens.count - 1) * d && counting.floats == 0)

        // α_max = 1 makes the front the clean prediction: seeds differ in embryos, not in tokens
        var tails: [[Float]] = [], outputs: [[Int]] = []
        for seed: UInt64 in 1...3 {
            let p = Self.parameters(tail: k, seed: seed) { $0.maturityMax = 1 }
            tails.append(try model.makeSequence(prompt: Self.prompt, parameters: p).tail.vectors)
            outputs.append(try model.generate(prompt: Self.prompt, parameters: p).tokens)
        }
        #expect(Set(tails.map { $0.map(\.bitPattern) }).count == 3)
        #expect(Set(outputs).count == 1)
        // with the default α_max the embryos do steer the output
        let varied = try (1...6).map { seed in try model.generate(prompt: Self.prompt, parameters: Self.parameters(tail: k, seed: UInt64(seed))).tokens }
        #expect(Set(varied).count > 1)
    }

    /// One batched step over sequences of different prompts, lengths, K, guidance, alignment and
    /// options (one doing a chunked prefill first) equals each sequence stepped alone, bit for bit.
    /// One forward may mix caches of different block sizes (the engine's pages beside a sequence's
    /// private guidance cache); each slice reads its own geometry and equals its run alone.
    @Test(arguments: TMFixtures.tinyShapes)
    func slicesWithDifferentBlockSizesShareAForward(shape: RandomModelWriter.TokenMaturationShape) throws {
        let model = try TMFixtures.tiny(shape: shape)
        let d = model.hidden, rows = 11
        let x = (0..<(2 * rows * d)).map { Float(($0 * 37) % 101) / 101 - 0.5 }
        func run(_ blockSizes: [Int]) throws -> [Float] {
            let caches = blockSizes.map { model.makeCache(blockPositions: $0) }
            for c in caches { try c.prepare(rows: rows) }
            let slices = caches.map { BackboneSlice(cache: $0, rows: rows) }
            var inputs = Array(x[0..<(blockSizes.count * rows * d)])
            if blockSizes.count == 1 && blockSizes[0] == 16 { inputs = Array(x[(rows * d)...]) }
            model.backbone.addPositionEmbeddings(&inputs, slices: slices)
            return model.backbone.forward(inputs, slices: slices, pool: model.pool)
        }
        let together = try run([4, 16])
        let a = try run([4]), b = try run([16])
        #expect(together.map(\.bitPattern) == (a + b).map(\.bitPattern))
    }

    @Test(arguments: TMFixtures.tinyShapes)
    func batchedStepEqualsEachAlone(shape: RandomModelWriter.TokenMaturationShape) throws {
        let model = try TMFixtures.tiny(shape: shape)
        struct Spec { let prompt: [Int]; let parameters: TokenMaturationParameters; let prefillFirst: Int? }
        let specs = [
            Spec(prompt: [1, 2, 3], parameters: Self.parameters(5, tail: 4, scale: 1), prefillFirst: nil),
            Spec(prompt: Array(10..<17), parameters: Self.parameters(8, tail: 1, scale: 2) { $0.diagnostics = true }, prefillFirst: nil),
            Spec(prompt: Array(100..<112), parameters: Self.parameters(6, tail: 6, scale: 0.5) { $0.alignment = .same }, prefillFirst: nil),
            Spec(prompt: Array(200..<210), parameters: Self.parameters(7, tail: 3, scale: 2) { $0.historyNoise = 0.05; $0.targetEMA = 0.4 }, prefillFirst: nil),
            Spec(prompt: Array(300..<309), parameters: Self.parameters(4, tail: 5) { $0.innerIterations = 2; $0.diagnostics = true }, prefillFirst: 5),
        ]
        typealias Trace = (tokens: [Int], tails: [[Float]], diagnostics: [TokenMaturationDiagnostics])
        func run(_ chosen: [Int]) throws -> [Int: Trace] {
            let sequences = try chosen.map { try model.makeSequence(prompt: specs[$0].prompt, parameters: specs[$0].parameters) }
            var traces: [Int: Trace] = [:]
            for i in chosen { traces[i] = ([], [], []) }
            var first = true
            while true {
                var items: [TokenMaturationBatchItem] = [], owners: [Int] = []
                for (s, i) in zip(sequences, chosen) where s.stopReason == nil {
                    if first, let feed = specs[i].prefillFirst {
                        items.append(TokenMaturationBatchItem(sequence: s, commits: false, feedLimit: feed))
                    } else {
                        items.append(TokenMaturationBatchItem(sequence: s))
                    }
                    owners.append(i)
                }
                first = false
                if items.isEmpty { break }
                let result = try model.step(items)
                for (item, (i, outcome)) in zip(items, zip(owners, result.outcomes)) {
                    switch outcome {
                    case let .committed(c): traces[i]?.tokens.append(c.token); traces[i]?.tails.append(item.sequence.tail.vectors)
                    case let .fed(n): #expect(n == specs[i].prefillFirst)
                    case let .failed(e): Issue.record("sequence \(i): \(e)"); return traces
                    }
                }
            }
            for (s, i) in zip(sequences, chosen) { traces[i]?.diagnostics = s.diagnostics }
            return traces
        }
        let together = try run(Array(specs.indices))
        for i in specs.indices {
            let alone = try run([i])
            #expect(together[i]?.tokens == alone[i]?.tokens, "sequence \(i)")
            #expect(together[i]?.tokens.count == specs[i].parameters.maxTokens)
            #expect(together[i]?.tails.map { $0.map(\.bitPattern) } == alone[i]?.tails.map { $0.map(\.bitPattern) }, "sequence \(i)")
            #expect(together[i]?.diagnostics == alone[i]?.diagnostics, "sequence \(i)")
        }
        // and generate() is the same step with one sequence
        #expect(try model.generate(prompt: specs[1].prompt, parameters: specs[1].parameters).tokens == together[1]?.tokens)
    }

    @Test func diagnosticsAreConsistent() throws {
        let model = try TMFixtures.tiny()
        let k = 6
        let r = try model.generate(prompt: Self.prompt, parameters: Self.parameters(12, tail: k) { $0.diagnostics = true })
        #expect(r.diagnostics.count == r.tokens.count)
        for (i, g) in r.diagnostics.enumerated() {
            #expect(g.token == r.tokens[i])
            // the first K − 1 vectors started deeper than the back of the tail: fewer updates
            let updates = min(i + 1, k)
            #expect(g.updates == updates && g.lockStep >= 1 && g.lockStep <= updates && g.uniqueCandidates >= 1 && g.uniqueCandidates <= updates)
            #expect(g.cosine >= -1.0001 && g.cosine <= 1.0001 && g.gap >= 0)
            #expect(g.entropy > 0 && g.entropy <= log(50.0) + 1e-6 && g.topK == 50)
        }
        // flushTail projects what is left of the tail at a length stop
        let flushed = try model.generate(prompt: Self.prompt, parameters: Self.parameters(3, tail: k) { $0.flushTail = true })
        #expect(flushed.flushedTokens.count <= k - 1 && flushed.stopReason == .maxTokens)
    }

    /// Stop rules: end-of-text (the committed EOS is the last token) and the position limit n + K.
    @Test func stopsAtEndOfTextAndAtThePositionLimit() throws {
        let model = try TMFixtures.tiny()
        // find a token the model commits, then make it the end-of-text id
        let probe = try model.generate(prompt: Self.prompt, parameters: Self.parameters(6, tail: 2))
        var config = model.config
        config.eosTokenIDs = [probe.tokens[3]]
        let eosModel = try TokenMaturationModel(config: config, backbone: model.backbone, embedding: model.embedding,
                                                alphaConditioner: model.alphaConditioner, film: model.film, head: model.head)
        let stopped = try eosModel.generate(prompt: Self.prompt, parameters: Self.parameters(6, tail: 2) { $0.stopAtEndToken = true })
        #expect(stopped.stopReason == .endToken)
        #expect(stopped.tokens.last == probe.tokens[3] && stopped.tokens.count <= 4)

        config = model.config
        config.maxPositions = Self.prompt.count + 4 + 3
        let short = try TokenMaturationModel(config: config, backbone: model.backbone, embedding: model.embedding,
                                             alphaConditioner: model.alphaConditioner, film: model.film, head: model.head)
        let full = try short.generate(prompt: Self.prompt, parameters: Self.parameters(50, tail: 4))
        // steps run while n + K ≤ the limit: n = 6…9, so four commits
        #expect(full.stopReason == .contextFull && full.tokens.count == 4)
    }

    /// Teacher forcing and branches (what BrierLM evaluation builds on): a forced commit keeps the
    /// model's own projection apart and enters the forced id; resuming a snapshot on a forked cache
    /// continues exactly like the original (K ≥ 4, shift: the next K − 1 commits come from vectors
    /// already in the tail, whatever the branch's stream); and forcing x equals resuming the
    /// unforced sequence with x as its last id.
    @Test(arguments: TMFixtures.tinyShapes, [Float(1), 2])
    func forcedCommitsAndResumedBranches(shape: RandomModelWriter.TokenMaturationShape, scale: Float) throws {
        let model = try TMFixtures.tiny(shape: shape)
        let k = 4
        let p = Self.parameters(20, tail: k, scale: scale) { $0.historyEMA = 0.3 }
        let original = try model.makeSequence(prompt: Self.prompt, parameters: p)
        for _ in 0..<3 { _ = try model.step([original]) }
        let snapshot = original.snapshot()
        #expect(snapshot.ids == original.ids && snapshot.tail == original.tail)
        var ahead: [Int] = []
        for _ in 0..<(k - 1) {
            guard case let .committed(c)? = try model.step([original]).outcomes.first else { Issue.record("no commit"); return }
            ahead.append(c.token)
            #expect(c.projection == c.token)
        }
        // a branch on a fork of the cache (the original has moved on since)
        let fork = try #require(original.cache.fork(prefix: snapshot.ids.count - 1))
        let branch = try model.resume(snapshot, cache: fork, randomness: SeededRandomness(seed: 99))
        var continued: [Int] = []
        for _ in 0..<(k - 1) {
            guard case let .committed(c)? = try model.step([branch]).outcomes.first else { Issue.record("no commit"); return }
            continued.append(c.token)
        }
        #expect(continued == ahead)
        // and on a fresh cache (the whole prefix recomputed, history EMA restarted from 0)
        let fresh = try model.resume(snapshot, randomness: SeededRandomness(seed: 5))
        var recomputed: [Int] = []
        for _ in 0..<(k - 1) {
            guard case let .committed(c)? = try model.step([fresh]).outcomes.first else { Issue.record("no commit"); return }
            recomputed.append(c.token)
        }
        #expect(recomputed == ahead)

        // forcing x: the projection is what the unforced run commits, the context gets x
        let a = try model.makeSequence(prompt: Self.prompt, parameters: p)
        let b = try model.makeSequence(prompt: Self.prompt, parameters: p)
        let free = try model.step([a]).outcomes.first
        guard case let .committed(freeCommit)? = free else { Issue.record("no commit"); return }
        let x = (freeCommit.token + 1) % model.config.vocabSize
        let forced = try model.step([TokenMaturationBatchItem(sequence: b, forcedToken: x)]).outcomes.first
        guard case let .committed(forcedCommit)? = forced else { Issue.record("no commit"); return }
        #expect(forcedCommit.token == x && forcedCommit.projection == freeCommit.token && b.ids.last == x)
        #expect(b.tail == a.tail)
        let replaced = try model.resume(a.snapshot(), lastToken: x, cache: a.cache.fork(prefix: a.cache.count),
                                        randomness: SeededRandomness(seed: 1))
        let next = try model.step([TokenMaturationBatchItem(sequence: b), TokenMaturationBatchItem(sequence: replaced)])
        guard case let .committed(n1)? = next.outcomes.first, case let .committed(n2)? = next.outcomes.last else {
            Issue.record("no commit"); return
        }
        #expect(n1.token == n2.token && Array(b.tail.vectors[0..<(model.hidden * (k - 1))]) == Array(replaced.tail.vectors[0..<(model.hidden * (k - 1))]))

        // typed errors
        let c = try model.makeSequence(prompt: Self.prompt, parameters: p)
        let bad = try model.step([TokenMaturationBatchItem(sequence: c, forcedToken: model.config.vocabSize)])
        guard case let .failed(.invalidParameter(name, _))? = bad.outcomes.first else { Issue.record("\(bad.outcomes)"); return }
        #expect(name == "forcedToken")
        #expect(throws: ModelError.invalidParameter(name: "lastToken", reason: "token id -1 is outside the vocabulary (size \(model.config.vocabSize))")) {
            try model.resume(snapshot, lastToken: -1)
        }
        #expect {
            let full = try #require(original.cache.fork(prefix: snapshot.ids.count - 1))
            _ = full.reserve(additional: 1)
            full.count += 1
            return try model.resume(snapshot, cache: full)
        } throws: { error in
            guard case let ModelError.invalidParameter(name, _) = error else { return false }
            return name == "cache"
        }
        let done = try model.makeSequence(prompt: Self.prompt, parameters: Self.parameters(1, tail: k))
        _ = try model.step([done])
        #expect(done.stopReason == .maxTokens)
        #expect {
            try model.resume(done.snapshot())
        } throws: { error in
            guard case let ModelError.invalidParameter(name, _) = error else { return false }
            return name == "snapshot"
        }
    }

    // MARK: typed errors

    static func brokenFolder(edit: (inout [String: Any]) -> Void, drop: String? = nil) throws -> TemporaryDirectory {
        let dir = try TemporaryDirectory("tm-bad")
        try RandomModelWriter.writeTokenMaturation(config: RandomModelWriter.TokenMaturationShape.tmTiny.config, dtype: .f32, to: dir.url)
        let url = dir.url.appendingPathComponent("config.json")
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any] ?? [:]
        edit(&json)
        try JSONSerialization.data(withJSONObject: json).write(to: url)
        if let drop {
            let weights = dir.url.appendingPathComponent("model.safetensors")
            let source = try SafetensorsFile(url: weights)
            var writer = SafetensorsWriter(metadata: ["format": "pt"])
            for name in source.tensorNames where name != drop { writer.add(try source.tensor(name)) }
            // not over the file being read (it is memory-mapped)
            let temporary = dir.url.appendingPathComponent("rewritten.safetensors")
            try writer.write(to: temporary)
            try FileManager.default.removeItem(at: weights)
            try FileManager.default.moveItem(at: temporary, to: weights)
        }
        return dir
    }

    @Test(arguments: [
        ("maturity_max", 2.0 as Any), ("tail_length", "many" as Any), ("tail_length", 100 as Any), ("backbone", "gpt3" as Any),
        ("backbone", "gpt2" as Any), ("prediction_alignment", "sideways" as Any), ("embedding_radius", -1.0 as Any),
        ("max_tail_length", 0 as Any), ("alpha_embedding_channels", 7 as Any), ("num_attention_heads", 3 as Any),
        ("eos_token_id", 9999 as Any),
    ].map { ConfigCase(key: $0.0, value: "\($0.1)", json: $0.1) })
    func badConfigNamesFileAndKey(_ c: ConfigCase) throws {
        let dir = try Self.brokenFolder { $0[c.key] = c.json.value }
        #expect {
            try TokenMaturationModel.load(directory: dir.url)
        } throws: { error in
            guard case let ModelError.invalidConfig(file, key, _) = error else { return false }
            // a Llama-sized config declared as GPT-2 lacks GPT-2's size keys: the first is named
            return key == (c.key == "backbone" && c.value == "gpt2" ? "n_positions" : c.key) && file.hasSuffix("config.json")
        }
    }

    @Test func missingBackboneKeyAndMissingWeightAreNamed() throws {
        let dir = try Self.brokenFolder { $0["backbone"] = nil }
        #expect {
            try TokenMaturationModel.load(directory: dir.url)
        } throws: { error in
            guard case let ModelError.invalidConfig(_, key, _) = error else { return false }
            return key == "backbone"
        }
        let noHead = try Self.brokenFolder(edit: { _ in }, drop: "tm.head.weight")
        #expect {
            try TokenMaturationModel.load(directory: noHead.url)
        } throws: { error in
            guard case let ModelError.missingWeight(_, keys) = error else { return false }
            return keys == ["tm.head.weight"]
        }
    }
}

/// One bad config value (JSON values are not Sendable, so they travel boxed).
struct ConfigCase: Sendable, CustomTestStringConvertible {
    let key: String
    let value: String
    let json: UncheckedJSON
    init(key: String, value: String, json: Any) { self.key = key; self.value = value; self.json = UncheckedJSON(value: json) }
    var testDescription: String { "\(key) = \(value)" }
}

struct UncheckedJSON: @unchecked Sendable { let value: Any }

/// A Token Maturation model started from a Hugging Face GPT-2 folder (either key layout) has GPT-2's
/// backbone and wte, conditioning that adds nothing, FiLM the identity and the head the identity:
/// before training, its predictions are GPT-2's final hidden states.
@Suite("Token Maturation from GPT-2")
struct TokenMaturationFromGPT2Tests {
    func check(_ gpt2Folder: URL) throws {
        let out = try TemporaryDirectory("tm-from-gpt2")
        try TokenMaturationInitializer.write(fromGPT2: gpt2Folder, to: out.url, seed: 4)
        let tm = try TokenMaturationModel.load(directory: out.url)
        let gpt2 = try GPT2CausalLM.load(directory: gpt2Folder)
        #expect(tm.config.backbone == .gpt2 && tm.config.vocabSize == gpt2.vocabSize && tm.hidden == gpt2.hiddenSize)
        let d = tm.hidden
        // the same stack: equal outputs, bit for bit, for any vectors at any positions
        let rows = 7
        let x = (0..<(rows * d)).map { Float(($0 * 53) % 97) / 97 - 0.5 }
        func run(_ backbone: any VectorBackbone) throws -> [Float] {
            let cache = KVCache(layout: backbone.kvLayout(blockPositions: 16), source: HeapKVBlockSource(layout: backbone.kvLayout(blockPositions: 16)))
            try cache.prepare(rows: rows)
            let slice = BackboneSlice(cache: cache, rows: rows, firstPosition: 3)
            var inputs = x
            backbone.addPositionEmbeddings(&inputs, slices: [slice])
            return backbone.forward(inputs, slices: [slice], pool: .shared)
        }
        #expect(try run(tm.backbone).map(\.bitPattern) == run(gpt2.backbone).map(\.bitPattern))
        // conditioning adds zero, FiLM is the identity, the head is the identity
        #expect(tm.alphaConditioner.table([0, 0.25, 1], pool: .shared).allSatisfy { $0 == 0 })
        let film = try tm.film.modulation(tailLength: 16, pool: .shared)
        #expect(film.scale.allSatisfy { $0 == 1 } && film.shift.allSatisfy { $0 == 0 })
        #expect(tm.head(x, rows: rows, pool: .shared) == x)
        // E is wte's rows rescaled to one radius (the mean row norm): same directions
        let wte = try CheckpointLoader.open(directory: gpt2Folder)
        let key = wte.contains("transformer.wte.weight") ? "transformer.wte.weight" : "wte.weight"
        let raw = try wte.tensor(key).floats()
        for id in [0, 5, gpt2.vocabSize - 1] {
            let e = tm.embedding.vector(id), w = Array(raw[(id * d)..<((id + 1) * d)])
            let cosine = zip(e, w).reduce(0) { $0 + $1.0 * $1.1 } / (norm(e) * norm(w))
            #expect(abs(cosine - 1) < 1e-5)
            #expect(abs(norm(e) - tm.embedding.radius) < 1e-3 * tm.embedding.radius)
        }
        // and it generates
        let r = try tm.generate(prompt: [1, 2, 3], parameters: TokenMaturationParameters(maxTokens: 4, tailLength: 4, seed: 1))
        #expect(r.tokens.count <= 4 && !r.tokens.isEmpty)
    }

    func norm(_ v: [Float]) -> Float { v.reduce(0) { $0 + $1 * $1 }.squareRoot() }

    @Test func fromARandomSavePretrainedFolder() throws {
        let dir = try TemporaryDirectory("gpt2-src")
        try RandomModelWriter.writeGPT2(config: RandomModelWriter.GPT2Shape.gpt2Tiny.config, dtype: .f32, to: dir.url, seed: 8)
        try check(dir.url)
    }

    @Test(.enabled(if: SharedFixtures.enabled, Comment(rawValue: SharedFixtures.skipMessage)))
    func fromTheHubLayoutFixture() throws {
        try check(try SharedFixtures.gpt2Fixtures().appendingPathComponent("gpt2_tiny_hub"))
    }
}
