import CALMModel
import CALMTensor
import CALMTestSupport
import Foundation
import Testing

/// The GPT-2 backbone and LM head on random `gpt2-tiny` folders (no fixtures needed): batching
/// invariance with ragged caches and scratch rows, both key layouts, typed config and weight
/// errors, the random writer's folders; and the shared fixtures' two layouts when present.
@Suite("GPT-2")
struct GPT2Tests {
    /// A random `gpt2-tiny` folder (save_pretrained layout), optionally with config.json edited.
    static func tinyFolder(dtype: DType = .f32, seed: UInt64 = 3, configEdits: [String: Any?] = [:]) throws -> TemporaryDirectory {
        let dir = try TemporaryDirectory("calm-gpt2")
        try RandomModelWriter.writeGPT2(config: RandomModelWriter.GPT2Shape.gpt2Tiny.config, dtype: dtype, to: dir.url, seed: seed)
        if !configEdits.isEmpty {
            let url = dir.url.appendingPathComponent("config.json")
            var json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any] ?? [:]
            for (key, value) in configEdits { json[key] = value }
            try JSONSerialization.data(withJSONObject: json).write(to: url)
        }
        return dir
    }

    /// The config error a load throws, as (file, key).
    static func configError(_ body: () throws -> Void) -> (file: String, key: String)? {
        do { try body() } catch let ModelError.invalidConfig(file, key, _) { return (file, key) } catch { return nil }
        return nil
    }

    @Test func batchedForwardEqualsEachSequenceAlone() throws {
        let dir = try Self.tinyFolder()
        let model = try GPT2CausalLM.load(directory: dir.url)
        let prefixes = [[Int](), [5, 9, 200], [1, 2, 3, 4, 5, 6, 7]]
        let steps = [[17], [40, 41, 42, 43], [300, 301]]
        func prefilled() throws -> [KVCache] {
            try prefixes.map { p in
                let c = model.makeCache(blockPositions: 4)
                if !p.isEmpty { _ = try model.forward(tokens: [p], caches: [c]) }
                return c
            }
        }
        // Three sequences with cache lengths 0, 3 and 7 in one pass …
        let caches = try prefilled()
        let batched = try model.forward(tokens: steps, caches: caches)
        #expect(caches.map(\.count) == [1, 7, 9])
        // … give each sequence's rows bit for bit as when it runs alone.
        var alone: [Float] = []
        for (cache, s) in zip(try prefilled(), steps) { alone += try model.forward(tokens: [s], caches: [cache]) }
        #expect(batched.count == 7 * 64)
        #expect(batched == alone)

        // The same through the vector entry with scratch rows and explicit positions: sequence 1
        // keeps 1 of its 4 rows, sequence 2 sits at positions 20… (not its cache length).
        let vectorCaches = try prefilled()
        let inputs = model.backbone.wte.lookup(steps.flatMap { $0 })
        let slices = [BackboneSlice(cache: vectorCaches[0], rows: 1),
                      BackboneSlice(cache: vectorCaches[1], rows: 4, persist: 1),
                      BackboneSlice(cache: vectorCaches[2], rows: 2, firstPosition: 20)]
        let mixed = try model.forward(inputsEmbeds: inputs, slices: slices)
        #expect(vectorCaches.map(\.count) == [1, 4, 9])
        #expect(Array(mixed[0..<(5 * 64)]) == Array(batched[0..<(5 * 64)]), "persist does not change this pass's rows")
        let loneCache = try prefilled()[2]
        let lone = try model.forward(inputsEmbeds: model.backbone.wte.lookup(steps[2]),
                                 slices: [BackboneSlice(cache: loneCache, rows: 2, firstPosition: 20)])
        #expect(Array(mixed[(5 * 64)...]) == lone)
        #expect(Array(mixed[(5 * 64)...]) != Array(batched[(5 * 64)...]), "positions 20… differ from positions 7…")

        // The scratch rows are overwritten: the rest of sequence 1 now continues from 4 cached positions.
        let rest = try model.forward(tokens: [[41, 42, 43]], caches: [vectorCaches[1]])
        #expect(rest == Array(batched[(2 * 64)..<(5 * 64)]))
        #expect(vectorCaches[1].count == 7)
    }

    @Test func fullPassMatchesTokenByTokenAndLogitsAreTied() throws {
        let dir = try Self.tinyFolder()
        let model = try GPT2CausalLM.load(directory: dir.url)
        #expect(model.tiedEmbeddings && model.backbone.weightPrefix == "transformer.")
        let ids = [511, 7, 300, 42, 42, 99, 0, 510]
        let full = try model.forward(tokens: [ids], caches: [model.makeCache()])
        let cache = model.makeCache(blockPositions: 3)
        var incremental: [Float] = []
        for t in ids { incremental += try model.forward(tokens: [[t]], caches: [cache]) }
        #expect(zip(full, incremental).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, abs($0)) })
        let logits = try model.logits(ids: ids)
        #expect(logits.count == ids.count * 512 && logits.allSatisfy(\.isFinite))
        #expect(Set(logits.prefix(512)).count > 400, "random weights give distinct logits")
        // Tied: logit j of a row is ⟨ln_f(h), wte[j]⟩.
        let wte = model.backbone.wte.lookup([3])
        let dot = zip(full.prefix(64), wte).reduce(Float(0)) { $0 + $1.0 * $1.1 }
        #expect(abs(dot - logits[3]) <= 1e-4 * max(1, abs(dot)))
    }

    @Test func hubLayoutEqualsSavePretrainedLayout() throws {
        let dir = try Self.tinyFolder(seed: 8)
        // The Hub layout: no prefix, plus the causal-mask buffers that a loader must ignore.
        let hub = try TemporaryDirectory("calm-gpt2-hub")
        let file = try SafetensorsFile(url: dir.url.appendingPathComponent("model.safetensors"))
        var tensors: [TensorData] = []
        for name in file.tensorNames {
            let t = try file.tensor(name)
            tensors.append(try TensorData(name: String(name.dropFirst("transformer.".count)), dtype: t.dtype, shape: t.shape, bytes: t.bytes))
        }
        let p = 128
        for l in 0..<2 {
            let mask = (0..<(p * p)).map { Float($0 % p <= $0 / p ? 1 : 0) }
            tensors.append(try TensorData(name: "h.\(l).attn.bias", shape: [1, 1, p, p], floats: mask))
            tensors.append(try TensorData(name: "h.\(l).attn.masked_bias", shape: [], floats: [-1e4]))
        }
        try SafetensorsWriter.write(tensors, metadata: ["format": "pt"], to: hub.url.appendingPathComponent("model.safetensors"))
        try FileManager.default.copyItem(at: dir.url.appendingPathComponent("config.json"), to: hub.url.appendingPathComponent("config.json"))

        let a = try GPT2CausalLM.load(directory: dir.url), b = try GPT2CausalLM.load(directory: hub.url)
        #expect(b.backbone.weightPrefix == "")
        let ids = [[1, 2, 3, 4, 5], [400, 401]]
        #expect(try a.forward(tokens: ids, caches: ids.map { _ in a.makeCache() })
                == b.forward(tokens: ids, caches: ids.map { _ in b.makeCache() }))
        #expect(try a.logits(ids: ids[0]) == b.logits(ids: ids[0]))
        // Both count the same parameters; the mask buffers are not parameters.
        let ia = try ModelInspection(directory: dir.url), ib = try ModelInspection(directory: hub.url)
        #expect(ia.parameters == ib.parameters && ib.parameters["other"] == nil)
    }

    @Test(.enabled(if: SharedFixtures.enabled, Comment(rawValue: SharedFixtures.skipMessage)))
    func sharedFixtureLayoutsAgree() throws {
        let fixtures = try SharedFixtures.gpt2Fixtures()
        let a = try GPT2CausalLM.load(directory: fixtures.appendingPathComponent("gpt2_tiny"))
        let b = try GPT2CausalLM.load(directory: fixtures.appendingPathComponent("gpt2_tiny_hub"))
        #expect(a.backbone.weightPrefix == "transformer." && b.backbone.weightPrefix == "")
        let ids = [3, 1, 4, 1, 5, 9, 2, 6]
        #expect(try a.logits(ids: ids) == b.logits(ids: ids))
    }

    @Test func badConfigsAreTypedErrorsNamingFileAndKey() throws {
        let cases: [(String, [String: Any?])] = [
            ("activation_function", ["activation_function": "relu"]),
            ("n_embd", ["n_embd": nil]),                 // missing
            ("vocab_size", ["vocab_size": NSNull()]),     // null
            ("n_head", ["n_head": "four"]),               // wrong type
            ("n_head", ["n_head": 5]),                    // 64 not divisible by 5
            ("layer_norm_epsilon", ["layer_norm_epsilon": 0]),
            ("n_inner", ["n_inner": -1]),
            ("eos_token_id", ["eos_token_id": 512]),
            ("scale_attn_by_inverse_layer_idx", ["scale_attn_by_inverse_layer_idx": true]),
        ]
        for (key, edits) in cases {
            let dir = try Self.tinyFolder(configEdits: edits)
            let error = Self.configError { _ = try GPT2CausalLM.load(directory: dir.url) }
            #expect(error?.key == key, "\(edits)")
            #expect(error?.file == dir.url.appendingPathComponent("config.json").path)
        }
        // n_inner: null means 4 · n_embd; a number is used as given.
        let inner = try Self.tinyFolder(configEdits: ["n_inner": 256])
        #expect(try GPT2Config.load(directory: inner.url).innerSize == 256)
        let wrongInner = try Self.tinyFolder(configEdits: ["n_inner": 128])
        #expect(throws: ModelError.weightShapeMismatch(file: "model.safetensors", key: "transformer.h.0.mlp.c_fc.weight",
                                                       expected: [64, 128], actual: [64, 256])) {
            try GPT2CausalLM.load(directory: wrongInner.url)
        }
    }

    /// A tiny folder whose weight file lacks the tensors `drop` selects.
    static func folderWithout(_ drop: (String) -> Bool) throws -> TemporaryDirectory {
        let dir = try tinyFolder()
        let url = dir.url.appendingPathComponent("model.safetensors")
        let file = try SafetensorsFile(url: url)
        // Copied out of the mapping, written beside it, then moved over it (never write a mapped file).
        let kept = try file.tensorNames.filter { !drop($0) }.map { name -> TensorData in
            let t = try file.tensor(name)
            return try TensorData(name: name, dtype: t.dtype, shape: t.shape, bytes: t.bytes)
        }
        let scratch = dir.url.appendingPathComponent("new.safetensors")
        try SafetensorsWriter.write(kept, to: scratch)
        try FileManager.default.removeItem(at: url)
        try FileManager.default.moveItem(at: scratch, to: url)
        return dir
    }

    @Test func badWeightsAreTypedErrorsNamingTheKey() throws {
        let dir = try Self.folderWithout { $0 == "transformer.h.1.ln_2.bias" }
        #expect(throws: ModelError.missingWeight(file: "model.safetensors", keys: ["transformer.h.1.ln_2.bias"])) {
            try GPT2CausalLM.load(directory: dir.url)
        }
        // No wte under either name: both are listed.
        let other = try Self.folderWithout { $0.hasSuffix("wte.weight") }
        #expect(throws: ModelError.missingWeight(file: "model.safetensors", keys: ["transformer.wte.weight", "wte.weight"])) {
            try GPT2CausalLM.load(directory: other.url)
        }
    }

    @Test func positionsAndIdsOutsideTheModelAreTypedErrors() throws {
        let dir = try Self.tinyFolder()
        let model = try GPT2CausalLM.load(directory: dir.url)
        #expect(throws: ModelError.self) { try model.forward(tokens: [[512]], caches: [model.makeCache()]) }
        #expect(throws: ModelError.self) { try model.logits(ids: Array(repeating: 1, count: 129)) }
        #expect(throws: ModelError.self) {
            try model.forward(inputsEmbeds: [Float](repeating: 0, count: 64),
                              slices: [BackboneSlice(cache: model.makeCache(), rows: 1, firstPosition: 128)])
        }
        #expect(try model.logits(ids: Array(repeating: 1, count: 128)).count == 128 * 512)
    }

    @Test(arguments: [DType.f32, .bf16])
    func randomFolderLoadsRunsAndInspects(dtype: DType) throws {
        let dir = try Self.tinyFolder(dtype: dtype, seed: 5)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.url.appendingPathComponent("config.json"))) as? [String: Any]
        #expect(json?["architectures"] as? [String] == ["GPT2LMHeadModel"])
        #expect(json?["model_type"] as? String == "gpt2" && json?["activation_function"] as? String == "gelu_new")
        #expect(try ModelLoader.kind(directory: dir.url) == .gpt2)
        let config = try GPT2Config.load(directory: dir.url)
        #expect(config == { var c = RandomModelWriter.GPT2Shape.gpt2Tiny.config; c.torchDType = dtype.torchName; return c }())

        let model = try GPT2CausalLM.load(directory: dir.url)
        #expect(model.backbone.hidden == 64 && model.backbone.layerCount == 2 && model.backbone.heads == 4)
        #expect(model.backbone.wte.rows == 512 && model.backbone.wpe.count == 128 * 64 && model.maxPositions == 128)
        let logits = try model.logits(ids: [511, 1, 2, 3])
        #expect(logits.count == 4 * 512 && logits.allSatisfy(\.isFinite))
        // Weights stored in another type than the file's, as for Llama.
        let converted = try GPT2CausalLM.load(directory: dir.url, options: LoadOptions(weightDType: .f32))
        let l2 = try converted.logits(ids: [511, 1, 2, 3])
        #expect(zip(logits, l2).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, abs($0)) })

        let inspection = try ModelInspection(directory: dir.url)
        #expect(inspection.kind == .gpt2 && inspection.text.contains("(GPT-2 causal LM)"))
        #expect(inspection.dtypes == [dtype.rawValue: RandomModelWriter.gpt2Tensors(config).count])
        #expect(inspection.parameters["token_embedding"] == 512 * 64 && inspection.parameters["position_embedding"] == 128 * 64)
        let expected: Int = RandomModelWriter.gpt2Tensors(config).reduce(0) { $0 + $1.1.reduce(1, *) }
        #expect(inspection.parameters.values.reduce(0, +) == expected)
        // Loaders of other kinds say what the folder is.
        #expect(throws: ModelError.unknownModel(path: dir.url.path, reason: "config.json describes a GPT-2 causal LM, not a CALM model")) {
            try CALMModel.load(directory: dir.url)
        }
        #expect(throws: ModelError.self) { try ModelLoader.load(directory: dir.url) }
    }

    /// Another shape than the fixtures' (head width 12, odd widths, explicit n_inner, 3 layers),
    /// every weight and bias random, against a plain double-precision re-statement of GPT-2.
    @Test func anotherShapeMatchesAPlainReference() throws {
        var c = GPT2Config()
        c.vocabSize = 97; c.nPositions = 40; c.nEmbd = 36; c.nLayer = 3; c.nHead = 3; c.nInner = 50
        c.architectures = ["GPT2LMHeadModel"]
        let dir = try TemporaryDirectory("calm-gpt2-odd")
        var random = TestRandom(21)
        var weights: [String: [Float]] = [:]
        var tensors: [TensorData] = []
        for (name, shape) in RandomModelWriter.gpt2Tensors(c) {
            let n = shape.reduce(1, *)
            let isNormWeight = shape.count == 1 && name.hasSuffix(".weight")
            let values = (0..<n).map { _ in isNormWeight ? 1 + 0.2 * random.normal() : (shape.count == 1 ? 0.2 : 0.3) * random.normal() }
            weights[String(name.dropFirst("transformer.".count))] = values
            tensors.append(try TensorData(name: name, shape: shape, floats: values))
        }
        try SafetensorsWriter.write(tensors, to: dir.url.appendingPathComponent("model.safetensors"))
        try JSONEncoder().encode(c).write(to: dir.url.appendingPathComponent("config.json"))
        let model = try GPT2CausalLM.load(directory: dir.url)

        let ids = [3, 96, 0, 41, 41, 7, 12, 55, 80, 2, 1]
        let e = c.nEmbd, inner = c.innerSize, heads = c.nHead, d = e / heads, t = ids.count
        func w(_ name: String) -> [Double] { weights[name]!.map(Double.init) }
        func layerNorm(_ x: [Double], _ name: String) -> [Double] {
            let g = w(name + ".weight"), b = w(name + ".bias")
            let mean = x.reduce(0, +) / Double(x.count)
            let variance = x.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(x.count)
            return x.indices.map { (x[$0] - mean) / (variance + 1e-5).squareRoot() * g[$0] + b[$0] }
        }
        func conv1D(_ x: [Double], _ name: String, out: Int) -> [Double] {
            let m = w(name + ".weight"), b = w(name + ".bias")
            return (0..<out).map { j in b[j] + x.indices.reduce(0) { $0 + x[$1] * m[$1 * out + j] } }
        }
        let wte = w("wte.weight"), wpe = w("wpe.weight")
        var h = (0..<t).map { i in (0..<e).map { wte[ids[i] * e + $0] + wpe[i * e + $0] } }
        for l in 0..<c.nLayer {
            let p = "h.\(l)"
            let qkv = h.map { conv1D(layerNorm($0, "\(p).ln_1"), "\(p).attn.c_attn", out: 3 * e) }
            for i in 0..<t {
                var attended = [Double](repeating: 0, count: e)
                for hd in 0..<heads {
                    let scores = (0...i).map { j in (0..<d).reduce(0.0) { $0 + qkv[i][hd * d + $1] * qkv[j][e + hd * d + $1] } / Double(d).squareRoot() }
                    let top = scores.max()!
                    let weightsRow = scores.map { exp($0 - top) }
                    let total = weightsRow.reduce(0, +)
                    for j in 0...i { for k in 0..<d { attended[hd * d + k] += weightsRow[j] / total * qkv[j][2 * e + hd * d + k] } }
                }
                let projected = conv1D(attended, "\(p).attn.c_proj", out: e)
                for k in 0..<e { h[i][k] += projected[k] }
            }
            for i in 0..<t {
                let f = conv1D(layerNorm(h[i], "\(p).ln_2"), "\(p).mlp.c_fc", out: inner).map { x in
                    0.5 * x * (1 + tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x)))
                }
                let projected = conv1D(f, "\(p).mlp.c_proj", out: e)
                for k in 0..<e { h[i][k] += projected[k] }
            }
        }
        let reference = h.flatMap { layerNorm($0, "ln_f") }
        let ours = try model.forward(tokens: [ids], caches: [model.makeCache(blockPositions: 4)])
        let scale = reference.map(abs).max() ?? 1
        let worst = zip(ours, reference).map { abs(Double($0) - $1) }.max() ?? .infinity
        #expect(ours.count == reference.count && worst <= 1e-5 * scale, "max error \(worst) at scale \(scale)")
        // Logits are the tied projection.
        let logits = model.logits(ours, rows: t)
        let expected = (0..<c.vocabSize).map { v in (0..<e).reduce(0.0) { $0 + reference[$1] * wte[v * e + $1] } }
        let logitError = zip(logits.prefix(c.vocabSize), expected).map { abs(Double($0) - $1) }.max() ?? .infinity
        #expect(logitError <= 1e-5 * (expected.map(abs).max() ?? 1))
    }

    @Test func shapesAreTheDocumentedOnes() throws {
        let m = RandomModelWriter.GPT2Shape.gpt2Medium.config
        let sizes: [Int] = [m.nLayer, m.nEmbd, m.nHead, m.vocabSize, m.nPositions]
        #expect(sizes == [24, 1024, 16, 50257, 1024])
        #expect(m.innerSize == 4096 && m.eosTokenID == 50256)
        #expect(m.layerNormEpsilon == 1e-5)
        try m.validate(file: "gpt2-medium")
        // GPT-2 Medium's well-known 354,823,168 parameters (tied head).
        let parameters: Int = RandomModelWriter.gpt2Tensors(m).reduce(0) { $0 + $1.1.reduce(1, *) }
        #expect(parameters == 354_823_168)
        // The config survives encoding to config.json and back.
        var tiny = RandomModelWriter.GPT2Shape.gpt2Tiny.config
        tiny.torchDType = "bfloat16"
        #expect(try JSONDecoder().decode(GPT2Config.self, from: JSONEncoder().encode(tiny)) == tiny)
        tiny.nInner = 100
        #expect(try GPT2Config.parse(JSONEncoder().encode(tiny), file: "x").nInner == 100)
    }
}
