import CALMTokenizer
import Foundation

/// Turns one request's committed ids into the public events: detokenises incrementally (holding
/// back incomplete UTF-8 characters), cuts the text before the first stop sequence (holding back
/// text that could still become one), and keeps the request's output accounting (chunks, timings,
/// counts) for `CompletionInfo`.
///
/// It runs in the consumer's task, in the stream's iterator, so text work never occupies the
/// scheduler actor and each consumer pays for its own. When it finds a stop sequence it ends the
/// stream itself and the iterator cancels the request in the scheduler (vLLM's output processor
/// aborts requests in the engine core the same way).
struct OutputProcessor: Sendable {
    private var detokenizer: StreamingDetokenizer?
    private var stopFilter: StopSequenceFilter
    private let promptTokens: Int
    private var generatedTokens = 0
    private var chunkIndex = 0
    private var firstChunkAt: Double?
    private var lastChunkAt = 0.0
    private var chunkSeconds: [Double] = []

    init(tokenizer: (any TextTokenizer)?, stopSequences: [String], promptTokens: Int) {
        detokenizer = tokenizer.map { StreamingDetokenizer(tokenizer: $0) }
        stopFilter = StopSequenceFilter(stops: stopSequences)
        self.promptTokens = promptTokens
    }

    /// The events one scheduler event releases, and whether the stream has ended. With
    /// `emitChunks` false (the consumer was cancelled) chunks are only counted, so the final
    /// summary still reports what was really generated.
    mutating func process(_ event: SequenceEvent, emitChunks: Bool = true) -> (events: [GenerationEvent], ended: Bool, stoppedEarly: Bool) {
        switch event {
        case let .tokens(ids, logprobs, diagnostics, at, sampler):
            generatedTokens += ids.count
            if firstChunkAt == nil { firstChunkAt = at }
            chunkSeconds.append(at - lastChunkAt)
            lastChunkAt = at
            let index = chunkIndex
            chunkIndex += 1
            guard emitChunks else { return ([], false, false) }
            let text = detokenizer.map { d -> String in var d = d; let t = d.append(ids); detokenizer = d; return t } ?? ""
            let filtered = stopFilter.append(text)
            let chunk = GenerationEvent.chunk(GeneratedChunk(tokens: ids, text: filtered.release, index: index, logprobs: logprobs,
                                                                   diagnostics: diagnostics))
            guard let stop = filtered.stop else { return ([chunk], false, false) }
            return ([chunk, .completed(info(.stopSequence(stop), at: at, sampler: sampler))], true, true)
        case let .finished(reason, at, sampler):
            var events: [GenerationEvent] = []
            if reason != .cancelled {
                // Flush text held back for stop sequences and incomplete characters.
                var tail = detokenizer.map { d -> String in var d = d; return d.finish() } ?? ""
                let filtered = stopFilter.append(tail)
                tail = filtered.release + (filtered.stop == nil ? stopFilter.flush() : "")
                // (not counted in `chunks`, which counts the steps that committed tokens)
                if !tail.isEmpty { events.append(.chunk(GeneratedChunk(tokens: [], text: tail, index: chunkIndex))) }
                if let stop = filtered.stop { return (events + [.completed(info(.stopSequence(stop), at: at, sampler: sampler))], true, false) }
            }
            return (events + [.completed(info(reason, at: at, sampler: sampler))], true, false)
        }
    }

    private func info(_ reason: CompletionReason, at: Double, sampler: SamplerStatistics) -> CompletionInfo {
        CompletionInfo(reason: reason, promptTokens: promptTokens, generatedTokens: generatedTokens, chunks: chunkIndex,
                       timeToFirstChunk: firstChunkAt, chunkSeconds: chunkSeconds, totalSeconds: at, sampler: sampler)
    }
}
