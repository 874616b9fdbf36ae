"""Tests of the SE task model protocol: training, closed-loop sessions, gate profiles, save/load.

Independent references: the task's own :meth:`CuedTaskSwitching.timeline` and :meth:`CuedTaskSwitching.inputs`
for the reaction times a session produced (the closed-loop session must be the open-loop run of the
session its responses imply); the exact solution of first-order kinetics ``g(t) - g* = (g(0) - g*)
exp(-t/tau)`` (the gate after a cue, with the stimulus off and the squeeze at rest, so that ``g*`` is
constant); an untrained model as the control for training; the channel-to-population mapping recomputed
here from the channel labels.

Session tests run untrained (or hand-set) models: the mechanics of a session do not depend on training,
and the suite stays fast. Float64 models give tolerances at the level of float64 rounding (a wrong step or
index moves gates by ``1 - exp(-dt/tau)`` ~ 2 %, many orders of magnitude more).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

from neuromod import results
from neuromod.gating import SETaskModel, SETaskModelConfig, decision_loss
from neuromod.protocols.se_files import load_se_model, save_se_model
from neuromod.protocols.se_profile import MAPPING_DOC, gate_profile, population_gains
from neuromod.protocols.se_session import run_se_session
from neuromod.protocols.se_task import (
    TRAIN_TASK,
    session_tensors,
    train_se_task_model,
    with_tau_ms,
)
from neuromod.tasks import CuedTaskSwitching

F64 = torch.float64


@pytest.fixture(scope="module")
def quick() -> tuple[SETaskModel, xr.Dataset]:
    """The quick training run (a few seconds)."""
    return train_se_task_model(quick=True, progress=False, seed=1)


@pytest.fixture
def model64() -> SETaskModel:
    return SETaskModel(SETaskModelConfig(seed=0)).double()


@pytest.fixture
def cued64() -> SETaskModel:
    """A float64 model whose gates depend strongly on the cue: the context weights of the excitation scaled
    up by hand (what training does, without the training)."""
    model = SETaskModel(SETaskModelConfig(seed=0))
    with torch.no_grad():
        model.se.excitation.fc1.weight[:, model.channels :] *= 40.0
    return model.double()


@pytest.fixture
def short_task() -> CuedTaskSwitching:
    return CuedTaskSwitching(n_trials=12, max_rt_ms=800.0, rci_ms=200.0, seed=7)


def _batch(n_sessions: int, n_trials: int, seed: int, dt_ms: float = 10.0) -> dict[str, torch.Tensor]:
    """Fixed sessions with the training settings (TRAIN_TASK), stacked like the training batches."""
    sessions = [
        session_tensors(CuedTaskSwitching(**TRAIN_TASK, n_trials=n_trials, seed=seed + i), dt_ms)
        for i in range(n_sessions)
    ]
    out: dict = {"max_rt": sessions[0]["max_rt"]}
    for key in ("stimulus", "context", "rci", "csi", "target"):
        out[key] = torch.from_numpy(np.stack([s[key] for s in sessions]))
    return out


def _heldout_loss(model: SETaskModel, batch: dict) -> float:
    """The training loss on fixed sessions and fixed noise (closed loop, no autograd)."""
    gen = torch.Generator().manual_seed(2024)
    with torch.no_grad():
        out = model(
            batch["stimulus"],
            batch["context"],
            rci=batch["rci"],
            csi=batch["csi"],
            max_rt=batch["max_rt"],
            generator=gen,
        )
        return float(decision_loss(out, batch["target"], threshold=model.config.threshold))


# ------------------------------------------------------------------------------- training
def test_quick_training_reduces_the_loss(quick: tuple[SETaskModel, xr.Dataset]) -> None:
    model, history = quick
    # on held-out sessions and noise, the trained model's loss is below the same model untrained
    batch = _batch(16, 8, seed=10_000)
    before = _heldout_loss(SETaskModel(model.config), batch)
    after = _heldout_loss(model, batch)
    assert after < before, (before, after)
    loss = history["loss"].values
    assert np.isfinite(loss).all() and loss.shape == (20,)  # the quick closed-loop phase


def test_quick_trained_gates_favour_the_relevant_feature(quick: tuple[SETaskModel, xr.Dataset]) -> None:
    def separation(model: SETaskModel) -> list[float]:
        gains = population_gains(model, n_samples=512)
        out = []
        for context, relevant, irrelevant in (
            ("a", ["a+", "a-"], ["b+", "b-"]),
            ("b", ["b+", "b-"], ["a+", "a-"]),
        ):
            g = gains.sel(context=context)
            out.append(float(g.sel(population=relevant).mean() - g.sel(population=irrelevant).mean()))
        return out

    trained = separation(quick[0])
    assert min(trained) > 0.2, trained
    # control: the untrained gates do not separate the features, so this test can fail
    untrained = separation(SETaskModel(quick[0].config))
    assert max(abs(d) for d in untrained) < 0.1, untrained


def test_training_is_reproducible_and_trains_only_the_excitation() -> None:
    config = SETaskModelConfig(tau_ms=250.0, seed=3)
    kwargs = {"quick": True, "progress": False, "n_steps": 3, "n_trials": 4}
    model, history = train_se_task_model(config, seed=3, **kwargs)
    again, history_again = train_se_task_model(config, seed=3, **kwargs)
    for (name, p), q in zip(model.state_dict().items(), again.state_dict().values(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0, msg=name)
    np.testing.assert_array_equal(history["loss"].values, history_again["loss"].values)
    np.testing.assert_array_equal(history["accuracy"].values, history_again["accuracy"].values)
    other, _ = train_se_task_model(config, seed=4, **kwargs)
    assert not torch.equal(other.se.excitation.fc1.weight, model.se.excitation.fc1.weight)
    # only the excitation moved: the channels and the fixed readout are the untrained model's
    fresh = SETaskModel(config)
    for name, buf in fresh.named_buffers():
        torch.testing.assert_close(dict(model.named_buffers())[name], buf, rtol=0, atol=0, msg=name)
    assert not torch.equal(fresh.se.excitation.fc2.bias, model.se.excitation.fc2.bias)
    # it trains, and returns, at the config's tau_ms
    assert model.config == config and model.config.tau_ms == 250.0
    assert not model.training
    # the history records how it was trained: quick mode caps the batch at 16 sessions
    assert (history.attrs["seed"], history.attrs["batch_size"], history.attrs["n_trials"]) == (3, 16, 4)
    assert history.sizes["step"] == 3
    assert json.loads(history.attrs["params_json"]) == config.to_dict()
    assert json.loads(history.attrs["task_json"]) == json.loads(
        json.dumps(results._jsonable(dict(TRAIN_TASK)))
    )
    assert ((history["accuracy"] >= 0) & (history["accuracy"] <= 1)).all()
    results.validate(history, provenance=False)


def test_training_task_kwargs_reach_the_sessions() -> None:
    _, history = train_se_task_model(
        quick=True,
        progress=False,
        n_steps=1,
        n_trials=2,
        task_kwargs={"csi_ms": (100.0,), "cues_per_task": 2},
    )
    task = json.loads(history.attrs["task_json"])
    assert task["csi_ms"] == [100.0] and task["cues_per_task"] == 2


# ------------------------------------------------------------------------------- session inputs
def test_session_tensors(short_task: CuedTaskSwitching) -> None:
    inp = session_tensors(short_task, 10.0)
    table = short_task.trials()
    fa, fb = table["feature_a"].values / 100, table["feature_b"].values / 100
    np.testing.assert_allclose(inp["stimulus"], np.c_[1 + fa, 1 - fa, 1 + fb, 1 - fb], rtol=1e-7)
    assert inp["stimulus"].dtype == np.float32 and inp["stimulus"].shape == (12, 4)
    np.testing.assert_array_equal(inp["context"], np.eye(2)[table["context"].values])
    steps = short_task.steps(10.0)
    np.testing.assert_array_equal(inp["rci"], steps["rci"])
    np.testing.assert_array_equal(inp["csi"], steps["csi"])
    assert inp["max_rt"] == 80
    np.testing.assert_array_equal(inp["target"], table["correct_choice"].values)


# ------------------------------------------------------------------------------- closed-loop sessions
def test_session_schema_and_consistency(
    model64: SETaskModel, short_task: CuedTaskSwitching, tmp_path: Path
) -> None:
    model = model64.float()
    ds = run_se_session(model, short_task, seed=5, decimate_ms=50.0)
    results.validate(ds, provenance=False)
    assert ds.sizes == {"trial": 12, "time": ds.sizes["time"], "channel": 32, "population": 4}
    assert ds["gain"].dims == ("time", "channel")
    assert ds["population_gain"].dims == ("time", "population")
    np.testing.assert_allclose(np.diff(ds["time"].values), 50.0)
    for name in ("rt", "time", "stim_onset_ms"):
        assert ds[name].attrs["units"] == "ms", name
    choice, rt = ds["choice"].values, ds["rt"].values
    assert set(np.unique(choice)) <= {0, 1, 2}
    np.testing.assert_array_equal(np.isnan(rt), choice == 0)
    assert np.nanmax(rt) <= 800.0 and np.nanmin(rt) >= model.config.dt_ms
    np.testing.assert_array_equal(
        ds["correct"].values, choice == short_task.trials()["correct_choice"].values
    )
    # population gain = mean of its channels (the documented mapping)
    labels = ds["channel_population"].values
    for pop in ("a+", "a-", "b+", "b-"):
        np.testing.assert_allclose(
            ds["population_gain"].sel(population=pop).values, ds["gain"].values[:, labels == pop].mean(1)
        )
    lo, hi = model.config.gain_min, model.config.gain_max
    assert ((ds["gain"] > lo) & (ds["gain"] < hi)).all()
    assert SETaskModelConfig.from_dict(json.loads(ds.attrs["params_json"])) == model.config
    path = tmp_path / "session.nc"
    ds.to_netcdf(path, engine="netcdf4")
    xr.testing.assert_identical(xr.load_dataset(path, engine="netcdf4"), ds)


def test_session_time_axis_is_the_timeline_of_its_responses(
    model64: SETaskModel, short_task: CuedTaskSwitching
) -> None:
    dt = model64.config.dt_ms
    ds = run_se_session(model64, short_task, seed=3, decimate_ms=dt)
    times = short_task.timeline(ds["rt"].values)
    # onsets are sums of whole steps: exact
    np.testing.assert_array_equal(ds["stim_onset_ms"].values, times["stim_onset_ms"].values)
    # the recorded session ends at the last response (the response step is the last one recorded)
    assert ds.sizes["time"] == round(float(times["response_ms"][-1]) / dt)
    # onset of trial k = response of trial k - 1 + RCI + CSI (the deadline without a response)
    held = np.where(np.isnan(ds["rt"].values), short_task.timing["max_rt_ms"], ds["rt"].values)
    table = short_task.trials()
    expected = held[:-1] + table["rci_ms"].values[1:] + table["csi_ms"].values[1:]
    np.testing.assert_array_equal(np.diff(ds["stim_onset_ms"].values), expected)


def test_session_equals_the_open_loop_run_of_its_inputs(
    cued64: SETaskModel, short_task: CuedTaskSwitching
) -> None:
    """The gates of a closed-loop session are those of the model run open loop on the task's inputs for
    the session's own reaction times (stimulus off after each response, no cue during the RCI)."""
    model = cued64
    dt = model.config.dt_ms
    ds = run_se_session(model, short_task, decimate_ms=dt, noise=False)
    assert (ds["choice"] > 0).any()
    x_in = short_task.inputs(dt, ds["rt"].values)
    # the session's stimuli are float32 (session_tensors): the same rounding here
    stim = torch.from_numpy(x_in["stimulus"].values.astype(np.float32)).double()[None]
    cue = torch.from_numpy(x_in["cue"].values)[None]
    with torch.no_grad():
        g, _ = model.gate(model.sensory(stim, noise=False), cue, state=model.initial_state(1))
    # float64, two chunkings of the same relaxations: ~1e3 roundings on values below gain_max
    np.testing.assert_allclose(ds["gain"].values, g[0].numpy(), rtol=0, atol=1e-12)


