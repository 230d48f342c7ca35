import CALMEngine
import CALMModel
import CALMServer
import Foundation

/// `calm bench-serve --http`: the same seeded requests as the in-process run, sent as streamed
/// `POST /v1/completions` to a server, at most `concurrency` in flight. Each client is a thread
/// with a blocking socket (never a task of Swift's cooperative pool); times are taken where the
/// client sees the bytes, so they include the server's HTTP work and the loopback.
struct HTTPLoadGenerator {
    /// Where the server listens.
    struct Endpoint: Sendable {
        var host: String
        var port: Int
        var apiKey: String?

        /// Reads `http://HOST:PORT` (IPv4 or localhost; no path, no TLS).
        init(url: String, apiKey: String?) throws {
            guard url.hasPrefix("http://") else { throw UsageError("--http: '\(url)' is not an http:// URL (https is not supported)") }
            var rest = url.dropFirst("http://".count)
            if rest.hasSuffix("/") { rest = rest.dropLast() }
            let parts = rest.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, let port = Int(parts[1]), (1...65535).contains(port) else {
                throw UsageError("--http: '\(url)' is not http://HOST:PORT")
            }
            host = String(parts[0])
            self.port = port
            self.apiKey = apiKey
        }

        init(host: String, port: Int, apiKey: String?) {
            self.host = host
            self.port = port
            self.apiKey = apiKey
        }
    }

    /// What one request saw.
    struct Outcome: Sendable {
        var completionTokens = 0
        var finished = false
        var error: String?
        /// Seconds from sending to the first `data:` event with a choice.
        var timeToFirstEvent: Double?
        /// Gaps between consecutive choice events.
        var eventGaps: [Double] = []
        /// Seconds from sending to `[DONE]`.
        var latency: Double?
    }

    let endpoint: Endpoint

    /// Runs `requests` requests (`body(i)` is request i's JSON), `concurrency` at a time; returns
    /// the outcomes in request order and the wall time.
    func run(requests: Int, concurrency: Int, body: @escaping @Sendable (Int) -> String) async -> (outcomes: [Outcome], seconds: Double) {
        await withCheckedContinuation { continuation in
            Thread {
                let outcomes = Locked([Outcome](repeating: Outcome(), count: requests))
                let next = Locked(0)
                let start = DispatchTime.now()
                let group = DispatchGroup()
                for _ in 0..<min(concurrency, requests) {
                    group.enter()
                    let worker = Thread {
                        defer { group.leave() }
                        while true {
                            let i = next.withLock { n -> Int in defer { n += 1 }; return n }
                            guard i < requests else { return }
                            let outcome = Self.send(body(i), to: endpoint)
                            outcomes.withLock { $0[i] = outcome }
                        }
                    }
                    worker.stackSize = 1 << 20
                    worker.start()
                }
                group.wait()
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
                continuation.resume(returning: (outcomes.withLock { $0 }, seconds))
            }.start()
        }
    }

    static let doneEvent = Array("data: [DONE]".utf8)
    static let usageMarker = Array("\"usage\":{".utf8)
    static let choiceEventPrefix = Array("data: {\"id\"".utf8)
    static let finishMarker = Array("\"finish_reason\":\"".utf8)

    /// Where the event starting at `from` ends (the index of its "\n\n"), if it is whole.
    static func eventEnd(in bytes: [UInt8], from: Int) -> Int? {
        var i = from
        while i + 1 < bytes.count {
            if bytes[i] == 10 && bytes[i + 1] == 10 { return i }
            i += 1
        }
        return nil
    }

    static func contains(_ haystack: ArraySlice<UInt8>, _ needle: [UInt8]) -> Bool {
        guard haystack.count >= needle.count, let first = needle.first else { return false }
        var i = haystack.startIndex
        while i + needle.count <= haystack.endIndex {
            if haystack[i] == first && haystack[i ..< i + needle.count].elementsEqual(needle) { return true }
            i += 1
        }
        return false
    }

    /// One streamed request on a connection of its own.
    static func send(_ body: String, to endpoint: Endpoint) -> Outcome {
        var outcome = Outcome()
        do {
            let connection = try HTTPClientConnection(host: endpoint.host, port: endpoint.port, timeout: 600)
            let headers = endpoint.apiKey.map { ["Authorization: Bearer \($0)"] } ?? []
            let sent = DispatchTime.now().uptimeNanoseconds
            var last = sent
            var pending: [UInt8] = []
            var usageEvent: [UInt8]?
            var done = false
            try connection.post("/v1/completions", json: body, headers: headers)
            let response = try connection.response { piece in
                // Events may span chunks (nginx re-chunks them); only the usage event is parsed,
                // the others are recognised by their bytes, so the client stays cheap.
                pending += piece
                var start = 0
                while let end = Self.eventEnd(in: pending, from: start) {
                    let event = pending[start ..< end]
                    start = end + 2
                    let now = DispatchTime.now().uptimeNanoseconds
                    if event.elementsEqual(Self.doneEvent) {
                        done = true
                        outcome.latency = Double(now - sent) / 1e9
                    } else if Self.contains(event, Self.usageMarker) {
                        usageEvent = Array(event.dropFirst(6))
                    } else if event.starts(with: Self.choiceEventPrefix) {
                        if outcome.timeToFirstEvent == nil { outcome.timeToFirstEvent = Double(now - sent) / 1e9 }
                        else { outcome.eventGaps.append(Double(now - last) / 1e9) }
                        last = now
                        if Self.contains(event, Self.finishMarker) { outcome.finished = true }
                    } else {
                        outcome.error = String(decoding: event.prefix(300), as: UTF8.self)
                    }
                }
                if start > 0 { pending.removeFirst(start) }
            }
            guard response.status == 200 else {
                outcome.error = "HTTP \(response.status): \(response.text.prefix(300))"
                return outcome
            }
            guard done else { outcome.error = outcome.error ?? "the stream ended without [DONE]"; return outcome }
            guard let usageEvent, case let .integer(n)? = (try? JSONValue.parse(usageEvent))?["usage"]?["completion_tokens"] else {
                outcome.error = outcome.error ?? "no usage event (the server must honour stream_options.include_usage)"
                return outcome
            }
            outcome.completionTokens = n
        } catch {
            outcome.error = "\(error)"
        }
        return outcome
    }
}
