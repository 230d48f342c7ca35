import CALMDefaultModel
import CALMEngine
import CALMModel
import CALMServer
import CALMTensor
import CALMTokenizer
import Foundation

/// The one option table of the commands that run the engine (`generate`, `bench-serve`,
/// `eval-repetition`): the model, its tokenizer, the weights' dtype, and the sampling options of
/// every family. (`eval` takes the Token Maturation subset, `maturationValues`/`maturationSwitches`,
/// through `maturation(_:)`.)
struct EngineOptions {
    static let modelHelp = """
      --model DIR          model folder of any family (CALM, LlamaForCausalLM, GPT2LMHeadModel or Token
                           Maturation; default: the built-in model)
      --family F           the built-in model of a family instead of --model: calm or tm (Token
                           Maturation; llama has none)
      --tokenizer DIR      tokenizer folder (default: the model folder's tokenizer.json / tokenizer.model)
      --weights-dtype D    hold weights as f32, f16 or bf16 in memory (default: as in the file)
      --ae-path DIR        CALM: autoencoder folder, overriding the config's ae_path
    """
    static let samplingHelp = samplingHelpText(samplesOption: "samples")

    /// The sampling options' help, with CALM's head-sample count under `samplesOption`
    /// (`eval-repetition` spells it --head-samples: its --samples counts samples per prompt).
    static func samplingHelpText(samplesOption: String) -> String {
        let samples = "--\(samplesOption) N".padding(toLength: 21, withPad: " ", startingAt: 0)
        return """
      --max-tokens N       most tokens to generate (default \(SamplingParameters.defaultMaxTokens))
      --temperature T      CALM: in (0, 1], default 1/2 (a fraction such as 1/3 is accepted);
                           Llama: ≥ 0, 0 is greedy
      --seed S             random seed (default: random)
      --stop TEXT          stop before this text (may be repeated)
      CALM only:
      --sampler NAME       batch (the reference's batch approximation, T = 1/n; default),
                           exact (the paper's Algorithm 1, any T), or single (T = 1)
      \(samples)head samples per step for the batch sampler (default 200)
      --max-draws N        most draws per step for the exact sampler (default 10000)
      --decoding D         lazy (default: the vocabulary argmax only for the token positions that
                           can change the selection) or full (every sample decoded whole); same tokens
      Llama only:
      --top-k K  --top-p P  --min-p P
      --repetition-penalty R  --presence-penalty P  --frequency-penalty F
      --logprobs           report each token's log-probability (generate --stats: their sum)
      Token Maturation only (defaults: the model's config.json):
      --tail K             liquid tail length K, 1…64
      --cfg-scale S        classifier-free guidance scale (1 = off, the paper's demos use 2)
      --alpha-max A        maturity of the front slot, in [0, 1]
      --rate R             maturation rate: η(α) = clamp(R·α, 0, 1)
      --embryo RHO         embryo norm as a fraction of the embedding radius
      --alignment A        shift (the output at t−1 predicts slot t) or same
      --tail-noise S  --history-noise S  --target-ema B  --history-ema B  --inner-iterations N
      --renormalize-tail   rescale tail vectors to the embedding radius after each update
      --diagnostics        per committed token: entropy at top-50, cosine to the nearest embedding,
                           top-1 − top-2 gap, lock step, distinct candidates (generate: JSON lines)
    """
    }
    /// Token Maturation's options (read by `maturation(_:)`).
    static let maturationSwitches = SamplingOptionTable.maturationSwitches
    static let maturationValues = SamplingOptionTable.maturationValues
    static let switches = SamplingOptionTable.switches
    static let values: Set<String> = valueOptions(samplesOption: "samples")

    /// The value options, with CALM's head-sample count under `samplesOption`.
    static func valueOptions(samplesOption: String) -> Set<String> {
        SamplingOptionTable.valueOptions(samplesOption: samplesOption).union(["model", "family", "tokenizer", "weights-dtype", "ae-path", "decoding"])
    }