def test_session_is_reproducible(model64: SETaskModel, short_task: CuedTaskSwitching) -> None:
    model = model64.float()
    a = run_se_session(model, short_task, seed=5)
    b = run_se_session(model, short_task, seed=5)
    c = run_se_session(model, short_task, seed=6)
    xr.testing.assert_identical(a, b)
    assert not np.array_equal(a["gain"].values, c["gain"].values)
    # without noise the seed does not matter
    xr.testing.assert_equal(
        run_se_session(model, short_task, seed=1, noise=False).drop_attrs(),
        run_se_session(model, short_task, seed=2, noise=False).drop_attrs(),
    )


# ------------------------------------------------------------------------------- kinetics
@pytest.mark.parametrize("tau_ms", [100.0, 300.0])
def test_gain_after_a_cue_relaxes_with_tau(cued64: SETaskModel, tau_ms: float) -> None:
    model = with_tau_ms(cued64, tau_ms)
    assert model.config.tau_ms == tau_ms and model.config.squeeze_tau_ms == cued64.config.squeeze_tau_ms
    torch.testing.assert_close(model.readout_weight, cued64.readout_weight, rtol=0, atol=0)
    # a long RCI (20 squeeze time constants) lets the squeeze settle at baseline before the cue
    task = CuedTaskSwitching(
        csi_ms=(1000.0,), rci_ms=1000.0, p_switch=1.0, max_rt_ms=400.0, n_trials=3, seed=3
    )
    dt = model.config.dt_ms
    ds = run_se_session(model, task, seed=0, decimate_ms=dt, noise=False)
    times = task.timeline(ds["rt"].values)
    table = task.trials()
    for trial in (1, 2):
        cue_on = round(float(times["cue_onset_ms"][trial]) / dt)
        context = torch.eye(2, dtype=F64)[[int(table["context"][trial])]]
        with torch.no_grad():  # new steady state: stimulus off, channels at baseline, the cue on
            g_star = model.steady_gate(model.baseline[None], context)[0].numpy()
        g = ds["gain"].values[cue_on - 1 : cue_on + 90]  # 90 steps of the 100-step CSI, stimulus off
        n = np.arange(91)
        expected = g_star + (g[0] - g_star) * np.exp(-n[:, None] * dt / tau_ms)
        # float64 rounding, plus the squeeze's rest e^-20 carried through the excitation (below 1e-8)
        np.testing.assert_allclose(g, expected, rtol=0, atol=1e-8)
        # and a log-linear fit of the relaxation recovers tau
        amp = np.abs(g[0] - g_star)
        big = amp > 0.05
        assert big.sum() >= 4, amp  # the cue moves several gates
        slopes = [
            np.polyfit(n[:40] * dt, np.log(np.abs(g[:40, c] - g_star[c])), 1)[0] for c in np.flatnonzero(big)
        ]
        np.testing.assert_allclose(-1.0 / np.asarray(slopes), tau_ms, rtol=1e-4)


