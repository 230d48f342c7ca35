import Foundation
import Testing

/// Every Swift snippet in the README, in Docs/ and in the doc comments under Sources/ type-checks
/// against the modules `swift test` just built. Each snippet becomes the body of its own function
/// (declarations stay at file scope), with `#sourceLocation` pointing errors back at the snippet's
/// own file and line. The names a snippet leaves to the reader (`modelURL`, `ids`, …) are declared
/// once below with the types the snippets mean; adding a snippet with a new free name means adding
/// it here. Snippets are only type-checked, never run (the README snippets that matter at run time
/// run in CALMDefaultModelTests).
@Suite("Doc snippets")
struct DocSnippetTests {
    /// The reader-supplied names. Computed properties that are never evaluated: type-checking only.
    static let givens = """
        var url: URL { fatalError() }
        var modelURL: URL { fatalError() }
        var folder: URL { fatalError() }
        var dataURL: URL { fatalError() }
        var wheelURL: URL { fatalError() }
        var path: String { fatalError() }
        var ids: [Int] { fatalError() }
        var prompt: [Int] { fatalError() }
        nonisolated(unsafe) var row: [Float] = []
        var bytes: [UInt8] { fatalError() }
        var rng: SeededRandomness { fatalError() }
        var model: CALMModel { fatalError() }
        var engine: CALMEngine { fatalError() }
        var tmModel: TokenMaturationModel { fatalError() }
        var tokenizer: any TextTokenizer { fatalError() }
        var modelFolder: URL { fatalError() }
        var dir: URL { fatalError() }
        var outDir: URL { fatalError() }
        var llama3Dir: URL { fatalError() }
        var out: URL { fatalError() }
        var cache: URL { fatalError() }
        var definition: HuggingFaceBPEDefinition { fatalError() }
        var generatedIDs: [Int] { fatalError() }
        var documents: [String] { fatalError() }
        var compressedBytes: [UInt8] { fatalError() }
        var gzipFileBytes: [UInt8] { fatalError() }
        var deflateBytes: [UInt8] { fatalError() }
        var rdxBytes: [UInt8] { fatalError() }
        var rdbBytes: [UInt8] { fatalError() }
        var bzs: [UInt8] { fatalError() }
        var bzv: [UInt8] { fatalError() }
        var bzz: [UInt8] { fatalError() }
        public final class MyModel: Sendable {
            public struct Config: Sendable { var vocabSize = 0; var maxPositionEmbeddings = 0; var eosTokenID = 0 }
            let config = Config()
            func kvLayout(blockPositions: Int) -> KVLayout { fatalError() }
            func step(_ batch: StepBatch) throws -> [StepOutcome] { fatalError() }
        }
        """

    struct Snippet {
        var file: String
        var line: Int
        var body: [String]
    }

    static var root: URL { URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent() }

