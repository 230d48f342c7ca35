/// Matrix-kernel GFLOP/s, FMA peak and STREAM bandwidth (filled in with the kernels work).
func runKernelBenchmarks(_ arguments: [String]) {
    print("kernel benchmarks not written yet")
}
