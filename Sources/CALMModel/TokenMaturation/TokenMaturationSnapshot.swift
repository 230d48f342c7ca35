import Foundation

/// A `TokenMaturationSequence`'s decoding state between two steps (`TokenMaturationSequence.snapshot()`):
/// its committed ids, its liquid tail and everything fixed for the run. `TokenMaturationModel.resume`
/// starts new sequences from it, each with its own cache and random stream — the branches of a
/// teacher-forced evaluation run, for instance, which continue from a position with the model's own
/// sample instead of the true token.
///
/// ```swift
/// let sequence = try tmModel.makeSequence(prompt: prompt, parameters: .init(maxTokens: 8, seed: 1))
/// _ = try tmModel.step([sequence])
/// let branch = try tmModel.resume(sequence.snapshot(), cache: sequence.cache.fork(prefix: sequence.cache.count),
///                                 randomness: SeededRandomness(seed: 2))
/// _ = try tmModel.step([branch])
/// ```
public struct TokenMaturationSnapshot: Sendable {
    /// Committed ids (prompt included) when the snapshot was taken.
    public let ids: [Int]
    /// Prompt length.
    public let promptCount: Int
    /// The liquid tail.
    public let tail: LiquidTail
    /// The request the sequence was made with.
    public let parameters: TokenMaturationParameters
    /// Why the sequence had stopped, if it had (such a snapshot cannot be resumed).
    public let stopReason: StopReason?
    /// The failure that ended the sequence, if one did (such a snapshot cannot be resumed).
    public let failure: ModelError?

    let resolved: ResolvedTokenMaturationParameters
    let alphas: [Float]
    let rates: [Float]
    let slotConditioning: [Float]
    let commitConditioning: [Float]
    let filmScale: [Float]
    let filmShift: [Float]
    let embryoDeviation: Float
    let noiseDeviation: Float
    let historyEMAState: [Float]?
    let historyEMANext: Int
}

extension TokenMaturationModel {
    /// A sequence that continues from `snapshot`.
    ///
    /// * `lastToken` replaces the snapshot's last committed id. That id is never cached before the
    ///   next step (the cache holds every committed position but the last), so a branch may commit
    ///   another token there and go on from it: its tail is the snapshot's, matured under the same
    ///   context. nil keeps the snapshot's id.
    /// * `cache` must hold a prefix of the snapshot's committed positions, not the last one — a
    ///   `KVCache.fork(prefix:)` of the original's cache (or of any cache with the same committed
    ///   rows); default: a fresh cache, so the first step recomputes the whole prefix.
    /// * `randomness` draws the branch's later embryos and noise; default: a stream seeded from the
    ///   system. (With shift alignment and no noise, the next K − 1 commits do not depend on it:
    ///   they come from vectors already in the tail.)
    ///
    /// Errors are `ModelError.invalidParameter` naming `snapshot`, `lastToken` or `cache`.
    public func resume(_ snapshot: TokenMaturationSnapshot, lastToken: Int? = nil, cache: KVCache? = nil,
                       randomness: SequenceRandomness? = nil) throws -> TokenMaturationSequence {
        if let reason = snapshot.stopReason {
            throw ModelError.invalidParameter(name: "snapshot", reason: "was taken after the sequence stopped (\(reason.rawValue))")
        }
        if let failure = snapshot.failure {
            throw ModelError.invalidParameter(name: "snapshot", reason: "was taken after the sequence failed: \(failure)")
        }
        guard snapshot.tail.dim == hidden, snapshot.tail.slots == snapshot.resolved.tailLength, !snapshot.ids.isEmpty else {
            throw ModelError.invalidParameter(name: "snapshot", reason: "does not come from a running sequence of this model")
        }
        var ids = snapshot.ids
        if let lastToken {
            guard lastToken >= 0 && lastToken < config.vocabSize else {
                throw ModelError.invalidParameter(name: "lastToken", reason: "token id \(lastToken) is outside the vocabulary (size \(config.vocabSize))")
            }
            ids[ids.count - 1] = lastToken
        }
        let cache = cache ?? makeCache()
        let expected = kvLayout(blockPositions: cache.layout.blockPositions)
        guard cache.layout == expected else {
            throw ModelError.invalidParameter(name: "cache", reason: "layout \(cache.layout) does not match the backbone's \(expected)")
        }
        guard cache.count < ids.count else {
            throw ModelError.invalidParameter(name: "cache", reason: "holds \(cache.count) positions; the last committed position (\(ids.count - 1)) must be left for the next step")
        }
        return try TokenMaturationSequence(resuming: snapshot, ids: ids, model: self, cache: cache,
                                           randomness: randomness ?? SeededRandomness())
    }
}
