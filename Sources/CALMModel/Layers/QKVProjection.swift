/// A layer's attention input projections q, k and v. When they could share one packing
/// (`Linear.fused`: q, k and v are views of it) one multiply computes all three — one pass over the
/// batch's rows and one hand-off to the pool instead of three, which at a few rows per step is time
/// the pool otherwise spends waiting — with every output column by the same FMA chain as its part
/// alone; else three multiplies.
struct QKVProjection: Sendable {
    let q: Linear, k: Linear, v: Linear
    /// [q | k | v] side by side, nil when the parts could not be fused.
    let fused: Linear?

    /// Bytes of the packed q, k and v weights.
    var weightBytes: Int { q.weightBytes + k.weightBytes + v.weightBytes }

    /// q, k and v of `rows` rows of `x` into `q` (rows × q.outFeatures), `k` and `v`; `scratch` keeps
    /// the fused product's buffer between calls (grown as needed).
    func apply(_ x: [Float], rows: Int, q qOut: inout [Float], k kOut: inout [Float], v vOut: inout [Float],
               scratch: inout [Float], pool: ComputePool) {
        guard let fused else {
            x.withUnsafeBufferPointer { n in
                qOut.withUnsafeMutableBufferPointer { q.apply(n.baseAddress!, rows: rows, into: $0.baseAddress!, pool: pool) }
                kOut.withUnsafeMutableBufferPointer { k.apply(n.baseAddress!, rows: rows, into: $0.baseAddress!, pool: pool) }
                vOut.withUnsafeMutableBufferPointer { v.apply(n.baseAddress!, rows: rows, into: $0.baseAddress!, pool: pool) }
            }
            return
        }
        let qw = q.outFeatures, kw = k.outFeatures, vw = v.outFeatures, width = fused.outFeatures
        if scratch.count < rows * width { scratch = [Float](repeating: 0, count: rows * width) }
        scratch.withUnsafeMutableBufferPointer { f in
            let fp = f.baseAddress!
            x.withUnsafeBufferPointer { fused.apply($0.baseAddress!, rows: rows, into: fp, pool: pool) }
            qOut.withUnsafeMutableBufferPointer { qp in
                kOut.withUnsafeMutableBufferPointer { kp in
                    vOut.withUnsafeMutableBufferPointer { vp in
                        for r in 0..<rows {
                            let src = fp + r * width
                            (qp.baseAddress! + r * qw).update(from: src, count: qw)
                            (kp.baseAddress! + r * kw).update(from: src + qw, count: kw)
                            (vp.baseAddress! + r * vw).update(from: src + qw + kw, count: vw)
                        }
                    }
                }
            }
        }
    }
}