    /// ```swift blocks of Markdown files and of `///` comments.
    static func snippets() throws -> [Snippet] {
        var found: [Snippet] = []
        func scan(_ url: URL, comment: Bool) throws {
            let lines = try String(contentsOf: url, encoding: .utf8).components(separatedBy: "\n")
            let relative = String(url.path.dropFirst(root.path.count + 1))
            var i = 0
            func text(_ l: String) -> String? {
                let t = l.trimmingCharacters(in: .whitespaces)
                guard comment else { return l }
                guard t.hasPrefix("///") else { return nil }
                let rest = t.dropFirst(3)
                return String(rest.hasPrefix(" ") ? rest.dropFirst() : rest)
            }
            while i < lines.count {
                if text(lines[i])?.trimmingCharacters(in: .whitespaces) == "```swift" {
                    var body: [String] = []
                    let start = i + 2
                    i += 1
                    while i < lines.count, let t = text(lines[i]), t.trimmingCharacters(in: .whitespaces) != "```" {
                        body.append(t); i += 1
                    }
                    found.append(Snippet(file: relative, line: start, body: body))
                }
                i += 1
            }
        }
        for name in ["README.md"] + (try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("Docs").path).sorted().map { "Docs/" + $0 })
        where name.hasSuffix(".md") {
            try scan(root.appendingPathComponent(name), comment: false)
        }
        let sources = FileManager.default.enumerator(at: root.appendingPathComponent("Sources"), includingPropertiesForKeys: nil)
        let files = (sources?.allObjects as? [URL] ?? []).filter { $0.pathExtension == "swift" }.sorted { $0.path < $1.path }
        for f in files { try scan(f, comment: true) }
        return found
    }

    static let modules = ["CALMEngine", "CALMModel", "CALMTensor", "CALMTokenizer", "CALMTraining", "CALMEvaluation",
                          "CALMConformance", "CALMDefaultModel", "CALMServer"]

    /// One file: imports, the givens, then each snippet in its own function (or at file scope when
    /// it declares types). The package manifest snippet is checked by `manifestSnippetParses`.
    static func program(_ snippets: [Snippet]) -> String {
        var out = ["import Foundation"] + modules.map { "import \($0)" } + [givens]
        for (n, s) in snippets.enumerated() where !isManifest(s) {
            let code = s.body.map { $0.trimmingCharacters(in: .whitespaces).hasPrefix("import ") ? "" : $0 }
            let first = code.first { !$0.trimmingCharacters(in: .whitespaces).isEmpty }?.trimmingCharacters(in: .whitespaces) ?? ""
            let declares = ["public ", "final ", "class ", "struct ", "enum ", "extension ", "protocol "].contains { first.hasPrefix($0) }
            if !declares { out.append("func snippet\(n)() async throws {") }
            out.append("#sourceLocation(file: \"\(s.file)\", line: \(s.line))")
            out += code
            out.append("#sourceLocation()")
            if !declares { out.append("}") }
        }
        return out.joined(separator: "\n") + "\n"
    }

    static func isManifest(_ s: Snippet) -> Bool { s.body.first?.contains("// Package.swift") == true }

    /// The folder holding the built modules (`…/debug/Modules`, beside the test bundle).
    static var modulesDirectory: URL? {
        let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [dir, dir.deletingLastPathComponent()] {
            let m = candidate.appendingPathComponent("Modules")
            if FileManager.default.fileExists(atPath: m.appendingPathComponent("CALMEngine.swiftmodule").path) { return m }
        }
        return nil
    }

    static func run(_ tool: String, _ arguments: [String], in directory: URL? = nil) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [tool] + arguments
        if let directory { process.currentDirectoryURL = directory }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test func everySnippetTypeChecks() throws {
        let snippets = try Self.snippets()
        #expect(snippets.count >= 50, "found only \(snippets.count) snippets: the scanner is broken")
        guard let modules = Self.modulesDirectory else {
            Issue.record("built modules not found beside \(CommandLine.arguments[0])"); return
        }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("doc-snippets-\(UUID().uuidString).swift")
        defer { try? FileManager.default.removeItem(at: file) }
        try Self.program(snippets).write(to: file, atomically: true, encoding: .utf8)
        let include = Self.root.appendingPathComponent("Sources/CALMKernels/include").path
        let r = try Self.run("swiftc", ["-typecheck", "-parse-as-library", "-swift-version", "6", "-I", modules.path, "-Xcc", "-I\(include)", file.path])
        let errors = r.output.components(separatedBy: "\n").filter { $0.contains("error:") && !$0.hasPrefix(" ") }
        #expect(r.status == 0, "\(errors.count) errors in doc snippets:\n\(errors.prefix(40).joined(separator: "\n"))")
    }

    /// The README's `Package.swift` lines, put into a whole manifest of an app that depends on
    /// this package by path, are a manifest SwiftPM accepts.
    @Test func manifestSnippetParses() throws {
        let manifests = try Self.snippets().filter(Self.isManifest)
        #expect(!manifests.isEmpty)
        for m in manifests {
            // The package's identity is its folder name, whatever this clone's folder is called.
            let work = FileManager.default.temporaryDirectory.appendingPathComponent("doc-app-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: work) }
            let app = work.appendingPathComponent("App")
            try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(at: work.appendingPathComponent("swift-calm"), withDestinationURL: Self.root)
            try FileManager.default.createDirectory(at: app.appendingPathComponent("Sources/App"), withIntermediateDirectories: true)
            let lines = m.body.filter { !$0.contains("// Package.swift") }
                
            let manifest = """
                // swift-tools-version:6.0
                import PackageDescription
                let package = Package(name: "App",
                \(lines.joined(separator: "\n"))
                )
                """
            try manifest.write(to: app.appendingPathComponent("Package.swift"), atomically: true, encoding: .utf8)
            try "print(1)\n".write(to: app.appendingPathComponent("Sources/App/main.swift"), atomically: true, encoding: .utf8)
            let r = try Self.run("swift", ["package", "dump-package"], in: app)
            #expect(r.status == 0, "\(m.file):\(m.line): \(r.output)")
            #expect(r.output.contains("CALMEngine"))
        }
    }
}
