import CALMModel
import Foundation

/// One request inside the scheduler: a small state machine
/// waiting → prefilling → decoding → finished, where every transition takes or frees resources in
/// exactly one place (`Scheduler.admit` takes KV blocks through `KVBlockPool.admit`,
/// `Scheduler.finish` returns them through `KVBlockPool.release`).
///
/// `@unchecked Sendable`: confined: after `submit` hands it over through the scheduler's lock (`Locked`)
/// inbox, only the `Scheduler` actor touches its `var`s (`phase`, `kv`, `feed`, `history`, …). A
/// step gets copies of what it needs in a `StepEntry`; the objects shared that way (`randomness`,
/// `familyState`, the cache) are used by the compute thread only while the actor awaits the step.
final class SequenceState: @unchecked Sendable {
    enum Phase { case waiting, prefilling, decoding, finished }

    let id: Int
    let parameters: SamplingParameters
    let promptIDs: [Int]
    /// Prompt right-padded to whole KV positions (CALM: `[PAD]` to chunks of K).
    let paddedPrompt: [Int]
    let channel: EventChannel
    let randomness: SeededRandomness
    let submitted: DispatchTime
    /// Worst-case positions (prompt + maxTokens, within the context), reserved at admission.
    let reservedPositions: Int
    /// Positions in the padded prompt.
    let promptPositions: Int

    var phase = Phase.waiting
    /// The family's per-sequence state (`FamilyStateSlot`).
    let familyState = FamilyStateSlot()
    /// Scratch KV positions the family needs during a step (reserved with the rest).
    let scratchPositions: Int
    /// The key prompt blocks are shared under (nil: this request shares none).
    let prefixSharingKey: Int?
    /// Its KV memory, from admission to `finish` (owned through `KVBlockPool`'s allocation methods).
    var kv: SequenceKV?
    /// Prompt positions already in the cache.
    var prefilledPositions = 0
    /// The ids to feed next while decoding (what the last step committed).
    var feed: [Int] = []
    /// Prompt then generated ids (for the discrete families' penalties).
    var history: [Int]
    var generated: [Int] = []
    var statistics = SamplerStatistics()

    init(id: Int, parameters: SamplingParameters, promptIDs: [Int], paddedPrompt: [Int], tokensPerPosition: Int,
         reservedPositions: Int, scratchPositions: Int, prefixSharingKey: Int?, channel: EventChannel) {
        self.scratchPositions = scratchPositions
        self.prefixSharingKey = prefixSharingKey
        self.promptPositions = paddedPrompt.count / tokensPerPosition
        self.id = id
        self.parameters = parameters
        self.promptIDs = promptIDs
        self.history = promptIDs
        self.paddedPrompt = paddedPrompt
        self.reservedPositions = reservedPositions
        self.channel = channel
        self.randomness = SeededRandomness(seed: parameters.seed ?? UInt64.random(in: .min ... .max))
        self.submitted = .now()
    }

    func secondsSinceSubmission() -> Double {
        Double(DispatchTime.now().uptimeNanoseconds - submitted.uptimeNanoseconds) / 1e9
    }
}
