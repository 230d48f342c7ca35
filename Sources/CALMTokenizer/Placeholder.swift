public enum CALMTokenizerPlaceholder {}