def test_gate_state_carries_across_trials(cued64: SETaskModel) -> None:
    model = cued64
    task = CuedTaskSwitching(csi_ms=(100.0,), p_switch=1.0, max_rt_ms=400.0, rci_ms=100.0, n_trials=4, seed=3)
    ds = run_se_session(model, task, seed=0, decimate_ms=model.config.dt_ms, noise=False)
    dt = model.config.dt_ms
    cue_on = round(float(task.timeline(ds["rt"].values)["cue_onset_ms"][2]) / dt)
    g = ds["gain"].values
    # one step after a switch the gates have moved only about (1 - exp(-dt/tau)) of the way: no reset
    step = np.abs(g[cue_on] - g[cue_on - 1]).max()
    total = np.abs(g[cue_on + 9] - g[cue_on - 1]).max()
    assert step < 0.1 * np.abs(g).max()
    assert step < total
    # and a session continued from the state equals the whole session (trial by trial, noise off)
    whole = session_tensors(task, dt)
    args = {
        k: torch.from_numpy(np.asarray(v))[None] for k, v in whole.items() if k not in ("max_rt", "target")
    }
    with torch.no_grad():
        full = model(
            args["stimulus"], args["context"], rci=args["rci"], csi=args["csi"], max_rt=40, noise=False
        )
        first = model(
            *(args[k][:, :2] for k in ("stimulus", "context")),
            rci=args["rci"][:, :2],
            csi=args["csi"][:, :2],
            max_rt=40,
            noise=False,
        )
        rest = model(
            *(args[k][:, 2:] for k in ("stimulus", "context")),
            rci=args["rci"][:, 2:],
            csi=args["csi"][:, 2:],
            max_rt=40,
            noise=False,
            state=first.state,
        )
    torch.testing.assert_close(torch.cat([first.response, rest.response], 1), full.response, rtol=0, atol=0)
    torch.testing.assert_close(torch.cat([first.windows, rest.windows], 1), full.windows, rtol=0, atol=0)


