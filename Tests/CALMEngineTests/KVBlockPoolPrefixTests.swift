@testable import CALMModel
import Testing
@testable import CALMEngine

/// The prefix registry matches whole prefixes exactly: same block tokens under a different parent,
/// or different tokens, never share.
@Suite struct KVBlockPoolPrefixTests {
    func pool() throws -> KVBlockPool {
        try KVBlockPool(layout: KVLayout(layers: 1, kvHeads: 1, headDim: 4, blockPositions: 2), budgetBytes: 64 * 64)
    }

    func shared(_ lookup: KVBlockPool.PrefixLookup) -> [UnsafeMutablePointer<Float>]? {
        if case let .ready(blocks) = lookup { return blocks }
        return nil
    }

    @Test func exactChainsShareAndOthersDoNot() throws {
        let p = try pool()
        let a = [[1, 2, 3, 4], [5, 6, 7, 8]]
        let b0 = try #require(p.takeBlock()), b1 = try #require(p.takeBlock())
        #expect(shared(p.acquirePrefix(a))?.isEmpty == true)
        p.registerPending([b0, b1], tokens: a, after: nil)
        // Registered but not computed yet: an identical prompt waits.
        if case .ready = p.acquirePrefix(a) { Issue.record("pending blocks must not be shared") }
        p.markReady(b0); p.markReady(b1)
        #expect(shared(p.acquirePrefix(a)) == [b0, b1])
        // Same second block after a different first block: only nothing is shared.
        #expect(shared(p.acquirePrefix([[9, 9, 9, 9], [5, 6, 7, 8]]))?.isEmpty == true)
        // Same first block, different second: only the first is shared.
        #expect(shared(p.acquirePrefix([[1, 2, 3, 4], [5, 6, 7, 0]])) == [b0])
        // The second block alone (as if it were a first block) does not match.
        #expect(shared(p.acquirePrefix([[5, 6, 7, 8]]))?.isEmpty == true)
    }

    @Test func freedBlocksAreUnregistered() throws {
        let p = try pool()
        let a = [[1, 2, 3, 4]]
        let b0 = try #require(p.takeBlock())
        p.registerPending([b0], tokens: a, after: nil)
        p.markReady(b0)
        let got = try #require(shared(p.acquirePrefix(a)))
        #expect(got == [b0])
        p.returnBlock(b0); p.returnBlock(b0)     // the owner's and the sharer's references
        #expect(shared(p.acquirePrefix(a))?.isEmpty == true)
        #expect(p.freeBlocks == p.totalBlocks)
    }

    /// Admission, growth, prefill progress and release go through the pool's allocation methods,
    /// and an engine cache never takes blocks behind the pool's back.
    @Test func oneOwnerAdmitsGrowsSharesAndReleases() throws {
        let p = try pool()   // 2 positions per block, 1 token per position here
        let total = p.totalBlocks
        let prompt = [1, 2, 3, 4, 5]
        guard case let .admitted(a) = p.admit(paddedPrompt: prompt, tokensPerPosition: 1, promptPositions: 5, reservedPositions: 8) else {
            Issue.record("first request not admitted"); return
        }
        #expect(p.freeBlocks == total - 4)
        #expect(!a.cache.growsOnDemand)
        // Its first two whole prompt blocks are pending until computed: an identical prompt waits.
        guard case .waitForPrefix = p.admit(paddedPrompt: prompt, tokensPerPosition: 1, promptPositions: 5, reservedPositions: 8) else {
            Issue.record("a pending prefix was shared"); return
        }
        a.cache.count = 5
        p.prefilled(a, positions: 5)
        guard case let .admitted(b) = p.admit(paddedPrompt: prompt, tokensPerPosition: 1, promptPositions: 5, reservedPositions: 8) else {
            Issue.record("second request not admitted"); return
        }
        #expect(b.cache.count == 4)              // two shared blocks
        #expect(p.freeBlocks == total - 6)       // shared by reference, only two new ones
        // A pass may not write past what the owner reserved.
        b.cache.count = 8
        #expect(throws: ModelError.self) { try b.cache.prepare(rows: 1) }
        #expect(p.grow(b, toHold: 1))
        #expect(throws: Never.self) { try b.cache.prepare(rows: 1) }
        // More than the pool holds: refused, nothing kept.
        let before = p.freeBlocks
        guard case .noMemory = p.admit(paddedPrompt: [7], tokensPerPosition: 1, promptPositions: 1, reservedPositions: 2 * total) else {
            Issue.record("an impossible request was admitted"); return
        }
        #expect(p.freeBlocks == before)
        p.release(b)
        p.release(a)
        #expect(p.freeBlocks == total)
    }
}
