import CALMKernels
import Foundation

/// The embedding matrix E with every row rescaled to one radius R (spec §1.1), packed once for the
/// kernels' vocabulary projection. Because all ‖e_i‖ = R, the commit rule argmax_i ⟨z, e_i⟩ is also
/// max cosine and min distance (spec §2.5); it runs through `calm_linear_argmax`, the LM-head kernel,
/// whose ties go to the lowest index. Kept in fp32 whatever the load dtype: near-ties are common and a
/// rounded E could flip commits (spec §6.6).
public final class NearestEmbedding: Sendable {
    /// |V|.
    public let vocabularySize: Int
    /// d.
    public let dim: Int
    /// R.
    public let radius: Float
    let matrix: Linear

    /// Rescales the rows of `weights` (vocabularySize × dim) to `radius`, or to their mean norm when
    /// `radius` is nil. A zero or non-finite row is an error naming `file` and `key`.
    public init(weights: [Float], vocabularySize: Int, dim: Int, radius: Float?, file: String = "embedding", key: String = "embedding") throws {
        guard vocabularySize > 0, dim > 0, weights.count == vocabularySize * dim else {
            throw ModelError.weightShapeMismatch(file: file, key: key, expected: [vocabularySize, dim], actual: [weights.count])
        }
        var rows = weights
        var norms = [Float](repeating: 0, count: vocabularySize)
        var total = 0.0
        try rows.withUnsafeMutableBufferPointer { p in
            for i in 0..<vocabularySize {
                let row = p.baseAddress! + i * dim
                let norm = calm_dot(row, row, Int32(dim)).squareRoot()
                guard norm > 0 && norm.isFinite else {
                    throw ModelError.invalidConfig(file: file, key: key, reason: "row \(i) has norm \(norm): it cannot be rescaled to the embedding radius")
                }
                norms[i] = norm
                total += Double(norm)
            }
        }
        let r = radius ?? Float(total / Double(vocabularySize))
        guard r.isFinite && r > 0 else {
            throw ModelError.invalidConfig(file: file, key: "embedding_radius", reason: "must be a positive number, got \(r)")
        }
        rows.withUnsafeMutableBufferPointer { p in
            for i in 0..<vocabularySize { calm_scale(r / norms[i], p.baseAddress! + i * dim, dim) }
        }
        self.vocabularySize = vocabularySize
        self.dim = dim
        self.radius = r
        matrix = Linear(weight: rows, outFeatures: vocabularySize, inFeatures: dim, bias: nil, storageDType: CALM_F32)
    }

    /// Writes e_id (dim floats) into `out`.
    public func lookup(_ id: Int, into out: UnsafeMutablePointer<Float>) {
        precondition(id >= 0 && id < vocabularySize, "token id \(id) outside the embedding (\(vocabularySize) rows)")
        matrix.unpackRow(id, into: out)
    }

    /// e_id.
    public func vector(_ id: Int) -> [Float] {
        var out = [Float](repeating: 0, count: dim)
        out.withUnsafeMutableBufferPointer { lookup(id, into: $0.baseAddress!) }
        return out
    }

    /// The commit of each of `rows` vectors: argmax_i ⟨z, e_i⟩, lowest id on ties.
    public func commit(_ z: [Float], rows: Int, pool: ComputePool) -> [Int] {
        guard rows > 0 else { return [] }
        return matrix.argmax(z, rows: rows, pool: pool).map(Int.init)
    }

    /// ⟨z, e_i⟩ for every id (rows × |V|).
    public func scores(_ z: [Float], rows: Int, pool: ComputePool) -> [Float] {
        guard rows > 0 else { return [] }
        return matrix(z, rows: rows, pool: pool)
    }
}
