from zoo import hookimpl
from zoo.parts import BackbonePart


def _never_built():
    raise AssertionError("the clashing backbone must never win")


@hookimpl
def zoo_backbones():
    yield BackbonePart("resnet50", _never_built, "a second torchvision/resnet50", namespace="torchvision")
