import CALMKernels
import Foundation

extension TokenMaturationModel {
    /// Advances every sequence by one committed token (see `step(_: [TokenMaturationBatchItem])`).
    public func step(_ sequences: [TokenMaturationSequence]) throws -> TokenMaturationStepResult {
        try step(sequences.map { TokenMaturationBatchItem(sequence: $0) })
    }

    /// One batched decoding step (spec §2.4, windows of §6.3). For every committing item: builds its
    /// query window — the committed positions not yet cached (normally just the last one; the whole
    /// prompt but its last position is the prefill) plus the tail rows — and, when its guidance scale is
    /// not 1, the tail rows again on a private empty cache placed at the tail's absolute position (the
    /// tail-only mask: they can't see the prefix). All of it, for all items, is one backbone forward
    /// per inner iteration; then guidance, perturbations, the contraction update, the commit of the
    /// front and the shift run per sequence. Items with `commits` false only cache committed positions
    /// (chunked prefill) in the same forward.
    ///
    /// A sequence's result does not depend on the others in the batch (the kernels' rows are
    /// independent and each sequence draws from its own stream), so a batch equals its items stepped
    /// alone, bit for bit. A failure (out of KV blocks, non-finite predictions) fails that item only
    /// and ends its sequence; the step throws only when the same sequence appears twice.
    public func step(_ items: [TokenMaturationBatchItem]) throws -> TokenMaturationStepResult {
        var seen = Set<ObjectIdentifier>()
        for item in items where !seen.insert(ObjectIdentifier(item.sequence)).inserted {
            throw ModelError.invalidParameter(name: "sequences", reason: "the same sequence appears twice in one step")
        }
        let d = hidden
        var outcomes = [TokenMaturationStepOutcome?](repeating: nil, count: items.count)
        var result = TokenMaturationStepResult(outcomes: [], backboneRows: 0, forwards: 0, backboneSeconds: 0, otherSeconds: 0)
        let start = DispatchTime.now().uptimeNanoseconds
        var backboneNanoseconds: UInt64 = 0

        func fail(_ i: Int, _ error: ModelError) {
            outcomes[i] = .failed(error)
            items[i].sequence.failure = error
        }
        for (i, item) in items.enumerated() {
            let s = item.sequence
            if let failure = s.failure { outcomes[i] = .failed(failure) }
            else if let reason = s.stopReason {
                outcomes[i] = .failed(.invalidParameter(name: "sequence", reason: "already stopped (\(reason.rawValue))"))
            } else if item.commits && s.pendingPositions < 1 {
                fail(i, .invalidParameter(name: "cache", reason: "holds every committed position; the last one must be left for the step's window"))
            } else if let forced = item.forcedToken, !item.commits || forced < 0 || forced >= config.vocabSize {
                fail(i, .invalidParameter(name: "forcedToken", reason: item.commits
                    ? "token id \(forced) is outside the vocabulary (size \(config.vocabSize))"
                    : "only a committing item can force its commit"))
            }
        }
        let iterations = items.indices.map { i in
            outcomes[i] == nil ? (items[i].commits ? items[i].sequence.resolved.user.innerIterations : 1) : 0
        }

        for iteration in 0..<(iterations.max() ?? 0) {
            var inputs: [Float] = []
            var slices: [BackboneSlice] = []
            var parts: [Part] = []
            for (i, item) in items.enumerated() where outcomes[i] == nil && iterations[i] > iteration {
                let s = item.sequence
                let firstRow = inputs.count / d
                var part = Part(item: i, firstRow: firstRow)
                if !item.commits {
                    let room = s.pendingPositions - 1
                    guard room >= 0 else {
                        fail(i, .invalidParameter(name: "cache", reason: "holds every committed position; the last one must be left for the committing step")); continue
                    }
                    if let limit = item.feedLimit, limit < 0 {
                        fail(i, .invalidParameter(name: "feedLimit", reason: "must be ≥ 0, got \(limit)")); continue
                    }
                    let feed = min(item.feedLimit ?? room, room)
                    let c = s.cache.count
                    guard s.cache.reserve(additional: feed) else { fail(i, Self.outOfBlocks); continue }
                    if feed > 0 {
                        inputs += s.committedInputs(c..<(c + feed), noisy: false, embedding: embedding)
                        slices.append(BackboneSlice(cache: s.cache, rows: feed, persist: feed))
                    }
                    outcomes[i] = .fed(positions: feed)
                } else {
                    guard plan(s, iteration: iteration, firstRow: firstRow, into: &part, inputs: &inputs, slices: &slices) else {
                        fail(i, Self.outOfBlocks); continue
                    }
                }
                part.rows = inputs.count / d - firstRow
                parts.append(part)
            }
            let rows = inputs.count / d
            guard rows > 0 || parts.contains(where: { items[$0.item].commits }) else { continue }
            var hiddenStates: [Float] = []
            if rows > 0 {
                backbone.addPositionEmbeddings(&inputs, slices: slices)
                for part in parts {
                    let s = items[part.item].sequence
                    TailLengthFiLM.apply(&inputs, first: part.firstRow, rows: part.rows, scale: s.filmScale, shift: s.filmShift)
                }
                let t0 = DispatchTime.now().uptimeNanoseconds
                hiddenStates = backbone.forward(inputs, slices: slices, pool: pool)
                backboneNanoseconds += DispatchTime.now().uptimeNanoseconds - t0
                result.backboneRows += rows
                result.forwards += 1
            }
            // Every row that feeds a prediction, through the head in one multiply.
            var headInput: [Float] = []
            var spans: [(part: Int, unconditional: Bool, firstSlot: Int, count: Int, headRow: Int)] = []
            for (p, part) in parts.enumerated() where items[part.item].commits {
                let s = items[part.item].sequence
                let k = s.tailLength
                if let row = part.conditionalRow {
                    let firstSlot = part.conditionalFirstSlot
                    spans.append((p, false, firstSlot, k - firstSlot, headInput.count / d))
                    headInput += hiddenStates[(row * d)..<((row + k - firstSlot) * d)]
                }
                if let row = part.unconditionalRow {
                    let firstSlot = s.firstGuidedSlot
                    spans.append((p, true, firstSlot, k - firstSlot, headInput.count / d))
                    headInput += hiddenStates[(row * d)..<((row + k - firstSlot) * d)]
                }
            }
            let predictions = head(headInput, rows: headInput.count / d, pool: pool)
            var conditional = [[Float]](repeating: [], count: parts.count)
            var unconditional = [[Float]?](repeating: nil, count: parts.count)
            for (p, part) in parts.enumerated() where items[part.item].commits {
                let k = items[part.item].sequence.tailLength
                conditional[p] = [Float](repeating: 0, count: k * d)
            }
            for span in spans {
                let values = predictions[(span.headRow * d)..<((span.headRow + span.count) * d)]
                let target = (span.firstSlot * d)..<((span.firstSlot + span.count) * d)
                if span.unconditional {
                    let k = items[parts[span.part].item].sequence.tailLength
                    var u = [Float](repeating: 0, count: k * d)
                    u.replaceSubrange(target, with: values)
                    unconditional[span.part] = u
                } else {
                    conditional[span.part].replaceSubrange(target, with: values)
                }
            }
            for (p, part) in parts.enumerated() where items[part.item].commits {
                let s = items[part.item].sequence
                if s.resolved.alignment == .shift {
                    // slot 0 comes from the committed row: computed in this forward, or kept from the first
                    if part.conditionalFirstSlot == 0 { s.frontPrediction = Array(conditional[p][0..<d]) }
                    else if let front = s.frontPrediction { conditional[p].replaceSubrange(0..<d, with: front) }
                }
                do {
                    try s.applyPredictions(conditional: conditional[p], unconditional: unconditional[p], model: self)
                } catch let error as ModelError {
                    fail(part.item, error)
                } catch {
                    fail(part.item, .nonFinite(what: "\(error)"))
                }
            }
        }

        // Commit the fronts of every sequence still going, in one vocabulary pass.
        let committing = items.indices.filter { outcomes[$0] == nil && items[$0].commits }
        if !committing.isEmpty {
            var fronts: [Float] = []
            for i in committing { fronts += items[i].sequence.tail.vectors[0..<d] }
            let tokens = embedding.commit(fronts, rows: committing.count, pool: pool)
            let wantScores = committing.map { items[$0].sequence.resolved.user.diagnostics }
            var scores: [Float] = []
            var scoreRows: [Int: Int] = [:]
            if wantScores.contains(true) {
                var rows: [Float] = []
                for (r, i) in committing.enumerated() where wantScores[r] {
                    scoreRows[i] = scoreRows.count
                    rows += fronts[(r * d)..<((r + 1) * d)]
                }
                scores = embedding.scores(rows, rows: scoreRows.count, pool: pool)
            }
            let v = embedding.vocabularySize
            for (r, i) in committing.enumerated() {
                let rowScores = scoreRows[i].map { Array(scores[($0 * v)..<(($0 + 1) * v)]) }
                outcomes[i] = .committed(items[i].sequence.commit(token: items[i].forcedToken ?? tokens[r], projection: tokens[r],
                                                                  scores: rowScores, model: self))
            }
        }
        result.outcomes = outcomes.map { $0 ?? .failed(.invalidParameter(name: "sequence", reason: "was not stepped")) }
        let total = DispatchTime.now().uptimeNanoseconds - start
        result.backboneSeconds = Double(backboneNanoseconds) / 1e9
        result.otherSeconds = Double(total - min(total, backboneNanoseconds)) / 1e9
        return result
    }

