"""The ``neuromod`` command.

``neuromod run NAME|FILE.toml`` runs an experiment and writes a result file and a figure;
``neuromod info FILE`` prints what a result holds; ``neuromod plot FILE`` draws it;
``neuromod experiments`` lists what can be run. Errors print one line and exit non-zero; ``--debug`` shows the
traceback instead.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from typer.core import TyperGroup

from neuromod import __version__

__all__ = ["app", "main"]

#: click's usage error, as typer (which carries its own click) raises it; BadParameter is its public child.
_UsageError = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


class _Group(TyperGroup):
    """The command group, with click's usage errors (unknown option or command, a value of the wrong type)
    as one line on stderr like every other error, instead of a usage block; exit code 2 as click's."""

    @staticmethod
    @contextlib.contextmanager
    def _one_line() -> Iterator[None]:
        try:
            yield
        except _UsageError as err:
            if type(err).__name__ == "NoArgsIsHelpError":  # bare `neuromod`: the help, as asked
                raise
            path = err.ctx.command_path if err.ctx is not None else "neuromod"
            message = " ".join(err.format_message().split())
            typer.echo(f"neuromod: error: {message} (see `{path} --help`)", err=True)
            raise typer.Exit(2) from None

    def make_context(self, *args: Any, **kwargs: Any) -> typer.Context:
        with self._one_line():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: typer.Context) -> Any:
        with self._one_line():
            return super().invoke(ctx)


