import CALMModel
import CALMTensor
import Foundation

/// Checks one golden file against the model folder it belongs to.
struct GoldenFileChecker {
    let fixtures: URL
    let file: String
    let manifest: Manifest

    /// `golden_<name>.safetensors` → `<name>`; training goldens → (name, true).
    var goldenName: (name: String, training: Bool) {
        let stem = String(file.dropLast(".safetensors".count))
        if stem.hasPrefix("golden_train_") { return (String(stem.dropFirst("golden_train_".count)), true) }
        return (String(stem.dropFirst("golden_".count)), false)
    }

    /// The longest model folder name in the fixtures folder that the golden's name starts with.
    func modelFolder(for name: String) -> URL? {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: fixtures.path)) ?? []
        let folders = entries.filter { entry in
            var isDir: ObjCBool = false
            return FileManager.default.fileExists(atPath: fixtures.appendingPathComponent(entry).path, isDirectory: &isDir)
                && isDir.boolValue && name.hasPrefix(entry)
        }
        return folders.max { $0.count < $1.count }.map { fixtures.appendingPathComponent($0) }
    }

    /// Every folder a GPT-2 golden applies to: its own folder and the variants `<name>_*` that are
    /// GPT-2 folders too (the same weights in another layout, e.g. `gpt2_tiny_hub`), unless a
    /// golden file with a longer name claims the variant.
    func gpt2Folders(for name: String, primary: URL) -> [URL] {
        let fm = FileManager.default
        let entries = ((try? fm.contentsOfDirectory(atPath: fixtures.path)) ?? []).sorted()
        let otherGoldens = entries.filter { $0.hasPrefix("golden_") && $0.hasSuffix(".safetensors") }
            .map { String($0.dropFirst("golden_".count).dropLast(".safetensors".count)) }
            .filter { $0.count > name.count && $0.hasPrefix(name) }
        var folders = [primary]
        for entry in entries where entry.hasPrefix(name + "_") && entry != primary.lastPathComponent {
            let url = fixtures.appendingPathComponent(entry)
            guard (try? ModelFolderKind.detect(url)) == .gpt2 else { continue }
            if otherGoldens.contains(where: { entry == $0 || entry.hasPrefix($0 + "_") }) { continue }
            folders.append(url)
        }
        return folders
    }

    func run(_ emit: (ConformanceCheck) -> Void) {
        withoutActuallyEscaping(emit) { check(emit: $0) }
    }

    private func check(emit: @escaping (ConformanceCheck) -> Void) {
        let (name, training) = goldenName
        guard let folder = modelFolder(for: name) else {
            emit(ConformanceCheck(file: file, name: "model folder", passed: false, detail: "no model folder in \(fixtures.path) matches '\(name)'"))
            return
        }
        let golden: SafetensorsFile
        do { golden = try SafetensorsFile(url: fixtures.appendingPathComponent(file)) } catch {
            emit(ConformanceCheck(file: file, name: "golden file", passed: false, detail: "\(error)"))
            return
        }
        let groups = GoldenKeyGroup.grouping(golden.tensorNames)
        if !training, (try? ModelFolderKind.detect(folder)) == .gpt2 {
            let context = GoldenContext(file: file, golden: golden, manifestName: "golden_\(name)", manifest: manifest, emit: emit)
            GPT2Checks.run(folders: gpt2Folders(for: name, primary: folder), groups: groups, context)
            return
        }
        if training {
            let context = GoldenContext(file: file, golden: golden, manifestName: "golden_train_\(name)", manifest: manifest, emit: emit)
            TrainingChecks.run(folder: folder, context: context)
            return
        }
        let context = GoldenContext(file: file, golden: golden, manifestName: "golden_\(name)", manifest: manifest, emit: emit)
        do {
            if let json = try? ModelFolderKind.detect(folder), json == .autoencoder {
                let ae = try Autoencoder.load(directory: folder)
                for group in groups.keys.sorted() {
                    let keys = groups[group]!.sorted()
                    switch group {
                    case "enc": AutoencoderChecks.encoder(ae, keys: keys, context)
                    case "dec": AutoencoderChecks.decoder(ae, keys: keys, context)
                    default: context.unknownGroup(group, keys: keys)
                    }
                }
            } else {
                let model = try CALMModel.load(directory: folder)
                for group in groups.keys.sorted() {
                    let keys = groups[group]!.sorted()
                    switch group {
                    case "bb": BackboneChecks.run(model, keys: keys, context, folder: folder)
                    case "head": HeadChecks.run(model, keys: keys, context)
                    case "ts_real": SamplerChecks.realPool(model, keys: keys, context)
                    case "eval": EvaluationChecks.run(model, keys: keys, context)
                    case let g where g == "gen" || g.hasPrefix("gen_"):
                        GenerationChecks.run(model, group: g, keys: keys, context)
                    default: context.unknownGroup(group, keys: keys)
                    }
                }
            }
        } catch {
            emit(ConformanceCheck(file: file, name: "load \(folder.lastPathComponent)", passed: false, detail: "\(error)"))
        }
    }
}

enum ModelFolderKind: Equatable {
    case autoencoder, calm, gpt2
    static func detect(_ folder: URL) throws -> ModelFolderKind {
        let data = try Data(contentsOf: folder.appendingPathComponent("config.json"))
        let json = try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
        if GPT2Config.describes(json) { return .gpt2 }
        let arch = json["architectures"] as? [String] ?? []
        if arch.contains("Autoencoder") || json["num_encoder_layers"] != nil { return .autoencoder }
        return .calm
    }
}

/// Shared helpers for a golden file's checks.
struct GoldenContext {
    let file: String
    let golden: SafetensorsFile
    let manifestName: String
    let manifest: Manifest
    let emit: (ConformanceCheck) -> Void

    func floats(_ key: String) throws -> [Float] { try golden.tensor(key).floats() }
    func ints(_ key: String) throws -> [Int] { try golden.tensor(key).int64s().map(Int.init) }
    func shape(_ key: String) -> [Int] { golden.info(key)?.shape ?? [] }
    func has(_ key: String) -> Bool { golden.info(key) != nil }

    /// Compares with the golden `key`; the check is named `name` (default: the key).
    func check(_ key: String, floats ours: [Float], as name: String? = nil) {
        do {
            let r = Compare.floats(ours, try floats(key))
            emit(ConformanceCheck(file: file, name: name ?? key, passed: r.passed, detail: r.detail))
        } catch { fail(name ?? key, "\(error)") }
    }

    func check(_ key: String, ints ours: [Int], as name: String? = nil) {
        do {
            let r = Compare.ints(ours, try ints(key))
            emit(ConformanceCheck(file: file, name: name ?? key, passed: r.passed, detail: r.detail))
        } catch { fail(name ?? key, "\(error)") }
    }

    func fail(_ key: String, _ detail: String) {
        emit(ConformanceCheck(file: file, name: key, passed: false, detail: detail))
    }

    func pass(_ key: String, _ detail: String) {
        emit(ConformanceCheck(file: file, name: key, passed: true, detail: detail))
    }

    func unknownGroup(_ group: String, keys: [String]) {
        fail("\(group).*", "key group not understood by this runner (\(keys.count) keys)")
    }

    /// Every key of a group that no check consumed is a failure, never a silent pass.
    func reportUnchecked(_ keys: [String], checked: Set<String>) {
        for key in keys where !checked.contains(key) { fail(key, "key not understood by this runner") }
    }
}
