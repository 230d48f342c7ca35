import CALMKernels

/// Deterministic xorshift generator for test data.
struct TestRNG {
    var state: UInt64
    init(_ seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 | 1 }
    mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }
    /// Uniform in [-1, 1).
    mutating func float() -> Float { Float(Int64(next() >> 11) - (1 << 52)) / Float(1 << 52) }
    mutating func floats(_ n: Int, scale: Float = 1) -> [Float] { (0..<n).map { _ in float() * scale } }
}

/// A packed weight matrix owning its 64-byte-aligned storage.
final class PackedMatrix {
    var matrix: calm_matrix
    let raw: UnsafeMutableRawPointer
    let bytes: Int

    /// Packs row-major f32 weights (n rows of k) into `dtype`.
    init(n: Int, k: Int, dtype: calm_dtype, weights: [Float]) {
        bytes = max(calm_matrix_packed_bytes(Int32(n), Int32(k), dtype), 64)
        raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        raw.initializeMemory(as: UInt8.self, repeating: 0xAB, count: bytes)
        matrix = calm_matrix(n: Int32(n), k: Int32(k), dtype: dtype, data: raw)
        weights.withUnsafeBufferPointer { src in
            calm_matrix_pack(&matrix, src.baseAddress, CALM_F32, k)
        }
    }
    deinit { raw.deallocate() }

    /// Row j as f32 (what the kernels multiply with).
    func row(_ j: Int) -> [Float] {
        var out = [Float](repeating: 0, count: Int(matrix.k))
        withUnsafePointer(to: &matrix) { m in calm_matrix_unpack_row(m, Int32(j), &out) }
        return out
    }
}

/// y = x W^T + b in double precision.
func referenceLinear(x: [Float], m: Int, k: Int, w: [[Float]], bias: [Float]?) -> (y: [Double], scale: [Double]) {
    let n = w.count
    var y = [Double](repeating: 0, count: m * n)
    var s = [Double](repeating: 0, count: m * n)
    for i in 0..<m {
        for j in 0..<n {
            var acc = 0.0, mag = 0.0
            for kk in 0..<k {
                let p = Double(x[i * k + kk]) * Double(w[j][kk])
                acc += p
                mag += abs(p)
            }
            if let bias { acc += Double(bias[j]); mag += abs(Double(bias[j])) }
            y[i * n + j] = acc
            s[i * n + j] = mag
        }
    }
    return (y, s)
}

/// Runs calm_linear and returns y (m x n, contiguous).
func runLinear(_ pool: OpaquePointer?, x: [Float], m: Int, k: Int, w: PackedMatrix, bias: [Float]?,
               yInit: [Float]? = nil, accumulate: Bool = false) -> [Float] {
    let n = Int(w.matrix.n)
    var y = yInit ?? [Float](repeating: .nan, count: m * n)
    x.withUnsafeBufferPointer { xp in
        withUnsafePointer(to: &w.matrix) { wp in
            if let bias {
                bias.withUnsafeBufferPointer { bp in
                    calm_linear(pool, xp.baseAddress, Int32(m), k, wp, bp.baseAddress, &y, n, accumulate ? 1 : 0)
                }
            } else {
                calm_linear(pool, xp.baseAddress, Int32(m), k, wp, nil, &y, n, accumulate ? 1 : 0)
            }
        }
    }
    return y
}

func runArgmax(_ pool: OpaquePointer?, x: [Float], m: Int, k: Int, w: PackedMatrix) -> ([Int32], [Float]) {
    var idx = [Int32](repeating: -7, count: m)
    var mx = [Float](repeating: .nan, count: m)
    x.withUnsafeBufferPointer { xp in
        withUnsafePointer(to: &w.matrix) { wp in
            calm_linear_argmax(pool, xp.baseAddress, Int32(m), k, wp, &idx, &mx)
        }
    }
    return (idx, mx)
}

func bits(_ a: [Float]) -> [UInt32] { a.map(\.bitPattern) }

let allISAs: [calm_isa] = [CALM_ISA_PORTABLE, CALM_ISA_AVX2, CALM_ISA_AVX512].filter {
    $0.rawValue <= calm_isa_detected().rawValue
}
