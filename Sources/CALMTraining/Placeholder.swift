public enum CALMTrainingPlaceholder {}
