import CALMKernels
import Foundation

/// One trainable tensor: row-major f32 values (linear weights are out × in, like PyTorch) and a
/// gradient buffer of the same size that backward passes accumulate into.
///
/// `@unchecked Sendable`: `value`, `grad` and `requiresGrad` are unsynchronised `var`s; a parameter
/// belongs to one model, which has one owner at a time (the training step or optimiser using it),
/// and `Sendable` only lets a model move to another thread or task; nothing in the package touches
/// one from two threads at once.
public final class Parameter: @unchecked Sendable {
    /// The reference's `named_parameters()` name (e.g. `encoder.squeeze_layer.weight`).
    public let name: String
    public let shape: [Int]
    public var value: [Float]
    public var grad: [Float]
    /// Frozen parameters (the autoencoder during CALM training) get no gradient.
    public var requiresGrad: Bool

    public init(name: String, shape: [Int], value: [Float], requiresGrad: Bool = true) {
        precondition(value.count == shape.reduce(1, *), "\(name): \(value.count) values for shape \(shape)")
        self.name = name
        self.shape = shape
        self.value = value
        self.grad = [Float](repeating: 0, count: value.count)
        self.requiresGrad = requiresGrad
    }

    public var count: Int { value.count }

    public func zeroGrad() {
        grad.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
    }

    /// Adds `delta` into the gradient (no-op when frozen).
    func accumulate(_ delta: [Float]) {
        guard requiresGrad else { return }
        precondition(delta.count == grad.count)
        grad.withUnsafeMutableBufferPointer { g in
            delta.withUnsafeBufferPointer { d in
                for i in 0..<g.count { g[i] += d[i] }
            }
        }
    }
}

/// An ordered set of uniquely named parameters (the model's `named_parameters()`).
///
/// `@unchecked Sendable`: `parameters` and `index` are unsynchronised `var`s, written by `add`
/// while a model is built; afterwards the set has one owner at a time (like its `Parameter`s), and
/// `Sendable` only lets a model move to another thread or task.
public final class ParameterSet: @unchecked Sendable {
    public private(set) var parameters: [Parameter] = []
    private var index: [String: Int] = [:]

    public init(_ parameters: [Parameter] = []) {
        for p in parameters { add(p) }
    }

    public func add(_ p: Parameter) {
        precondition(index[p.name] == nil, "duplicate parameter \(p.name)")
        index[p.name] = parameters.count
        parameters.append(p)
    }

    public subscript(name: String) -> Parameter {
        guard let i = index[name] else { preconditionFailure("no parameter \(name)") }
        return parameters[i]
    }

    public func contains(_ name: String) -> Bool { index[name] != nil }
    public var names: [String] { parameters.map(\.name) }
    public var count: Int { parameters.count }
    /// Total number of scalar values.
    public var scalarCount: Int { parameters.reduce(0) { $0 + $1.count } }

    public func zeroGrad() { for p in parameters { p.zeroGrad() } }

    /// Multiplies every gradient by `factor` (the mean over accumulated micro-batches).
    public func scaleGradients(by factor: Float) {
        for p in parameters where p.requiresGrad {
            p.grad.withUnsafeMutableBufferPointer { g in
                if let base = g.baseAddress { calm_scale(factor, base, g.count) }
            }
        }
    }

    public func setRequiresGrad(_ flag: Bool) { for p in parameters { p.requiresGrad = flag } }

    /// Gradients by name (a copy).
    public var gradients: [String: [Float]] {
        Dictionary(uniqueKeysWithValues: parameters.map { ($0.name, $0.grad) })
    }

    /// L2 norm over all gradients.
    public func gradientNorm() -> Double {
        var s = 0.0
        for p in parameters {
            p.grad.withUnsafeBufferPointer { g in
                var part: Float = 0, total = 0.0
                for (i, x) in g.enumerated() {
                    part += x * x
                    if i & 1023 == 1023 { total += Double(part); part = 0 }
                }
                s += total + Double(part)
            }
        }
        return s.squareRoot()
    }

    /// A deep copy (values and gradients).
    public func copy() -> ParameterSet {
        ParameterSet(parameters.map {
            let c = Parameter(name: $0.name, shape: $0.shape, value: $0.value, requiresGrad: $0.requiresGrad)
            c.grad = $0.grad
            return c
        })
    }
}
