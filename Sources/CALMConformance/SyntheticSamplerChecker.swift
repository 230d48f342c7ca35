import CALMModel
import Foundation

/// `sampler_synthetic.json`: the batch-approximation selection logic on hand-made pools.
struct SyntheticSamplerChecker {
    let url: URL

    func run(_ emit: (ConformanceCheck) -> Void) {
        let file = url.lastPathComponent
        guard let data = try? Data(contentsOf: url),
              let cases = (try? JSONSerialization.jsonObject(with: data)) as? [[String: Any]] else {
            emit(ConformanceCheck(file: file, name: "file", passed: false, detail: "not a JSON array of cases"))
            return
        }
        for (i, c) in cases.enumerated() {
            let name = c["name"] as? String ?? "case \(i)"
            guard let t = c["temperature"] as? Double, let pool = c["pool"] as? [[[Int]]],
                  let rows = c["rows"] as? [[String: Any]], let output = c["output"] as? [[Int]] else {
                emit(ConformanceCheck(file: file, name: name, passed: false, detail: "case lacks temperature/pool/rows/output"))
                continue
            }
            do {
                let level = try BatchApproximation.level(forTemperature: t)
                if let n0 = c["n_initial"] as? Int, n0 != level {
                    emit(ConformanceCheck(file: file, name: "\(name) n_initial", passed: false, detail: "ours \(level), reference \(n0)"))
                }
                var problems: [String] = []
                var chosen: [[Int]] = []
                for (b, row) in rows.enumerated() where b < pool.count {
                    let u = row["u"] as? Double ?? -1
                    let s = BatchApproximation.select(pool: pool[b].map { $0.map(Int32.init) }, level: level, u: u)
                    let candidates = (row["candidates"] as? [[Int]]) ?? []
                    let weights = ((row["weights"] as? [Int])?.map(Double.init)) ?? (row["weights"] as? [Double]) ?? []
                    if s.candidates.map({ $0.map(Int.init) }) != candidates { problems.append("row \(b) candidates") }
                    if s.weights != weights { problems.append("row \(b) weights \(s.weights) vs \(weights)") }
                    if let n = row["n_used"] as? Int, n != s.level { problems.append("row \(b) level \(s.level) vs \(n)") }
                    if let idx = row["selected_index"] as? Int, idx != s.index { problems.append("row \(b) index \(s.index) vs \(idx)") }
                    chosen.append(s.chunk.map(Int.init))
                }
                if chosen != output { problems.append("output \(chosen) vs \(output)") }
                emit(ConformanceCheck(file: file, name: name, passed: problems.isEmpty,
                                      detail: problems.isEmpty ? "exact (\(rows.count) row(s))" : problems.joined(separator: "; ")))
            } catch {
                emit(ConformanceCheck(file: file, name: name, passed: false, detail: "\(error)"))
            }
        }
    }
}
