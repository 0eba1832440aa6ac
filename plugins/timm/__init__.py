"""The timm plugin: every timm model as a backbone, with timm's pretrained weights (entry point: `plugin`)."""
