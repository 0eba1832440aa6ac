"""`zoo.build` drops into the seeds' training loops: the optimizer trains exactly what should train."""
from __future__ import annotations

import torch
from torch import nn

import zoo


def test_an_optimizer_over_trainable_parameters_updates_exactly_those():
    torch.manual_seed(0)
    model = zoo.build("resnet18+cls2:hidden=16,dropout=0.5", freeze="layer4")
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer = torch.optim.SGD(filter(lambda p: p.requires_grad, model.parameters()), lr=0.05, momentum=0.9)
    criterion = nn.CrossEntropyLoss()
    model.train()
    for _ in range(2):
        inputs, labels = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 1, 0])
        optimizer.zero_grad()
        loss = criterion(model(inputs), labels)
        loss.backward()
        optimizer.step()
    changed = {name for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    should_train = {name for name, p in model.named_parameters()
                    if name.startswith(("backbone.layer4.", "heads."))}
    assert changed == should_train


def test_outputs_are_logits_for_one_head_and_a_dict_for_several():
    single = zoo.build("resnet18+cls3").eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.inference_mode():
        assert single(x).shape == (2, 3)
    double = zoo.build("resnet18+cls3+cls5").eval()
    with torch.inference_mode():
        out = double(x)
    assert set(out) == {"cls3", "cls5"} and out["cls5"].shape == (2, 5)


def test_keras_recipe_head_is_dense_relu_dropout_dense():
    head = zoo.build("vgg11+cls1:hidden=128,dropout=0.5", freeze="all").heads["cls1"]
    layers = [m for m in head.modules() if isinstance(m, (nn.Linear, nn.ReLU, nn.Dropout))]
    assert [type(m).__name__ for m in layers] == ["Linear", "ReLU", "Dropout", "Linear"]
    assert layers[0].in_features == 4096 and layers[0].out_features == 128 and layers[2].p == 0.5
