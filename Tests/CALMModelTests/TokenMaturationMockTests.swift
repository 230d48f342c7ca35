import CALMKernels
@testable import CALMModel
import Foundation
import Testing

/// Token Maturation's update, commit and window logic against a mock backbone whose predictions are
/// known in closed form (spec §6.7), plus the diagnostics' entropy and the parameter checks.
@Suite("Token Maturation (mock backbone)")
struct TokenMaturationMockTests {
    static let d = 8, vocab = 16, radius: Float = 2

    static func tableModel(positions: Int = 64) throws -> (TokenMaturationModel, PositionTableBackbone) {
        let backbone = PositionTableBackbone(hidden: d, table: TMFixtures.gaussian(count: positions * d, seed: 99).map { $0 * 2 })
        return (try TMFixtures.transparent(backbone: backbone, vocab: vocab, radius: radius, maxPositions: positions), backbone)
    }

    /// Nearest embedding by Double dot products, lowest id on ties (independent of the kernels).
    static func nearest(_ z: [Double], _ model: TokenMaturationModel) -> Int {
        var best = 0, bestScore = -Double.infinity
        for i in 0..<model.embedding.vocabularySize {
            let e = model.embedding.vector(i)
            let score = zip(z, e).reduce(0.0) { $0 + $1.0 * Double($1.1) }
            if score > bestScore { best = i; bestScore = score }
        }
        return best
    }

    /// With predictions fixed per position, the vector for position q is F[q−1] + P·(embryo − F[q−1]),
    /// P = Π(1 − η_j) over the slots it has passed; the front commits after exactly K updates, in
    /// position order.
    @Test(arguments: [(4, Float(0.5), Float(1)), (3, Float(0.8), Float(0.7)), (1, Float(0.5), Float(1))])
    func closedFormBlendAndPositionalCommitOrder(k: Int, alphaMax: Float, rate: Float) throws {
        let (model, table) = try Self.tableModel()
        let d = Self.d, prompt = [3, 1, 4], n0 = prompt.count, steps = 9
        var p = TokenMaturationParameters(maxTokens: steps, tailLength: k, seed: 42)
        p.maturityMax = alphaMax
        p.maturationRate = rate
        p.stopAtEndToken = false
        let sequence = try model.makeSequence(prompt: prompt, parameters: p)

        let alphas = (0..<k).map { j in k == 1 ? alphaMax : alphaMax * Float(k - 1 - j) / Float(k - 1) }
        let rates = alphas.map { Double(min(max(rate * $0, 0), 1)) }
        // every embryo in draw order: the m-th belongs to position n0 + m
        let rng = SeededRandomness(seed: 42)
        let std = Float(0.1) * Self.radius / Float(d).squareRoot()
        let embryos = (0..<(k + steps)).map { _ in LiquidTail.gaussian(count: d, standardDeviation: std, randomness: rng).map(Double.init) }
        func expected(position q: Int, afterStep t: Int) -> [Double] {
            var product = 1.0
            if t >= max(0, q - n0 - k + 1) {
                for step in max(0, q - n0 - k + 1)...t { product *= 1 - rates[q - n0 - step] }
            }
            let target = table.row(q - 1).map(Double.init)
            return (0..<d).map { target[$0] + product * (embryos[q - n0][$0] - target[$0]) }
        }
        func close(_ a: [Float], _ b: [Double]) -> Bool {
            zip(a, b).allSatisfy { abs(Double($0) - $1) <= 1e-5 * max(1, abs($1)) }
        }

        #expect(close(sequence.tail.vectors, (0..<k).flatMap { embryos[$0] }))
        var committed: [Int] = []
        for t in 0..<steps {
            let result = try model.step([sequence])
            guard case let .committed(commit) = result.outcomes[0] else { Issue.record("step \(t): \(result.outcomes[0])"); return }
            // the front was position n0 + t, after all its K updates
            let front = expected(position: n0 + t, afterStep: t)
            #expect(commit.token == Self.nearest(front, model), "step \(t)")
            committed.append(commit.token)
            if t < steps - 1 {
                for j in 0..<k {
                    let q = n0 + t + 1 + j
                    #expect(close(sequence.tail.slot(j), expected(position: q, afterStep: t)), "step \(t) slot \(j)")
                }
            } else {
                #expect(commit.stopReason == .maxTokens)
            }
        }
        #expect(sequence.generated == committed)
        #expect(sequence.ids == prompt + committed)
        // the cache holds every committed position but the last
        #expect(sequence.cache.count == sequence.ids.count - 1)
    }

    /// The window and pass layout of §6.3: prefill in the first step, then K rows persisting one;
    /// with guidance a tail-only slice at the tail's position on an empty cache; `.same` one row more.
    @Test func windowsAndSlices() throws {
        let (tableModel, table) = try Self.tableModel()
        let recording = RecordingBackbone(table)
        let model = try TMFixtures.rebuilt(tableModel, backbone: recording)
        var p = TokenMaturationParameters(maxTokens: 3, tailLength: 4, guidanceScale: 2, seed: 1)
        p.stopAtEndToken = false
        let s = try model.makeSequence(prompt: [1, 2, 3, 4, 5], parameters: p)
        _ = try model.step([s])
        _ = try model.step([s])
        let f = recording.forwards
        #expect(f.count == 2)
        // step 1: prompt positions 0…4 (persist all) + tail slots 0…2; the tail-only pass at position 5
        #expect(f[0][0].rows == 5 + 3 && f[0][0].persist == 5 && f[0][0].firstPosition == 0 && f[0][0].cacheCount == 0)
        #expect(f[0][1].rows == 3 && f[0][1].persist == 0 && f[0][1].firstPosition == 5 && f[0][1].cacheCount == 0)
        #expect(f[0][1].cache != f[0][0].cache)
        // step 2: the last committed position (5) + 3 tail rows, persisting 1
        #expect(f[1][0].rows == 4 && f[1][0].persist == 1 && f[1][0].firstPosition == 5 && f[1][0].cacheCount == 5)
        #expect(f[1][1].rows == 3 && f[1][1].firstPosition == 6 && f[1][1].cacheCount == 0)

        p.alignment = .same
        p.guidanceScale = 1
        let same = try model.makeSequence(prompt: [1, 2], parameters: p)
        _ = try model.step([same])
        #expect(recording.forwards.last?.count == 1)
        #expect(recording.forwards.last?.first?.rows == 2 + 4)
    }

