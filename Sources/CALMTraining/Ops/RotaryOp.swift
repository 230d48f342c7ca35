import Foundation

/// Half-split rotary embedding (transformers 4.43 default RoPE): dimension i pairs with
/// i + d/2; q' = q·cos + rotate_half(q)·sin. Backward is the transposed rotation (sin → −sin).
public struct RotaryOp: Sendable {
    public let headDim: Int
    let invFreq: [Float]

    public init(headDim: Int, theta: Double) {
        self.headDim = headDim
        let base = Float(theta)
        invFreq = (0..<(headDim / 2)).map { i in 1 / powf(base, Float(2 * i) / Float(headDim)) }
    }

    /// cos and sin for one position (half-size: the two halves are equal).
    public func tables(position: Int) -> (cos: [Float], sin: [Float]) {
        let p = Float(position)
        return (invFreq.map { cosf(p * $0) }, invFreq.map { sinf(p * $0) })
    }

    /// Rotates `heads` heads of one row in place (`inverse` applies the transpose).
    func rotate(_ x: UnsafeMutablePointer<Float>, heads: Int, cos c: [Float], sin s: [Float], inverse: Bool) {
        let half = headDim / 2
        for h in 0..<heads {
            let base = x + h * headDim
            for i in 0..<half {
                let a = base[i], b = base[i + half]
                let sn = inverse ? -s[i] : s[i]
                base[i] = a * c[i] - b * sn
                base[i + half] = b * c[i] + a * sn
            }
        }
    }

    /// cos / sin tables for positions 0 ..< count (count × headDim/2 each).
    public struct Table: Sendable { var cos: [Float]; var sin: [Float]; var count: Int }

    public func table(count: Int) -> Table {
        let half = headDim / 2
        var cosT = [Float](repeating: 0, count: count * half), sinT = cosT
        for p in 0..<count {
            let pf = Float(p)
            for i in 0..<half { cosT[p * half + i] = cosf(pf * invFreq[i]); sinT[p * half + i] = sinf(pf * invFreq[i]) }
        }
        return Table(cos: cosT, sin: sinT, count: count)
    }

    /// Applies RoPE to rows of `heads·headDim` values; row r is at position positions[r].
    public func forward(_ x: inout [Float], heads: Int, positions: [Int], table: Table? = nil) {
        apply(&x, heads: heads, positions: positions, inverse: false, table: table)
    }

    /// Gradient through RoPE (in place on the gradient).
    public func backward(_ dx: inout [Float], heads: Int, positions: [Int], table: Table? = nil) {
        apply(&dx, heads: heads, positions: positions, inverse: true, table: table)
    }

    private func apply(_ x: inout [Float], heads: Int, positions: [Int], inverse: Bool, table: Table?) {
        let width = heads * headDim, half = headDim / 2
        precondition(x.count == positions.count * width)
        let maxPos = (positions.max() ?? -1) + 1
        let t = table.flatMap { $0.count >= maxPos ? $0 : nil } ?? self.table(count: maxPos)
        x.withUnsafeMutableBufferPointer { xp in t.cos.withUnsafeBufferPointer { cp in t.sin.withUnsafeBufferPointer { sp in
            for (r, pos) in positions.enumerated() {
                let c = cp.baseAddress! + pos * half, s = sp.baseAddress! + pos * half
                for h in 0..<heads {
                    let base = xp.baseAddress! + r * width + h * headDim
                    for i in 0..<half {
                        let a = base[i], b = base[i + half]
                        let sn = inverse ? -s[i] : s[i]
                        base[i] = a * c[i] - b * sn
                        base[i + half] = b * c[i] + a * sn
                    }
                }
            }
        } } }
    }
}
