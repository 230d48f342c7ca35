import CALMModel
import CALMTokenizer
import Foundation
import Synchronization

/// Owns every sequence's state and plans the steps of continuous batching: at each step every
/// active, unpaused sequence advances one chunk, and new sequences prefill prompt chunks up to a
/// budget. Decisions are made synchronously inside the actor; the planned step runs on the
/// compute thread; results come back here and are routed to the streams.
actor Scheduler {
    let model: CALMModel
    let tokenizer: (any TextTokenizer)?
    let configuration: EngineConfiguration
    let pool: KVBlockPool
    let compute = ComputeThread()
    let statistics = EngineStatisticsRecorder()

    /// Submissions and cancellations arrive synchronously (FIFO) and are drained at step boundaries.
    private nonisolated let inbox = Mutex<[SequenceState]>([])
    private nonisolated let cancellations = Mutex<Set<Int>>([])

    private var waiting: [SequenceState] = []
    private var active: [SequenceState] = []
    private var running = false

    init(model: CALMModel, tokenizer: (any TextTokenizer)?, configuration: EngineConfiguration) {
        self.model = model
        self.tokenizer = tokenizer
        self.configuration = configuration
        self.pool = KVBlockPool(layout: model.kvLayout(blockPositions: configuration.blockChunks),
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

    /// Requests waiting for KV blocks, and running.
    var counts: (waiting: Int, active: Int) { (waiting.count, active.count) }

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
            let model = self.model
            let drawsPerRound = configuration.exactRejectionDrawsPerRound
            let statistics = self.statistics
            let draws = await compute.run {
                StepExecutor.run(model: model, plan: plan, drawsPerRound: drawsPerRound, statistics: statistics)
            }
            apply(plan, draws)
        }
    }

    // MARK: intake and admission

    private func intake() {
        waiting += inbox.withLock { q in defer { q.removeAll() }; return q }
        let cancelled = cancellations.withLock { c in defer { c.removeAll() }; return c }
        guard !cancelled.isEmpty else { return }
        for s in waiting + active where cancelled.contains(s.id) { s.cancelRequested = true }
        for s in waiting where s.cancelRequested { finish(s, .cancelled) }
        waiting.removeAll { $0.phase == .finished }
        for s in active where s.cancelRequested { finish(s, .cancelled) }
        active.removeAll { $0.phase == .finished }
    }

    /// Admits waiting requests in arrival order while KV blocks last. A request whose shared prefix
    /// is still being computed by another waits without holding back the requests behind it.
    private func admit() {
        var still: [SequenceState] = []
        var blocked = false
        let k = model.patchSize, blockChunks = configuration.blockChunks
        for s in waiting {
            if blocked { still.append(s); continue }
            let shareable = max(0, (s.promptChunks - 1) / blockChunks)
            let blockIDs = KVBlockPool.blockTokens(s.paddedPrompt, blockTokens: blockChunks * k, blocks: shareable)
            let shared: [UnsafeMutablePointer<Float>]
            switch pool.acquirePrefix(blockIDs) {
            case .pending: still.append(s); continue
            case let .ready(blocks): shared = blocks
            }
            let neededBlocks = (s.reservedChunks + blockChunks - 1) / blockChunks - shared.count
            if pool.freeBlocks < neededBlocks {
                for b in shared { pool.returnBlock(b) }
                still.append(s)
                blocked = true   // FIFO: nobody overtakes a request waiting for memory
                continue
            }
            let cache = KVCache(layout: pool.layout, source: pool, sharedBlocks: shared, positions: shared.count * blockChunks)
            guard cache.reserve(additional: s.reservedChunks - cache.count) else {
                preconditionFailure("KV pool accounting: \(neededBlocks) blocks were free")
            }
            s.cache = cache
            s.sharedBlocks = shared
            s.prefilledChunks = cache.count
            // Our own whole prompt blocks become shareable once computed.
            let ownShareable = Array(cache.blocks[shared.count..<shareable])
            pool.registerPending(ownShareable, tokens: Array(blockIDs[shared.count..<shareable]), after: shared.last)
            s.pendingPrefix = ownShareable.enumerated().map { ($0.element, (shared.count + $0.offset + 1) * blockChunks) }
            s.phase = .prefilling
            active.append(s)
        }
        waiting = still
    }

    // MARK: planning

    private func makePlan() -> StepPlan {
        var plan = StepPlan()
        var prefillBudget = configuration.prefillChunksPerStep
        let k = model.patchSize
        for s in active {
            if s.channel.consumerGone { s.cancelRequested = true; continue }
            if s.channel.isFull { continue }       // back-pressure: only this sequence pauses
            switch s.phase {
            case .prefilling:
                guard prefillBudget > 0 else { continue }
                let n = min(prefillBudget, s.promptChunks - s.prefilledChunks)
                prefillBudget -= n
                let ids = Array(s.paddedPrompt[(s.prefilledChunks * k)..<((s.prefilledChunks + n) * k)])
                plan.entries.append(.init(sequence: s, chunks: ids, samples: s.prefilledChunks + n == s.promptChunks))
            case .decoding:
                plan.entries.append(.init(sequence: s, chunks: s.lastChunk, samples: true))
            case .waiting, .finished:
                continue
            }
        }
        if plan.isEmpty {
            // Cancel consumers that left while everything else was paused.
            for s in active where s.cancelRequested { finish(s, .cancelled) }
            active.removeAll { $0.phase == .finished }
        }
        return plan
    }

    // MARK: results

    private func apply(_ plan: StepPlan, _ draws: [StepDraw?]) {
        let k = model.patchSize, pad = model.padTokenID
        for (entry, draw) in zip(plan.entries, draws) {
            let s = entry.sequence
            if s.phase == .prefilling {
                s.prefilledChunks += entry.chunks.count / k
                while let first = s.pendingPrefix.first, first.completesAt <= s.prefilledChunks {
                    pool.markReady(first.block)
                    s.pendingPrefix.removeFirst()
                }
            }
            if s.cancelRequested || s.channel.consumerGone { finish(s, .cancelled); continue }
            guard let draw else { continue }
            s.phase = .decoding
            s.lastChunk = draw.chunk
            s.statistics.samplesDrawn += draw.samplesDrawn
            s.statistics.accepted += 1
            if draw.truncated { s.statistics.truncatedSteps += 1 }
            if let level = draw.level { s.statistics.cascadeLevels[level, default: 0] += 1 }
            var visible = draw.chunk.filter { $0 != pad }
            let remaining = s.parameters.maxTokens - s.generated.count
            if visible.count > remaining { visible = Array(visible.prefix(remaining)) }
            s.generated += visible
            let now = s.secondsSinceSubmission()
            if s.firstChunkAt == nil { s.firstChunkAt = now }
            s.chunkSeconds.append(now - s.lastChunkAt)
            s.lastChunkAt = now
            var text = s.detokenizer.map { d -> String in var d = d; let t = d.append(visible); s.detokenizer = d; return t } ?? ""
            let filtered = s.stopFilter.append(text)
            text = filtered.release
            s.text += text
            s.channel.send(.chunk(GeneratedChunk(tokens: visible, text: text, index: s.chunkIndex)))
            s.chunkIndex += 1
            if let stop = filtered.stop { finish(s, .stopSequence(stop)); continue }
            if s.parameters.stopAtEndToken, let eos = model.eosTokenID, draw.chunk.contains(eos) { finish(s, .endToken); continue }
            if s.generated.count >= s.parameters.maxTokens { finish(s, .maxTokens); continue }
            if let cache = s.cache {
                // Worst-case blocks were reserved at admission; `[PAD]`s the model emits can
                // stretch a request past them, then take a block if one is free.
                if cache.count + 1 > model.config.maxPositionEmbeddings
                    || (cache.capacity < cache.count + 1 && !cache.reserve(additional: 1)) {
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
        for b in s.sharedBlocks { pool.returnBlock(b) }
        s.sharedBlocks = []
        s.pendingPrefix = []
        s.cache?.release()   // returns the blocks after the shared prefix
        s.cache = nil
        if reason != .cancelled || !s.channel.consumerGone {
            // Flush text held back for stop sequences and incomplete characters.
            if case .stopSequence = reason {} else {
                var tail = s.detokenizer.map { d -> String in var d = d; return d.finish() } ?? ""
                tail = s.stopFilter.append(tail).release + s.stopFilter.flush()
                if !tail.isEmpty {
                    s.text += tail
                    s.channel.send(.chunk(GeneratedChunk(tokens: [], text: tail, index: s.chunkIndex)))
                }
            }
        }
        let info = CompletionInfo(reason: reason, promptTokens: s.promptIDs.count, generatedTokens: s.generated.count,
                                  chunks: s.chunkIndex, timeToFirstChunk: s.firstChunkAt, chunkSeconds: s.chunkSeconds,
                                  totalSeconds: s.secondsSinceSubmission(), sampler: s.statistics)
        s.channel.send(.completed(info))
        s.channel.finish()
    }
}
