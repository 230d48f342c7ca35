// calm-bench: on-demand benchmarks (never run as unit tests).
//   swift run -c release calm-bench kernels [--quick]
//   swift run -c release calm-bench tokenizer [--data FILE]
//   swift run -c release calm-bench decode [--dtype f32|bf16]
//   swift run -c release calm-bench eval [--block-sizes 2048,8192] [--blocks N] [--dtype bf16|f32]
//   swift run -c release calm-bench serve [--shape calm-m|tiny] [--concurrency 1,4,16,64]
//   swift run -c release calm-bench tm [--shape medium|tiny] [--tails 1,4,16,64] [--scales 1,2] [--concurrency 1,16]
//   swift run -c release calm-bench discrete-step --model DIR [--rows 1,16] [--context 48]
//   swift run -c release calm-bench argmax-screen [--shapes 800x512x128257,1x768x128256] [--model DIR]
import CALMModel
import Foundation

let arguments = Array(CommandLine.arguments.dropFirst())
let usage = "usage: calm-bench kernels|tokenizer|decode|serve|eval|tm|discrete-step|argmax-screen [options]"
guard let command = arguments.first else {
    FileHandle.standardError.write(Data((usage + "\n").utf8))
    exit(2)
}
let rest = Array(arguments.dropFirst())
// Every figure depends on the kernels' instruction set: name it first (JSON output carries it as "isa").
if !rest.contains("--json") { print("kernels: \(KernelISA.selection)") }
switch command {
case "kernels": runKernelBenchmarks(rest)
case "tokenizer": runTokenizerBenchmark(rest)
case "decode": runDecodeBenchmark(rest)
case "serve": await runServeBenchmark(rest)
case "eval": runEvalBenchmark(rest)
case "tm": await runTokenMaturationBenchmark(rest)
case "discrete-step": runDiscreteStepBenchmark(rest)
case "argmax-screen": runScreenedArgmaxBenchmark(rest)
default:
    FileHandle.standardError.write(Data((usage + "\n").utf8))
    exit(2)
}
