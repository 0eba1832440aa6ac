"""The torchvision plugin: ResNet and VGG backbones and torchvision's pretrained weights (entry point: `plugin`)."""
