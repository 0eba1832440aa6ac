"""`zoo export`: ONNX and .pt2 files with a dynamic batch, one output per head, the model's metadata,
checked against the model; int8 through PT2E where the CPU has VNNI or AMX; every bad input one line, exit 2.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw

import zoo
from zoo._runtime.machine import int8_capability
from zoo.inference.export import export, flat_outputs, read_export_metadata
from cli_helpers import one_line_error, zoo as zoo_cli

SIZE = 64  # the tests export at 64 px, the backbone's real architecture at a tiny input


def small(spec: str, **options):
    """``spec`` built fresh, taking SIZE x SIZE images, eval mode."""
    model = zoo.build(spec, **options)
    model.backbone.input_size = (3, SIZE, SIZE)
    return model.eval()




@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    """resnet18 with a classifier, key points and age-gender, saved with labels by the CLI."""
    folder = tmp_path_factory.mktemp("export")
    (folder / "labels.txt").write_text("ants\nbees\n")
    result = zoo_cli("build", "resnet18+cls2+kp2+agegender", "--freeze=layer4", "-o", str(folder / "model.safetensors"),
                     "--labels", str(folder / "labels.txt"))
    assert result.exit_code == 0, result.stderr
    return folder / "model.safetensors"


@pytest.fixture(scope="module")
def onnx_file(saved) -> tuple[Path, dict]:
    """The saved model exported once to ONNX by the CLI, checked with onnxruntime: (file, the --json report).
    The tests below only read it."""
    pytest.importorskip("onnxruntime")
    out = saved.parent / "model.onnx"
    result = zoo_cli("export", str(saved), "-o", str(out), "--check", "--json")
    assert result.exit_code == 0, result.stderr
    return out, json.loads(result.stdout)


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    """A dozen images drawn with PIL: shapes in colours, and one file that is not an image."""
    folder = tmp_path_factory.mktemp("calibrate")
    generator = torch.Generator().manual_seed(0)
    for index in range(12):
        colour = tuple(int(v) for v in torch.randint(0, 256, (3,), generator=generator))
        image = Image.new("RGB", (80, 60), colour)
        draw = ImageDraw.Draw(image)
        x, y = (int(v) for v in torch.randint(0, 40, (2,), generator=generator))
        draw.ellipse([x, y, x + 30, y + 20], fill=tuple(255 - c for c in colour))
        image.save(folder / f"{index:02d}.png")
    (folder / "notes.jpg").write_text("not an image")
    return folder


def test_onnx_from_a_model_file_has_dynamic_batch_and_metadata(saved, onnx_file):
    import onnxruntime

    out, report = onnx_file
    assert report["check"]["runtime"] == "onnxruntime" and report["check"]["max_difference"] <= 1e-4
    meta = read_export_metadata(out)
    assert meta["labels"] == {"cls2": ["ants", "bees"]}
    assert meta["input_size"] == [3, 224, 224] and meta["outputs"] == report["outputs"] and meta["dynamic_batch"]
    assert meta["mean"] == pytest.approx([0.485, 0.456, 0.406]) and meta["std"] == pytest.approx([0.229, 0.224, 0.225])
    assert meta["spec"] == "torchvision/resnet18+zoo/cls2+zoo/kp2+zoo/agegender" and meta["freeze"] == "zoo/before:layer4"

    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image"]
    batch = torch.randn(5, 3, 224, 224)  # neither the traced batch nor a checked one
    got = session.run(None, {"image": batch.numpy()})
    model = zoo.load(saved).eval()
    with torch.no_grad():
        expected = flat_outputs(model, model(batch))
    assert len(got) == len(expected) == 4
    assert got[0].shape == (5, 2)
    for a, b in zip(got, expected):
        assert a.shape == tuple(b.shape) and torch.allclose(torch.from_numpy(a), b, atol=1e-4)


def test_several_heads_give_one_named_output_each(onnx_file):
    import onnxruntime

    out, report = onnx_file
    assert report["outputs"] == ["cls2", "kp2", "agegender.age", "agegender.gender"]
    assert set(report["check"]["by_output"]) == set(report["outputs"])
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == report["outputs"]


@pytest.fixture(scope="module")
def pt2(tmp_path_factory):
    """resnet18+cls4 (frozen before layer4, in training mode) exported with check over an existing file, with
    force; the model's modes are recorded right after the export, then it is put in eval mode for comparing."""
    target = tmp_path_factory.mktemp("pt2") / "model.pt2"
    target.write_bytes(b"old")
    model = small("resnet18+cls4", freeze="layer4").train()
    report = export(model, target, check=True, force=True)
    modes = {"model": model.training, "layer1": model.backbone.layer1.training}
    return target, model.eval(), report, modes