app = typer.Typer(
    cls=_Group,
    name="neuromod",
    help="Context-dependent gain control on an SE gate, a rate model and a spiking network.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

_STATE = {"debug": False}
F = TypeVar("F", bound=Callable[..., Any])


def _friendly(func: F) -> F:
    """Turn exceptions into one readable line on stderr and exit code 1 (unless --debug)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except KeyboardInterrupt:
            typer.echo("neuromod: interrupted; nothing was written", err=True)
            raise typer.Exit(130) from None
        except Exception as err:
            if _STATE["debug"]:
                raise
            message = " ".join(str(err).split()) or type(err).__name__
            if isinstance(err, KeyError):  # KeyError quotes its message
                message = " ".join(str(err.args[0]).split())
            typer.echo(f"neuromod: error: {message}", err=True)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"neuromod {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool | None,
        typer.Option("--version", callback=_version_callback, is_eager=True, help="Print the version."),
    ] = None,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks instead of one-line errors.")
    ] = False,
) -> None:
    _STATE["debug"] = debug


def _resolve(target: str):
    """(experiment, config) for a registered name or a TOML file with an ``experiment`` key."""
    from neuromod import registry
    from neuromod.config import ConfigError, read_toml

    if target.endswith(".toml"):
        data = read_toml(target)
        if "experiment" not in data:
            raise ConfigError(f"{target}: missing key 'experiment' (one of {registry.names()})")
        name = data["experiment"]
        if not isinstance(name, str):
            raise ConfigError(
                f"{target}: experiment = {name!r} ({type(name).__name__}); expected the name of an "
                f"experiment as a string, one of {registry.names()}"
            )
        experiment = registry.get(name)
        try:
            config = experiment.config_cls.from_dict(data)
        except ConfigError as err:
            raise ConfigError(f"{target}: {err}") from None
        return experiment, config
    if os.sep in target or Path(target).suffix:
        raise FileNotFoundError(f"{target!r} is neither an experiment name nor a .toml file")
    experiment = registry.get(target)
    return experiment, experiment.config_cls()


def _split(text: str, kind: type, option: str) -> list[Any]:
    """A comma-separated option value as a list of `kind`."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise ValueError(f"{option}={text!r}: expected a comma-separated list")
    try:
        return [kind(item) for item in items]
    except ValueError:
        raise ValueError(f"{option}={text!r}: expected a comma-separated list of {kind.__name__}s") from None


def _settings(items: list[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` items as {dotted key: value}; VALUE is read as TOML, or else kept as a string."""
    import tomllib

    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE, e.g. --set tau_ms=300")
        try:
            out[key] = tomllib.loads(f"v = {text.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            out[key] = text.strip()  # a bare word: a string setting (e.g. --set release=default)
    return out


@contextlib.contextmanager
def _log_to_stderr(name: str) -> Iterator[None]:
    """INFO messages of logger `name` on stderr, one line each, for the duration of the block.

    The handler is removed (and the logger's level restored) afterwards, so a later message never reaches
    a stream that belonged to this command (in tests, a runner's stream that is closed by then).
    """
    import logging

    log = logging.getLogger(name)
    handler = logging.StreamHandler(sys.stderr)
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(level)


@app.command()
@_friendly
def run(
    target: Annotated[
        str, typer.Argument(help="Experiment name (see `neuromod experiments`) or a TOML file.")
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Result file (.nc or .zarr); default results/NAME.nc."),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Override the configured seed.")] = None,
    models: Annotated[
        str | None, typer.Option(help="Models to run, comma-separated (e.g. se,rate,spiking).")
    ] = None,
    tau_ms: Annotated[
        float | None, typer.Option("--tau-ms", help="Modulator time constant of every model (ms).")
    ] = None,
    csi_ms: Annotated[
        str | None, typer.Option("--csi-ms", help="Cue-stimulus intervals (ms), comma-separated.")
    ] = None,
    n_trials: Annotated[int | None, typer.Option("--n-trials", help="Trials in the session.")] = None,
    settings: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="KEY=VALUE",
            help="Change any setting by its dotted TOML key; VALUE is a TOML value (e.g. --set "
            "spiking.dt_ms=0.2, --set 'csi_ms=[100, 600]'). Repeatable; applied after --quick.",
        ),
    ] = None,
    quick: Annotated[bool, typer.Option("--quick", help="A reduced run that takes seconds.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing output files.")] = False,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    scheduler: Annotated[
        str | None,
        typer.Option(
            help="Run the spiking family's sessions on Dask: 'local' (a local cluster, one worker per core), "
            "a Dask address (tcp://host:port), a scheduler file (.json) or 'slurm'. Default (or 'serial'): "
            "no Dask, this machine's worker processes."
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(help="Workers of --scheduler local, or most jobs of --scheduler slurm.", min=1),
    ] = None,
) -> None:
    """Run an experiment; write its result file and figure, and print a summary table.

    --models, --tau-ms, --csi-ms and --n-trials apply to the experiments that have these settings
    (task-switching); --set reaches every setting. Explicit settings win over --quick. --scheduler spreads
    the spiking family's independent sessions over a Dask cluster; results do not depend on it.
    """
    from neuromod import _parallel, results

    use_dask = scheduler not in (None, "serial")
    if scheduler is not None:
        from neuromod.sweep._cluster import check_scheduler, connect

        check_scheduler(scheduler)
    if workers is not None and scheduler not in ("local", "slurm"):
        given = "no --scheduler" if scheduler is None else f"--scheduler {scheduler}"
        raise ValueError(
            f"--workers {workers}: expected only with --scheduler local or slurm, got {given} "
            "(the spiking family's local worker processes: --set spiking.workers=N)"
        )
    if use_dask:
        import importlib.util

        if importlib.util.find_spec("distributed") is None:
            raise ImportError(f"--scheduler {scheduler}: needs Dask; pip install 'neuromod[dask]'")

    experiment, config = _resolve(target)
    changes = _settings(settings or [])
    for option, key, value in (
        ("--models", "models", None if models is None else _split(models, str, "--models")),
        ("--tau-ms", "tau_ms", tau_ms),
        ("--csi-ms", "csi_ms", None if csi_ms is None else _split(csi_ms, float, "--csi-ms")),
        ("--n-trials", "n_trials", n_trials),
    ):
        if value is None:
            continue
        if key not in {f.name for f in dataclasses.fields(config)}:
            raise ValueError(f"{option}: experiment {experiment.name!r} has no setting {key!r}")
        changes[key] = value
    if seed is not None:
        config = config.replace(seed=seed)
    config.override(changes)  # refuse bad settings before the (possibly long) quick config is built
    if quick:
        config = experiment.quick(config)
    config = config.override(changes)
    out = Path(out) if out is not None else Path("results") / f"{experiment.name}.nc"
    results._format_of(out)  # a result's suffix; then where it and its figure go, all before any work
    figure = out.with_suffix(".png")
    for path in (out, figure):
        results.check_writable(path, overwrite=overwrite)

    # brian2's compile notices, beside the progress bars; the Dask cluster (if any) only for the run
    with (
        _log_to_stderr("neuromod.spiking") if progress else contextlib.nullcontext(),
        connect(scheduler, n_workers=workers) if use_dask else contextlib.nullcontext() as client,
        _parallel.using(client),
    ):
        result = experiment.run(config, progress=progress)
    results.validate(result)
    fig = experiment.plot(result)  # render before writing anything
    summary = experiment.summarize(result)
    out.parent.mkdir(parents=True, exist_ok=True)
    results.save(result, out, overwrite=overwrite, figure=fig)  # both files or neither
    typer.echo(summary)
    typer.echo(f"\nresults: {out}\nfigure:  {figure}")


@app.command()
@_friendly
def sweep(
    file: Annotated[Path, typer.Argument(help="A sweep file (see experiments/sweeps/).")],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="The sweep store (.zarr); default results/NAME.zarr."),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            help="Where to run: 'local' (default: a local Dask cluster, one worker per core), 'serial' (this "
            "process), a Dask address (tcp://host:port), a scheduler file (.json), or 'slurm'."
        ),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Workers of the local cluster, or most jobs on SLURM.", min=1)
    ] = None,
    restart: Annotated[
        bool, typer.Option("--restart", help="Discard an existing store and start afresh.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check and print the points; run nothing.")
    ] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Run an experiment over a sweep's axes and seeds into one resumable zarr store.

    Rerunning the same command resumes: only points not done run; a changed sweep is refused (--restart
    starts afresh). Exit code 0 when every point is done, 3 when some failed (their tracebacks are in the
    store: `neuromod info STORE`); a rerun retries them.
    """
    from neuromod.sweep import Sweep
    from neuromod.sweep._cluster import check_scheduler

    check_scheduler(scheduler)
    plan = Sweep.from_toml(file)
    if dry_run:
        typer.echo(plan.spec.describe())
        return
    out = Path(out) if out is not None else Path("results") / f"{Path(file).stem}.zarr"
    try:
        report = plan.run(out, scheduler=scheduler, restart=restart, progress=progress, n_workers=workers)
    except KeyboardInterrupt:
        typer.echo(
            f"neuromod: interrupted; the points done are kept in {str(out)!r}; "
            "rerun the same command to resume",
            err=True,
        )
        raise typer.Exit(130) from None
    typer.echo(str(report))
    if not report.complete:
        raise typer.Exit(3)


def _sweep_info(file: Path) -> str:
    """`neuromod info` of a sweep store: its spec, its dimensions and where every point stands."""
    import numpy as np

    from neuromod.sweep import STATUS, open_sweep

    index = open_sweep(file).index
    spec = json.loads(index.attrs["config_json"])
    status = index["status"].values
    counts = {name: int((status == code).sum()) for name, code in STATUS.items()}
    lines = [f"file:    {file}", "kind:    sweep store", f"title:   {index.attrs.get('title', '')}"]
    lines.append(f"created: {index.attrs.get('created', '')}")
    lines.append(f"digest:  {index.attrs.get('sweep_digest', '')[:16]}")
    dims = " x ".join(f"{d['name']}={d['size']}" for d in spec["dimensions"])
    lines.append(f"points:  {index.sizes['point']} ({dims})")
    lines.append("status:  " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    failed = np.flatnonzero(status == STATUS["failed"])
    for i in failed[:20]:
        text = str(index["error"].values[i]).strip().splitlines()
        attempts = int(index["attempts"].values[i])
        lines.append(f"  point {i} failed after {attempts} attempt(s): {text[-1] if text else ''}")
    if failed.size > 20:
        lines.append(f"  ... and {failed.size - 20} more failed")
    return "\n".join(lines)


@app.command()
@_friendly
def info(file: Annotated[Path, typer.Argument(help="A neuromod result (.nc or .zarr).")]) -> None:
    """Print a result's dimensions, variables (with units), provenance and configuration."""
    import xarray as xr

    from neuromod import results

    if Path(file).suffix == ".zarr" and results._is_sweep(Path(file)):
        typer.echo(_sweep_info(Path(file)))
        return
    obj = results.load(file)
    root = obj.attrs
    kind = "DataTree" if isinstance(obj, xr.DataTree) else "Dataset"
    lines = [f"file:    {file}", f"kind:    {kind}"]
    for key in ("title", "source", "created", "history", "schema_version", "Conventions"):
        lines.append(f"{key + ':':<8} {root.get(key, '')}")
    nodes = (
        [(n.path, n.to_dataset(inherit=False)) for n in obj.subtree] if kind == "DataTree" else [("/", obj)]
    )
    for path, ds in nodes:
        if not ds.variables and path != "/":
            continue
        lines.append(f"\ngroup {path}" if kind == "DataTree" else "")
        lines.append("  dimensions: " + (", ".join(f"{d}={n}" for d, n in ds.sizes.items()) or "none"))
        for title, variables in (("coordinates", ds.coords), ("data variables", ds.data_vars)):
            if variables:
                lines.append(f"  {title}:")
            for name, var in variables.items():
                dims = ", ".join(map(str, var.dims))
                units = var.attrs.get("units", "?")
                lines.append(f"    {name:<22} ({dims})  [{units}]  {var.attrs.get('long_name', '')}")
    config = json.loads(root.get("config_json", "{}"))
    lines.append("\nconfig:")
    lines.extend("  " + line for line in json.dumps(config, indent=2, sort_keys=True).splitlines())
    typer.echo("\n".join(lines))


@app.command()
@_friendly
def plot(
    file: Annotated[Path, typer.Argument(help="A neuromod result (.nc or .zarr).")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Folder for the figure.")] = None,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite/--no-overwrite", help="Replace an existing figure of the same name (default: yes)."
        ),
    ] = True,
) -> None:
    """Draw a result's figure (the experiment's own, or one panel per variable) as FILE's name + .png.

    Redrawing replaces the figure of that name (the one `run` wrote); --no-overwrite refuses instead.
    """
    from neuromod import registry, results
    from neuromod.plotting import plot_overview

    folder = Path(out) if out is not None else Path(file).parent
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"--out {str(folder)!r} is a file; expected a folder for the figure")
    figure = results.check_writable(folder / (Path(file).stem + ".png"), overwrite=overwrite)
    obj = results.load(file)
    folder.mkdir(parents=True, exist_ok=True)  # as `neuromod run` makes its output folder
    name = obj.nm.config.get("experiment")
    fig = registry.get(name).plot(obj) if name in registry.names() else plot_overview(obj)
    path = results.save_figure(fig, figure, overwrite=overwrite)
    typer.echo(f"figure: {path}")


@app.command()
def experiments() -> None:
    """List the experiments that `neuromod run` knows."""
    from neuromod import registry

    for name in registry.names():
        typer.echo(f"{name:<18} {registry.get(name).description}")


@app.command()
def families() -> None:
    """List the model families every experiment can run, with the settings of their TOML tables."""
    from neuromod.protocols.family import family_names, get_family

    for name in family_names():
        cls = get_family(name)
        typer.echo(f"{name:<10} {cls.description}")
        typer.echo(f"{'':<10} [{name}] {', '.join(cls.config_cls.describe())}")


def main() -> None:
    """Entry point of the ``neuromod`` console script."""
    app(prog_name="neuromod")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
