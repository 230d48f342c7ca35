import Foundation

/// A command-line usage error: printed as one line on stderr, exit status 2.
struct UsageError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// Minimal `--name value` / `--name=value` / `--switch` parser (no dependencies allowed).
///
/// `--` ends the options: every argument after it is positional, so a prompt that itself starts
/// with `--` can be given (`calm generate -- "--weird prompt"`).
struct Arguments {
    private var values: [String: String] = [:]
    private var switches: Set<String> = []
    private var parsedPositional: [String] = []
    private var consumed: Set<String> = []
    private var positionalRead = false

    /// Parses `args` against the options a command declares: `switches` take no value, `values`
    /// take one. Any other `--name` is reported at once as an unknown option, before any missing
    /// required option or other validation, and a declared value option with nothing after it
    /// "needs a value".
    init(_ args: [String], switches known: Set<String>, values declared: Set<String>) throws {
        var i = 0
        while i < args.count {
            let a = args[i]
            if a == "--" {
                parsedPositional += args[(i + 1)...]
                break
            }
            guard a.hasPrefix("--") else {
                parsedPositional.append(a)
                i += 1
                continue
            }
            var name = String(a.dropFirst(2))
            var inlineValue: String?
            if let eq = name.firstIndex(of: "=") {
                inlineValue = String(name[name.index(after: eq)...])
                name = String(name[..<eq])
            }
            let isSwitch = known.contains(name)
            if !isSwitch, !declared.contains(name) { throw UsageError("unknown option --\(name)") }
            if isSwitch {
                if inlineValue != nil { throw UsageError("option --\(name) takes no value") }
                switches.insert(name)
            } else if let inlineValue {
                values[name] = inlineValue
            } else if i + 1 < args.count {
                values[name] = args[i + 1]
                i += 1
            } else {
                throw UsageError("option --\(name) needs a value")
            }
            i += 1
        }
    }

    /// Whether `--help` or `-h` appears among the options (not after `--`, where it is text).
    static func wantsHelp(_ args: [String]) -> Bool {
        args.prefix(while: { $0 != "--" }).contains { $0 == "--help" || $0 == "-h" }
    }

    /// Arguments that are not options (and everything after `--`). Reading them tells `finish()`
    /// that the command takes positional arguments.
    var positional: [String] {
        mutating get {
            positionalRead = true
            return parsedPositional
        }
    }

    mutating func flag(_ name: String) -> Bool { consumed.insert(name); return switches.contains(name) }

    mutating func string(_ name: String) -> String? { consumed.insert(name); return values[name] }

    mutating func int(_ name: String) throws -> Int? {
        guard let s = string(name) else { return nil }
        guard let v = Int(s) else { throw UsageError("option --\(name): '\(s)' is not an integer") }
        return v
    }

    mutating func double(_ name: String) throws -> Double? {
        guard let s = string(name) else { return nil }
        guard let v = Double(s) else { throw UsageError("option --\(name): '\(s)' is not a number") }
        return v
    }

    /// A number written as a decimal or as a fraction ("1/3"): temperatures of the batch
    /// approximation are exactly 1/n, which no decimal spells.
    mutating func fraction(_ name: String) throws -> Double? {
        guard let s = string(name) else { return nil }
        let parts = s.split(separator: "/", omittingEmptySubsequences: false)
        if parts.count == 2, let p = Double(parts[0]), let q = Double(parts[1]), q != 0 { return p / q }
        guard parts.count == 1, let v = Double(s) else { throw UsageError("option --\(name): '\(s)' is not a number or a fraction like 1/3") }
        return v
    }

    mutating func required(_ name: String) throws -> String {
        guard let v = string(name) else { throw UsageError("missing required option --\(name)") }
        return v
    }

    /// Rejects options nobody asked for (typos must not pass silently) and positional arguments
    /// given to a command that takes none (`calm inspect DIR` must not quietly inspect the
    /// built-in model).
    func finish() throws {
        let unknown = Set(values.keys).union(switches).subtracting(consumed)
        if let first = unknown.sorted().first { throw UsageError("unknown option --\(first)") }
        if !positionalRead, let first = parsedPositional.first {
            throw UsageError("unexpected argument '\(first)' (options are written --name VALUE)")
        }
    }
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data(("calm: " + message + "\n").utf8))
}

func writeStdout(_ text: String) {
    FileHandle.standardOutput.write(Data(text.utf8))
}
