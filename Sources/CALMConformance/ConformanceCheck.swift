import Foundation

/// One line of a conformance report.
public struct ConformanceCheck: Sendable, Equatable {
    /// Golden file (or JSON file) the check comes from.
    public var file: String
    /// Key or key group checked.
    public var name: String
    public var passed: Bool
    /// Measured error or the reason for a failure.
    public var detail: String

    public init(file: String, name: String, passed: Bool, detail: String) {
        self.file = file; self.name = name; self.passed = passed; self.detail = detail
    }

    /// "PASS file: name (detail)" / "FAIL …".
    public var line: String { "\(passed ? "PASS" : "FAIL") \(file): \(name)\(detail.isEmpty ? "" : " — \(detail)")" }
}

/// Comparison rules of the conformance runner.
enum Compare {
    /// Floats within relative error 1e-4 of the reference: max|a − b| ≤ 1e-4 · max|b|.
    static let floatTolerance = 1e-4

    static func floats(_ ours: [Float], _ reference: [Float]) -> (passed: Bool, detail: String) {
        guard ours.count == reference.count else {
            return (false, "element count \(ours.count) ≠ reference \(reference.count)")
        }
        var maxDiff = 0.0, maxRef = 0.0
        for (a, b) in zip(ours, reference) {
            if !a.isFinite { return (false, "non-finite value \(a)") }
            maxDiff = max(maxDiff, abs(Double(a) - Double(b)))
            maxRef = max(maxRef, abs(Double(b)))
        }
        let rel = maxRef > 0 ? maxDiff / maxRef : maxDiff
        return (rel <= floatTolerance, String(format: "relative error %.2e", rel))
    }

    static func ints(_ ours: [Int], _ reference: [Int]) -> (passed: Bool, detail: String) {
        guard ours.count == reference.count else {
            return (false, "element count \(ours.count) ≠ reference \(reference.count)")
        }
        let mismatches = zip(ours, reference).filter { $0 != $1 }.count
        if mismatches == 0 { return (true, "exact (\(ours.count) ids)") }
        let first = zip(ours, reference).enumerated().first { $0.element.0 != $0.element.1 }!
        return (false, "\(mismatches) of \(ours.count) ids differ (first at \(first.offset): \(first.element.0) vs \(first.element.1))")
    }
}
