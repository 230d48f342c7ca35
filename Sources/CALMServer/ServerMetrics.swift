import CALMModel
import Foundation

/// The server's counters, rendered in Prometheus text format by `GET /metrics`.
public final class ServerMetrics: Sendable {
    /// Upper bounds (seconds) of the request-latency histogram's buckets.
    public static let latencyBuckets: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]

    private struct Counts {
        var requestsByOutcome: [String: Int] = [:]
        var promptTokens = 0
        var completionTokens = 0
        var inFlight = 0
        var latencyBucketCounts = [Int](repeating: 0, count: ServerMetrics.latencyBuckets.count)
        var latencySum = 0.0
        var latencyCount = 0
    }
    private let counts = Locked(Counts())

    public init() {}

    /// Admits a completion request unless `limit` are in flight already; returns whether it was.
    public func admit(limit: Int) -> Bool {
        counts.withLock { c in
            guard c.inFlight < limit else { return false }
            c.inFlight += 1
            return true
        }
    }

    /// An admitted request that never reached the engine (its parameters were refused there).
    public func withdraw() { counts.withLock { $0.inFlight -= 1 } }

    /// A completion request ended: its outcome (`stop`, `length`, `cancelled`, `error`,
    /// `bad_request`, …), token counts and seconds from arrival.
    public func requestFinished(outcome: String, promptTokens: Int, completionTokens: Int, seconds: Double) {
        counts.withLock { c in
            c.inFlight -= 1
            c.requestsByOutcome[outcome, default: 0] += 1
            c.promptTokens += promptTokens
            c.completionTokens += completionTokens
            for (i, bound) in Self.latencyBuckets.enumerated() where seconds <= bound { c.latencyBucketCounts[i] += 1 }
            c.latencySum += seconds
            c.latencyCount += 1
        }
    }

    /// A request refused before it reached the engine (outcome such as `bad_request`, `unauthorized`).
    public func requestRejected(outcome: String) {
        counts.withLock { $0.requestsByOutcome[outcome, default: 0] += 1 }
    }

    /// Completion requests in flight now.
    public var inFlight: Int { counts.withLock { $0.inFlight } }

    /// The exposition text, with the engine's KV gauges.
    public func render(kvBlocksTotal: Int, kvBlocksFree: Int) -> String {
        let c = counts.withLock { $0 }
        var s = "# HELP calm_requests_total Completion requests by outcome.\n# TYPE calm_requests_total counter\n"
        for outcome in c.requestsByOutcome.keys.sorted() { s += "calm_requests_total{outcome=\"\(outcome)\"} \(c.requestsByOutcome[outcome] ?? 0)\n" }
        s += "# HELP calm_prompt_tokens_total Prompt tokens of completed requests.\n# TYPE calm_prompt_tokens_total counter\n"
        s += "calm_prompt_tokens_total \(c.promptTokens)\n"
        s += "# HELP calm_completion_tokens_total Generated tokens.\n# TYPE calm_completion_tokens_total counter\n"
        s += "calm_completion_tokens_total \(c.completionTokens)\n"
        s += "# HELP calm_requests_in_flight Completion requests being served.\n# TYPE calm_requests_in_flight gauge\n"
        s += "calm_requests_in_flight \(c.inFlight)\n"
        s += "# HELP calm_kv_blocks_in_use KV-cache blocks held by requests.\n# TYPE calm_kv_blocks_in_use gauge\n"
        s += "calm_kv_blocks_in_use \(kvBlocksTotal - kvBlocksFree)\n"
        s += "# HELP calm_kv_blocks_total KV-cache blocks in the pool.\n# TYPE calm_kv_blocks_total gauge\n"
        s += "calm_kv_blocks_total \(kvBlocksTotal)\n"
        s += "# HELP calm_request_duration_seconds Completion request latency, arrival to last byte.\n"
        s += "# TYPE calm_request_duration_seconds histogram\n"
        for (i, bound) in Self.latencyBuckets.enumerated() {
            s += "calm_request_duration_seconds_bucket{le=\"\(bound)\"} \(c.latencyBucketCounts[i])\n"
        }
        s += "calm_request_duration_seconds_bucket{le=\"+Inf\"} \(c.latencyCount)\n"
        s += "calm_request_duration_seconds_sum \(c.latencySum)\n"
        s += "calm_request_duration_seconds_count \(c.latencyCount)\n"
        return s
    }
}
