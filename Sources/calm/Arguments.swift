import Foundation

/// A command-line usage error: printed as one line on stderr, exit status 2.
struct UsageError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// Minimal `--flag value` / `--switch` parser (no dependencies allowed).
struct Arguments {
    private var values: [String: String] = [:]
    private var switches: Set<String> = []
    private(set) var positional: [String] = []
    private var consumed: Set<String> = []

    /// Parses `args`; `flags` lists options that take no value.
    init(_ args: [String], switches known: Set<String>) throws {
        var i = 0
        while i < args.count {
            let a = args[i]
            if a.hasPrefix("--") {
                var name = String(a.dropFirst(2))
                if let eq = name.firstIndex(of: "=") {
                    values[String(name[..<eq])] = String(name[name.index(after: eq)...])
                    name = String(name[..<eq])
                } else if known.contains(name) {
                    switches.insert(name)
                } else {
                    guard i + 1 < args.count else { throw UsageError("option --\(name) needs a value") }
                    values[name] = args[i + 1]
                    i += 1
                }
            } else {
                positional.append(a)
            }
            i += 1
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

    /// Rejects options nobody asked for (typos must not pass silently).
    func finish() throws {
        let unknown = Set(values.keys).union(switches).subtracting(consumed)
        if let first = unknown.sorted().first { throw UsageError("unknown option --\(first)") }
    }
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data(("calm: " + message + "\n").utf8))
}

func writeStdout(_ text: String) {
    FileHandle.standardOutput.write(Data(text.utf8))
}
