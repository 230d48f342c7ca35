import CALMKernels
@testable import CALMModel
import CALMTensor
import CALMTestSupport
import Foundation

/// A backbone whose output at absolute position p is a fixed vector F[p], whatever the inputs: the
/// predictions a tail slot receives are then known in closed form (spec §6.7 item 1). It keeps the
/// cache bookkeeping of a real backbone (count grows by `persist`).
final class PositionTableBackbone: VectorBackbone, @unchecked Sendable {
    let hidden: Int
    let table: [Float]
    init(hidden: Int, table: [Float]) { self.hidden = hidden; self.table = table }
    var layerCount: Int { 1 }
    var weightBytes: Int { 0 }
    func kvLayout(blockPositions: Int) -> KVLayout { KVLayout(layers: 1, kvHeads: 1, headDim: hidden, blockPositions: blockPositions) }
    func addPositionEmbeddings(_ x: inout [Float], slices: [BackboneSlice]) {}
    func forward(_ inputs: [Float], slices: [BackboneSlice], pool: ComputePool, record: ActivationRecorder?) -> [Float] {
        var out: [Float] = []
        for s in slices {
            precondition(s.cache.capacity >= s.cache.count + s.rows, "KV cache not reserved")
            for i in 0..<s.rows {
                let p = s.firstPosition + i
                out += table[(p * hidden)..<((p + 1) * hidden)]
            }
        }
        for s in slices { s.cache.count += s.persist }
        return out
    }
    /// F[p].
    func row(_ p: Int) -> [Float] { Array(table[(p * hidden)..<((p + 1) * hidden)]) }
}

/// Wraps a backbone and records every forward's slices (rows, persist, position, cache state), and
/// can poison the rows of "displaced" slices (those whose first position is not their cache's count:
/// the tail-only guidance pass) with NaN, to prove their output is never used.
final class RecordingBackbone: VectorBackbone, @unchecked Sendable {
    struct Slice: Equatable {
        let rows: Int, persist: Int, firstPosition: Int, cacheCount: Int
        let cache: ObjectIdentifier
    }
    let inner: any VectorBackbone
    private(set) var forwards: [[Slice]] = []
    var poisonDisplaced = false
    init(_ inner: any VectorBackbone) { self.inner = inner }
    var hidden: Int { inner.hidden }
    var layerCount: Int { inner.layerCount }
    var weightBytes: Int { inner.weightBytes }
    func kvLayout(blockPositions: Int) -> KVLayout { inner.kvLayout(blockPositions: blockPositions) }
    func addPositionEmbeddings(_ x: inout [Float], slices: [BackboneSlice]) { inner.addPositionEmbeddings(&x, slices: slices) }
    func forward(_ inputs: [Float], slices: [BackboneSlice], pool: ComputePool, record: ActivationRecorder?) -> [Float] {
        let info = slices.map { Slice(rows: $0.rows, persist: $0.persist, firstPosition: $0.firstPosition, cacheCount: $0.cache.count,
                                      cache: ObjectIdentifier($0.cache)) }
        forwards.append(info)
        var out = inner.forward(inputs, slices: slices, pool: pool, record: record)
        if poisonDisplaced {
            var row = 0
            for s in info {
                if s.firstPosition != s.cacheCount {
                    for i in (row * hidden)..<((row + s.rows) * hidden) { out[i] = .nan }
                }
                row += s.rows
            }
        }
        return out
    }
}

/// Test models: a random tm-tiny folder (Llama backbone) and models built from parts.
enum TMFixtures {
    /// The small shapes, one per backbone (Llama, GPT-2).
    static let tinyShapes: [RandomModelWriter.TokenMaturationShape] = [.tmTiny, .tmGPT2Tiny]

    /// A random tm-tiny model (written to a temporary folder and loaded back).
    static func tiny(seed: UInt64 = 17, shape: RandomModelWriter.TokenMaturationShape = .tmTiny) throws -> TokenMaturationModel {
        let dir = try TemporaryDirectory(shape.rawValue)
        try RandomModelWriter.writeTokenMaturation(config: shape.config, dtype: .f32, to: dir.url, seed: seed)
        return try TokenMaturationModel.load(directory: dir.url)
    }

    /// The tiny model's parts on another backbone (a recording wrapper).
    static func rebuilt(_ m: TokenMaturationModel, backbone: any VectorBackbone) throws -> TokenMaturationModel {
        try TokenMaturationModel(config: m.config, backbone: backbone, embedding: m.embedding, alphaConditioner: m.alphaConditioner,
                                 film: m.film, head: m.head, pool: m.pool)
    }

    /// A model of width `d` over `vocab` random embeddings at radius `radius`, whose conditioning is
    /// zero, FiLM the identity and head the identity: its predictions are the backbone's outputs.
    static func transparent(backbone: any VectorBackbone, vocab: Int, radius: Float, maxPositions: Int = 64,
                            eos: [Int] = [], seed: UInt64 = 3) throws -> TokenMaturationModel {
        let d = backbone.hidden
        var llama = LlamaCausalLMConfig()
        llama.vocabSize = vocab; llama.hiddenSize = d; llama.intermediateSize = d; llama.numHiddenLayers = 1
        llama.numAttentionHeads = 1; llama.maxPositionEmbeddings = maxPositions; llama.eosTokenIDs = eos
        var config = TokenMaturationConfig(llama: llama)
        config.maxTailLength = 8
        config.tailLength = 4
        config.embeddingRadius = radius
        let zero = { (out: Int, inp: Int) in Linear(weight: [Float](repeating: 0, count: out * inp), outFeatures: out, inFeatures: inp,
                                                    bias: [Float](repeating: 0, count: out)) }
        let e = gaussian(count: vocab * d, seed: seed)
        return try TokenMaturationModel(
            config: config, backbone: backbone,
            embedding: try NearestEmbedding(weights: e, vocabularySize: vocab, dim: d, radius: radius),
            alphaConditioner: try AlphaConditioner(first: zero(d, 4), second: zero(d, d)),
            film: try TailLengthFiLM(embedding: [Float](repeating: 0, count: 8 * d), maxTailLength: 8, projection: zero(2 * d, d)),
            head: try VectorHead.identity(hidden: d), pool: .serial)
    }

    static func gaussian(count: Int, seed: UInt64) -> [Float] {
        LiquidTail.gaussian(count: count, standardDeviation: 1, randomness: SeededRandomness(seed: seed))
    }
}

/// Counts the random draws a generation makes (to show they all go to embryos).
final class CountingRandomness: SequenceRandomness, @unchecked Sendable {
    let inner: SeededRandomness
    private(set) var doubles = 0
    private(set) var floats = 0
    init(seed: UInt64) { inner = SeededRandomness(seed: seed) }
    func uniformFloats(count: Int) -> [Float] { floats += count; return inner.uniformFloats(count: count) }
    func uniformDouble() -> Double { doubles += 1; return inner.uniformDouble() }
}
