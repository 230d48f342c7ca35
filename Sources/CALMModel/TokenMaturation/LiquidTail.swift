import CALMKernels
import Foundation

/// The K uncommitted vectors of one sequence (spec §1.1): a K×d fp32 buffer, slot 0 the front (next
/// to commit), slot K−1 the newest embryo. fp32 throughout because commits hinge on near-ties
/// (spec §6.6). Each vector carries its own guidance-free state along when the tail shifts: its
/// target EMA and, for diagnostics, the argmax it projected to after each update.
public struct LiquidTail: Sendable, Equatable {
    /// K.
    public let length: Int
    /// d.
    public let dim: Int
    /// length × dim floats, slot 0 first.
    public internal(set) var vectors: [Float]
    /// Per slot: the target EMA m_j (valid where `hasTargetMean`).
    var targetMeans: [Float]
    var hasTargetMean: [Bool]
    /// Per slot: the nearest embedding after each update (only filled with diagnostics on).
    var trajectories: [[Int32]]

    /// A tail of `length` fresh embryos drawn from `randomness` (slot 0 first), each
    /// N(0, standardDeviation²·I).
    public init(length: Int, dim: Int, standardDeviation: Float, randomness: SequenceRandomness) {
        self.length = length
        self.dim = dim
        var v: [Float] = []
        v.reserveCapacity(length * dim)
        for _ in 0..<length { v += Self.gaussian(count: dim, standardDeviation: standardDeviation, randomness: randomness) }
        vectors = v
        targetMeans = [Float](repeating: 0, count: length * dim)
        hasTargetMean = [Bool](repeating: false, count: length)
        trajectories = [[Int32]](repeating: [], count: length)
    }

    /// Slot `j`'s vector.
    public func slot(_ j: Int) -> [Float] { Array(vectors[(j * dim)..<((j + 1) * dim)]) }

    /// `count` independent N(0, standardDeviation²) values: Box–Muller on pairs of the stream's
    /// doubles, so a seed gives the same embryos on every machine and in every batch.
    public static func gaussian(count: Int, standardDeviation: Float, randomness: SequenceRandomness) -> [Float] {
        var out = [Float](repeating: 0, count: count)
        var i = 0
        while i < count {
            let u1 = 1 - randomness.uniformDouble()          // (0, 1]: log stays finite
            let u2 = randomness.uniformDouble()
            let r = (-2 * log(u1)).squareRoot() * Double(standardDeviation)
            out[i] = Float(r * cos(2 * Double.pi * u2))
            if i + 1 < count { out[i + 1] = Float(r * sin(2 * Double.pi * u2)) }
            i += 2
        }
        return out
    }

    /// The contraction update z̃_j += η_j·(ẑ_j − z̃_j) for every slot (`predictions` is K×d).
    mutating func update(toward predictions: [Float], rates: [Float]) {
        let d = dim, n = min(slots, predictions.count / d, rates.count)
        vectors.withUnsafeMutableBufferPointer { v in
            predictions.withUnsafeBufferPointer { p in
                for j in 0..<n where rates[j] != 0 {
                    calm_lerp(p.baseAddress! + j * d, rates[j], v.baseAddress! + j * d, d)
                }
            }
        }
    }

    /// Replaces each prediction by its vector's running mean m ← β·m + (1−β)·ẑ (a vector's first
    /// prediction starts its mean, so the EMA has no bias toward zero).
    mutating func smoothTargets(_ predictions: inout [Float], beta: Float) {
        let d = dim
        for j in 0..<min(slots, predictions.count / d) {
            let range = (j * d)..<((j + 1) * d)
            if hasTargetMean[j] {
                targetMeans.withUnsafeMutableBufferPointer { m in
                    predictions.withUnsafeBufferPointer { p in
                        calm_lerp(p.baseAddress! + j * d, 1 - beta, m.baseAddress! + j * d, d)
                    }
                }
            } else {
                targetMeans.replaceSubrange(range, with: predictions[range])
                hasTargetMean[j] = true
            }
            predictions.replaceSubrange(range, with: targetMeans[range])
        }
    }

    /// z̃_j += scale_j·ξ_j with ξ_j ~ N(0, I) drawn slot by slot from `randomness`.
    mutating func addNoise(scales: [Float], randomness: SequenceRandomness) {
        let d = dim
        for j in 0..<min(slots, scales.count) {
            let xi = Self.gaussian(count: d, standardDeviation: 1, randomness: randomness)
            guard scales[j] != 0 else { continue }
            vectors.withUnsafeMutableBufferPointer { v in
                calm_axpy(scales[j], xi, v.baseAddress! + j * d, Int32(d))
            }
        }
    }

    /// Rescales every nonzero vector to norm `radius`.
    mutating func renormalize(radius: Float) {
        let d = dim, count = slots
        vectors.withUnsafeMutableBufferPointer { v in
            for j in 0..<count {
                let row = v.baseAddress! + j * d
                let norm = calm_dot(row, row, Int32(d)).squareRoot()
                if norm > 0 && norm.isFinite { calm_scale(radius / norm, row, d) }
            }
        }
    }

    /// Records each slot's current nearest embedding (diagnostics).
    mutating func record(argmaxes: [Int32]) {
        for j in 0..<min(slots, argmaxes.count) { trajectories[j].append(argmaxes[j]) }
    }

    /// Drops the front slot (just committed) and moves every vector, with its state, one slot
    /// forward; appends `embryo` as the newest slot, or leaves the tail one shorter when nil (the
    /// generation stopped). Returns the front's argmax trajectory.
    @discardableResult
    mutating func shift(appending embryo: [Float]?) -> [Int32] {
        let d = dim
        let trajectory = trajectories.removeFirst()
        vectors.removeFirst(d)
        targetMeans.removeFirst(d)
        hasTargetMean.removeFirst()
        if let embryo {
            vectors += embryo
            targetMeans += [Float](repeating: 0, count: d)
            hasTargetMean.append(false)
            trajectories.append([])
        }
        return trajectory
    }

    /// Slots currently held (K, or K−1 after a final shift without an embryo).
    public var slots: Int { vectors.count / max(dim, 1) }
}
