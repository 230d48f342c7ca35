import CALMKernels
import CALMModel
import Foundation

/// Learning rate: linear warmup from 0 to `peak` over `warmupSteps`, then constant, or, with
/// `decaySteps`, a cosine decay from `peak` after the warm-up to `finalRatio`·peak at step
/// `decaySteps` (and that floor after it).
public struct LearningRateSchedule: Sendable, Equatable {
    public var peak: Float
    public var warmupSteps: Int
    /// Step at which the cosine decay reaches its floor; nil: constant after the warm-up.
    public var decaySteps: Int?
    /// The floor of the cosine decay as a fraction of `peak`.
    public var finalRatio: Float

    public init(peak: Float, warmupSteps: Int = 0, decaySteps: Int? = nil, finalRatio: Float = 0.1) {
        self.peak = peak
        self.warmupSteps = warmupSteps
        self.decaySteps = decaySteps
        self.finalRatio = finalRatio
    }

    /// LR for 1-based step `step`.
    public func rate(step: Int) -> Float {
        if warmupSteps > 0, step < warmupSteps { return peak * Float(step) / Float(warmupSteps) }
        guard let decaySteps, decaySteps > warmupSteps else { return peak }
        let progress = min(max(Double(step - warmupSteps) / Double(decaySteps - warmupSteps), 0), 1)
        let cosine = 0.5 * (1 + cos(Double.pi * progress))
        return peak * Float(Double(finalRatio) + (1 - Double(finalRatio)) * cosine)
    }
}

/// The warm-up + constant schedule (a `LearningRateSchedule` without decay).
public typealias WarmupConstantSchedule = LearningRateSchedule

/// AdamW (decoupled weight decay, PyTorch's formulation) with global-norm gradient clipping.
///
/// Per step t: g ← g·min(1, maxNorm/(‖g‖ + 1e-6)) over all parameters; then for each parameter
/// θ ← θ·(1 − lr·wd) (decayed parameters only), m ← β1·m + (1−β1)·g, v ← β2·v + (1−β2)·g²,
/// θ ← θ − lr·(m/(1−β1ᵗ)) / (sqrt(v/(1−β2ᵗ)) + eps).
///
/// `@unchecked Sendable`: `step`, the moments and `pool` are unsynchronised `var`s; an optimiser
/// has one owner at a time (the training loop that calls `apply`), and `Sendable` only lets it move
/// to another thread or task with its model; nothing in the package uses one from two threads at
/// once.
public final class AdamW: @unchecked Sendable {
    public struct Options: Sendable, Equatable {
        public var schedule: LearningRateSchedule
        public var beta1: Float = 0.9
        public var beta2: Float = 0.95
        public var eps: Float = 1e-8
        public var weightDecay: Float = 0.1
        /// Global gradient-norm limit; nil disables clipping.
        public var maxGradNorm: Float? = 1.0

        /// `decaySteps`: cosine decay to `finalRatio`·learningRate at that step (nil: constant after warm-up).
        public init(learningRate: Float, warmupSteps: Int = 0, beta1: Float = 0.9, beta2: Float = 0.95, eps: Float = 1e-8,
                    weightDecay: Float = 0.1, maxGradNorm: Float? = 1.0, decaySteps: Int? = nil, finalRatio: Float = 0.1) {
            schedule = LearningRateSchedule(peak: learningRate, warmupSteps: warmupSteps, decaySteps: decaySteps, finalRatio: finalRatio)
            self.beta1 = beta1; self.beta2 = beta2; self.eps = eps
            self.weightDecay = weightDecay; self.maxGradNorm = maxGradNorm
        }
    }

    public private(set) var options: Options
    public let parameters: ParameterSet
    /// Steps taken so far.
    public private(set) var step = 0
    /// First and second moments by parameter name.
    public private(set) var firstMoment: [String: [Float]] = [:]
    public private(set) var secondMoment: [String: [Float]] = [:]
    /// Which parameters get weight decay (default: matrices, i.e. not biases or norm weights,
    /// as Hugging Face's Trainer groups them).
    public let decays: @Sendable (Parameter) -> Bool

    /// Threads for the update (nil: the calling thread only).
    public var pool: ComputePool? = .shared

    public init(parameters: ParameterSet, options: Options,
                decays: @escaping @Sendable (Parameter) -> Bool = { $0.shape.count >= 2 }) {
        self.parameters = parameters
        self.options = options
        self.decays = decays
        for p in parameters.parameters where p.requiresGrad {
            firstMoment[p.name] = [Float](repeating: 0, count: p.count)
            secondMoment[p.name] = [Float](repeating: 0, count: p.count)
        }
    }

    /// Sets the step at which the cosine decay reaches its floor, for a run whose length is known
    /// only once its first step has been measured (`TrainingRunOptions.flopBudget`); call it before
    /// the first `apply` that should use it.
    public func setDecaySteps(_ steps: Int) {
        options.schedule.decaySteps = steps
    }

    /// Restores optimiser state (resume).
    public func restore(step: Int, first: [String: [Float]], second: [String: [Float]]) {
        self.step = step
        for (k, v) in first where firstMoment[k]?.count == v.count { firstMoment[k] = v }
        for (k, v) in second where secondMoment[k]?.count == v.count { secondMoment[k] = v }
    }

    public struct StepInfo: Sendable {
        public var learningRate: Float
        /// Gradient norm before clipping.
        public var gradientNorm: Double
        public var clipped: Bool
    }

    /// Applies one update from the current gradients (which are clipped in place).
    @discardableResult
    public func apply() -> StepInfo {
        step += 1
        let lr = options.schedule.rate(step: step)
        let norm = parameters.gradientNorm()
        var scale: Float = 1
        if let maxNorm = options.maxGradNorm, norm > Double(maxNorm) {
            scale = Float(Double(maxNorm) / (norm + 1e-6))
        }
        let b1 = options.beta1, b2 = options.beta2
        let c1 = 1 - powf(b1, Float(step)), c2 = 1 - powf(b2, Float(step))
        let eps = options.eps
        for p in parameters.parameters where p.requiresGrad {
            let decay = decays(p) ? 1 - lr * options.weightDecay : 1
            // In place (no copies of the moments or the gradient).
            firstMoment[p.name]!.withUnsafeMutableBufferPointer { m in
                secondMoment[p.name]!.withUnsafeMutableBufferPointer { v in
                    p.grad.withUnsafeMutableBufferPointer { g in
                        p.value.withUnsafeMutableBufferPointer { w in
                            calm_train_adamw(pool?.raw, w.baseAddress!, g.baseAddress!, m.baseAddress!, v.baseAddress!, w.count,
                                             lr, b1, b2, c1, c2, eps, decay, scale)
                        }
                    }
                }
            }
        }
        return StepInfo(learningRate: lr, gradientNorm: norm, clipped: scale != 1)
    }
}
