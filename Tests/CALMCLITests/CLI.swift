import Foundation

/// The `calm` executable that `swift test` built beside the test bundle, run as a subprocess
/// (`CALM_CLI_EXECUTABLE` names another build, e.g. the release one `.ci/run` checks too).
enum CLI {
    static var executable: URL? {
        if let path = ProcessInfo.processInfo.environment["CALM_CLI_EXECUTABLE"], !path.isEmpty {
            return FileManager.default.isExecutableFile(atPath: path) ? URL(fileURLWithPath: path) : nil
        }
        let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [dir, dir.deletingLastPathComponent()] {
            let url = candidate.appendingPathComponent("calm")
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        return nil
    }

    /// Writing to a child that has already exited raises SIGPIPE, which would end the test process.
    private static let ignoreSIGPIPE: Void = { _ = signal(SIGPIPE, SIG_IGN) }()

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    struct NotBuilt: Error, CustomStringConvertible {
        var description: String { "the calm executable was not found beside \(CommandLine.arguments[0])" }
    }

    /// Runs `calm arguments…` with extra environment variables and `input` on stdin (an empty
    /// stdin when nil, so nothing waits on the terminal); output is read after exit (small outputs only).
    static func run(_ arguments: [String], environment: [String: String] = [:], input: String? = nil) throws -> Result {
        guard let executable else { throw NotBuilt() }
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        let out = Pipe(), err = Pipe(), inPipe = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = inPipe
        _ = ignoreSIGPIPE
        try process.run()
        let writer = inPipe.fileHandleForWriting
        DispatchQueue.global().async {
            // A child that exits without reading its input must fail its test, not kill the runner.
            if let input { try? writer.write(contentsOf: Data(input.utf8)) }
            try? writer.close()
        }
        // drain both pipes while the child runs, so a large output cannot block it
        let outData = LockedData(), errData = LockedData()
        let group = DispatchGroup()
        for (pipe, sink) in [(out, outData), (err, errData)] {
            group.enter()
            DispatchQueue.global().async {
                sink.set(pipe.fileHandleForReading.readDataToEndOfFile())
                group.leave()
            }
        }
        process.waitUntilExit()
        group.wait()
        return Result(status: process.terminationStatus, stdout: String(decoding: outData.get(), as: UTF8.self),
                      stderr: String(decoding: errData.get(), as: UTF8.self))
    }
}

final class LockedData: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    func set(_ d: Data) { lock.lock(); data = d; lock.unlock() }
    func get() -> Data { lock.lock(); defer { lock.unlock() }; return data }
}
