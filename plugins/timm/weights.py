"""timm's pretrained weights: its pretrained tags, read from the Hugging Face cache or torch.hub's checkpoints.

The order is timm's own: a ``file`` in the pretrained config, the Hugging Face hub (``timm/resnet50.a1_in1k``),
then the config's URL. Finding a file never touches the network; only ``fetch`` does, when zoo allows it, and
it keeps a hub file only once its sha256 matches the one the hub names it by.
A tag may be written ``a1_in1k``, ``resnet50.a1_in1k`` or ``hf-hub:timm/resnet50.a1_in1k``.
"""
from __future__ import annotations

import os
import re
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from zoo.errors import ZooError, suggest
from zoo.files import download, torch_hub_file
from zoo.parts import WeightsFile

HF_FILES = ("model.safetensors", "pytorch_model.bin")  # timm prefers the safetensors file
HUB_PREFIX = "hf-hub:"
_SHA256 = re.compile(r"[0-9a-f]{64}")


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache, read from the environment now (not when huggingface_hub was imported)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "hub"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "huggingface" / "hub"


def _tag(arch: str, written: str, tags: dict[str, Any]) -> str:
    """The bare tag of ``written``: ``a1_in1k``, ``resnet50.a1_in1k`` or ``hf-hub:timm/resnet50.a1_in1k``."""
    text = written.removeprefix(HUB_PREFIX)
    if "/" in text:  # a hub repository: the tag whose config lives there
        for tag, cfg in tags.items():
            if cfg.hf_hub_id and cfg.hf_hub_id.partition("@")[0] == text:
                return tag
        if not text.startswith("timm/"):
            raise ZooError(f"no pretrained config of timm/{arch} lives at {HUB_PREFIX}{text}; "
                           f"its tags: {', '.join(tags) or 'none'}")
        text = text.removeprefix("timm/")
    owner, dot, tag = text.rpartition(".")
    if dot and owner != arch:
        raise ZooError(f"weights timm/{text} belong to backbone timm/{owner}, not timm/{arch}")
    return tag if dot else text


def _config(arch: str, tag: str) -> Any:
    from timm.models import get_arch_pretrained_cfgs, get_pretrained_cfg

    if tag == "default":
        cfg = get_pretrained_cfg(arch)
        if cfg is None:
            raise ZooError(f"timm/{arch} has no pretrained weights in timm; pass --weights FILE")
        return cfg
    tags = {name.partition(".")[2]: cfg for name, cfg in get_arch_pretrained_cfgs(arch).items()}
    tag = _tag(arch, tag, tags)
    if tag not in tags:
        listed = ", ".join(tags) or "none"
        raise ZooError(f"timm/{arch} has no pretrained tag {tag!r}{suggest(tag, tags)}; tags: {listed}")
    return tags[tag]


def _known(cfg: Any, path: str) -> dict[str, Any]:
    """What `zoo info` shows of a pretrained config: timm names the license, classes and input size."""
    size = Path(path).stat().st_size / 1e6 if path and Path(path).is_file() else None
    return {"top1": None, "size_mb": size, "license": cfg.license or "", "classes": cfg.num_classes or None,
            "input_size": list(cfg.input_size), "hub": cfg.hf_hub_id or ""}


def _blob_sha256(path: str) -> str:
    """The sha256 the hub cache names a file's blob by (large files only), or '' when it has none."""
    blob = Path(os.path.realpath(path))
    return blob.name if blob.parent.name == "blobs" and _SHA256.fullmatch(blob.name) else ""


def _hf_fetch(repo: str, revision: str | None, files: tuple[str, ...], cache: Path) -> str:
    """Download the first of ``files`` the repository has into the hub cache's layout; checked before it is kept.

    The blob is named by the sha256 the hub gives (its etag), written only when the bytes match it, then
    linked from the commit's snapshot as huggingface_hub does, so timm and huggingface_hub find it too.
    """
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.errors import EntryNotFoundError

    for filename in files:
        try:
            meta = get_hf_file_metadata(hf_hub_url(repo, filename, revision=revision))
        except EntryNotFoundError:
            if filename == files[-1]:
                raise
            continue
        etag = (meta.etag or "").strip('"').removeprefix("W/").strip('"')
        if not _SHA256.fullmatch(etag) or not meta.commit_hash:
            raise ZooError(f"the hub gives no sha256 for {filename} of {repo}, so it cannot be checked")
        folder = cache / f"models--{repo.replace('/', '--')}"
        blob = download(meta.location, folder / "blobs" / etag, etag)
        snapshot = folder / "snapshots" / meta.commit_hash / filename
        snapshot.parent.mkdir(parents=True, exist_ok=True)
        snapshot.unlink(missing_ok=True)
        snapshot.symlink_to(os.path.relpath(blob, snapshot.parent))
        (folder / "refs").mkdir(exist_ok=True)
        (folder / "refs" / (revision or "main")).write_text(meta.commit_hash)
        return str(snapshot)
    raise ZooError(f"{repo} has none of {', '.join(files)}")


def pretrained(arch: str, tag: str) -> WeightsFile:
    cfg = _config(arch, tag)
    source = f"timm/{cfg.architecture}.{cfg.tag}"
    if cfg.file:
        return WeightsFile(source, str(cfg.file), expected=f"put the file at {cfg.file}", meta=_known(cfg, str(cfg.file)))
    url_file = torch_hub_file(source, cfg.url) if cfg.url else None
    if url_file is not None and Path(url_file.path).is_file():
        return replace(url_file, meta=_known(cfg, url_file.path))
    if not cfg.hf_hub_id:
        if url_file is None:
            raise ZooError(f"{source}: timm names no file, hub id or URL for these weights; pass --weights FILE")
        return replace(url_file, meta=_known(cfg, ""))
    from huggingface_hub import try_to_load_from_cache

    repo, _, revision = cfg.hf_hub_id.partition("@")
    files = (cfg.hf_hub_filename,) if cfg.hf_hub_filename else HF_FILES
    cache = hf_cache_dir()
    for filename in files:
        found = try_to_load_from_cache(repo, filename, cache_dir=cache, revision=revision or None)
        if isinstance(found, str):
            return WeightsFile(source, found, _blob_sha256(found), meta=_known(cfg, found))
    folder = "models--" + repo.replace("/", "--")
    expected = (f"{files[0]} of {repo} belongs in the Hugging Face cache {cache} (where there is internet, run "
                f"`hf download {repo} {files[0]}` and copy the folder {folder} of its cache into {cache})")
    if url_file is not None:
        expected += f", or {url_file.expected}"
    return WeightsFile(source, fetch=partial(_hf_fetch, repo, revision or None, files, cache), expected=expected,
                       meta=_known(cfg, ""))
