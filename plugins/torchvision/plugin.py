"""torchvision's ResNet and VGG families as backbones, named as torchvision names them."""
from __future__ import annotations

from functools import partial

from zoo import hookimpl
from zoo.parts import BackbonePart
from zoo.plugins.torchvision.weights import pretrained, weights_tags

ZOO_CONTRACT = "1.1"  # the zoo.contract version these parts are written against

RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
VGGS = ("vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn")


def _build_resnet(arch: str):
    from zoo.plugins.torchvision.resnet import ResNetBackbone

    return ResNetBackbone(arch)


def _build_vgg(arch: str):
    from zoo.plugins.torchvision.vgg import VGGBackbone

    return VGGBackbone(arch)


@hookimpl
def zoo_backbones():
    tags = weights_tags(RESNETS + VGGS)
    for arch in RESNETS:
        depth = arch.removeprefix("resnet")
        yield BackbonePart(arch, partial(_build_resnet, arch), f"torchvision ResNet-{depth}", tags=("resnet",),
                           pretrained=partial(pretrained, arch), weights_tags=tuple(tags[arch]))
    for arch in VGGS:
        depth, _, bn = arch.removeprefix("vgg").partition("_")
        described = f"torchvision VGG-{depth}" + (" with batch norm" if bn else "")
        yield BackbonePart(arch, partial(_build_vgg, arch), described, tags=("vgg",), pretrained=partial(pretrained, arch),
                           weights_tags=tuple(tags[arch]))
