import CALMModel
import Foundation

/// Where the evaluation's random numbers come from.
///
/// Uniforms are in [0, 1) like the reference's `torch.rand`; each model adapter turns them into
/// what it consumes (the CALM head shifts them to [−0.5, 0.5); the discrete model combines two
/// into one 48-bit uniform for inverse-CDF sampling). The seeded source derives an independent
/// stream for every (block, window, step), so results do not depend on how windows are batched.
public protocol EvaluationNoise: AnyObject {
    /// `samples × positions × width` uniforms for the teacher-forced pass of block `block`,
    /// sample-major (the reference's `torch.rand((samples, positions, noise_size))`).
    func teacherForcedUniforms(block: Int, samples: Int, positions: Int, width: Int) -> [Float]
    /// `2 × width` uniforms (sample 1, then sample 2) for continuation step `step` (≥ 1) of the
    /// window that starts at position `window` (K < 4 only).
    func continuationUniforms(block: Int, window: Int, step: Int, width: Int) -> [Float]
    /// `count` standard normals for the energy loss's posterior samples (`m × positions × latent`,
    /// the reference's `torch.randn`).
    func posteriorNormals(block: Int, count: Int) -> [Float]
}

/// Seeded noise: one xoshiro256** stream per (seed, block, window, step), derived by hashing.
public final class SeededEvaluationNoise: EvaluationNoise, Sendable {
    public let seed: UInt64
    public init(seed: UInt64) { self.seed = seed }

    func stream(_ parts: UInt64...) -> SeededRandomness {
        var h = seed ^ 0x243F_6A88_85A3_08D3
        for p in parts {
            h = (h ^ p) &* 0x9E37_79B9_7F4A_7C15
            h ^= h >> 29
            h = h &* 0xBF58_476D_1CE4_E5B9
            h ^= h >> 32
        }
        return SeededRandomness(seed: h)
    }

    public func teacherForcedUniforms(block: Int, samples: Int, positions: Int, width: Int) -> [Float] {
        stream(UInt64(block), 0, 0).uniformFloats(count: samples * positions * width)
    }

    public func continuationUniforms(block: Int, window: Int, step: Int, width: Int) -> [Float] {
        stream(UInt64(block), UInt64(window) + 1, UInt64(step)).uniformFloats(count: 2 * width)
    }

    public func posteriorNormals(block: Int, count: Int) -> [Float] {
        let random = stream(UInt64(block), 0, 1)
        var out = [Float]()
        out.reserveCapacity(count + 1)
        while out.count < count {
            // Box–Muller on (0, 1] × [0, 1).
            let u1 = 1 - random.uniformDouble(), u2 = random.uniformDouble()
            let r = (-2 * log(u1)).squareRoot()
            out.append(Float(r * cos(2 * .pi * u2)))
            out.append(Float(r * sin(2 * .pi * u2)))
        }
        return Array(out.prefix(count))
    }
}

/// Replays recorded values in the order they are asked for (golden fixtures' injected
/// `torch.rand` / `torch.randn`). With K < 4 the reference draws continuation noise window by
/// window, so replaying it needs `EvaluationOptions.continuationGroup = 1`. Running out sets
/// `exhausted` and yields 0.5 (uniforms) or 0 (normals), so a check fails instead of crashing.
///
/// `@unchecked Sendable`: the replay cursors are unsynchronised `var`s; an instance replays one
/// check's recorded noise and is read only by the evaluation it is passed to, which asks for noise
/// on its own thread (never from the pool's tasks).
public final class RecordedEvaluationNoise: EvaluationNoise, @unchecked Sendable {
    private var uniforms: [Float]
    private var normals: [Float]
    private var uniformIndex = 0, normalIndex = 0
    public private(set) var exhausted = false

    public init(uniforms: [Float], normals: [Float] = []) {
        self.uniforms = uniforms
        self.normals = normals
    }

    private func take(_ count: Int) -> [Float] {
        guard uniformIndex + count <= uniforms.count else {
            exhausted = true
            return [Float](repeating: 0.5, count: count)
        }
        defer { uniformIndex += count }
        return Array(uniforms[uniformIndex..<(uniformIndex + count)])
    }

    public func teacherForcedUniforms(block: Int, samples: Int, positions: Int, width: Int) -> [Float] {
        take(samples * positions * width)
    }

    public func continuationUniforms(block: Int, window: Int, step: Int, width: Int) -> [Float] { take(2 * width) }

    public func posteriorNormals(block: Int, count: Int) -> [Float] {
        guard normalIndex + count <= normals.count else {
            exhausted = true
            return [Float](repeating: 0, count: count)
        }
        defer { normalIndex += count }
        return Array(normals[normalIndex..<(normalIndex + count)])
    }

    /// Whether every recorded value was used.
    public var fullyConsumed: Bool { uniformIndex == uniforms.count && normalIndex == normals.count }
}
