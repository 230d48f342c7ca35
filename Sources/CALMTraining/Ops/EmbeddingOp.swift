/// Row lookup in a (V × H) table. Backward scatter-adds each row's gradient into the table row
/// of its id (repeated ids accumulate), except the `paddingIndex` row, which (as PyTorch's
/// `nn.Embedding(padding_idx:)`) receives no gradient and so keeps its initial value.
public struct EmbeddingOp: Sendable {
    public let table: Parameter
    /// The row that receives no gradient (PyTorch's `padding_idx`), if any.
    public let paddingIndex: Int?
    public var dim: Int { table.shape[1] }
    public var rows: Int { table.shape[0] }

    public init(table: Parameter, paddingIndex: Int? = nil) {
        precondition(table.shape.count == 2)
        self.table = table
        self.paddingIndex = paddingIndex
    }

    public func forward(_ ids: [Int]) -> [Float] {
        let d = dim
        var out = [Float](repeating: 0, count: ids.count * d)
        out.withUnsafeMutableBufferPointer { o in
            table.value.withUnsafeBufferPointer { t in
                for (i, id) in ids.enumerated() {
                    precondition(id >= 0 && id < rows, "token id \(id) outside the embedding table (\(rows) rows)")
                    for j in 0..<d { o[i * d + j] = t[id * d + j] }
                }
            }
        }
        return out
    }

    public func backward(_ dy: [Float], ids: [Int]) {
        guard table.requiresGrad else { return }
        let d = dim
        precondition(dy.count == ids.count * d)
        table.grad.withUnsafeMutableBufferPointer { g in
            dy.withUnsafeBufferPointer { dp in
                for (i, id) in ids.enumerated() where id != paddingIndex { for j in 0..<d { g[id * d + j] += dp[i * d + j] } }
            }
        }
    }
}
