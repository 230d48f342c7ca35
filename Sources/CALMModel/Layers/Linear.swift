import CALMKernels
import Foundation

/// A linear layer y = x·Wᵀ + b whose weight is packed once, at load time, into the kernels'
/// 32-column panel layout (f32, f16 or bf16 storage; compute is f32).
///
/// `@unchecked Sendable`: after `init` nothing is written — the packed panels and the matrix
/// descriptor live in memory this object allocated and only reads (`apply`/`argmax` pass them to
/// the kernels as const pointers), so any number of threads may use one layer at once.
public final class Linear: @unchecked Sendable {
    /// Output features.
    public let outFeatures: Int
    /// Input features.
    public let inFeatures: Int
    /// Storage type of the packed weight.
    public let dtype: calm_dtype
    /// Bias, if the layer has one.
    public let bias: [Float]?
    private let storage: UnsafeMutableRawPointer
    /// The kernels' descriptor of the packed weight: written once in `init`, then only read (no
    /// `&` access to a stored property, which concurrent readers would turn into an exclusivity
    /// violation).
    private let matrix: UnsafeMutablePointer<calm_matrix>

    /// Packs `weight` (row-major `outFeatures × inFeatures` elements of `sourceDType`).
    public init(weight: UnsafeRawPointer, sourceDType: calm_dtype, outFeatures: Int, inFeatures: Int,
                bias: [Float]?, storageDType: calm_dtype) {
        self.outFeatures = outFeatures
        self.inFeatures = inFeatures
        self.dtype = storageDType
        self.bias = bias
        let bytes = max(calm_matrix_packed_bytes(Int32(outFeatures), Int32(inFeatures), storageDType), 64)
        storage = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        matrix = .allocate(capacity: 1)
        matrix.initialize(to: calm_matrix(n: Int32(outFeatures), k: Int32(inFeatures), dtype: storageDType, data: storage))
        calm_matrix_pack(matrix, weight, sourceDType, inFeatures)
    }

    /// Packs an f32 weight given as an array (tests, random models).
    public convenience init(weight: [Float], outFeatures: Int, inFeatures: Int, bias: [Float]?,
                            storageDType: calm_dtype = CALM_F32) {
        precondition(weight.count == outFeatures * inFeatures)
        self.init(weight: weight.withUnsafeBytes { $0.baseAddress! }, sourceDType: CALM_F32,
                  outFeatures: outFeatures, inFeatures: inFeatures, bias: bias, storageDType: storageDType)
    }

    deinit {
        matrix.deallocate()
        storage.deallocate()
    }

    /// Bytes of packed weight storage (what one full pass reads).
    public var weightBytes: Int { outFeatures * inFeatures * calm_dtype_size(dtype) }

    /// Rows per kernel call: a block of inputs stays in cache while every weight panel streams
    /// past it (rows are independent, so blocking never changes a result).
    static let rowBlock = 1024

    /// y[m × out] (+)= x[m × in]·Wᵀ + b.
    public func apply(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>,
                      accumulate: Bool = false, pool: ComputePool) {
        guard rows > 0 else { return }
        let w = UnsafePointer(matrix)
        do {
            var start = 0
            while start < rows {
                let n = min(Self.rowBlock, rows - start)
                let xb = x + start * inFeatures, yb = y + start * outFeatures
                if let bias {
                    bias.withUnsafeBufferPointer { b in
                        calm_linear(pool.raw, xb, Int32(n), inFeatures, w, b.baseAddress, yb, outFeatures, accumulate ? 1 : 0)
                    }
                } else {
                    calm_linear(pool.raw, xb, Int32(n), inFeatures, w, nil, yb, outFeatures, accumulate ? 1 : 0)
                }
                start += n
            }
        }
    }

    /// Array convenience: returns x·Wᵀ + b for `rows` rows.
    public func callAsFunction(_ x: [Float], rows: Int, pool: ComputePool) -> [Float] {
        precondition(x.count == rows * inFeatures)
        var y = [Float](repeating: 0, count: rows * outFeatures)
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in
                apply(xp.baseAddress!, rows: rows, into: yp.baseAddress!, pool: pool)
            }
        }
        return y
    }

    /// Writes row `row` of W (inFeatures floats, widened to f32) into `out`.
    public func unpackRow(_ row: Int, into out: UnsafeMutablePointer<Float>) {
        calm_matrix_unpack_row(matrix, Int32(row), out)
    }

    /// Row-wise argmax of x·Wᵀ (no bias) without materialising the product.
    public func argmax(_ x: [Float], rows: Int, pool: ComputePool) -> [Int32] {
        precondition(x.count == rows * inFeatures)
        var out = [Int32](repeating: 0, count: rows)
        guard rows > 0 else { return out }
        x.withUnsafeBufferPointer { xp in
            out.withUnsafeMutableBufferPointer { op in
                var start = 0
                while start < rows {
                    let n = min(Self.rowBlock, rows - start)
                    calm_linear_argmax(pool.raw, xp.baseAddress! + start * inFeatures, Int32(n), inFeatures, matrix,
                                       op.baseAddress! + start, nil)
                    start += n
                }
            }
        }
        return out
    }
}