def test_pt2_reloads_and_computes_what_the_model_computes(pt2):
    path, model, report, _ = pt2
    assert report.format == "pt2" and report.check["max_difference"] <= 1e-4
    program = torch.export.load(str(path))
    batch = torch.randn(7, 3, SIZE, SIZE)
    with torch.no_grad():
        (got,) = program.module()(batch)
        assert torch.allclose(got, model(batch), atol=1e-5)
    meta = read_export_metadata(path)
    assert meta["input_size"] == [3, SIZE, SIZE] and meta["outputs"] == ["cls4"] and meta["int8"] is False


def test_a_part_that_cannot_be_traced_is_named(zoo_registry, tmp_path):
    import unexportable_plugin

    registry = zoo_registry(unexportable_plugin)
    model = zoo.build("resnet18+cls2+numpyhead3", registry=registry)
    model.backbone.input_size = (3, SIZE, SIZE)
    with pytest.raises(zoo.ZooError, match=r"cannot be exported to torch\.export: its head numpyhead3 cannot be traced"):
        export(model, tmp_path / "m.pt2", registry=registry)
    assert not (tmp_path / "m.pt2").exists()


def test_detection_is_refused_with_the_reason(tmp_path):
    result = zoo_cli("export", "resnet18+det3", "-o", str(tmp_path / "det.onnx"))
    one_line_error(result, r"detection head det3 takes a list of images of any size")
    assert not (tmp_path / "det.onnx").exists()


@pytest.mark.parametrize("args, pattern", [
    (["-o", "{tmp}/model.tflite"], r"must end in \.onnx \(ONNX\) or \.pt2"),
    (["-o", "{tmp}/missing/model.onnx"], r"the folder .*missing does not exist"),
    (["-o", "{tmp}/exists.onnx"], r"exists; use --force"),
    (["-o", "{tmp}/model.onnx", "--int8", "--calibrate", "{tmp}"], r"--int8 writes a \.pt2 file"),
    (["-o", "{tmp}/model.pt2", "--int8"], r"--int8 needs calibration images: --calibrate DIR"),
    (["-o", "{tmp}/model.pt2", "--int8", "--calibrate", "{tmp}/nowhere"], r"--calibrate .*nowhere: no such folder"),
    (["-o", "{tmp}/model.pt2", "--calibrate", "{tmp}"], r"calibration images are for --int8"),
])
def test_bad_requests_are_one_line_before_any_work(saved, tmp_path, args, pattern):
    (tmp_path / "exists.onnx").write_bytes(b"keep me")
    result = zoo_cli("export", str(saved), *[a.format(tmp=tmp_path) for a in args])
    one_line_error(result, pattern)
    assert (tmp_path / "exists.onnx").read_bytes() == b"keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exists.onnx"]


def test_a_missing_model_file_is_one_line(tmp_path):
    one_line_error(zoo_cli("export", str(tmp_path / "nope.safetensors"), "-o", str(tmp_path / "m.onnx")),
                   r"model file .*nope\.safetensors does not exist")


def test_force_replaces_an_existing_export_and_the_model_keeps_its_mode(pt2):
    path, _, _, modes = pt2
    assert path.read_bytes()[:3] != b"old" and read_export_metadata(path)["outputs"] == ["cls4"]
    assert modes == {"model": True, "layer1": False}  # still training; frozen stages stay in eval


def test_int8_is_refused_on_a_cpu_without_vnni_or_amx(saved, tmp_path, monkeypatch, images):
    from zoo._runtime import machine as _machine
    monkeypatch.setattr(_machine, "cpu_flags", lambda: {"sse4_2", "avx2", "avx512f"})
    result = zoo_cli("export", str(saved), "-o", str(tmp_path / "q.pt2"), "--int8", "--calibrate", str(images))
    one_line_error(result, r"--int8 needs a CPU with VNNI or AMX .* has neither")


def test_int8_without_readable_images_says_so(tmp_path):
    if not int8_capability():
        pytest.skip("this CPU has no VNNI or AMX")
    (tmp_path / "cal").mkdir()
    (tmp_path / "cal" / "a.png").write_text("not a png")
    with pytest.warns(zoo.ZooWarning, match="skipped for calibration"), \
            pytest.raises(zoo.ZooError, match="no image in it could be read"):
        export(small("resnet18+cls2"), tmp_path / "q.pt2", int8=True, calibrate=tmp_path / "cal")
    assert not (tmp_path / "q.pt2").exists()


@pytest.fixture(scope="module")
def int8(images, tmp_path_factory):
    """resnet18+cls3 exported to int8 once, calibrated on the drawn images and checked: (file, model, report)."""
    if not int8_capability():
        pytest.skip("this CPU has no VNNI or AMX: int8 is refused here")
    pytest.importorskip("torchao")
    path = tmp_path_factory.mktemp("int8") / "q.pt2"
    model = small("resnet18+cls3")
    with pytest.warns(zoo.ZooWarning, match="notes.jpg"):
        report = export(model, path, int8=True, calibrate=images, check=True)
    return path, model, report


