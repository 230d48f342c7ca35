import CALMServer
import CALMTestSupport
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `calm serve` as a subprocess: it prints the port it bound (port 0), answers HTTP, and exits 0
/// on SIGTERM.
@Suite("calm serve", .timeLimit(.minutes(5)))
struct ServeCLITests {
    /// One `GET` or `POST` over a raw socket; the whole response text (the server closes it).
    static func request(port: Int, _ raw: String) throws -> String {
        let c = try HTTPClientConnection(port: port)
        try c.send(raw)
        return try c.readToEnd()
    }

    /// Starts `calm serve arguments…` and returns it with its first line (the bound address).
    static func startServe(_ executable: URL, _ arguments: [String]) throws -> (Process, String) {
        let process = Process()
        process.executableURL = executable
        process.arguments = ["serve"] + arguments
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        var line = ""
        while !line.contains("\n") {
            let data = out.fileHandleForReading.availableData
            if data.isEmpty { break }
            line += String(decoding: data, as: UTF8.self)
        }
        return (process, line)
    }

    @Test func servesOnAnEphemeralPortAndStopsOnSIGTERM() throws {
        guard let executable = CLI.executable else { throw CLI.NotBuilt() }
        let dir = try TemporaryDirectory("calm-serve-cli")
        #expect(try CLI.run(["random-model", "--shape", "tiny", "--out", dir.url.path]).status == 0)
        let (process, line) = try Self.startServe(executable, ["--model", dir.url.path, "--port", "0", "--kv-mib", "16", "--grace", "2"])
        defer { if process.isRunning { process.terminate() } }
        let match = line.range(of: #"listening on http://127\.0\.0\.1:[0-9]+"#, options: .regularExpression)
        let address = try #require(match.map { String(line[$0]) }, "no address in \(line)")
        let port = try #require(Int(address.split(separator: ":").last ?? ""))
        #expect(port > 0)
        let health = try Self.request(port: port, "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        #expect(health.hasPrefix("HTTP/1.1 200"), "\(health)")
        let body = #"{"prompt": [1, 2, 3], "max_tokens": 8, "temperature": 1, "sampler": "single"}"#
        let completion = try Self.request(port: port, "POST /v1/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body)
        #expect(completion.hasPrefix("HTTP/1.1 200") && completion.contains("\"text_completion\""), "\(completion)")
        // the load generator over HTTP, against this server
        let bench = try CLI.run(["bench-serve", "--model", dir.url.path, "--http", "http://127.0.0.1:\(port)", "--requests", "8",
                                 "--concurrency", "4", "--max-tokens", "8", "--json"])
        #expect(bench.status == 0, "\(bench.stderr)")
        let o = try JSONSerialization.jsonObject(with: Data(bench.stdout.utf8)) as? [String: Any]
        #expect(o?["completed"] as? Int == 8 && o?["failed"] as? Int == 0, "\(bench.stdout)")
        #expect((o?["aggregate_tokens_per_s"] as? Double ?? 0) > 0)
        kill(process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(60)
        while process.isRunning && Date() < deadline { usleep(50_000) }
        #expect(!process.isRunning)
        if !process.isRunning {
            #expect(process.terminationReason == .exit && process.terminationStatus == 0)
        }
    }

    @Test func theBuiltInModelByDefaultAndSIGINTExitsZero() throws {
        guard let executable = CLI.executable else { throw CLI.NotBuilt() }
        guard NewUserCLITests.builtInModelPresent else { print("skipped: the built-in model's files are not in this checkout"); return }
        let (process, line) = try Self.startServe(executable, ["--port", "0", "--kv-mib", "32"])
        defer { if process.isRunning { process.terminate() } }
        #expect(line.contains("(model calm-builtin)"), "\(line)")
        let port = try #require(line.range(of: #":[0-9]+ "#, options: .regularExpression).flatMap { Int(line[$0].dropFirst().dropLast()) })
        let models = try Self.request(port: port, "GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        #expect(models.contains("\"calm-builtin\""), "\(models)")
        let sent = Date()
        kill(process.processIdentifier, SIGINT)
        while process.isRunning && Date().timeIntervalSince(sent) < 30 { usleep(20_000) }
        #expect(!process.isRunning)
        if !process.isRunning {
            #expect(process.terminationReason == .exit && process.terminationStatus == 0)
            #expect(Date().timeIntervalSince(sent) < 5, "SIGINT with nothing in flight took \(Date().timeIntervalSince(sent)) s")
        }
    }

    @Test func benchServeComparesInProcessWithHTTP() throws {
        let dir = try TemporaryDirectory("calm-bench-http")
        #expect(try CLI.run(["random-model", "--shape", "tiny", "--out", dir.url.path]).status == 0)
        let r = try CLI.run(["bench-serve", "--model", dir.url.path, "--requests", "12", "--concurrency", "4", "--max-tokens", "8",
                             "--kv-mib", "16", "--compare-http", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let o = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "\(r.stdout)")
        let http = try #require(o["over_http"] as? [String: Any], "\(r.stdout)")
        #expect(o["completed"] as? Int == 12 && http["completed"] as? Int == 12, "\(r.stdout)")
        #expect(o["http_overhead_percent"] is Double)
        #expect((http["latency_s"] as? [String: Double])?["p50"] ?? 0 > 0)
        let both = try CLI.run(["bench-serve", "--model", dir.url.path, "--requests", "1", "--concurrency", "1", "--max-tokens", "1",
                                "--compare-http", "--http", "http://127.0.0.1:1"])
        #expect(both.status == 2 && both.stderr.contains("--compare-http"), "\(both.stderr)")
        let bad = try CLI.run(["bench-serve", "--model", dir.url.path, "--requests", "1", "--concurrency", "1", "--max-tokens", "1",
                               "--http", "https://example.com"])
        #expect(bad.status == 2 && bad.stderr.contains("--http"), "\(bad.stderr)")
    }

    @Test func badServeOptionsAreUsageErrors() throws {
        let r = try CLI.run(["serve", "--port", "70000"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("--port"))
    }
}
