import CALMModel
import Foundation

/// What the scheduler reports for one request, in token terms only: the ids a step committed and
/// how the request ended. The stream's `OutputProcessor` turns these into `GenerationEvent`s
/// (text, stop sequences, the completion summary) in the consumer's task, outside the actor.
enum SequenceEvent: Sendable {
    /// Ids committed by one step (padding removed, cut to `maxTokens`), when they were produced
    /// (seconds since submission) and the request's sampler counters so far.
    case tokens(ids: [Int], logprobs: [Double]?, diagnostics: [TokenMaturationDiagnostics]?, at: Double, sampler: SamplerStatistics)
    /// The request ended (the last event). Token-level reasons only: stop sequences are found by
    /// the output processor.
    case finished(reason: CompletionReason, at: Double, sampler: SamplerStatistics)
}