def test_int8_pt2_is_calibrated_checked_and_close_to_fp32(int8):
    path, model, report = int8
    assert report.int8 and report.calibration_images == 12
    assert report.check["max_difference"] <= 1e-4  # the file computes what the quantized model computes
    program = torch.export.load(str(path))
    ops = {str(node.target) for node in program.graph.nodes if node.op == "call_function"}
    assert any("quantize_per_tensor" in op for op in ops), sorted(ops)[:20]
    batch = torch.randn(4, 3, SIZE, SIZE)
    with torch.no_grad():
        (got,) = program.module()(batch)
        expected = model(batch)
    assert got.shape == expected.shape
    scale = float(expected.abs().max())
    assert float((got - expected).abs().max()) < 0.25 * scale  # int8 is near fp32, not equal to it
    assert read_export_metadata(path)["int8"] is True


def test_int8_metadata_reads_in_a_fresh_process_without_its_kernels(int8, tmp_path):
    """The metadata is read from the archive, not by loading the program (which needs torchao's int8 kernels)."""
    path, _, _ = int8
    code = ("import json, sys\nfrom zoo.inference.export import read_export_metadata\n"
            "meta = read_export_metadata(sys.argv[1])\n"
            "print(json.dumps({'int8': meta['int8'], 'torchao': any(m.startswith('torchao') for m in sys.modules)}))")
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout) == {"int8": True, "torchao": False}
    broken = tmp_path / "broken.pt2"
    broken.write_bytes(b"not a zip archive")
    with pytest.raises(zoo.ZooError, match="not a .pt2 file"):
        read_export_metadata(broken)


def test_int8_file_stores_its_weights_once_in_int8_a_quarter_of_fp32(int8, tmp_path):
    path, model, report = int8
    fp32 = export(model, tmp_path / "fp32.pt2")
    assert report.bytes == path.stat().st_size
    assert report.bytes < 0.35 * fp32.bytes, (report.bytes, fp32.bytes)  # int8 weights: about a quarter
    program = torch.export.load(str(path))
    tensors = {**program.state_dict, **program.constants}
    weights = {name: t for name, t in tensors.items() if t.dim() >= 2}  # convolution and linear weights
    assert len(weights) == 21 and all(t.dtype == torch.int8 for t in weights.values()), \
        sorted((name, str(t.dtype)) for name, t in weights.items() if t.dtype != torch.int8)[:5]


README_SNIPPET_RUN = """
import json, sys
from torch._dynamo.utils import counters
torch.save(logits, sys.argv[2])
lowered = sum(n for key, n in counters["inductor"].items() if key.startswith("qconv") and key.endswith("_count"))
print(json.dumps({"int8_convolutions": lowered, "zoo_imported": "zoo" in sys.modules}))
"""


def readme_int8_snippet() -> str:
    """The README's Python block that runs an int8 .pt2, as written there."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    blocks = [block.split("```", 1)[0] for block in readme.split("```python\n")[1:]]
    (snippet,) = [block for block in blocks if "-int8.pt2" in block]
    return snippet


def test_the_readme_int8_snippet_loads_and_compiles_the_file_in_a_fresh_process(int8, tmp_path):
    """As the README shows it, in a process that has imported neither zoo nor torchao beforehand: the file
    loads, compiles to oneDNN int8 convolutions, and computes what the quantized program computes."""
    path, _, _ = int8
    snippet = readme_int8_snippet()
    assert '"ants-bees-int8.pt2"' in snippet and "logits, = model(batch)" in snippet
    batch = torch.randn(3, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(5))
    torch.save(batch, tmp_path / "batch.pt")
    script = ("import sys, torch\nbatch = torch.load(sys.argv[1])\n"
              + snippet.replace('"ants-bees-int8.pt2"', repr(str(path))) + README_SNIPPET_RUN)
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "batch.pt"), str(tmp_path / "logits.pt")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"int8_convolutions": result["int8_convolutions"], "zoo_imported": False}
    assert result["int8_convolutions"] >= 20  # resnet18's 20 convolutions, lowered to oneDNN int8
    with torch.no_grad():
        (expected,) = torch.export.load(str(path)).module()(batch)
    got = torch.load(tmp_path / "logits.pt")
    assert got.shape == (3, 3) and float((got - expected).abs().max()) <= 0.1 * float(expected.abs().max())


def test_detection_refusal_is_the_only_line_a_user_sees(run_zoo, tmp_path):
    done = run_zoo("export", "resnet18+det3", "-o", str(tmp_path / "det.onnx"))
    lines = [line for line in done.stderr.splitlines() if "CUDA_HOME" not in line]  # torch's own start-up note
    assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("zoo: error: "), done.stderr
