/// Which backbone output predicts a tail slot (spec §1.5 and §5 item A). The two readings need
/// different query windows (spec §6.3), and a checkpoint is trained for one of them.
public enum TokenMaturationAlignment: String, Sendable, Codable, CaseIterable {
    /// Next-position shift (the paper's Eq. 1, the default): the hidden state at position t − 1
    /// predicts slot t, so a slot's own value never enters its own prediction. Query window: the last
    /// committed position plus tail slots 0…K−2 (K rows).
    case shift
    /// "Denoising" reading: slot t is predicted from its own output row, which sees z̃_t. Query
    /// window: the last committed position plus all K tail slots (K + 1 rows).
    case same

    /// Tail rows a step runs for a tail of `tailLength` slots (besides the committed rows).
    func tailRows(tailLength: Int) -> Int { self == .shift ? tailLength - 1 : tailLength }
}
