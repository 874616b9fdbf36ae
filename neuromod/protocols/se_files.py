"""Save and load trained SE task models: the state dict (``.pt``) and the JSON config (``.json``).

Both files are written atomically (temporary name, then rename) and loaded with
``torch.load(weights_only=True)``: loading never executes code.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from neuromod import _files, results
from neuromod.config import ConfigError
from neuromod.gating.task_model import SETaskModel, SETaskModelConfig
from neuromod.protocols.se_task import check_model

__all__ = ["load_se_model", "save_se_model", "se_model_files"]

_FORMAT = "neuromod.SETaskModel"
_FORMAT_VERSION = 2  # 2: pooled squeeze, fixed readout (issue 13)


def se_model_files(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """The ``.pt`` and ``.json`` files of the model saved under base name `path`."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or path-like, got {type(path).__name__}")
    base = Path(path)
    if base.suffix in (".pt", ".json"):
        base = base.with_suffix("")
    if not base.name:
        raise ValueError(f"path={str(path)!r} has no file name")
    return base.with_name(base.name + ".pt"), base.with_name(base.name + ".json")


def _atomic_write(path: Path, write: Any) -> Path:
    _files.clean_stale(path)  # temporaries of this file left by a killed process
    tmp = results.temporary_path(path)
    try:
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def save_se_model(
    model: SETaskModel, path: str | os.PathLike[str], *, overwrite: bool = False
) -> tuple[Path, Path]:
    """Save the model as ``<path>.pt`` (state dict) and ``<path>.json`` (config), atomically.

    Parameters
    ----------
    model : SETaskModel
    path : str or path-like
        Base name; a ``.pt`` or ``.json`` suffix is dropped.
    overwrite : bool, default False
        Replace existing files.

    Returns
    -------
    (Path, Path)
        The ``.pt`` and ``.json`` paths written.

    Raises
    ------
    FileExistsError
        If either file exists and `overwrite` is False (nothing is written).
    FileNotFoundError
        If the folder does not exist.
    """
    model = check_model(model)
    pt, js = se_model_files(path)
    if not overwrite:
        for p in (pt, js):
            if p.exists():
                raise FileExistsError(f"{str(p)!r} exists; pass overwrite=True to replace it")
    if not pt.parent.is_dir():
        raise FileNotFoundError(f"the folder {str(pt.parent)!r} for {str(pt)!r} does not exist")
    meta = {"format": _FORMAT, "format_version": _FORMAT_VERSION, "config": model.config.to_dict()}
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    tmp_pt = _atomic_write(pt, lambda p: torch.save(state, p))
    try:
        tmp_js = _atomic_write(js, lambda p: p.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n"))
    except BaseException:
        tmp_pt.unlink(missing_ok=True)
        raise
    try:
        os.replace(tmp_pt, pt)
        os.replace(tmp_js, js)
    finally:  # nothing temporary is left behind, whatever failed
        tmp_pt.unlink(missing_ok=True)
        tmp_js.unlink(missing_ok=True)
    return pt, js


def _first_line(err: BaseException, limit: int = 160) -> str:
    """The first line of an error's message, at most `limit` characters (torch's run to pages)."""
    lines = str(err).strip().splitlines()
    text = lines[0] if lines else type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _read_weights(pt: Path) -> Mapping[str, torch.Tensor]:
    """The state dict in `pt`, read with torch's restricted unpickler (tensors and plain containers only:
    nothing in the file is executed), or a one-line ResultsError naming the file.

    Torch's own message for a refused file is long and suggests loading it unrestricted, which would run
    any code the file holds; only its exception class is kept as the reason, and the error is not chained
    to torch's (so no traceback shows that suggestion either).
    """
    try:
        state = torch.load(pt, weights_only=True, map_location="cpu")
    except Exception as err:  # torch raises many types for corrupt archives and refused pickles
        raise results.ResultsError(
            f"{str(pt)!r} is not a neuromod SE model weights file: it is not a readable torch state dict "
            f"({type(err).__name__})"
        ) from None
    if not isinstance(state, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise results.ResultsError(
            f"{str(pt)!r} is not a neuromod SE model weights file: it holds a {type(state).__name__}, "
            "expected a state dict of tensors"
        )
    return state


def load_se_model(path: str | os.PathLike[str]) -> SETaskModel:
    """Load a model written by :func:`save_se_model` (no code is executed: ``weights_only=True``).

    Raises
    ------
    FileNotFoundError
        If ``<path>.pt`` or ``<path>.json`` is missing.
    neuromod.results.ResultsError
        If either file is corrupt or does not match the other (wrong format, bad config, missing or
        mismatched weights).
    """
    pt, js = se_model_files(path)
    for p in (js, pt):
        if not p.is_file():
            raise FileNotFoundError(f"no such SE model file: {str(p)!r}")
    try:
        meta = json.loads(js.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise results.ResultsError(f"{str(js)!r} is not valid JSON: {_first_line(err)}") from err
    if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
        raise results.ResultsError(
            f"{str(js)!r} is not an SE task model config (expected format {_FORMAT!r})"
        )
    if meta.get("format_version") != _FORMAT_VERSION:
        raise results.ResultsError(
            f"{str(js)!r} has format_version {meta.get('format_version')!r}, expected {_FORMAT_VERSION}"
        )
    try:
        config = SETaskModelConfig.from_dict(meta.get("config", {}))
    except (ConfigError, ValueError, TypeError) as err:
        raise results.ResultsError(f"{str(js)!r}: invalid config: {err}") from err
    state = _read_weights(pt)
    model = SETaskModel(config)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise results.ResultsError(
            f"{str(pt)!r} does not match the config in {str(js)!r}: {_first_line(err)}"
        ) from err
    model.eval()
    return model
