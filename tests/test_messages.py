"""Messages for bad files (issue 16, item 7): one short line that names the file and what is wrong with it.

* a config file that is not UTF-8 text, a folder, or a file that cannot be read (:func:`neuromod.config.
  read_toml`);
* a ``.pt`` file that is not a neuromod SE model weights file (:func:`neuromod.protocols.se_files.
  load_se_model`): random bytes, a truncated archive, a text file, a pickle of a global that the
  restricted unpickler refuses, and a pickle that would run code. The message never holds torch's long
  text, whose hint to load the file with ``weights_only=False`` would run that code; nothing in the file is
  ever executed.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import torch

from neuromod.config import ConfigError, read_toml
from neuromod.gating.task_model import SETaskModel, SETaskModelConfig
from neuromod.protocols.se_files import load_se_model, save_se_model
from neuromod.results import ResultsError

#: Longest message accepted (characters; the file's path counted as "<file>").
MAX_CHARS = 200


def _short(err: BaseException, path: Path) -> str:
    """The message with `path` as ``<file>``, checked to be one line of at most MAX_CHARS characters."""
    text = str(err).replace(str(path), "<file>")
    assert "\n" not in text, f"the message has {text.count(chr(10)) + 1} lines: {text!r}"
    assert len(text) <= MAX_CHARS, f"the message has {len(text)} characters (> {MAX_CHARS}): {text!r}"
    return text


# ------------------------------------------------------------------------------------------ TOML files
def test_toml_not_utf8_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "garbage.toml"
    path.write_bytes(b"\x90\x91\xfe binary \x00\xff")
    with pytest.raises(ConfigError) as info:
        read_toml(path)
    text = _short(info.value, path)
    assert re.search(r"'<file>' is not TOML: it is not UTF-8 text \(byte 0x90 at offset 0\)", text), text
    assert "codec" not in text


def test_toml_folder_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "folder.toml"
    path.mkdir()
    with pytest.raises(IsADirectoryError) as info:
        read_toml(path)
    assert _short(info.value, path) == "the config file '<file>' is a folder; expected a TOML file"


def test_toml_unreadable_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "secret.toml"
    path.write_text("seed = 1\n")

    def refuse(*args: object, **kwargs: object) -> None:  # the same error as a file mode 000 for non-root
        raise PermissionError(13, "Permission denied", str(path))

    import neuromod.config

    monkeypatch.setattr(neuromod.config, "open", refuse, raising=False)
    with pytest.raises(PermissionError) as info:
        read_toml(path)
    assert _short(info.value, path) == "the config file '<file>' cannot be read: permission denied"


# ------------------------------------------------------------------------------------------ SE model files
class _RunsCode:
    """A pickle whose loading would call ``os.system`` (writing a marker file)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


class _Plain:
    """A class of this module: a global that the restricted unpickler does not allow."""


def _saved_model(tmp_path: Path) -> tuple[Path, Path]:
    return save_se_model(SETaskModel(SETaskModelConfig(channels_per_population=2)), tmp_path / "m")


def _damage(kind: str, pt: Path, marker: Path) -> None:
    if kind == "random_bytes":
        pt.write_bytes(os.urandom(4096))
    elif kind == "truncated":
        pt.write_bytes(pt.read_bytes()[: pt.stat().st_size // 2])
    elif kind == "text":
        pt.write_text("these are not weights\n")
    elif kind == "empty":
        pt.write_bytes(b"")
    elif kind == "not_allowed_global":
        torch.save({"weight": _Plain()}, pt)
    elif kind == "runs_code":
        torch.save({"weight": _RunsCode(marker)}, pt)
    elif kind == "not_a_dict":
        torch.save([torch.ones(2)], pt)


@pytest.mark.parametrize(
    "kind",
    ["random_bytes", "truncated", "text", "empty", "not_allowed_global", "runs_code", "not_a_dict"],
)
def test_bad_weights_file_is_one_short_line(tmp_path: Path, kind: str) -> None:
    pt, _ = _saved_model(tmp_path)
    marker = tmp_path / "code-ran"
    _damage(kind, pt, marker)
    with pytest.raises(ResultsError) as info:
        load_se_model(tmp_path / "m")
    text = _short(info.value, pt)
    assert text.startswith("'<file>' is not a neuromod SE model weights file"), text
    assert "weights_only" not in text and "Weights only" not in text
    err = info.value  # torch's error is not chained: no traceback shows its text either
    assert err.__cause__ is None and (err.__context__ is None or err.__suppress_context__)
    assert not marker.exists(), "loading the file executed code from it"


def test_code_in_a_weights_file_never_runs_even_from_the_cli(tmp_path: Path) -> None:
    """The same file given as ``se.model_path`` of a run: refused in one line, nothing executed."""
    from typer.testing import CliRunner

    from neuromod.cli import app

    pt, _ = _saved_model(tmp_path)
    marker = tmp_path / "code-ran"
    _damage("runs_code", pt, marker)
    cfg = tmp_path / "run.toml"
    cfg.write_text(
        f'experiment = "decision"\nmodels = ["se"]\n[se]\nmodel_path = "{tmp_path / "m"}"\n'
        "[n_trials]\nse = 2\n"
    )
    result = CliRunner().invoke(app, ["run", str(cfg), "--out", str(tmp_path / "r.nc"), "--no-progress"])
    assert result.exit_code == 1, result.output
    err = result.stderr.strip()
    assert err.startswith("neuromod: error: ") and "\n" not in err, err
    assert "is not a neuromod SE model weights file" in err and "weights_only" not in err, err
    assert not marker.exists(), "loading the file executed code from it"
    assert not (tmp_path / "r.nc").exists()
