"""Built-in task heads: classification, key points, age + gender, and Faster R-CNN detection."""
from __future__ import annotations

from zoo import hookimpl
from zoo.errors import ZooError, suggest
from zoo.parts import HeadPart, Option
from zoo.plugins.heads.targets import point_columns, read_age_gender, read_class, read_points
from zoo.targets import TargetReader

ZOO_CONTRACT = "1.1"  # the zoo.contract version these parts are written against
KEYPOINT_LOSSES = ("l1", "mse", "smooth_l1")


def _build_classification(features, size, **options):
    from zoo.plugins.heads.classification import ClassificationHead

    return ClassificationHead(features.num_features, size, **options)


def _build_keypoints(features, size, stage=None, loss="l1", **options):
    from zoo.plugins.heads.keypoints import KeypointHead

    spatial = [s.name for s in features.spatial_stages]
    stage = stage or spatial[-1]
    if stage not in spatial:
        raise ZooError(f"head kp{size}: no spatial stage {stage!r}{suggest(stage, spatial)}; stages: {', '.join(spatial)}")
    if loss not in KEYPOINT_LOSSES:
        raise ZooError(f"head kp{size}: unknown loss {loss!r}; losses: {', '.join(KEYPOINT_LOSSES)}")
    channels = next(s.channels for s in features.spatial_stages if s.name == stage)
    return KeypointHead(channels, size, stage, loss=loss, **options)


def _build_agegender(features, size, **options):
    from zoo.plugins.heads.agegender import AgeGenderHead

    return AgeGenderHead(features.num_features, **options)


def _build_detection(features, size, **options):
    from zoo.plugins.heads.detection import DetectionHead

    return DetectionHead(features, size, **options)


@hookimpl
def zoo_heads():
    yield HeadPart(
        "cls",
        _build_classification,
        "classification: pooled features -> [hidden + ReLU] -> [dropout] -> logits",
        namespace="zoo",
        size_label="classes",
        classifier="fc",
        targets=TargetReader(("folders", "table"), table_columns=lambda context: ("label",), read_target=read_class),
        labels="classes",
        options=(
            Option("hidden", int, None, "width of a hidden layer with ReLU before the logits", minimum=1),
            Option("dropout", float, 0.0, "dropout probability before the logits", minimum=0.0, maximum=0.999),
        ),
    )
    yield HeadPart(
        "kp",
        _build_keypoints,
        "key points: one stage -> 3x3 conv -> grid pooling -> hidden -> K (x, y) in [0, 1]; L1 loss; "
        "decoded to pixels of the image; metric: mean pixel error",
        namespace="zoo",
        size_label="points",
        needs="stage",
        targets=TargetReader(("table",), table_columns=point_columns, read_target=read_points, spatial=True),
        options=(
            Option("stage", str, None, "the spatial stage to read (default: the last)"),
            Option("channels", int, 256, "channels of the 3x3 convolution", minimum=1),
            Option("grid", int, 2, "side of the pooled grid kept before the linear layers", minimum=1),
            Option("hidden", int, 512, "width of the hidden linear layer", minimum=1),
            Option("dropout", float, 0.5, "dropout before the output layer", minimum=0.0, maximum=0.999),
            Option("loss", str, "l1", f"regression loss: {', '.join(KEYPOINT_LOSSES)}"),
        ),
    )
    yield HeadPart(
        "agegender",
        _build_agegender,
        "age (years, regression) + gender (one logit) from the pooled features; weighted L1 + BCE loss; "
        "metrics: age MAE, gender accuracy",
        namespace="zoo",
        size="none",
        targets=TargetReader(("table",), table_columns=lambda context: ("age", "gender"),
                             read_target=read_age_gender),
        labels=2,  # the genders, 0 then 1
        options=(
            Option("hidden", int, 256, "width of the shared hidden layer", minimum=1),
            Option("dropout", float, 0.4, "dropout after the hidden layer", minimum=0.0, maximum=0.999),
            Option("max_age", float, 100.0, "the oldest age the head can answer; ages are learnt as age/max_age",
                   minimum=1.0),
            Option("age_weight", float, 1.0, "weight of the age loss (0 or more)", minimum=0.0),
            Option("gender_weight", float, 1.0, "weight of the gender loss (0 or more)", minimum=0.0),
        ),
    )
    yield HeadPart(
        "det",
        _build_detection,
        "Faster R-CNN (torchvision): FPN over the backbone's stages, RPN, RoI heads; det<N> counts the "
        "background (COCO: det91); metric: box mAP",
        namespace="zoo",
        size_label="classes incl. background",
        min_size=2,
        labels="size",
        needs="stages",
        inputs="images",
        targets=TargetReader(("coco",), spatial=True),
        options=(
            Option("channels", int, 256, "channels of the feature pyramid", minimum=1),
            Option("min_size", int, 800, "images are resized so that their shorter side is this", minimum=32),
            Option("max_size", int, 1333, "... and their longer side at most this", minimum=32),
            Option("score_thresh", float, 0.05, "detections scoring less are dropped", minimum=0.0, maximum=1.0),
            Option("nms", float, 0.5, "IoU above which non-maximum suppression drops a box", minimum=0.0, maximum=1.0),
            Option("detections", int, 100, "most detections kept per image", minimum=1),
            Option("frozen_bn", bool, None, "freeze the backbone's BatchNorm (FrozenBatchNorm2d); by default only "
                   "when pretrained weights are loaded into it, and the choice is saved"),
        ),
    )
