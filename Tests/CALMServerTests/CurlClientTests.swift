import CALMServer
import Foundation
import Testing

/// Real HTTP clients against the server: `curl` (skipped with a message when not installed).
@Suite("curl client", .timeLimit(.minutes(5)))
struct CurlClientTests {
    static let curl: String? = ["/usr/bin/curl", "/usr/local/bin/curl", "/bin/curl"].first { FileManager.default.isExecutableFile(atPath: $0) }

    static func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        guard let curl else { return (-1, "") }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: curl)
        p.arguments = ["-sS", "--noproxy", "*", "--max-time", "120"] + arguments   // straight to 127.0.0.1, whatever http_proxy says
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test(arguments: ServerFixture.Model.allCases)
    func curlGetsWholeAndStreamedCompletions(model: ServerFixture.Model) async throws {
        guard Self.curl != nil else {
            print("skipped: curl is not installed")
            return
        }
        let fixture = try ServerFixture(model: model)
        let url = "http://127.0.0.1:\(fixture.port)/v1/completions"
        let body = #"{"prompt": "Once upon", "max_tokens": 20, "seed": 4, "temperature": 1, "sampler": "single"}"#
        let (whole, streamed) = try await offPool {
            let whole = try Self.run(["-H", "Content-Type: application/json", "-d", body, url])
            let streamed = try Self.run(["-N", "-H", "Content-Type: application/json", "-d", String(body.dropLast()) + #", "stream": true}"#, url])
            return (whole, streamed)
        }
        #expect(whole.status == 0 && streamed.status == 0)
        let json = try #require(try? JSONValue.parse(Array(whole.output.utf8)), "\(whole.output)")
        guard case let .string(text)? = json["choices"]?.arrayFirst?["text"] else { Issue.record("no text: \(whole.output)"); return }
        var streamedText = ""
        let events = streamed.output.components(separatedBy: "\n\n").filter { !$0.isEmpty }
        #expect(events.last == "data: [DONE]")
        for e in events.dropLast() {
            guard e.hasPrefix("data: "), let j = try? JSONValue.parse(Array(e.dropFirst(6).utf8)),
                  case let .string(t)? = j["choices"]?.arrayFirst?["text"] else { Issue.record("bad event \(e)"); continue }
            streamedText += t
        }
        #expect(streamedText == text)
    }
}
