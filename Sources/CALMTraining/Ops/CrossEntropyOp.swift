import CALMKernels
import CALMModel
import Foundation

/// Mean cross-entropy over rows of logits (rows × V) against integer labels. Backward gives
/// (softmax − onehot)·scale/rows, `scale` being the loss's outer factor (K in the AE loss).
public enum CrossEntropyOp {
    public struct Saved: Sendable { public var probabilities: [Float] }

    public static func forward(logits: [Float], labels: [Int], vocab: Int) -> (loss: Float, saved: Saved) {
        let rows = labels.count
        precondition(logits.count == rows * vocab)
        var probs = [Float](repeating: 0, count: logits.count)
        var total = 0.0
        for r in 0..<rows {
            var m = -Float.infinity
            for j in 0..<vocab { m = max(m, logits[r * vocab + j]) }
            var s: Float = 0
            for j in 0..<vocab { let e = expf(logits[r * vocab + j] - m); probs[r * vocab + j] = e; s += e }
            for j in 0..<vocab { probs[r * vocab + j] /= s }
            let label = labels[r]
            precondition(label >= 0 && label < vocab, "label \(label) outside the vocabulary")
            total += Double(logf(s) + m - logits[r * vocab + label])
        }
        return (Float(total / Double(rows)), Saved(probabilities: probs))
    }

    public static func backward(saved: Saved, labels: [Int], vocab: Int, scale: Float = 1) -> [Float] {
        let rows = labels.count
        var d = saved.probabilities
        let f = scale / Float(rows)
        for r in 0..<rows {
            d[r * vocab + labels[r]] -= 1
            for j in 0..<vocab { d[r * vocab + j] *= f }
        }
        return d
    }

    /// Fused forward + backward in place: `logits` becomes d loss / d logits (scale/rows factor
    /// included); returns the mean loss. Never keeps a second rows × V buffer.
    public static func fused(logits: inout [Float], labels: [Int], vocab: Int, scale: Float = 1,
                             pool: ComputePool?) -> Float {
        let rows = labels.count
        precondition(logits.count == rows * vocab)
        let l32 = labels.map { label -> Int32 in
            precondition(label >= 0 && label < vocab, "label \(label) outside the vocabulary")
            return Int32(label)
        }
        var rowLoss = [Float](repeating: 0, count: rows)
        logits.withUnsafeMutableBufferPointer { lp in rowLoss.withUnsafeMutableBufferPointer { rp in
            calm_train_softmax_xent(pool?.raw, lp.baseAddress!, l32, Int32(rows), Int32(vocab), scale / Float(rows), rp.baseAddress!)
        } }
        var total = 0.0
        for l in rowLoss { total += Double(l) }
        return Float(total / Double(max(rows, 1)))
    }
}

/// Row-block entry to the fused kernel (pointer form).
func calm_train_softmax_xent_shim(_ pool: ComputePool?, _ logits: UnsafeMutablePointer<Float>, _ labels: [Int32], _ rows: Int,
                                  _ vocab: Int, _ gradScale: Float, _ rowLoss: UnsafeMutablePointer<Float>) {
    calm_train_softmax_xent(pool?.raw, logits, labels, Int32(rows), Int32(vocab), gradScale, rowLoss)
}