    var modelDirectory: URL
    /// The built-in family `--family` named (nil: `--model` or the default built-in model).
    var builtInFamily: BuiltInFamily?
    var tokenizerDirectory: URL?
    var loadOptions = LoadOptions()
    var parameters: SamplingParameters
    var stops: [String]
    /// CALM: how head samples are decoded (`--decoding`).
    var chunkDecoding = DecodingStrategy.lazy

    /// Reads the options from `a` (after `extractRepeated("stop", …)` took the stops out). Without
    /// `--model` or `--family`, `defaultModel` says whether the built-in model is taken or the
    /// command fails. CALM's head-sample count is read from `--samplesOption`.
    init(_ a: inout Arguments, stops: [String], defaultModel: Bool = true, samplesOption: String = "samples") throws {
        if let (directory, family) = try Self.modelFolder(&a) {
            modelDirectory = directory
            builtInFamily = family
        } else if defaultModel {
            modelDirectory = try DefaultModel.directory()
        } else {
            throw UsageError("missing required option --model (or --family)")
        }
        tokenizerDirectory = a.string("tokenizer").map { URL(fileURLWithPath: $0) }
        if let dtypeName = a.string("weights-dtype") {
            guard let d = DType(userName: dtypeName) else { throw UsageError("option --weights-dtype: '\(dtypeName)' is not f32, f16 or bf16") }
            loadOptions.weightDType = d
        }
        loadOptions.autoencoderPath = a.string("ae-path").map { URL(fileURLWithPath: $0) }
        self.stops = stops
        var p = SamplingParameters(stopSequences: stops)
        // the sampling options: one table for the CLI and the HTTP server
        try SamplingOptionTable.read(from: &a, samplesOption: samplesOption, into: &p)
        if let d = a.string("decoding") {
            guard let strategy = DecodingStrategy(rawValue: d) else { throw UsageError("option --decoding: '\(d)' is not lazy or full") }
            chunkDecoding = strategy
        }
        parameters = p
    }

    /// The folder `--model DIR` or `--family NAME` names (with the family for a built-in model), nil
    /// when neither was given: the one place every command resolves them.
    static func modelFolder(_ a: inout Arguments) throws -> (URL, BuiltInFamily?)? {
        let familyName = a.string("family")
        if let m = a.string("model") {
            if familyName != nil { throw UsageError("give either --model or --family, not both") }
            return (URL(fileURLWithPath: m), nil)
        }
        guard let familyName else { return nil }
        do {
            let family = try BuiltInFamily(name: familyName)
            return (try DefaultModel.directory(family: family), family)
        } catch let error as BuiltInModelError {
            throw UsageError("option --family: \(error)" + (error == .unknownFamily(familyName) ? "" : "; give a model folder with --model DIR"))
        }
    }

    /// Token Maturation's settings, nil when no TM option was given (so other families see none).
    static func maturation(_ a: inout Arguments) throws -> TokenMaturationParameters? {
        try SamplingOptionTable.maturation(from: &a)
    }

    /// The engine over the model folder's family, with its tokenizer (`TokenizerLoader.discover`).
    func engine(kvCacheBytes: Int, tokenizerRequired: Bool) throws -> CALMEngine {
        let family = try ModelFamilyRegistry.load(directory: modelDirectory, options: loadOptions)
        let tokenizer = try TokenizerLoader.discover(explicit: tokenizerDirectory, modelDirectory: modelDirectory)
        if tokenizerRequired && tokenizer == nil {
            throw UsageError("no tokenizer in \(modelDirectory.path): pass --tokenizer DIR (text prompts and --stop need one) or use --prompt-ids")
        }
        return try CALMEngine(family: family, tokenizer: tokenizer, configuration: EngineConfiguration(kvCacheBytes: kvCacheBytes, chunkDecoding: chunkDecoding))
    }
}
