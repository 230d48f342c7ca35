import CALMEngine
import CALMModel
import CALMServer
import Foundation

/// How the CLI words an error that reached `main`: one line, naming what the user typed or the
/// path at fault, and the exit status (2 for usage errors, 1 otherwise).
enum ErrorMessages {
    static func message(for error: any Error, command: String) -> (text: String, status: Int32) {
        if let usage = error as? UsageError { return (oneLine(usage.description), 2) }
        if let text = optionMessage(for: error, command: command) { return (oneLine(text), 2) }
        if let text = fileSystemMessage(for: error) { return (oneLine(text), 1) }
        if let decoding = error as? DecodingError { return (oneLine("invalid JSON: " + decodingReason(decoding)), 1) }
        return (oneLine("\(error)"), 1)
    }

    /// Folds a message onto one line: a wrapped library message must not turn into a dump.
    static func oneLine(_ text: String) -> String {
        text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
    }

    // MARK: parameters → options

    /// Options of the commands that hand them to `SamplingParameters` / `GenerationParameters`,
    /// by the parameter name their errors carry.
    static let optionForParameter: [String: [String: String]] = {
        let sampling = SamplingOptionTable.optionForParameter
        // eval-repetition's --samples counts samples per prompt; CALM's head samples are --head-samples there
        return ["generate": sampling, "bench-serve": sampling, "eval-repetition": sampling.merging(["samples": "head-samples"]) { $1 }]
    }()

    /// Swift spellings in library messages and what a CLI user types instead, longest first.
    static let cliSpellings: [(String, String)] = [
        (".batchApproximation(samples:)", "--sampler batch --samples N"),
        (".batchApproximation", "--sampler batch --samples N"),
        (".exactRejection(maxDraws:)", "--sampler exact"),
        (".exactRejection", "--sampler exact"),
        (".single", "--sampler single"),
        ("the single sampler", "--sampler single"),
        ("use the batch approximation or exact rejection", "use --sampler batch --samples N or --sampler exact"),
        ("the exact rejection sampler", "the exact rejection sampler (--sampler exact)"),
        ("for temperature ", "for --temperature "),
    ]

    /// An invalid generation parameter worded with the option the user gave ("option
    /// --max-tokens: must be at least 1, got 0") instead of the Swift API's names (`maxTokens`,
    /// `.batchApproximation`), which a CLI user never sees. Nil for other errors and commands.
    static func optionMessage(for error: any Error, command: String) -> String? {
        let name: String, reason: String
        switch error {
        case let EngineError.invalidParameter(n, r): (name, reason) = (n, r)
        case let ModelError.invalidParameter(n, r): (name, reason) = (n, r)
        default: return nil
        }
        guard let option = optionForParameter[command]?[name] else { return nil }
        var text = reason
        for (swift, cli) in cliSpellings { text = text.replacingOccurrences(of: swift, with: cli) }
        if command == "eval-repetition" { text = text.replacingOccurrences(of: "--samples N", with: "--head-samples N") }
        // A reason that starts with the option itself ("--sampler single draws at T = 1 …") needs no prefix.
        return text.hasPrefix("--") ? text : "option --\(option): \(text)"
    }

    // MARK: file-system errors

    /// Foundation's file errors (an `NSCocoaErrorDomain` dump with nested POSIX errors, as
    /// `FileManager` and `Data` throw them) as "cannot write /path: No such file or directory".
    /// Nil for other errors.
    static func fileSystemMessage(for error: any Error) -> String? {
        let ns = error as NSError
        switch ns.domain {
        case NSCocoaErrorDomain:
            let verb: String
            switch ns.code {
            case 256..<512: verb = "cannot read"
            // 4 (no such file) is what corelibs Foundation reports for ENOENT while creating or writing.
            case 4, 512..<768: verb = "cannot write"
            default: return nil
            }
            let path = ns.userInfo[NSFilePathErrorKey] as? String ?? (ns.userInfo[NSURLErrorKey] as? URL)?.path
            return (path.map { "\(verb) \($0)" } ?? verb) + ": " + fileErrorReason(error)
        case NSPOSIXErrorDomain:
            return fileErrorReason(error)
        default:
            return nil
        }
    }

    /// The operating system's reason for a file error ("Permission denied").
    static func fileErrorReason(_ error: any Error) -> String {
        let ns = error as NSError
        if ns.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(ns.code))) }
        if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        if ns.domain == NSCocoaErrorDomain {
            switch ns.code {
            case 4, 260: return String(cString: strerror(ENOENT))
            case 257, 513: return String(cString: strerror(EACCES))
            case 516: return String(cString: strerror(EEXIST))
            case 640: return String(cString: strerror(ENOSPC))
            case 642: return String(cString: strerror(EROFS))
            default: break
            }
        }
        return ns.localizedDescription
    }

    /// A JSON decoding failure as "key 'a.b': reason".
    static func decodingReason(_ error: DecodingError) -> String {
        func at(_ path: [any CodingKey]) -> String {
            path.isEmpty ? "" : "key '\(path.map(\.stringValue).joined(separator: "."))': "
        }
        switch error {
        case let .typeMismatch(_, c), let .valueNotFound(_, c), let .dataCorrupted(c): return at(c.codingPath) + c.debugDescription
        case let .keyNotFound(key, c): return at(c.codingPath) + "missing key '\(key.stringValue)'"
        @unknown default: return "\(error)"
        }
    }
}
