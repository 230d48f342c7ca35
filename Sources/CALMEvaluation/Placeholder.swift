public enum CALMEvaluationPlaceholder {}
