"""The classification head under the head contract: cross-entropy, top-k with labels, accuracy."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import zoo
from zoo.head import DecodeContext, Head


@pytest.fixture(scope="module")
def head():
    return zoo.build("resnet18+cls4").heads["cls4"]


def test_classification_head_implements_the_contract(head):
    assert isinstance(head, Head) and head.inputs == "features"


def test_loss_is_cross_entropy(head):
    logits, target = torch.randn(3, 4), torch.tensor([0, 3, 1])
    assert torch.allclose(head.loss(logits, target), F.cross_entropy(logits, target))


def test_decode_gives_top_k_labels_and_probabilities(head):
    logits = torch.tensor([[0.0, 3.0, 1.0, -1.0]])
    answer = head.decode(logits, DecodeContext(((10, 10),), ("ant", "bee", "cat", "dog"), top_k=2))[0]
    p = logits.softmax(1)[0]
    assert answer["label"] == "bee" and answer["probability"] == round(p[1].item(), 4)
    assert [t["label"] for t in answer["top_k"]] == ["bee", "cat"]
    unnamed = head.decode(logits, DecodeContext(((10, 10),), top_k=10))[0]
    assert [t["label"] for t in unnamed["top_k"]] == ["1", "2", "0", "3"]  # k capped at the class count


def test_accuracy_accumulates_over_batches(head):
    metric = head.metric()
    metric.update(torch.tensor([[5.0, 0, 0, 0], [0, 5.0, 0, 0]]), torch.tensor([0, 0]))
    metric.update(torch.tensor([[0, 0, 0, 5.0]]), torch.tensor([3]))
    assert metric.compute() == {"accuracy": pytest.approx(2 / 3)}


def test_one_class_is_a_binary_classifier_with_a_sigmoid():
    head = zoo.build("resnet18+cls1:hidden=8,dropout=0.5").heads["cls1"]
    logits, target = torch.tensor([[2.0], [-1.0]]), torch.tensor([1, 1])
    assert torch.allclose(head.loss(logits, target), F.binary_cross_entropy_with_logits(logits[:, 0], target.float()))
    answers = head.decode(logits, DecodeContext(((1, 1),) * 2, ("cat", "dog")))
    assert [a["label"] for a in answers] == ["dog", "cat"]
    assert answers[0]["probability"] == round(torch.sigmoid(torch.tensor(2.0)).item(), 4)
    metric = head.metric()
    metric.update(logits, target)
    assert metric.compute()["accuracy"] == 0.5
