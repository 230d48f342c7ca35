import Foundation

/// Half-split rotary tables as transformers 4.43 builds them: inv_freq[i] = 1/θ^(2i/d) in f32,
/// freqs = p·inv_freq in f32, emb = concat(freqs, freqs).
struct RotaryEmbedding: Sendable {
    let headDim: Int
    let invFreq: [Float]

    init(headDim: Int, theta: Double) {
        self.headDim = headDim
        let base = Float(theta)
        invFreq = (0..<(headDim / 2)).map { i in
            let exponent = Float(2 * i) / Float(headDim)
            return 1 / powf(base, exponent)
        }
    }

    /// cos and sin tables (headDim each) for one position.
    func tables(position: Int) -> (cos: [Float], sin: [Float]) {
        var c = [Float](repeating: 0, count: headDim), s = [Float](repeating: 0, count: headDim)
        let half = headDim / 2
        let p = Float(position)
        for i in 0..<half {
            let f = p * invFreq[i]
            c[i] = cosf(f); c[i + half] = c[i]
            s[i] = sinf(f); s[i + half] = s[i]
        }
        return (c, s)
    }
}