    static let outOfBlocks = ModelError.invalidParameter(name: "kvCache", reason: "out of KV-cache blocks")

    /// Where one sequence's rows sit in a forward's batch.
    struct Part {
        let item: Int
        let firstRow: Int
        var rows = 0
        /// Batch row of the conditional output for slot `conditionalFirstSlot` (slots follow on
        /// consecutive rows), nil when the forward has no conditional rows for this sequence.
        var conditionalRow: Int?
        var conditionalFirstSlot = 0
        /// Batch row of the tail-only output for the first guided slot.
        var unconditionalRow: Int?

        init(item: Int, firstRow: Int) { self.item = item; self.firstRow = firstRow }
    }

    /// Appends one committing sequence's rows and slices for inner iteration `iteration`; false when
    /// its cache could not grow.
    func plan(_ s: TokenMaturationSequence, iteration: Int, firstRow: Int, into part: inout Part,
              inputs: inout [Float], slices: inout [BackboneSlice]) -> Bool {
        let d = hidden, n = s.ids.count, tailRows = s.scratchRows
        let shift = s.resolved.alignment == .shift
        let tail = s.tailInputs()
        if s.resolved.usesPrefixCache {
            let c = s.cache.count
            let pending = iteration == 0 ? n - c : 0
            guard s.cache.reserve(additional: pending + tailRows) else { return false }
            if pending + tailRows > 0 {
                inputs += s.committedInputs(c..<(c + pending), noisy: false, embedding: embedding)
                inputs += tail
                slices.append(BackboneSlice(cache: s.cache, rows: pending + tailRows, persist: pending))
            }
            // shift: the last committed row predicts slot 0, tail row j predicts slot j + 1; after the
            // first iteration that row is cached, so its prediction is kept instead of rerun
            if shift {
                part.conditionalRow = pending > 0 ? firstRow + pending - 1 : firstRow
                part.conditionalFirstSlot = pending > 0 ? 0 : 1
                if pending == 0 && tailRows == 0 { part.conditionalRow = nil }
            } else {
                part.conditionalRow = firstRow + pending
            }
        } else {
            // history noise: the committed positions go into the sequence's cache clean (so the cache
            // holds exactly the committed positions, as with the prefix cache), and predictions come
            // from a full recomputation with fresh noise on a private cache
            let c = s.cache.count
            let pending = iteration == 0 ? n - c : 0
            let recompute = s.recomputeCache ?? makeCache()
            s.recomputeCache = recompute
            recompute.count = 0
            guard s.cache.reserve(additional: pending), recompute.reserve(additional: n + tailRows) else { return false }
            if pending > 0 {
                inputs += s.committedInputs(c..<n, noisy: false, embedding: embedding)
                slices.append(BackboneSlice(cache: s.cache, rows: pending, persist: pending))
            }
            let row0 = inputs.count / d
            inputs += s.committedInputs(0..<n, noisy: true, embedding: embedding)
            inputs += tail
            slices.append(BackboneSlice(cache: recompute, rows: n + tailRows, persist: 0))
            part.conditionalRow = shift ? row0 + n - 1 : row0 + n
            part.conditionalFirstSlot = 0
        }
        if s.resolved.runsUnconditionalPass, let scratch = s.unconditionalCache {
            part.unconditionalRow = inputs.count / d
            inputs += tail
            slices.append(BackboneSlice(cache: scratch, rows: tailRows, persist: 0, firstPosition: n))
        }
        return true
    }
}
