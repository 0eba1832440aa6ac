"""timm's pretrained weights: its pretrained tags, read from the Hugging Face cache or torch.hub's checkpoints.

The order is timm's own: a ``file`` in the pretrained config, the Hugging Face hub (``timm/resnet50.a1_in1k``),
then the config's URL. Finding a file never touches the network; only ``fetch`` does, when zoo allows it.
"""
from __future__ import annotations

import os
import re
from functools import partial
from pathlib import Path
from typing import Any

from zoo.errors import ZooError, suggest
from zoo.parts import WeightsFile
from zoo.files import torch_hub_file

HF_FILES = ("model.safetensors", "pytorch_model.bin")  # timm prefers the safetensors file


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache, read from the environment now (not when huggingface_hub was imported)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "hub"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "huggingface" / "hub"


def _config(arch: str, tag: str) -> Any:
    from timm.models import get_arch_pretrained_cfgs, get_pretrained_cfg

    if tag == "default":
        cfg = get_pretrained_cfg(arch)
        if cfg is None:
            raise ZooError(f"timm/{arch} has no pretrained weights in timm; pass --weights FILE")
        return cfg
    tags = {name.partition(".")[2]: name for name in get_arch_pretrained_cfgs(arch)}
    if tag not in tags:
        listed = ", ".join(tags) or "none"
        raise ZooError(f"timm/{arch} has no pretrained tag {tag!r}{suggest(tag, tags)}; tags: {listed}")
    return get_pretrained_cfg(tags[tag])


def _blob_sha256(path: str) -> str:
    """The sha256 the hub cache names a file's blob by (large files only), or '' when it has none."""
    blob = Path(os.path.realpath(path))
    return blob.name if blob.parent.name == "blobs" and re.fullmatch(r"[0-9a-f]{64}", blob.name) else ""


def _hf_fetch(repo: str, revision: str | None, files: tuple[str, ...], cache: Path) -> str:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    for filename in files[:-1]:
        try:
            return hf_hub_download(repo, filename, revision=revision, cache_dir=cache)
        except EntryNotFoundError:
            continue
    return hf_hub_download(repo, files[-1], revision=revision, cache_dir=cache)


def pretrained(arch: str, tag: str) -> WeightsFile:
    cfg = _config(arch, tag)
    source = f"timm/{cfg.architecture}.{cfg.tag}"
    if cfg.file:
        return WeightsFile(source, str(cfg.file), expected=f"put the file at {cfg.file}")
    url_file = torch_hub_file(source, cfg.url) if cfg.url else None
    if url_file is not None and Path(url_file.path).is_file():
        return url_file
    if not cfg.hf_hub_id:
        if url_file is None:
            raise ZooError(f"{source}: timm names no file, hub id or URL for these weights; pass --weights FILE")
        return url_file
    from huggingface_hub import try_to_load_from_cache

    repo, _, revision = cfg.hf_hub_id.partition("@")
    files = (cfg.hf_hub_filename,) if cfg.hf_hub_filename else HF_FILES
    cache = hf_cache_dir()
    for filename in files:
        found = try_to_load_from_cache(repo, filename, cache_dir=cache, revision=revision or None)
        if isinstance(found, str):
            return WeightsFile(source, found, _blob_sha256(found))
    folder = "models--" + repo.replace("/", "--")
    expected = (f"{files[0]} of {repo} belongs in the Hugging Face cache {cache} (where there is internet, run "
                f"`hf download {repo} {files[0]}` and copy the folder {folder} of its cache into {cache})")
    if url_file is not None:
        expected += f", or {url_file.expected}"
    return WeightsFile(source, fetch=partial(_hf_fetch, repo, revision or None, files, cache), expected=expected)
