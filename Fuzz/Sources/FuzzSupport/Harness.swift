import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What every harness shares: a scratch folder for parsers that only read files, the one way to
/// report a broken promise (abort, so libFuzzer keeps the input), and seed writing.
public enum Harness {
    /// A folder of this process's own, removed at exit: `$CALM_FUZZ_SCRATCH` (Scripts/fuzz.sh
    /// points it at /dev/shm when it can, so per-input files never touch a disk) or the temp folder.
    public static let scratch: URL = {
        let env = ProcessInfo.processInfo.environment
        let base = env["CALM_FUZZ_SCRATCH"].flatMap { $0.isEmpty ? nil : $0 } ?? NSTemporaryDirectory()
        let url = URL(fileURLWithPath: base).appendingPathComponent("calm-fuzz-\(getpid())")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        scratchToRemove = url.path
        atexit { if let path = Harness.scratchToRemove { try? FileManager.default.removeItem(atPath: path) } }
        return url
    }()
    nonisolated(unsafe) static var scratchToRemove: String?

    /// Writes `bytes` to `name` in the scratch folder (or in `directory`) and returns its URL. The
    /// old file is unlinked first: truncating in place makes some file systems flush on close.
    @discardableResult
    public static func write(_ bytes: UnsafeRawBufferPointer, to name: String, in directory: URL? = nil) -> URL {
        let url = (directory ?? scratch).appendingPathComponent(name)
        unlink(url.path)
        guard let f = fopen(url.path, "wb") else { fail("cannot create scratch file \(url.path): \(String(cString: strerror(errno)))") }
        if bytes.count > 0 && fwrite(bytes.baseAddress, 1, bytes.count, f) != bytes.count {
            fail("cannot write scratch file \(url.path)")
        }
        fclose(f)
        return url
    }

    @discardableResult
    public static func write(_ bytes: [UInt8], to name: String, in directory: URL? = nil) -> URL {
        bytes.withUnsafeBytes { write($0, to: name, in: directory) }
    }

    /// A fresh sub-folder of the scratch folder.
    public static func folder(_ name: String) -> URL {
        let url = scratch.appendingPathComponent(name)
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Reports a broken promise and aborts (libFuzzer saves the input as a crash).
    public static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("\n==FUZZ FAILURE== \(message)\n".utf8))
        abort()
    }

    /// With `$CALM_FUZZ_VERBOSE` set, prints why an input was refused (to check seeds by hand:
    /// `CALM_FUZZ_VERBOSE=1 .build/release/fuzz-X Corpus/X/*`).
    public static func refused(_ error: any Error) {
        if verbose { print("refused: \(error)") }
    }

    /// Prints `message` with `$CALM_FUZZ_VERBOSE` set.
    public static func note(_ message: @autoclosure () -> String) {
        if verbose { print(message()) }
    }

    static let verbose = !(ProcessInfo.processInfo.environment["CALM_FUZZ_VERBOSE"] ?? "").isEmpty

    /// An error that is not one of the library's typed errors is a broken promise too.
    public static func untyped(_ error: any Error, _ context: String) -> Never {
        fail("\(context): untyped error \(type(of: error)): \(error)")
    }

    /// With `$CALM_FUZZ_WRITE_SEEDS` set to a folder, writes `seeds()` there (one file each, named
    /// by its key) and exits: `Scripts/fuzz.sh --seeds` regenerates `Fuzz/Corpus/<harness>/` this way.
    public static func writeSeedsIfAsked(_ seeds: () throws -> [(String, [UInt8])]) {
        guard let dir = ProcessInfo.processInfo.environment["CALM_FUZZ_WRITE_SEEDS"], !dir.isEmpty else { return }
        do {
            let url = URL(fileURLWithPath: dir)
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
            let all = try seeds()
            for (name, bytes) in all { try Data(bytes).write(to: url.appendingPathComponent(name)) }
            print("wrote \(all.count) seeds to \(dir)")
            exit(0)
        } catch {
            fail("writing seeds: \(error)")
        }
    }

    /// `../shared` beside the repository, or `$CALM_SHARED` (as the tests find it).
    public static var shared: URL? {
        let env = ProcessInfo.processInfo.environment
        if let path = env["CALM_SHARED"], !path.isEmpty {
            return FileManager.default.fileExists(atPath: path) ? URL(fileURLWithPath: path) : nil
        }
        // #filePath is <repo>/Fuzz/Sources/FuzzSupport/Harness.swift
        var repo = URL(fileURLWithPath: #filePath)
        for _ in 0..<4 { repo.deleteLastPathComponent() }
        let candidate = repo.deletingLastPathComponent().appendingPathComponent("shared")
        return FileManager.default.fileExists(atPath: candidate.path) ? candidate : nil
    }
}
