public enum CALMModelPlaceholder {}
