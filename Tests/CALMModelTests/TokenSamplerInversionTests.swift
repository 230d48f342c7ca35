@testable import CALMModel
import Foundation
import Testing

/// `TokenSampler.invert` over all ids keeps running sums at block ends to rescan only one block:
/// it must pick exactly the id of one sequential scan from id 0 (same additions, same order).
@Test func blockedInversionPicksTheSequentialScansID() {
    func sequential(_ w: [Float], _ u: Double) -> Int {
        var total = 0.0
        for x in w { total += Double(x) }
        let target = u * total
        var c = 0.0
        for i in w.indices {
            c += Double(w[i])
            if c > target { return i }
        }
        var i = w.count - 1
        while i > 0 && w[i] == 0 { i -= 1 }
        return i
    }
    var s: UInt64 = 5
    func next() -> Double {
        s = s &* 6364136223846793005 &+ 1442695040888963407
        return Double(s >> 11) / Double(1 << 53)
    }
    for n in [1, 7, 2048, 2049, 10_000, 130_000] {
        // spiky weights with runs of zeros, so crossings land near block ends too
        var w = (0..<n).map { _ -> Float in let r = next(); return r < 0.3 ? 0 : Float(pow(r, 8)) }
        if n > 3 { w[n - 1] = 0; w[n - 2] = 0 }
        for u in [0.0, 1e-12, 0.25, 0.5, 0.999999, 1 - 1e-16] + (0..<40).map({ _ in next() }) {
            let got = w.withUnsafeMutableBufferPointer { TokenSampler.invert($0, ids: nil, u: u) }
            #expect(got == sequential(w, u), "n \(n) u \(u)")
        }
    }
}
