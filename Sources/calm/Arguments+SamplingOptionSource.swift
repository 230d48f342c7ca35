import CALMServer
import Foundation

/// The command line as a source of sampling options: `--max-tokens 64`, `--temperature 1/3`.
extension Arguments: SamplingOptionSource {
    mutating func unsigned(_ name: String) throws -> UInt64? {
        guard let v = string(name) else { return nil }
        guard let s = UInt64(v) else { throw UsageError("option --\(name): '\(v)' is not a non-negative integer") }
        return s
    }

    func invalidValue(_ name: String, _ reason: String) -> any Error { UsageError("option --\(name): \(reason)") }
}
