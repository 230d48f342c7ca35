import CALMModel

/// y = x·Wᵀ + b over rows, W stored out × in (`nn.Linear`), or y = x·W + b with W stored in × out
/// (Hugging Face `Conv1D`, GPT-2's projections: `LinearOp(conv1D:bias:)`), so a checkpoint's tensors
/// train in their own layout. Backward: dx = dy·W (dy·Wᵀ for `Conv1D`), dW += dyᵀ·x (xᵀ·dy),
/// db += Σ_rows dy.
public struct LinearOp: Sendable {
    /// How the weight matrix is stored.
    public enum WeightLayout: Sendable {
        /// out × in (`nn.Linear`).
        case outByIn
        /// in × out (Hugging Face `Conv1D`).
        case inByOut
    }

    /// W, stored as `layout` says.
    public let weight: Parameter
    /// b (out), if the layer has one.
    public let bias: Parameter?
    /// Output width.
    public let outFeatures: Int
    /// Input width.
    public let inFeatures: Int
    /// The weight's storage layout.
    public let layout: WeightLayout

    /// A linear layer over an out × in weight (`nn.Linear`).
    public init(weight: Parameter, bias: Parameter?) {
        precondition(weight.shape.count == 2)
        self.init(weight: weight, bias: bias, layout: .outByIn, out: weight.shape[0], in: weight.shape[1])
    }

    /// A Hugging Face `Conv1D` (GPT-2's `c_attn`, `c_proj`, `c_fc`): the weight is in × out.
    public init(conv1D weight: Parameter, bias: Parameter?) {
        precondition(weight.shape.count == 2)
        self.init(weight: weight, bias: bias, layout: .inByOut, out: weight.shape[1], in: weight.shape[0])
    }

    private init(weight: Parameter, bias: Parameter?, layout: WeightLayout, out: Int, in inF: Int) {
        self.weight = weight
        self.bias = bias
        self.layout = layout
        outFeatures = out
        inFeatures = inF
        if let bias { precondition(bias.shape == [outFeatures]) }
    }

    /// y (rows × out) of x (rows × in).
    public func forward(_ x: [Float], rows: Int, pool: ComputePool?) -> [Float] {
        var y: [Float]
        switch layout {
        case .outByIn:
            y = Matmul.xWt(x, rows: rows, w: weight.value, out: outFeatures, in: inFeatures, pool: pool)
        case .inByOut:
            precondition(x.count == rows * inFeatures)
            y = [Float](repeating: 0, count: rows * outFeatures)
            x.withUnsafeBufferPointer { xp in weight.value.withUnsafeBufferPointer { wp in y.withUnsafeMutableBufferPointer { yp in
                Matmul.xW(xp.baseAddress!, rows: rows, w: wp.baseAddress!, out: outFeatures, in: inFeatures, into: yp.baseAddress!, pool: pool)
            } } }
        }
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
        if let bias, bias.requiresGrad {
            bias.grad.withUnsafeMutableBufferPointer { g in
                dy.withUnsafeBufferPointer { d in
                    for r in 0..<rows { for j in 0..<outFeatures { g[j] += d[r * outFeatures + j] } }
                }
            }
        }
        switch layout {
        case .outByIn:
            if weight.requiresGrad {
                Matmul.dyTx(dy, x: x, rows: rows, out: outFeatures, in: inFeatures, into: &weight.grad, pool: pool)
            }
            return inputGradient ? Matmul.dyW(dy, rows: rows, w: weight.value, out: outFeatures, in: inFeatures, pool: pool) : nil
        case .inByOut:
            if weight.requiresGrad {
                dy.withUnsafeBufferPointer { dp in x.withUnsafeBufferPointer { xp in weight.grad.withUnsafeMutableBufferPointer { gp in
                    Matmul.xTdy(xp.baseAddress!, dy: dp.baseAddress!, rows: rows, out: outFeatures, in: inFeatures,
                                into: gp.baseAddress!, pool: pool)
                } } }
            }
            guard inputGradient else { return nil }
            var dx = [Float](repeating: 0, count: rows * inFeatures)
            dy.withUnsafeBufferPointer { dp in weight.value.withUnsafeBufferPointer { wp in dx.withUnsafeMutableBufferPointer { xp in
                Matmul.dyWt(dp.baseAddress!, rows: rows, w: wp.baseAddress!, out: outFeatures, in: inFeatures, into: xp.baseAddress!, pool: pool)
            } } }
            return dx
        }
    }
}
