import CALMKernels
import CALMModel

/// Row-major f32 matrix products for training, on the `calm_gemm_*` kernels.
public enum Matmul {
    /// Multiply-add FLOPs (2·m·n·k) of the products issued through this type and the attention
    /// kernels' useful (causal) products, for throughput reports. Training drives kernels from one
    /// thread at a time; the count is advisory.
    nonisolated(unsafe) public static var flopCount: Double = 0

    /// y[rows × out] (+)= x[rows × in] · Wᵀ, W being out × in.
    public static func xWt(_ x: UnsafePointer<Float>, rows: Int, w: UnsafePointer<Float>, out: Int, in inF: Int,
                           into y: UnsafeMutablePointer<Float>, accumulate: Bool = false, pool: ComputePool?) {
        flopCount += 2 * Double(rows) * Double(out) * Double(inF)
        calm_gemm_nt(pool?.raw, Int32(rows), Int32(out), Int32(inF), x, inF, w, inF, y, out, accumulate ? 1 : 0)
    }

    /// dx[rows × in] (+)= dy[rows × out] · W, W being out × in.
    public static func dyW(_ dy: UnsafePointer<Float>, rows: Int, w: UnsafePointer<Float>, out: Int, in inF: Int,
                           into dx: UnsafeMutablePointer<Float>, accumulate: Bool = false, pool: ComputePool?) {
        flopCount += 2 * Double(rows) * Double(out) * Double(inF)
        calm_gemm_nn(pool?.raw, Int32(rows), Int32(inF), Int32(out), dy, out, w, inF, dx, inF, accumulate ? 1 : 0)
    }

    /// dW[out × in] (+)= dyᵀ · x over `rows` rows.
    public static func dyTx(_ dy: UnsafePointer<Float>, x: UnsafePointer<Float>, rows: Int, out: Int, in inF: Int,
                            into dw: UnsafeMutablePointer<Float>, accumulate: Bool = true, pool: ComputePool?) {
        flopCount += 2 * Double(rows) * Double(out) * Double(inF)
        calm_gemm_tn(pool?.raw, Int32(out), Int32(inF), Int32(rows), dy, out, x, inF, dw, inF, accumulate ? 1 : 0)
    }

    /// y[rows × out] = x[rows × in] · W, W being in × out (a Hugging Face `Conv1D` weight).
    public static func xW(_ x: UnsafePointer<Float>, rows: Int, w: UnsafePointer<Float>, out: Int, in inF: Int,
                          into y: UnsafeMutablePointer<Float>, pool: ComputePool?) {
        flopCount += 2 * Double(rows) * Double(out) * Double(inF)
        calm_gemm_nn(pool?.raw, Int32(rows), Int32(out), Int32(inF), x, inF, w, out, y, out, 0)
    }

    /// dx[rows × in] = dy[rows × out] · Wᵀ, W being in × out.
    public static func dyWt(_ dy: UnsafePointer<Float>, rows: Int, w: UnsafePointer<Float>, out: Int, in inF: Int,
                            into dx: UnsafeMutablePointer<Float>, pool: ComputePool?) {
        flopCount += 2 * Double(rows) * Double(out) * Double(inF)
        calm_gemm_nt(pool?.raw, Int32(rows), Int32(inF), Int32(out), dy, out, w, out, dx, inF, 0)
    }

    /// dW[in × out] += xᵀ · dy over `rows` rows.
    public static func xTdy(_ x: UnsafePointer<Float>, dy: UnsafePointer<Float>, rows: Int, out: Int, in inF: Int,
                            into dw: UnsafeMutablePointer<Float>, pool: ComputePool?) {
        flopCount += 2 * Double(rows) * Double(out) * Double(inF)
        calm_gemm_tn(pool?.raw, Int32(inF), Int32(out), Int32(rows), x, inF, dy, out, dw, out, 1)
    }

    // Array conveniences.

    public static func xWt(_ x: [Float], rows: Int, w: [Float], out: Int, in inF: Int, pool: ComputePool?) -> [Float] {
        precondition(x.count == rows * inF && w.count == out * inF)
        var y = [Float](repeating: 0, count: rows * out)
        x.withUnsafeBufferPointer { xp in w.withUnsafeBufferPointer { wp in y.withUnsafeMutableBufferPointer { yp in
            xWt(xp.baseAddress!, rows: rows, w: wp.baseAddress!, out: out, in: inF, into: yp.baseAddress!, pool: pool)
        } } }
        return y
    }

    public static func dyW(_ dy: [Float], rows: Int, w: [Float], out: Int, in inF: Int, pool: ComputePool?) -> [Float] {
        precondition(dy.count == rows * out && w.count == out * inF)
        var dx = [Float](repeating: 0, count: rows * inF)
        dy.withUnsafeBufferPointer { dp in w.withUnsafeBufferPointer { wp in dx.withUnsafeMutableBufferPointer { xp in
            dyW(dp.baseAddress!, rows: rows, w: wp.baseAddress!, out: out, in: inF, into: xp.baseAddress!, pool: pool)
        } } }
        return dx
    }

    /// dw += dyᵀ · x.
    public static func dyTx(_ dy: [Float], x: [Float], rows: Int, out: Int, in inF: Int, into dw: inout [Float], pool: ComputePool?) {
        precondition(dy.count == rows * out && x.count == rows * inF && dw.count == out * inF)
        dy.withUnsafeBufferPointer { dp in x.withUnsafeBufferPointer { xp in dw.withUnsafeMutableBufferPointer { wp in
            dyTx(dp.baseAddress!, x: xp.baseAddress!, rows: rows, out: out, in: inF, into: wp.baseAddress!, pool: pool)
        } } }
    }
}
