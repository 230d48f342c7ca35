/// CALM-M-shaped decode step timing (filled in with the model work).
func runDecodeBenchmark(_ arguments: [String]) {
    print("decode benchmark not written yet")
}
