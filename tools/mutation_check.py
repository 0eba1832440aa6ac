"""Does the suite catch deliberate bugs? Each mutant below is a small edit that breaks a README promise;
it is applied to a copy of the project in a temporary folder and the tests named with it must fail there.

    .venv/bin/python tools/mutation_check.py            # every mutant; exit 1 if one survives
    .venv/bin/python tools/mutation_check.py --list     # the mutants and the tests each must fail
    .venv/bin/python tools/mutation_check.py --only spec-drops-backbone-options,offline-ignored

A mutant is a file path, an exact snippet found once in that file, and its replacement: when a module is
renamed or moved, retarget its entries here. The copy puts ``plugins/`` at ``zoo/plugins`` and goes first
on ``PYTHONPATH``, so the copy's code, not the installed one, is what the tests import.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COPIED = ("zoo", "plugins", "tests", "tools", "benchmarks", "README.md", "registry.toml", "pyproject.toml")


@dataclass(frozen=True)
class Edit:
    path: str  # relative to the project root
    snippet: str  # found exactly once
    replacement: str


@dataclass(frozen=True)
class Mutant:
    name: str
    why: str
    edits: tuple[Edit, ...]
    tests: tuple[str, ...]  # pytest node ids (or files); at least one must fail


MUTANTS = (
    Mutant("freeze-no-mode-refresh", "applying a policy leaves frozen stages in training mode",
           (Edit("zoo/_core/model.py", "        self.policy_frozen = tuple(self.frozen_parameters())\n        self.train(self.training)\n",
                 "        self.policy_frozen = tuple(self.frozen_parameters())\n"),),
           ("tests/test_plugin_freeze_policies.py::test_the_readme_flow_keeps_frozen_batchnorm_without_calling_train",
            "tests/test_plugin_freeze_policies.py::test_freezing_a_model_already_training_puts_its_frozen_stages_in_eval")),
    Mutant("freeze-dropout-stays-on", "dropout inside frozen stages stays in training mode",
           (Edit("zoo/_core/model.py", "        for module in self._frozen_modules():\n            module.eval()\n",
                 "        for module in self._frozen_modules():\n            module.eval()\n"
                 "            for inner in module.modules():\n"
                 "                if type(inner).__name__ == 'Dropout':\n"
                 "                    inner.train(mode)\n"),),
           ("tests/test_plugin_freeze_policies.py::test_dropout_inside_a_frozen_vgg_is_off_in_training_mode",)),
    Mutant("weights-every-classifier-to-the-head", "a distillation head overwrites the classifier",
           (Edit("zoo/_core/weights.py", "                if index or target is None:", "                if target is None:"),),
           ("tests/test_core_weights.py::test_a_distilled_checkpoints_second_classifier_does_not_overwrite_the_first",)),
    Mutant("offline-ignored", "ZOO_OFFLINE is not honoured",
           (Edit("zoo/_core/weights.py", "        if offline():\n            raise ZooError(f\"weights {found.source} are not",
                 "        if False:\n            raise ZooError(f\"weights {found.source} are not"),),
           ("tests/test_core_weights.py::test_torchvision_imagenet_offline_names_the_file_and_where_it_goes",
            "tests/test_core_weights.py::test_timm_offline_names_the_hub_file_and_cache")),
    Mutant("spec-drops-backbone-options", "the canonical form loses the backbone's options",
           (Edit("zoo/_registry/spec.py", 'return "+".join(str(part) for part in (self.backbone, *self.heads))',
                 'return "+".join([self.backbone.ref, *(str(part) for part in self.heads)])'),),
           ("tests/test_registry_spec_grammar.py",)),
    Mutant("artifact-checksum-skips-first-byte", "the content checksum misses the first tensor byte",
           (Edit("zoo/_modelfile/read.py", "        head = handle.read(data_start)\n        whole.update(head)\n",
                 "        head = handle.read(data_start + 1)\n        whole.update(head)\n"),
            Edit("zoo/_core/saving.py", "memoryview(blob)[8 + int.from_bytes(blob[:8], \"little\"):]",
                 "memoryview(blob)[9 + int.from_bytes(blob[:8], \"little\"):]")),
           ("tests/test_core_saving.py::test_corrupted_tensor_bytes_are_refused",)),
    Mutant("summary-labels-swapped", "the freeze table says trains for frozen and frozen for trains",
           (Edit("zoo/cli/_format.py", '"trains" if part["trains"] else "frozen"', '"frozen" if part["trains"] else "trains"'),),
           ("tests/test_docs_readme_table.py",)),
    Mutant("compile-not-applied", "--compile runs the eager model",
           (Edit("zoo/_runtime/compiled.py", "        self.compiled = torch.compile(self.model, mode=mode or None)\n",
                 "        self.compiled = self.model\n"),
            Edit("zoo/_runtime/compiled.py", "    return torch.compile(model, mode=mode)\n", "    return model\n")),
           ("tests/test_bench.py::test_compiled_inference_and_training_are_compiled_and_say_so",)),
    Mutant("freezing-as-compile-option", "freezing passed as torch.compile's option",
           (Edit("zoo/_runtime/compiled.py", "        self.compiled = torch.compile(self.model, mode=mode or None)\n",
                 "        self.compiled = torch.compile(self.model, mode=mode or None, options=INDUCTOR_SETTINGS)\n"),
            Edit("zoo/_runtime/compiled.py", "        stack.enter_context(torch._inductor.config.patch(INDUCTOR_SETTINGS))\n", "")),
           ("tests/test_inference_fast.py::test_compiled_inference_folds_batchnorm_into_the_convolution",)),
    Mutant("download-kept-elsewhere", "a checked download is not kept where it is looked for",
           (Edit("zoo/files.py", "        shown.done(found)\n        os.chmod(tmp, _mode_for(path))\n        os.replace(tmp, path)\n",
                 "        shown.done(found)\n        os.chmod(tmp, _mode_for(path))\n"
                 "        os.replace(tmp, path.with_suffix('.download'))\n"),),
           ("tests/test_core_weights.py::test_a_download_that_passes_its_hash_is_kept_where_torch_hub_looks",
            "tests/test_core_weights.py::test_url_pinned_weights_are_downloaded_checked_and_kept_in_the_cache")),
    Mutant("timm-cache-not-versioned", "timm's model list survives an upgrade of timm",
           (Edit("plugins/timm/plugin.py", "cached_json(f\"timm-{version('timm')}-models.json\"",
                 "cached_json(\"timm-models.json\""),),
           ("tests/test_registry_list.py::test_timms_model_list_is_cached_per_timm_version",)),
    Mutant("torchrun-train-metrics-of-one-share", "under torchrun the training metrics cover rank 0's images only",
           (Edit("zoo/training/epoch.py", "    for outputs, targets in group.collect(seen, len(seen)):\n",
                 "    for outputs, targets in seen:\n"),),
           ("tests/test_runtime_distributed.py::test_two_processes_report_train_and_val_metrics_over_every_image",)),
    Mutant("torchrun-validation-on-own-batchnorm", "each process validates its share with its own BatchNorm "
           "statistics, not those of the model rank 0 saves",
           (Edit("zoo/training/epoch.py", "        group.same_buffers(model)\n", "        pass\n"),),
           ("tests/test_runtime_distributed.py::test_two_processes_report_train_and_val_metrics_over_every_image",)),
    Mutant("torchrun-eval-of-rank-0-share", "rank 0 tallies its own batches only",
           (Edit("zoo/_runtime/processes.py", "yield from (found for found in received if found is not None)",
                 "yield from received[:1] if received[0] is not None else ()"),),
           ("tests/test_runtime_distributed.py::test_eval_on_two_processes_gives_the_metrics_of_one",)),
    Mutant("torchrun-predict-of-own-share", "rank 0 prints only the images it predicted itself",
           (Edit("zoo/inference/predict.py", "    for answered in group.everyone(own):\n", "    for answered in [own]:\n"),),
           ("tests/test_runtime_distributed.py::test_predict_on_two_processes_answers_every_image_in_order",)),
    Mutant("torchrun-error-from-every-process", "every process prints the error they all found",
           (Edit("zoo/cli/__init__.py", "if isinstance(exc, EveryProcessError) and not _is_rank_zero():",
                 "if False:"),),
           ("tests/test_runtime_distributed.py::test_more_processes_than_images_to_evaluate_or_predict_is_one_clear_line",)),
    Mutant("fast-trial-leaves-batchnorm-moved", "timing the training forms leaves the BatchNorm statistics it moved",
           (Edit("zoo/training/fast.py", "            self.model.load_state_dict(saved)\n", ""),),
           ("tests/test_training_fast.py::test_timing_forms_leaves_weights_statistics_gradients_and_random_state_as_they_were",)),
    Mutant("fast-compiles-short-runs", "--fast tries a compile however short the run",
           (Edit("zoo/_runtime/compiled.py", "worth_trying_compile(device, images_planned / eager_rate)", "True"),),
           ("tests/test_training_fast.py::test_a_compile_is_tried_only_when_the_run_repays_it_and_kept_only_if_faster",)),
    Mutant("cache-views-move-random-state", "building augmented views draws from the run's random state",
           (Edit("zoo/training/feature_cache.py", "with torch.no_grad(), torch.random.fork_rng(devices=[]):",
                 "with torch.no_grad():"),),
           ("tests/test_training_feature_cache.py::test_augmented_views_are_cached_drawn_the_same_each_time_and_taken_in_turn",)),
    Mutant("best-epoch-by-training-loss", "the best epoch kept, saved and reported is the one with the lowest "
           "training loss, not the best validation figure",
           (Edit("zoo/training/state.py", '    return -row["val/loss"]\n', '    return -row["train/loss"]\n'),),
           ("tests/test_training_fit.py::test_the_best_epoch_is_chosen_by_validation_even_when_training_loss_disagrees",)),
    Mutant("torchrun-totals-by-max", "under torchrun the training loss, image count and rate are the largest "
           "process's figures, not their sums",
           (Edit("zoo/_runtime/processes.py", 'return self._reduce(values, "SUM")', 'return self._reduce(values, "MAX")'),),
           ("tests/test_runtime_distributed.py::test_two_processes_count_every_image_in_the_training_loss_and_rate",)),
    Mutant("cache-metrics-in-feature-units", "on cached features the key points' pixel error is measured in the "
           "cached tensor's size, not the images'",
           (Edit("zoo/training/feature_cache.py", "        if self._images_shape is None:\n",
                 "        if False:\n"),),
           ("tests/test_training_feature_cache.py::test_a_cached_run_reports_and_saves_the_metrics_of_an_uncached_one",)),
    Mutant("one-image-batch-trains", "a batch that unreadable files leave with one image trains BatchNorm, and fails",
           (Edit("zoo/training/epoch.py", "    least = 2 if group is None and _trains_batchnorm(model) else 1",
                 "    least = 1"),),
           ("tests/test_cli_training.py::test_a_batch_left_with_one_image_by_unreadable_files_is_skipped",)),
    Mutant("choose-errors-rank-highest-first", "zoo choose ranks a key-point error as if higher were better",
           (Edit("zoo/choosing/_metrics.py", 'Metric("pixel_error", "probe px", False, ".2f")',
                 'Metric("pixel_error", "probe px", True, ".2f")'),),
           ("tests/test_choose_heads.py::test_the_ranking_puts_the_lowest_error_first",
            "tests/test_choose_heads.py::test_key_points_are_scored_in_pixels_and_the_lowest_error_is_best")),
    Mutant("choose-every-rank-prints", "under torchrun every process prints zoo choose's answer",
           (Edit("zoo/cli/_choose.py", "    if is_rank_zero():  # under torchrun only rank 0 reports",
                 "    if True:"),),
           ("tests/test_runtime_distributed.py::test_zoo_choose_on_two_processes_shares_the_candidates_and_ranks_as_one",)),
    Mutant("torchrun-unreadable-names-of-one", "under torchrun the history names rank 0's unreadable images alone",
           (Edit("zoo/training/epoch.py",
                 '        names = [name for share in group.everyone(list(getattr(skipped, "names", ()))) for name in share]',
                 '        names = list(getattr(skipped, "names", ()))'),),
           ("tests/test_runtime_distributed.py::test_two_processes_name_every_unreadable_training_image",)),
    Mutant("vit-one-image-size", "timm's vision transformers take only the image size they were made for",
           (Edit("plugins/timm/model.py", 'ANY_IMAGE_SIZE = {"dynamic_img_size": True}', "ANY_IMAGE_SIZE = {}"),),
           ("tests/test_plugin_timm_families.py::test_vision_transformers_take_an_image_size_other_than_their_own",)),
)


def copy_project(target: Path) -> None:
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__", "results"))
        elif source.is_file():
            shutil.copy2(source, target / name)
    shutil.copytree(target / "plugins", target / "zoo" / "plugins")  # where the package puts them


def apply(root: Path, edit: Edit) -> None:
    for path in (root / edit.path, *((root / "zoo" / edit.path,)
                                     if edit.path.startswith("plugins/") else ())):
        text = path.read_text()
        count = text.count(edit.snippet)
        if count != 1:
            raise SystemExit(f"mutation_check: {edit.path}: the snippet occurs {count} times, not once; "
                             f"retarget it:\n{edit.snippet}")
        path.write_text(text.replace(edit.snippet, edit.replacement))


def _environment(root: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}


def imports_the_copy(root: Path) -> bool:
    """The copy's zoo and zoo.plugins are the ones imported, not the installed project's."""
    probe = "import zoo, zoo.plugins.timm.plugin as t; print(zoo.__file__); print(t.__file__)"
    out = subprocess.run([sys.executable, "-c", probe], cwd=root, env=_environment(root), capture_output=True,
                         text=True).stdout.split()
    return len(out) == 2 and all(Path(p).resolve().is_relative_to(root.resolve()) for p in out)


def run_tests(root: Path, tests: tuple[str, ...]) -> tuple[int, str]:
    env = _environment(root)
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-p", "no:logging",
                             *tests], cwd=root, env=env, capture_output=True, text=True)
    last = [line for line in result.stdout.splitlines() if line.strip()][-1:] or [result.stderr.strip()[-200:]]
    return result.returncode, last[0]


def check(mutant: Mutant) -> bool:
    """True when the mutant is killed: its tests fail (and the copy imports the copy's code)."""
    with tempfile.TemporaryDirectory(prefix="zoo-mutant-") as folder:
        root = Path(folder)
        copy_project(root)
        if not imports_the_copy(root):
            raise SystemExit("mutation_check: the tests would import the installed zoo, not the mutated copy")
        for edit in mutant.edits:
            apply(root, edit)
        start = time.perf_counter()
        code, summary = run_tests(root, mutant.tests)
    killed = code == 1  # 1: tests failed; 2-5 would be an error of the check itself
    status = "killed" if killed else ("SURVIVED" if code == 0 else f"ERROR (pytest exit {code})")
    print(f"{status:9} {mutant.name:40} {time.perf_counter() - start:5.0f} s  {summary}", flush=True)
    return killed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help="comma-separated mutant names")
    parser.add_argument("--list", action="store_true", help="print the mutants and their tests")
    parser.add_argument("--baseline", action="store_true", help="first check that the tests pass unmutated")
    args = parser.parse_args()
    names = {n.strip() for n in args.only.split(",") if n.strip()}
    unknown = names - {m.name for m in MUTANTS}
    if unknown:
        parser.error(f"unknown mutant {sorted(unknown)[0]!r}; mutants: {', '.join(m.name for m in MUTANTS)}")
    chosen = [m for m in MUTANTS if not names or m.name in names]
    if args.list:
        for mutant in chosen:
            print(f"{mutant.name}: {mutant.why}\n    " + "\n    ".join(mutant.tests))
        return 0
    if args.baseline:
        with tempfile.TemporaryDirectory(prefix="zoo-unmutated-") as folder:
            copy_project(Path(folder))
            code, summary = run_tests(Path(folder), tuple(t for m in chosen for t in m.tests))
        print(f"{'baseline':9} {'(no mutation)':40} {summary}", flush=True)
        if code != 0:
            return 1
    survivors = [m.name for m in chosen if not check(m)]
    print(f"{len(chosen) - len(survivors)} of {len(chosen)} mutants killed" +
          (f"; survived or errored: {', '.join(survivors)}" if survivors else ""))
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
