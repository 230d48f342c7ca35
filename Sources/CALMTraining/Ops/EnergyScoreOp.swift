import Foundation

/// The energy score with β = 1 per position n, from S model samples x (S, N, z) and M target
/// samples y (M, N, z):
///   D_x = Σ_{i,j} ‖x_i − x_j‖ / (S(S−1)),  D_y = mean_{i,m} ‖x_i − y_m‖,  score = D_x − 2·D_y,
///   loss = −mean_n score.
/// The gradient of ‖a − b‖ is taken as 0 where a = b (PyTorch's norm backward).
public enum EnergyScoreOp {
    public struct Output: Sendable {
        /// (S, S, N)
        public var distanceXX: [Float]
        /// (N)
        public var distanceX: [Float]
        /// (S, M, N)
        public var distanceXY: [Float]
        /// (N)
        public var distanceY: [Float]
        /// (N)
        public var score: [Float]
        public var loss: Float
    }

    static func distance(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ z: Int) -> Float {
        var s: Float = 0
        for c in 0..<z { let d = a[c] - b[c]; s += d * d }
        return s.squareRoot()
    }

    public static func forward(x: [Float], y: [Float], samples sCount: Int, targets mCount: Int, positions n: Int, z: Int) -> Output {
        precondition(x.count == sCount * n * z && y.count == mCount * n * z)
        var dxx = [Float](repeating: 0, count: sCount * sCount * n)
        var dxy = [Float](repeating: 0, count: sCount * mCount * n)
        var dX = [Float](repeating: 0, count: n), dY = dX, score = dX
        x.withUnsafeBufferPointer { xp in y.withUnsafeBufferPointer { yp in
            for p in 0..<n {
                var sx: Float = 0
                for i in 0..<sCount {
                    for j in 0..<sCount where j != i {
                        let d = distance(xp.baseAddress! + (i * n + p) * z, xp.baseAddress! + (j * n + p) * z, z)
                        dxx[(i * sCount + j) * n + p] = d
                        sx += d
                    }
                }
                var sy: Float = 0
                for i in 0..<sCount {
                    for m in 0..<mCount {
                        let d = distance(xp.baseAddress! + (i * n + p) * z, yp.baseAddress! + (m * n + p) * z, z)
                        dxy[(i * mCount + m) * n + p] = d
                        sy += d
                    }
                }
                dX[p] = sx / Float(sCount * (sCount - 1))
                dY[p] = sy / Float(sCount * mCount)
                score[p] = dX[p] - 2 * dY[p]
            }
        } }
        let loss = -score.reduce(0, +) / Float(n)
        return Output(distanceXX: dxx, distanceX: dX, distanceXY: dxy, distanceY: dY, score: score, loss: loss)
    }

    /// d loss / d x, (S, N, z).
    public static func backward(x: [Float], y: [Float], output o: Output, samples sCount: Int, targets mCount: Int,
                                positions n: Int, z: Int) -> [Float] {
        var dx = [Float](repeating: 0, count: x.count)
        // loss = −(1/N) Σ_p [ Σ_{i≠j} d_ij / (S(S−1)) − 2 Σ_{i,m} d_im / (S·M) ]
        let cx = -1 / Float(n) / Float(sCount * (sCount - 1))
        let cy = 2 / Float(n) / Float(sCount * mCount)
        for p in 0..<n {
            for i in 0..<sCount {
                let xi = (i * n + p) * z
                for j in 0..<sCount where j != i {
                    let d = o.distanceXX[(i * sCount + j) * n + p]
                    guard d > 0 else { continue }
                    // d_ij and d_ji both depend on x_i: factor 2.
                    let f = 2 * cx / d
                    let xj = (j * n + p) * z
                    for c in 0..<z { dx[xi + c] += f * (x[xi + c] - x[xj + c]) }
                }
                for m in 0..<mCount {
                    let d = o.distanceXY[(i * mCount + m) * n + p]
                    guard d > 0 else { continue }
                    let f = cy / d
                    let ym = (m * n + p) * z
                    for c in 0..<z { dx[xi + c] += f * (x[xi + c] - y[ym + c]) }
                }
            }
        }
        return dx
    }
}
