"""The spec grammar: backbone+head[+head...], options, canonical form, and only SpecError on bad input."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zoo._registry.spec import ModelSpec, PartRef, parse
from zoo.errors import SpecError, ZooError


def test_head_names_carry_their_size():
    spec = parse("resnet50+cls10")
    assert spec.backbone == PartRef("resnet50")
    assert spec.heads == (PartRef("cls", size=10),)


def test_options_are_typed_and_sorted():
    spec = parse("timm/convnext_tiny+cls5:hidden=128,dropout=0.5,bias=true,act=gelu")
    head = spec.heads[0]
    assert spec.backbone == PartRef("convnext_tiny", namespace="timm")
    assert dict(head.options) == {"hidden": 128, "dropout": 0.5, "bias": True, "act": "gelu"}
    assert str(spec) == "timm/convnext_tiny+cls5:act=gelu,bias=true,dropout=0.5,hidden=128"


def test_canonical_form_normalises_numbers():
    assert str(parse("resnet50+cls010:dropout=.50")) == "resnet50+cls10:dropout=0.5"


@pytest.mark.parametrize("text, backbone_options", [
    ("timm/convnext_tiny:drop_path_rate=0.1+cls5", {"drop_path_rate": 0.1}),
    ("resnet50:pretrained=false,width=64+cls10:dropout=0.5+kp5", {"pretrained": False, "width": 64}),
    ("acme/net:act=gelu+agegender", {"act": "gelu"}),
])
def test_backbone_options_survive_a_round_trip(text, backbone_options):
    spec = parse(text)
    assert dict(spec.backbone.options) == backbone_options
    assert str(spec) == text
    assert parse(str(spec)) == spec


def test_several_heads_keep_their_order():
    assert [h.ref for h in parse("resnet50+cls10+kp5+agegender").heads] == ["cls10", "kp5", "agegender"]


@pytest.mark.parametrize(
    "text",
    ["", "resnet50", "resnet50+", "+cls10", "resnet50++cls10", "resnet 50+cls10", "resnet50+10",
     "resnet50+cls10:dropout", "resnet50+cls10:dropout=0.5,dropout=0.1", "resnet50+cls10:Bad=1",
     "bad ns/resnet50+cls10", "resnet50+CLS10",
     "resnet50+cls10:x=a=b"],
)
def test_malformed_specs_are_spec_errors(text):
    with pytest.raises(SpecError, match="malformed spec"):
        parse(text)


def test_spec_error_is_a_zoo_error_that_names_the_grammar():
    with pytest.raises(ZooError, match=r"expected BACKBONE\+HEAD"):
        parse("resnet50")


names = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
head_names = st.from_regex(r"[a-z](?:[a-z0-9_]{0,6}[a-z_])?", fullmatch=True)
values = st.one_of(
    st.integers(-10**6, 10**6),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.booleans(),
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_.\-]{0,8}", fullmatch=True),
)
options = st.dictionaries(st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True), values, max_size=3)
namespaces = st.one_of(st.none(), st.from_regex(r"[a-z0-9][a-z0-9_.\-]{0,6}", fullmatch=True))
backbones = st.builds(lambda n, ns, o: PartRef(n, ns, None, tuple(o.items())), names, namespaces, options)
heads = st.builds(lambda n, ns, size, o: PartRef(n, ns, size, tuple(o.items())),
                  head_names, namespaces, st.one_of(st.none(), st.integers(0, 10**4)), options)
specs = st.builds(lambda b, h: ModelSpec(b, tuple(h)), backbones, st.lists(heads, min_size=1, max_size=3))


@settings(max_examples=300, deadline=None)
@given(specs)
def test_canonical_form_round_trips(spec):
    once = parse(str(spec))  # a string value such as "1" reads back as a number: compare from here
    assert parse(str(once)) == once
    assert str(parse(str(once))) == str(once)


@settings(max_examples=300, deadline=None)
@given(specs)
def test_typed_values_survive_printing(spec):
    printed = parse(str(spec))
    for original, parsed in zip((spec.backbone, *spec.heads), (printed.backbone, *printed.heads)):
        assert (original.namespace, original.name, original.size) == (parsed.namespace, parsed.name, parsed.size)
        assert [key for key, _ in original.options] == [key for key, _ in parsed.options]  # none dropped
        for (key, value), (parsed_key, parsed_value) in zip(original.options, parsed.options):
            if not isinstance(value, str):
                assert parsed_value == value and type(parsed_value) is type(value)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=40))
def test_arbitrary_strings_give_a_spec_or_a_spec_error(text):
    try:
        spec = parse(text)
    except SpecError:
        return
    assert parse(str(spec)) == spec


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="abcr0159+:=,./-_ xeE", max_size=30))
def test_grammar_shaped_strings_give_a_spec_or_a_spec_error(text):
    try:
        spec = parse(text)
    except SpecError:
        return
    assert parse(str(spec)) == spec
