import CALMKernels
import Foundation

/// SiLU, x·σ(x). Backward: σ(x)·(1 + x·(1 − σ(x))).
public enum SiLUOp {
    @inline(__always) static func sigmoid(_ x: Float) -> Float { 1 / (1 + expf(-x)) }

    public static func forward(_ x: [Float]) -> [Float] {
        var y = [Float](repeating: 0, count: x.count)
        y.withUnsafeMutableBufferPointer { calm_silu(x, $0.baseAddress!, x.count) }
        return y
    }

    public static func backward(_ dy: [Float], input x: [Float]) -> [Float] {
        precondition(dy.count == x.count)
        var dx = [Float](repeating: 0, count: x.count)
        dx.withUnsafeMutableBufferPointer { calm_train_silu_backward(x, dy, $0.baseAddress!, x.count) }
        return dx
    }
}

/// SwiGLU, SiLU(gate) ⊙ up, element-wise.
public enum SwiGLUOp {
    public static func forward(gate: [Float], up: [Float]) -> [Float] {
        precondition(gate.count == up.count)
        var y = [Float](repeating: 0, count: gate.count)
        y.withUnsafeMutableBufferPointer { calm_swiglu(gate, up, $0.baseAddress!, gate.count) }
        return y
    }

    public static func backward(_ dy: [Float], gate: [Float], up: [Float]) -> (dGate: [Float], dUp: [Float]) {
        precondition(dy.count == gate.count && up.count == gate.count)
        var dg = [Float](repeating: 0, count: gate.count), du = dg
        dg.withUnsafeMutableBufferPointer { a in du.withUnsafeMutableBufferPointer { b in
            calm_train_swiglu_backward(gate, up, dy, a.baseAddress!, b.baseAddress!, gate.count)
        } }
        return (dg, du)
    }
}

/// GPT-2's `gelu_new`, the tanh approximation 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), with the
/// inference kernel (`calm_gelu_tanh`) so training and decoding compute the same values. Backward:
/// s + x·s·(1 − s)·k·(1 + 3·0.044715·x²) with s = σ(k·(x + 0.044715·x³)), k = 2√(2/π).
public enum GELUTanhOp {
    /// y = gelu_new(x), element-wise.
    public static func forward(_ x: [Float]) -> [Float] {
        var y = [Float](repeating: 0, count: x.count)
        y.withUnsafeMutableBufferPointer { calm_gelu_tanh(x, $0.baseAddress!, x.count) }
        return y
    }

    /// dx given dy and the forward's input.
    public static func backward(_ dy: [Float], input x: [Float]) -> [Float] {
        precondition(dy.count == x.count)
        var dx = [Float](repeating: 0, count: x.count)
        dx.withUnsafeMutableBufferPointer { calm_train_gelu_tanh_backward(x, dy, $0.baseAddress!, x.count) }
        return dx
    }
}
