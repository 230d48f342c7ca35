import CALMEvaluation
import CALMModel
import CALMTensor
import CALMTestSupport
import Foundation
import Testing

let sharedEnabled = SharedFixtures.enabled
let sharedSkip = Comment(rawValue: SharedFixtures.skipMessage)

/// Mean and standard error of a sample.
func meanAndStderr(_ xs: [Double]) -> (mean: Double, stderr: Double) {
    let n = Double(xs.count)
    let mean = xs.reduce(0, +) / n
    let variance = xs.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / (n - 1)
    return (mean, (variance / n).squareRoot())
}