def test_with_tau_ms_keeps_the_weights(cued64: SETaskModel) -> None:
    cued64.train()
    model = with_tau_ms(cued64, 123.0)
    assert model.training and model.config == cued64.config.replace(tau_ms=123.0)
    for (name, p), q in zip(cued64.state_dict().items(), model.state_dict().values(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0, msg=name)


# ------------------------------------------------------------------------------- gate profile
def test_gate_profile_and_population_mapping(cued64: SETaskModel) -> None:
    model = cued64.float()
    profile = gate_profile(model, n_samples=256, seed=3)
    assert profile.dims == ("context", "channel") and profile.shape == (2, 32)
    assert list(profile["context"].values) == ["a", "b"]
    pops = population_gains(model, n_samples=256, seed=3)
    assert pops.dims == ("context", "population")
    labels = profile["channel_population"].values
    for pop in ("a+", "a-", "b+", "b-"):
        np.testing.assert_allclose(pops.sel(population=pop).values, profile.values[:, labels == pop].mean(1))
    mapping = json.loads(pops.attrs["mapping_json"])
    assert mapping["channels_of_population"]["b+"] == list(range(16, 24))
    assert pops.attrs["mapping"] == MAPPING_DOC
    results.validate(pops.to_dataset(), provenance=False)
    # steady state: a long constant-input run of the gate converges to the instantaneous gate
    model = model.double()
    with torch.no_grad():
        x = model.baseline + model.tuning * torch.ones(4, dtype=F64)[model.channel_population]
        x = x.expand(1, 400, -1)  # 10 tau
        cue = torch.tensor([1.0, 0.0], dtype=F64).expand(1, 400, 2)
        state = (torch.ones(1, 32, dtype=F64), torch.zeros(1, 4, dtype=F64))
        g = model.gate(x, cue, state=state)[0][0, -1]
        g_star = model.steady_gate(x[:, 0], cue[:, 0])[0]
    # the gate is e^-10 of its initial distance (at most gain_max) from g*, plus the squeeze's e^-80
    torch.testing.assert_close(g, g_star, rtol=0, atol=2.0 * math.exp(-10.0) * 1.01)


# ------------------------------------------------------------------------------- save / load
def test_save_load_round_trip(cued64: SETaskModel, short_task: CuedTaskSwitching, tmp_path: Path) -> None:
    model = cued64.float()
    pt, js = save_se_model(model, tmp_path / "se")
    assert (pt.name, js.name) == ("se.pt", "se.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["se.json", "se.pt"]  # no temporary left
    loaded = load_se_model(tmp_path / "se")
    assert loaded.config == model.config
    for (name, p), q in zip(model.state_dict().items(), loaded.state_dict().values(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0, msg=name)
    xr.testing.assert_identical(
        run_se_session(model, short_task, seed=2), run_se_session(loaded, short_task, seed=2)
    )
    assert json.loads(js.read_text())["config"]["tau_ms"] == model.config.tau_ms
    with pytest.raises(FileExistsError, match=r"se\.pt' exists; pass overwrite=True"):
        save_se_model(model, tmp_path / "se.pt")
    save_se_model(model, tmp_path / "se.json", overwrite=True)  # suffix dropped, replaced


class _Payload:
    pass


@pytest.mark.parametrize(
    ("damage", "error", "match"),
    [
        ("missing_json", FileNotFoundError, r"no such SE model file: '.*m\.json'"),
        ("missing_pt", FileNotFoundError, r"no such SE model file: '.*m\.pt'"),
        ("garbage_pt", results.ResultsError, "is not a readable torch state dict"),
        ("pickle_pt", results.ResultsError, "is not a readable torch state dict"),
        ("bad_json", results.ResultsError, "is not valid JSON"),
        ("unknown_key", results.ResultsError, r"invalid config: unknown key 'tau_msec'"),
        ("wrong_format", results.ResultsError, "is not an SE task model config"),
        ("mismatch", results.ResultsError, "does not match the config"),
    ],
)
def test_load_errors(tmp_path: Path, damage: str, error: type[Exception], match: str) -> None:
    model = SETaskModel(SETaskModelConfig(channels_per_population=2))
    pt, js = save_se_model(model, tmp_path / "m")
    meta = json.loads(js.read_text())
    if damage == "missing_json":
        js.unlink()
    elif damage == "missing_pt":
        pt.unlink()
    elif damage == "garbage_pt":
        pt.write_bytes(b"not a zip archive")
    elif damage == "pickle_pt":
        torch.save({"x": _Payload()}, pt)  # code objects are refused by weights_only=True
    elif damage == "bad_json":
        js.write_text("{")
    elif damage == "unknown_key":
        meta["config"]["tau_msec"] = 1.0
        js.write_text(json.dumps(meta))
    elif damage == "wrong_format":
        meta["format"] = "something else"
        js.write_text(json.dumps(meta))
    elif damage == "mismatch":
        meta["config"]["channels_per_population"] = 3
        js.write_text(json.dumps(meta))
    with pytest.raises(error, match=match):
        load_se_model(tmp_path / "m")


# ------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"task_kwargs": {"csi": (100.0,)}}, TypeError, "unexpected keyword argument 'csi'"),
        ({"task_kwargs": {"rsi_ms": 300.0}}, TypeError, "unexpected keyword argument 'rsi_ms'"),
        ({"task_kwargs": {"seed": 1}}, ValueError, r"task_kwargs sets \['seed'\]"),
        ({"task_kwargs": {"max_rt_ms": -5.0}}, ValueError, "max_rt_ms=-5.0 must be a finite number > 0"),
        ({"task_kwargs": {"max_rt_ms": 5.0}}, ValueError, r"dt_ms=10\.0 is longer than max_rt_ms=5\.0"),
        ({"task_kwargs": [("csi_ms", (1.0,))]}, TypeError, "task_kwargs must be a mapping, got list"),
        ({"n_steps": 0}, ValueError, r"n_steps=0 is outside the valid range \[1, inf\]"),
        ({"lr": 0.0}, ValueError, "lr=0.0 must be a finite number > 0"),
        ({"gain_cost": -1.0}, ValueError, "gain_cost=-1.0 must be a finite number >= 0"),
        ({"config": {"tau_ms": 100.0}}, TypeError, "config must be an SETaskModelConfig, got dict"),
        ({"quick": 1}, TypeError, "quick must be a bool"),
    ],
)
def test_training_errors(kwargs: dict, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        train_se_task_model(progress=False, **kwargs)


def test_session_and_profile_errors(short_task: CuedTaskSwitching) -> None:
    model = SETaskModel(SETaskModelConfig(channels_per_population=2))
    with pytest.raises(TypeError, match="task must be a CuedTaskSwitching, got dict"):
        run_se_session(model, {})
    with pytest.raises(TypeError, match="model must be an SETaskModel, got str"):
        run_se_session("se", short_task)
    with pytest.raises(ValueError, match=r"decimate_ms=0\.0 must be a finite number > 0"):
        run_se_session(model, short_task, decimate_ms=0.0)
    with pytest.raises(ValueError, match=r"seed=-1 is outside the valid range"):
        run_se_session(model, short_task, seed=-1)
    with pytest.raises(ValueError, match=r"tau_ms=0\.0 must be a finite number > 0"):
        with_tau_ms(model, 0.0)
    with pytest.raises(ValueError, match=r"n_samples=0 is outside the valid range"):
        gate_profile(model, n_samples=0)
    with pytest.raises(ValueError, match=r"coherences_pct=\(150.0,\) must be"):
        population_gains(model, coherences_pct=(150.0,))
    odd = SETaskModel(SETaskModelConfig(populations=3, channels_per_population=2, squeeze_by="population"))
    with pytest.raises(ValueError, match="model has populations=3, contexts=2; the task needs 4 and 2"):
        run_se_session(odd, short_task)
    assert math.isfinite(float(gate_profile(odd, n_samples=4).mean()))
