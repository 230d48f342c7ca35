import CALMKernels
import Foundation

extension TokenMaturationModel {
    /// Generates a continuation of `prompt`: the batched `step` with one sequence, repeated until a
    /// stop (end-of-text, `maxTokens`, or n + K reaching the position limit), so a single generation
    /// gives exactly what the same request gives inside a batch. `onToken` receives each committed id
    /// and may return false to stop.
    ///
    /// ```swift
    /// let result = try tmModel.generate(prompt: ids, parameters: .init(maxTokens: 16, seed: 1))
    /// ```
    public func generate(prompt: [Int], parameters: TokenMaturationParameters, randomness: SequenceRandomness? = nil,
                         onToken: (Int) -> Bool = { _ in true }) throws -> TokenMaturationResult {
        let start = DispatchTime.now()
        let sequence = try makeSequence(prompt: prompt, parameters: parameters, randomness: randomness)
        defer { sequence.cache.release() }
        var result = TokenMaturationResult(tokens: [], flushedTokens: [], promptTokens: prompt.count, stopReason: .maxTokens,
                                           steps: 0, backboneRows: 0, timeToFirstToken: 0, seconds: 0, diagnostics: [])
        loop: while true {
            let step = try self.step([sequence])
            result.steps += 1
            result.backboneRows += step.backboneRows
            switch step.outcomes.first {
            case let .committed(commit)?:
                if result.tokens.isEmpty { result.timeToFirstToken = seconds(since: start) }
                result.tokens.append(commit.token)
                result.flushedTokens = commit.flushedTokens
                if !onToken(commit.token) { result.stopReason = .cancelled; break loop }
                if let reason = commit.stopReason { result.stopReason = reason; break loop }
            case let .failed(error)?:
                throw error
            case .fed?, nil:
                throw ModelError.invalidParameter(name: "sequence", reason: "a step committed nothing")
            }
        }
        result.diagnostics = sequence.diagnostics
        result.seconds = seconds(since: start)
        return result
    }

    /// The reference decoding loop, for tests only: no key/value reuse at all. Every forward
    /// recomputes the whole sequence (committed positions and tail rows) on a fresh cache, and the
    /// tail-only guidance pass is a separate forward. It shares the update, perturbation and commit
    /// code with `step`, so "cached == full" checks exactly the window and cache bookkeeping.
    public func referenceGenerate(prompt: [Int], parameters: TokenMaturationParameters,
                                  randomness: SequenceRandomness? = nil) throws -> TokenMaturationResult {
        let start = DispatchTime.now()
        let s = try makeSequence(prompt: prompt, parameters: parameters, randomness: randomness)
        let d = hidden, k = s.tailLength, tailRows = s.scratchRows
        let shift = s.resolved.alignment == .shift
        var result = TokenMaturationResult(tokens: [], flushedTokens: [], promptTokens: prompt.count, stopReason: .maxTokens,
                                           steps: 0, backboneRows: 0, timeToFirstToken: 0, seconds: 0, diagnostics: [])
        func run(_ x: [Float], rows: Int, firstPosition: Int) throws -> [Float] {
            let cache = makeCache()
            guard cache.reserve(additional: rows) else { throw Self.outOfBlocks }
            let slices = [BackboneSlice(cache: cache, rows: rows, persist: 0, firstPosition: firstPosition)]
            var inputs = x
            backbone.addPositionEmbeddings(&inputs, slices: slices)
            TailLengthFiLM.apply(&inputs, first: 0, rows: rows, scale: s.filmScale, shift: s.filmShift)
            result.backboneRows += rows
            return backbone.forward(inputs, slices: slices, pool: pool)
        }
        while s.stopReason == nil {
            for _ in 0..<s.resolved.user.innerIterations {
                let n = s.ids.count
                let tail = s.tailInputs()
                let all = try run(s.committedInputs(0..<n, noisy: true, embedding: embedding) + tail, rows: n + tailRows, firstPosition: 0)
                let first = shift ? n - 1 : n
                let conditional = head(Array(all[(first * d)..<((first + k) * d)]), rows: k, pool: pool)
                var unconditional: [Float]?
                if s.resolved.runsUnconditionalPass {
                    let guided = k - s.firstGuidedSlot
                    let only = try run(tail, rows: tailRows, firstPosition: n)
                    unconditional = [Float](repeating: 0, count: s.firstGuidedSlot * d)
                        + head(Array(only[0..<(guided * d)]), rows: guided, pool: pool)
                }
                try s.applyPredictions(conditional: conditional, unconditional: unconditional, model: self)
            }
            let front = s.tail.slot(0)
            let token = embedding.commit(front, rows: 1, pool: pool)[0]
            let scores = s.resolved.user.diagnostics ? embedding.scores(front, rows: 1, pool: pool) : nil
            let commit = s.commit(token: token, projection: token, scores: scores, model: self)
            result.steps += 1
            if result.tokens.isEmpty { result.timeToFirstToken = seconds(since: start) }
            result.tokens.append(commit.token)
            result.flushedTokens = commit.flushedTokens
            if let reason = commit.stopReason { result.stopReason = reason }
        }
        result.diagnostics = s.diagnostics
        result.seconds = seconds(since: start)
        return result
    }
}
