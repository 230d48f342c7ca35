import CALMModel
import Foundation

/// Where the engine's time goes, accumulated over all steps since it was created.
public struct EngineStatistics: Sendable, Equatable {
    /// Steps run.
    public var steps = 0
    /// Seconds in backbone passes (chunk embedding, all layers, KV writes).
    public var backboneSeconds = 0.0
    /// Seconds in the head and decoder for all samples, and in selection.
    public var samplingSeconds = 0.0
    /// Head samples decoded (each through the decoder trunk; how many of their token positions
    /// went through the vocabulary argmax is `argmaxRows`).
    public var samplesDecoded = 0
    /// Rows of CALM's vocabulary argmax computed: samples × K under `DecodingStrategy.full`, fewer
    /// under `.lazy`.
    public var argmaxRows = 0
    /// Backbone rows (chunks) processed, prompt chunks included.
    public var backboneRows = 0
    /// Seconds from the start of the first step to the end of the last, compute or not.
    public var wallSeconds = 0.0
}

/// Thread-safe accumulator behind `CALMEngine.statistics`.
final class EngineStatisticsRecorder: Sendable {
    private let state = Locked(EngineStatistics())
    private let firstStep = Locked<DispatchTime?>(nil)

    func record(backbone: Double, sampling: Double, samples: Int, rows: Int, argmaxRows: Int = 0) {
        let now = DispatchTime.now()
        let start = firstStep.withLock { s -> DispatchTime in
            if s == nil { s = DispatchTime(uptimeNanoseconds: now.uptimeNanoseconds - UInt64((backbone + sampling) * 1e9)) }
            return s!
        }
        state.withLock {
            $0.steps += 1
            $0.backboneSeconds += backbone
            $0.samplingSeconds += sampling
            $0.samplesDecoded += samples
            $0.argmaxRows += argmaxRows
            $0.backboneRows += rows
            $0.wallSeconds = Double(now.uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        }
    }

    var snapshot: EngineStatistics { state.withLock { $0 } }

    func reset() {
        state.withLock { $0 = EngineStatistics() }
        firstStep.withLock { $0 = nil }
    }
}
