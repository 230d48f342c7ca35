import Foundation

/// SiLU, x·σ(x). Backward: σ(x)·(1 + x·(1 − σ(x))).
public enum SiLUOp {
    @inline(__always) static func sigmoid(_ x: Float) -> Float { 1 / (1 + expf(-x)) }

    public static func forward(_ x: [Float]) -> [Float] { x.map { $0 * sigmoid($0) } }

    public static func backward(_ dy: [Float], input x: [Float]) -> [Float] {
        precondition(dy.count == x.count)
        var dx = [Float](repeating: 0, count: x.count)
        for i in 0..<x.count {
            let s = sigmoid(x[i])
            dx[i] = dy[i] * s * (1 + x[i] * (1 - s))
        }
        return dx
    }
}

/// SwiGLU, SiLU(gate) ⊙ up, element-wise.
public enum SwiGLUOp {
    public static func forward(gate: [Float], up: [Float]) -> [Float] {
        precondition(gate.count == up.count)
        var y = [Float](repeating: 0, count: gate.count)
        for i in 0..<gate.count { let g = gate[i]; y[i] = g * SiLUOp.sigmoid(g) * up[i] }
        return y
    }

    public static func backward(_ dy: [Float], gate: [Float], up: [Float]) -> (dGate: [Float], dUp: [Float]) {
        var dg = [Float](repeating: 0, count: gate.count), du = dg
        for i in 0..<gate.count {
            let g = gate[i], s = SiLUOp.sigmoid(g)
            du[i] = dy[i] * g * s
            dg[i] = dy[i] * up[i] * s * (1 + g * (1 - s))
        }
        return (dg, du)
    }
}
