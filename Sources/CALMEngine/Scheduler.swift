import CALMModel
import CALMTokenizer
import Foundation

/// Owns every sequence's state and plans the steps of continuous batching for any model family:
/// at each step every active, unpaused sequence advances by what its family commits, and new
/// sequences prefill prompt positions up to a budget. Decisions are made synchronously inside the
/// actor; the planned step runs on the compute thread; results come back here and are routed to
/// the streams. A step that fails ends the sequences it names (or, if it throws, the sequences it
/// ran) with `.error`; their blocks go back and every other sequence goes on. The actor deals in
/// token ids only: text and stop sequences are the streams' `OutputProcessor`'s job.
actor Scheduler {
    let family: any ModelFamily
    let configuration: EngineConfiguration
    let pool: KVBlockPool
    let compute = ComputeThread()
    let statistics = EngineStatisticsRecorder()

    /// Submissions and cancellations arrive synchronously (FIFO) and are drained at step
    /// boundaries: the one way a request is cancelled (its consumer leaving calls `cancel`).
    private nonisolated let inbox = Locked<[SequenceState]>([])
    private nonisolated let cancellations = Locked<Set<Int>>([])

    private var waiting: [SequenceState] = []
    private var active: [SequenceState] = []
    private var running = false

    init(family: any ModelFamily, configuration: EngineConfiguration) throws {
        self.family = family
        self.configuration = configuration
        self.pool = try KVBlockPool(layout: family.kvLayout(blockPositions: configuration.blockChunks),
                                budgetBytes: configuration.kvCacheBytes)
    }

    nonisolated func submit(_ sequence: SequenceState) {
        inbox.withLock { $0.append(sequence) }
        Task { await self.kick() }
    }

    nonisolated func cancel(_ id: Int) {
        cancellations.withLock { _ = $0.insert(id) }
        Task { await self.kick() }
    }

    /// Starts the step loop if it is idle.
    func kick() {
        guard !running else { return }
        running = true
        Task { await self.loop() }
    }

    private func loop() async {
        while true {
            intake()
            admit()
            let plan = makePlan()
            if plan.isEmpty {
                // Idle until a submission, cancellation or drained stream kicks us again. The
                // check and the flag change happen without a suspension in between.
                if inbox.withLock({ $0.isEmpty }) && cancellations.withLock({ $0.isEmpty }) {
                    running = false
                    return
                }
                continue
            }
            let family = self.family
            let batch = StepBatch(entries: plan.map(\.entry), exactRejectionDrawsPerRound: configuration.exactRejectionDrawsPerRound,
                                  chunkDecoding: configuration.chunkDecoding, statistics: statistics)
            let result: Result<[StepOutcome], any Error> = await compute.run {
                Result { try family.step(batch) }
            }
            apply(plan, result)
        }
    }

    // MARK: intake and admission

    private func intake() {
        waiting += inbox.withLock { q in defer { q.removeAll() }; return q }
        let cancelled = cancellations.withLock { c in defer { c.removeAll() }; return c }
        guard !cancelled.isEmpty else { return }
        for s in waiting + active where cancelled.contains(s.id) { finish(s, .cancelled) }
        waiting.removeAll { $0.phase == .finished }
        active.removeAll { $0.phase == .finished }
    }

    /// Admits waiting requests in arrival order while KV blocks last. A request whose shared prefix
    /// is still being computed by another waits without holding back the requests behind it.
    private func admit() {
        var still: [SequenceState] = []
        var blocked = false
        for s in waiting {
            if blocked { still.append(s); continue }
            switch pool.admit(paddedPrompt: s.paddedPrompt, tokensPerPosition: family.tokensPerPosition,
                              promptPositions: s.promptPositions, reservedPositions: s.reservedPositions,
                              sharingKey: s.prefixSharingKey) {
            case .waitForPrefix:
                still.append(s)
            case .noMemory:
                still.append(s)
                blocked = true   // FIFO: nobody overtakes a request waiting for memory
            case let .admitted(kv):
                s.kv = kv
                s.prefilledPositions = kv.cache.count
                s.phase = .prefilling
                active.append(s)
            }
        }
        waiting = still
    }

    // MARK: planning

    private func makePlan() -> [(sequence: SequenceState, entry: StepEntry)] {
        var plan: [(sequence: SequenceState, entry: StepEntry)] = []
        var prefillBudget = configuration.prefillChunksPerStep
        let unit = family.tokensPerPosition
        for s in active {
            if s.channel.isFull { continue }       // back-pressure: only this sequence pauses
            guard let cache = s.kv?.cache else { continue }
            let tokens: [Int], commits: Bool
            switch s.phase {
            case .prefilling:
                guard prefillBudget > 0 else { continue }
                let n = min(prefillBudget, s.promptPositions - s.prefilledPositions)
                prefillBudget -= n
                tokens = Array(s.paddedPrompt[(s.prefilledPositions * unit)..<((s.prefilledPositions + n) * unit)])
                commits = s.prefilledPositions + n == s.promptPositions
            case .decoding:
                tokens = s.feed
                commits = true
            case .waiting, .finished:
                continue
            }
            plan.append((s, StepEntry(requestID: s.id, cache: cache, tokens: tokens, commits: commits, parameters: s.parameters,
                                      randomness: s.randomness, history: s.history, outputStart: s.promptIDs.count,
                                      state: s.familyState)))
        }
        return plan
    }

    // MARK: results

    private func apply(_ plan: [(sequence: SequenceState, entry: StepEntry)], _ result: Result<[StepOutcome], any Error>) {
        let outcomes: [StepOutcome]
        switch result {
        case let .success(o) where o.count == plan.count: outcomes = o
        case .success:
            outcomes = plan.map { _ in .failed("the \(family.name) step returned the wrong number of outcomes") }
        case let .failure(error):
            outcomes = plan.map { _ in .failed("\(family.name) step failed: \(error)") }
        }
        let unit = family.tokensPerPosition, pad = family.paddingTokenID
        for ((s, entry), outcome) in zip(plan, outcomes) {
            guard s.phase != .finished else { continue }
            if s.phase == .prefilling, let kv = s.kv {
                s.prefilledPositions += entry.tokens.count / unit
                pool.prefilled(kv, positions: s.prefilledPositions)
            }
            let commit: StepCommit
            switch outcome {
            case .fed: continue
            case let .failed(message): finish(s, .error(message)); continue
            case .pending:
                s.phase = .decoding
                s.feed = []
                continue
            case let .committed(c): commit = c
            }
            s.phase = .decoding
            s.feed = commit.tokens
            s.statistics.samplesDrawn += commit.samplesDrawn
            s.statistics.argmaxRows += commit.argmaxRows
            s.statistics.accepted += 1
            if commit.truncated { s.statistics.truncatedSteps += 1 }
            if let level = commit.level { s.statistics.cascadeLevels[level, default: 0] += 1 }
            var visible = pad.map { p in commit.tokens.filter { $0 != p } } ?? commit.tokens
            var logprobs = commit.logprobs
            if let pad, logprobs != nil { logprobs = zip(commit.tokens, logprobs ?? []).filter { $0.0 != pad }.map(\.1) }
            let remaining = s.parameters.maxTokens - s.generated.count
            if visible.count > remaining {
                visible = Array(visible.prefix(remaining))
                logprobs = logprobs.map { Array($0.prefix(remaining)) }
            }
            s.generated += visible
            s.history += visible
            let diagnostics = commit.diagnostics.map { Array($0.prefix(visible.count)) }
            let delivery = s.channel.send(.tokens(ids: visible, logprobs: logprobs, diagnostics: diagnostics,
                                                  at: s.secondsSinceSubmission(), sampler: s.statistics))
            if delivery == .gone { finish(s, .cancelled); continue }
            if s.parameters.stopAtEndToken, commit.tokens.contains(where: family.endTokenIDs.contains) { finish(s, .endToken); continue }
            if s.generated.count >= s.parameters.maxTokens { finish(s, .maxTokens); continue }
            if commit.contextFull { finish(s, .contextFull); continue }
            if let kv = s.kv {
                // Worst-case blocks were reserved at admission; padding the model emits can stretch
                // a request past them, then it takes a block if one is free.
                if kv.cache.count + 1 + s.scratchPositions > family.contextPositions || !pool.grow(kv, toHold: 1 + s.scratchPositions) {
                    finish(s, .contextFull); continue
                }
            }
        }
        active.removeAll { $0.phase == .finished }
    }

    /// The one place a sequence ends: its blocks go back, its stream gets the last events.
    private func finish(_ s: SequenceState, _ reason: CompletionReason) {
        guard s.phase != .finished else { return }
        s.phase = .finished
        if let kv = s.kv { pool.release(kv) }
        s.kv = nil
        _ = s.channel.send(.finished(reason: reason, at: s.secondsSinceSubmission(), sampler: s.statistics))
        s.channel.finish()
    }
}