    /// K = 1 with α_max = 1: the tail vector is replaced by the prediction, so each commit is the
    /// nearest embedding of F[n−1] — greedy vector autoregression — whatever the seed.
    @Test func oneSlotFullMaturityIsGreedyNearestNeighbour() throws {
        let (model, table) = try Self.tableModel()
        for seed: UInt64 in [1, 2] {
            var p = TokenMaturationParameters(maxTokens: 6, tailLength: 1, seed: seed)
            p.maturityMax = 1
            p.stopAtEndToken = false
            let r = try model.generate(prompt: [7, 7], parameters: p)
            let greedy = (0..<6).map { t in Self.nearest(table.row(2 + t - 1).map(Double.init), model) }
            #expect(r.tokens == greedy)
        }
    }

    @Test func entropyOverTopFiftyOfANearUniformSetIsLnFifty() {
        let rng = SeededRandomness(seed: 4)
        var cosines = (0..<50).map { _ in Float(0.9) + Float(rng.uniformDouble() - 0.5) * 1e-3 }
        cosines += (0..<2000).map { _ in Float(-0.5) + Float(rng.uniformDouble()) * 0.1 }
        let h = TokenMaturationDiagnostics.entropy(cosines: cosines, topK: 50)
        #expect(abs(h - log(50.0)) < 1e-3)
        // over everything, τ = 1 on cosines is still close to uniform: far above ln 50
        #expect(TokenMaturationDiagnostics.entropy(cosines: cosines, topK: cosines.count) > log(1000.0))
        for (trajectory, lock, unique) in [([Int32(5), 7, 7, 7], 2, 2), ([1, 2, 3, 4], 4, 4), ([9, 9], 1, 1)] {
            let stats = TokenMaturationDiagnostics.trajectoryStatistics(trajectory)
            #expect(stats.lockStep == lock && stats.unique == unique)
        }
    }

    @Test func badParametersNameTheParameter() throws {
        let (model, _) = try Self.tableModel()
        let cases: [(String, (inout TokenMaturationParameters) -> Void)] = [
            ("tailLength", { $0.tailLength = 0 }), ("tailLength", { $0.tailLength = 65 }),
            ("tailLength", { $0.tailLength = 9 }),    // above this model's max_tail_length 8
            ("guidanceScale", { $0.guidanceScale = .nan }), ("guidanceScale", { $0.guidanceScale = -1 }),
            ("maturityMax", { $0.maturityMax = 1.5 }), ("maturationRate", { $0.maturationRate = -0.1 }),
            ("embryoScale", { $0.embryoScale = .infinity }), ("tailNoise", { $0.tailNoise = -1 }),
            ("historyNoise", { $0.historyNoise = .nan }), ("targetEMA", { $0.targetEMA = 1 }),
            ("historyEMA", { $0.historyEMA = -0.5 }), ("innerIterations", { $0.innerIterations = 0 }),
            ("diagnosticsTopK", { $0.diagnosticsTopK = 0 }), ("maxTokens", { $0.maxTokens = 0 }),
        ]
        for (name, edit) in cases {
            var p = TokenMaturationParameters(maxTokens: 4, seed: 1)
            edit(&p)
            #expect {
                _ = try model.makeSequence(prompt: [1], parameters: p)
            } throws: { error in
                guard case let ModelError.invalidParameter(got, _) = error else { return false }
                return got == name
            }
        }
        let p = TokenMaturationParameters(maxTokens: 4, seed: 1)
        for prompt in [[], [Self.vocab], [-1], [Int](repeating: 1, count: 61)] {
            #expect {
                _ = try model.makeSequence(prompt: prompt, parameters: p)
            } throws: { error in
                if case ModelError.invalidPrompt = error { return true }
                return false
            }
        }
    }

    /// A failing sequence (non-finite predictions) fails alone; the batch goes on.
    @Test func nonFinitePredictionsFailOneSequence() throws {
        let d = Self.d
        var tableValues = TMFixtures.gaussian(count: 64 * d, seed: 5)
        for i in (40 * d)..<(64 * d) { tableValues[i] = .infinity }   // positions ≥ 40 blow up
        let model = try TMFixtures.transparent(backbone: PositionTableBackbone(hidden: d, table: tableValues), vocab: Self.vocab, radius: 2)
        var p = TokenMaturationParameters(maxTokens: 4, tailLength: 2, seed: 1)
        p.stopAtEndToken = false
        let bad = try model.makeSequence(prompt: [Int](repeating: 1, count: 40), parameters: p)
        let good = try model.makeSequence(prompt: [1, 2], parameters: p)
        let r = try model.step([bad, good])
        guard case .failed(.nonFinite) = r.outcomes[0], case .committed = r.outcomes[1] else {
            Issue.record("\(r.outcomes)"); return
        }
        #expect(bad.failure != nil)
        guard case .failed = try model.step([bad]).outcomes[0] else { Issue.record("a failed sequence stepped again"); return }
        #expect(throws: ModelError.self) { try model.step([good, good]) }
    }
}
