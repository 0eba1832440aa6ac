"""The built-in task heads: classification, key points, age + gender, detection (entry point: `plugin`)."""
