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
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var tv = timeval(tv_sec: 120, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let r = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard r == 0 else { return "connect failed" }
        let bytes = Array(raw.utf8)
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            out += chunk[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }

    @Test func servesOnAnEphemeralPortAndStopsOnSIGTERM() throws {
        guard let executable = CLI.executable else { throw CLI.NotBuilt() }
        let dir = try TemporaryDirectory("calm-serve-cli")
        #expect(try CLI.run(["random-model", "--shape", "tiny", "--out", dir.url.path]).status == 0)
        let process = Process()
        process.executableURL = executable
        process.arguments = ["serve", "--model", dir.url.path, "--port", "0", "--kv-mib", "16", "--grace", "2"]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        // the first line names the bound address
        var line = ""
        while !line.contains("\n") {
            let data = out.fileHandleForReading.availableData
            if data.isEmpty { break }
            line += String(decoding: data, as: UTF8.self)
        }
        let match = line.range(of: #"listening on http://127\.0\.0\.1:[0-9]+"#, options: .regularExpression)
        let address = try #require(match.map { String(line[$0]) }, "no address in \(line)")
        let port = try #require(Int(address.split(separator: ":").last ?? ""))
        #expect(port > 0)
        let health = try Self.request(port: port, "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        #expect(health.hasPrefix("HTTP/1.1 200"), "\(health)")
        let body = #"{"prompt": [1, 2, 3], "max_tokens": 8, "temperature": 1, "sampler": "single"}"#
        let completion = try Self.request(port: port, "POST /v1/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body)
        #expect(completion.hasPrefix("HTTP/1.1 200") && completion.contains("\"text_completion\""), "\(completion)")
        kill(process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(60)
        while process.isRunning && Date() < deadline { usleep(50_000) }
        #expect(!process.isRunning)
        if !process.isRunning {
            #expect(process.terminationReason == .exit && process.terminationStatus == 0)
        }
    }

    @Test func badServeOptionsAreUsageErrors() throws {
        let r = try CLI.run(["serve", "--port", "70000"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("--port"))
    }
}
