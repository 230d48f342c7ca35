import CALMEngine
import Dispatch
import Foundation
import FuzzSupport
import Synchronization

/// Serving one request from a synchronous fuzz callback.
public enum Request {
    /// Starts a request (its errors are thrown at the call, as `generate` throws them), reads up to
    /// `maxEvents` events or for `seconds`, then drops the stream, which cancels the request, and
    /// waits until the engine has every KV block back. Returns the completion when it came.
    public static func run(_ engine: CALMEngine, prompt: Prompt, parameters: SamplingParameters,
                           maxEvents: Int, seconds: Double) throws -> CompletionInfo? {
        let free = engine.kvBlocksFree
        let stream = try engine.generate(prompt: prompt, parameters: parameters)
        let result = Mutex<CompletionInfo?>(nil)
        let done = DispatchSemaphore(value: 0)
        let task = Task {
            var events = 0
            for await event in stream {
                if case .completed(let info) = event { result.withLock { $0 = info }; break }
                events += 1
                if events >= maxEvents { break }
            }
            done.signal()
        }
        if done.wait(timeout: .now() + seconds) == .timedOut {
            task.cancel()
            if done.wait(timeout: .now() + 30) == .timedOut {
                Harness.fail("request: the stream did not end within 30 s of its consumer's cancellation")
            }
        }
        waitForBlocks(engine, "request", free: free)
        return result.withLock { $0 }
    }

    /// Waits (up to 30 s) until `engine` has `free` (default: all) KV blocks free again.
    public static func waitForBlocks(_ engine: CALMEngine, _ context: String, free: Int? = nil) {
        let wanted = free ?? engine.kvBlocksTotal
        let deadline = Date().addingTimeInterval(30)
        while engine.kvBlocksFree != wanted {
            if Date() > deadline {
                Harness.fail("\(context): \(engine.kvBlocksFree) of \(engine.kvBlocksTotal) KV blocks free 30 s after the request ended, expected \(wanted)")
            }
            usleep(200)
        }
    }
}
