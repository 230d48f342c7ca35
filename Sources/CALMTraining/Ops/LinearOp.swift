import CALMModel

/// y = x·Wᵀ + b over rows (W is out × in). Backward: dx = dy·W, dW += dyᵀ·x, db += Σ_rows dy.
public struct LinearOp: Sendable {
    public let weight: Parameter
    public let bias: Parameter?
    public let outFeatures: Int
    public let inFeatures: Int

    public init(weight: Parameter, bias: Parameter?) {
        precondition(weight.shape.count == 2)
        self.weight = weight
        self.bias = bias
        outFeatures = weight.shape[0]
        inFeatures = weight.shape[1]
        if let bias { precondition(bias.shape == [outFeatures]) }
    }

    public func forward(_ x: [Float], rows: Int, pool: ComputePool?) -> [Float] {
        var y = Matmul.xWt(x, rows: rows, w: weight.value, out: outFeatures, in: inFeatures, pool: pool)
        if let b = bias?.value {
            y.withUnsafeMutableBufferPointer { yp in
                for r in 0..<rows { for j in 0..<outFeatures { yp[r * outFeatures + j] += b[j] } }
            }
        }
        return y
    }

    /// Accumulates parameter gradients and returns dx (nil when `inputGradient` is false).
    @discardableResult
    public func backward(_ dy: [Float], input x: [Float], rows: Int, inputGradient: Bool = true,
                         pool: ComputePool?) -> [Float]? {
        precondition(dy.count == rows * outFeatures && x.count == rows * inFeatures)
        if weight.requiresGrad {
            Matmul.dyTx(dy, x: x, rows: rows, out: outFeatures, in: inFeatures, into: &weight.grad, pool: pool)
        }
        if let bias, bias.requiresGrad {
            bias.grad.withUnsafeMutableBufferPointer { g in
                dy.withUnsafeBufferPointer { d in
                    for r in 0..<rows { for j in 0..<outFeatures { g[j] += d[r * outFeatures + j] } }
                }
            }
        }
        return inputGradient ? Matmul.dyW(dy, rows: rows, w: weight.value, out: outFeatures, in: inFeatures, pool: pool) : nil
    }
}
