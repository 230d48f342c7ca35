import CALMModel
import Testing
@testable import CALMEngine

/// The prefix registry matches whole prefixes exactly: same block tokens under a different parent,
/// or different tokens, never share.
@Suite struct KVBlockPoolPrefixTests {
    func pool() -> KVBlockPool {
        KVBlockPool(layout: KVLayout(layers: 1, kvHeads: 1, headDim: 4, blockPositions: 2), budgetBytes: 64 * 64)
    }

    func shared(_ lookup: KVBlockPool.PrefixLookup) -> [UnsafeMutablePointer<Float>]? {
        if case let .ready(blocks) = lookup { return blocks }
        return nil
    }

    @Test func exactChainsShareAndOthersDoNot() throws {
        let p = pool()
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
        let p = pool()
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
}
