"""Age + gender `agegender`: one backbone, a regression and a logit, a weighted loss, MAE and accuracy."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import zoo
from zoo.head import DecodeContext


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return zoo.build("resnet18+agegender", freeze="all")


def targets(ages, genders):
    return {"age": torch.tensor(ages, dtype=torch.float32), "gender": torch.tensor(genders)}


def test_outputs_age_in_years_and_a_gender_logit(model):
    output = model.eval()(torch.rand(2, 3, 64, 64))
    assert set(output) == {"age", "gender"}
    assert output["age"].shape == output["gender"].shape == (2,)
    assert ((output["age"] > 0) & (output["age"] < 100)).all()  # max_age=100 by default


def test_loss_is_the_weighted_sum_of_age_l1_and_gender_bce():
    output = {"age": torch.tensor([30.0, 50.0]), "gender": torch.tensor([2.0, -1.0])}
    target = targets([40.0, 20.0], [1, 1])
    age = F.l1_loss(output["age"] / 80, target["age"] / 80)
    gender = F.binary_cross_entropy_with_logits(output["gender"], target["gender"].float())
    head = zoo.build("resnet18+agegender:max_age=80,age_weight=2,gender_weight=0.5").heads["agegender"]
    assert torch.allclose(head.loss(output, target), 2 * age + 0.5 * gender)
    only_gender = zoo.build("resnet18+agegender:age_weight=0").heads["agegender"]
    assert torch.allclose(only_gender.loss(output, target), gender)


def test_decodes_to_age_gender_and_its_probability(model):
    output = {"age": torch.tensor([31.24, 8.0]), "gender": torch.tensor([2.6, -1.0])}
    answers = model.heads["agegender"].decode(output, DecodeContext(((64, 64), (64, 64))))
    p = torch.sigmoid(torch.tensor(2.6)).item()
    assert answers[0] == {"age": 31.2, "gender": "female", "p_gender": round(p, 4)}
    assert answers[1]["gender"] == "male" and answers[1]["p_gender"] == round(1 - torch.sigmoid(torch.tensor(-1.0)).item(), 4)
    named = model.heads["agegender"].decode(output, DecodeContext(((64, 64),) * 2, ("m", "f")))
    assert [a["gender"] for a in named] == ["f", "m"]


def test_metrics_are_age_mae_and_gender_accuracy_over_batches(model):
    metric = model.heads["agegender"].metric()
    metric.update({"age": torch.tensor([30.0, 40.0]), "gender": torch.tensor([1.0, -1.0])}, targets([32.0, 40.0], [1, 1]))
    metric.update({"age": torch.tensor([10.0]), "gender": torch.tensor([-3.0])}, targets([20.0], [0]))
    result = metric.compute()
    assert result["age_mae"] == pytest.approx((2 + 0 + 10) / 3)
    assert result["gender_accuracy"] == pytest.approx(2 / 3)


def test_a_real_training_step_lowers_the_combined_loss(train_steps):
    torch.manual_seed(1)
    model = zoo.build("resnet18+agegender", freeze="all")  # its own: the module's model stays untrained for the rest
    target = targets([25.0, 60.0, 33.0, 47.0], [0, 1, 1, 0])
    losses = train_steps(model, torch.rand(4, 3, 64, 64), target, steps=5)
    assert losses[-1] < losses[0]


@pytest.mark.parametrize(("spec", "message"), [
    ("resnet18+agegender:age_weight=-1", "option age_weight=-1.0 is below its minimum 0"),
    ("resnet18+agegender:gender_weight=-0.5", "option gender_weight=-0.5 is below its minimum 0"),
    ("resnet18+agegender5", "head agegender takes no size"),
])
def test_mistakes_are_clear_errors(spec, message):
    with pytest.raises(zoo.ZooError, match=message):
        zoo.build(spec)
