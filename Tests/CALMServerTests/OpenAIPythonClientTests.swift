import CALMServer
import Foundation
import Testing

/// The official `openai` Python package against the server: `completions.create` whole and with
/// `stream=True`, and its error type for a bad field. Outside CI (CI != "true") a missing
/// python3 or `openai` package skips with a message; in CI it fails. The client's timeout is generous
/// (150 s, within the suite's 5 minutes): the test checks the protocol, and in the full parallel run
/// the 256-client load test shares the two cores (a 30 s limit once timed out there).
@Suite("openai Python client", .timeLimit(.minutes(5)))
struct OpenAIPythonClientTests {
    static let script = """
    import sys, openai
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{sys.argv[1]}/v1", api_key="unused", max_retries=0, timeout=150)
    args = dict(model=sys.argv[2], prompt="Hello there", max_tokens=16, seed=3, temperature=1, extra_body={"sampler": "single"})
    r = client.completions.create(**args)
    assert r.object == "text_completion", r
    assert r.choices[0].finish_reason in ("stop", "length"), r
    assert r.usage.completion_tokens >= 1 and r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens, r
    streamed = "".join(chunk.choices[0].text for chunk in client.completions.create(stream=True, **args))
    assert streamed == r.choices[0].text, (streamed, r.choices[0].text)
    try:
        client.completions.create(model="tiny", prompt="Hello", extra_body={"max_tokens": "ten"})
        raise SystemExit("no error for max_tokens='ten'")
    except openai.BadRequestError as e:
        assert e.status_code == 400 and e.body["param"] == "max_tokens", e.body
    print("ok", len(streamed))
    """

    static func python(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3"] + arguments
        // straight to 127.0.0.1, whatever http_proxy says
        p.environment = ProcessInfo.processInfo.environment.merging(["NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"]) { _, new in new }
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test(arguments: ServerFixture.Model.allCases)
    func completionsCreateWholeAndStreamed(model: ServerFixture.Model) async throws {
        let available = (try? Self.python(["-c", "import openai"]))?.status == 0
        guard available else {
            if ProcessInfo.processInfo.environment["CI"] == "true" {
                Issue.record("python3 with the openai package is required in CI (pip install openai)")
            } else {
                print("skipped: python3 with the openai package not found (pip install openai)")
            }
            return
        }
        let fixture = try ServerFixture(model: model)
        let port = fixture.port, name = fixture.handler.modelName
        let r = try await offPool { try Self.python(["-c", Self.script, String(port), name]) }
        #expect(r.status == 0 && r.output.hasPrefix("ok"), "\(r.output)")
    }
}
