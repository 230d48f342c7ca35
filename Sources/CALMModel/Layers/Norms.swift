import CALMKernels

/// Llama RMSNorm (no bias, no mean subtraction).
public struct RMSNorm: Sendable {
    public let weight: [Float]
    public let eps: Float
    public init(weight: [Float], eps: Float) { self.weight = weight; self.eps = eps }

    /// Normalises `rows` rows of `weight.count` floats in place.
    public func apply(_ x: inout [Float], rows: Int) {
        let n = weight.count
        precondition(x.count >= rows * n)
        x.withUnsafeMutableBufferPointer { p in
            weight.withUnsafeBufferPointer { w in
                calm_rmsnorm(p.baseAddress!, w.baseAddress!, p.baseAddress!, Int32(rows), Int32(n), eps)
            }
        }
    }

    /// Returns the normalised copy.
    public func callAsFunction(_ x: [Float], rows: Int) -> [Float] {
        var y = x
        apply(&y, rows: rows)
        return y
    }
}

/// LayerNorm with affine weight and bias (the reference uses eps 1e-6 in `embed_proj` and the head;
/// GPT-2 takes `layer_norm_epsilon` from its config).
public struct LayerNorm: Sendable {
    /// Per-feature scale.
    public let weight: [Float]
    /// Per-feature shift.
    public let bias: [Float]
    /// Added to the (biased) variance.
    public let eps: Float
    /// A LayerNorm over `weight.count` features.
    public init(weight: [Float], bias: [Float], eps: Float) { self.weight = weight; self.bias = bias; self.eps = eps }

    /// Normalises `rows` rows of `weight.count` floats in place.
    public func apply(_ x: inout [Float], rows: Int) {
        let n = weight.count
        precondition(x.count >= rows * n)
        x.withUnsafeMutableBufferPointer { p in
            weight.withUnsafeBufferPointer { w in
                bias.withUnsafeBufferPointer { b in
                    calm_layernorm(p.baseAddress!, w.baseAddress!, b.baseAddress!, p.baseAddress!, Int32(rows), Int32(n), eps)
                }
            }
        }
    }

    /// Returns the normalised copy.
    public func callAsFunction(_ x: [Float], rows: Int) -> [Float] {
        var y = x
        apply(&y, rows: rows)
        return y
    }
}

/// Element-wise activations on arrays.
enum Activation {
    static func silu(_ x: inout [Float]) {
        let n = x.count
        x.withUnsafeMutableBufferPointer { calm_silu($0.baseAddress!, $0.baseAddress!, n) }
    }

    /// GPT-2's `gelu_new` (tanh approximation) in place.
    static func geluTanh(_ x: inout [Float]) {
        let n = x.count
        x.withUnsafeMutableBufferPointer { calm_gelu_tanh($0.baseAddress!, $0.baseAddress!, n) }
    }
}
