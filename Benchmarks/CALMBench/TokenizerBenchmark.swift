/// Tokenizer encode speed on the WikiText documents (filled in with the tokenizer work).
func runTokenizerBenchmark(_ arguments: [String]) {
    print("tokenizer benchmark not written yet")
}
