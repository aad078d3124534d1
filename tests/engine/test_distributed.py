"""DDP training (engine/distributed.py): 2 CPU processes over gloo train what one process
trains at the same global batch, decide alike, resume, and only rank 0 writes."""

import contextlib
import itertools
import json
import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from processes import free_port

from lstmcast import models
from lstmcast.config import make_config
from lstmcast.engine import distributed
from lstmcast.engine.checkpoint import Checkpoint, TrainState, from_bytes, to_bytes
from lstmcast.engine.distributed import Share
from lstmcast.engine.steps import EagerEpoch, batches, split_epoch
from lstmcast.engine.training import train

WORLD = 2
# 46 training windows in batches of 9: five full batches cut 5 + 4 (unequal parts) and a
# last batch of one window, which rank 1 meets with a stand-in of scale 0
N_TRAIN, BATCH = 46, 9
RUNS = {
    "simple": {"model": "simple", "lr": 0.01},
    "lstm": {"model": "lstm", "layers": "8", "dropout": 0.0, "lr": 0.01},
    "stops_early": {"model": "linear", "lr": 0.05, "patience": 1, "epochs": 8},
    "diverges": {
        "model": "linear",
        "optimizer": "sgd",
        "lr": 1000.0,
        "epochs": 4,
        "divergence_retries": 1,
    },
}


def _series() -> torch.Tensor:
    rng = np.random.default_rng(0)
    return torch.from_numpy(rng.normal(size=(120, 3)).astype(np.float32)).cumsum(0) / 5


def _config(**options):
    values = {"lookback": 8, "horizon": 2, "epochs": 3, "batch_size": BATCH, "patience": 0}
    return make_config({**values, "device": "cpu", "seed": 5, **options})


def _fit(options: dict, checkpoint: Checkpoint | None = None):
    config = _config(**options)
    model = models.build_for_run(config, 3, 3)
    result = train(
        model,
        _series(),
        np.arange(N_TRAIN),
        np.arange(60, 100),
        config,
        n_targets=3,
        checkpoint=checkpoint,
    )
    return model, result


def _weights(model) -> dict[str, list[float]]:
    return {k: v.detach().reshape(-1).tolist() for k, v in model.state_dict().items()}


def _summary(model, result) -> dict:
    history = [[r["train_loss"], r["val_loss"]] for r in result.history]
    return {
        "weights": _weights(model),
        "history": [[None if not math.isfinite(v) else v for v in row] for row in history],
        "stopped": result.stopped,
        "best_epoch": result.best_epoch,
        "message": result.message,
    }


def _worker(rank: int, store: str, out: str) -> None:
    """One rank: every scenario in one process group (starting processes is the cost)."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=WORLD)
    try:
        found: dict = {}
        for name, options in RUNS.items():
            found[name] = _summary(*_fit(options))
        # resume: 2 epochs, then 4 from the checkpoint, against 4 straight; with dropout, so
        # every rank's own random stream must come back too. Rank 1's directory is never
        # made: rank 0 alone writes, and sends the saved state.
        base = Path(out) / f"rank{rank}"
        dropout = {"model": "lstm", "layers": "8", "dropout": 0.3, "lr": 0.01}
        straight = _fit({**dropout, "epochs": 4}, Checkpoint(base / "a", "x"))
        _fit({**dropout, "epochs": 2}, Checkpoint(base / "b", "y"))
        resumed = _fit({**dropout, "epochs": 4}, Checkpoint(base / "b", "y", resume=True))
        found["straight"] = _summary(*straight)
        found["resumed"] = _summary(*resumed)
        found["resumed_from"] = [r["epoch"] for r in resumed[1].history]
        found["wrote"] = sorted(p.name for p in (base / "b").glob("*")) if base.exists() else []
        found["run"] = _runs(rank, Path(out))
        panel = _panel_fit()
        found["panel"] = {"weights": _weights(panel.model_), "best": panel.training_.best_epoch}
        (Path(out) / f"result{rank}.json").write_text(json.dumps(found))
    finally:
        dist.destroy_process_group()


def _panel_fit():
    """One global `simple` model over a small long-format panel (6 series) with known-future
    and static covariates and an id embedding: the panel's windows never cross a series."""
    from lstmcast import Forecaster
    from lstmcast.datasets.synthetic import synthetic_panel

    forecaster = Forecaster(
        "simple",
        lookback=8,
        horizon=2,
        layers=(8,),
        id_col="id",
        targets=["sales"],
        future_covariates=["promo"],
        static=["region", "size"],
        id_embedding=3,
        epochs=2,
        batch_size=BATCH,
        patience=0,
        seed=3,
        device="cpu",
    )
    return forecaster.fit(synthetic_panel(n_series=6, n_rows=60, seed=2))


class Interrupted(Exception):
    pass


def _runs(rank: int, out: Path) -> dict:
    """`train_run` under DDP: a run straight, and one interrupted after epoch 2 and resumed.
    Rank 1 may neither take the --out lock nor write a file (both fail the run there)."""
    import pandas as pd

    from lstmcast.workflows import runs

    if rank > 0:

        def refuse(*args, **kwargs):
            raise AssertionError(f"rank {rank} wrote a file or took the lock")

        runs.staged_directory = refuse
        tempfile.mkstemp = refuse  # every file lstmcast writes starts here (files.atomic_write)
    t = np.arange(200)
    frame = pd.DataFrame({"load": np.sin(t / 4) + np.random.default_rng(1).normal(0, 0.1, 200)})
    config = make_config({"model": "simple", "lookback": 8, "epochs": 4, "device": "cpu"})

    def stop(epoch):
        if epoch.number == 2:
            raise Interrupted

    straight = runs.train_run(frame, config, out / "a")
    with contextlib.suppress(Interrupted):
        runs.train_run(frame, config, out / "b", callbacks=[stop])
    left = (out / ".b.partial" / runs.CHECKPOINT / "state.json").is_file()
    resumed = runs.train_run(frame, config, out / "b", resume=True)
    keep = ("stopped", "best_epoch", "best_val_loss")
    same = None
    if rank == 0:
        from safetensors.torch import load_file

        a, b = (load_file(str(out / name / "model.safetensors")) for name in ("a", "b"))
        same = a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    return {
        "same_weights": same,
        "keys": sorted(straight),
        "left_a_checkpoint": left,
        "straight": {k: straight["training"][k] for k in keep},
        "resumed": {k: resumed["training"][k] for k in keep},
        "epochs": resumed["training"]["epochs_run"],
    }


@pytest.fixture(scope="module")
def ranks():
    """What each of the 2 ranks found (their processes run once for the module). Forked, not
    spawned: a spawned process imports torch and lstmcast again, most of its time here; a
    fork starts with this process's modules (the workers run on one thread each, so no
    OpenMP pool crosses the fork)."""
    with tempfile.TemporaryDirectory() as out:
        store = os.path.join(out, "store")
        mp.start_processes(_worker, args=(store, out), nprocs=WORLD, start_method="fork")
        return [json.loads((Path(out) / f"result{r}.json").read_text()) for r in range(WORLD)]


@pytest.mark.parametrize("name", list(RUNS))
def test_two_processes_train_what_one_trains_at_the_same_global_batch(ranks, name):
    torch.set_num_threads(2)
    alone = _summary(*_fit(RUNS[name]))
    rel = 1e-4 if name == "diverges" else 1e-5  # exploding losses amplify rounding
    for found in ranks:
        run = found[name]
        assert run["stopped"] == alone["stopped"]
        assert run["best_epoch"] == alone["best_epoch"]
        assert len(run["history"]) == len(alone["history"])
        for got, want in zip(run["history"], alone["history"], strict=True):
            for g, w in zip(got, want, strict=True):
                assert (g is None) == (w is None)
                if g is not None:
                    assert g == pytest.approx(w, rel=rel, abs=1e-6)
        for key, want in alone["weights"].items():
            np.testing.assert_allclose(run["weights"][key], want, rtol=1e-5, atol=1e-5)
    assert ranks[0][name] == ranks[1][name]  # one model, one history: bit for bit alike


def test_the_guards_fire_under_ddp_as_in_one_process(ranks):
    assert ranks[0]["stops_early"]["stopped"] == "early_stopping"
    diverged = ranks[0]["diverges"]
    assert diverged["stopped"] == "diverged" and "restarted from epoch 0" in diverged["message"]
    assert any(None in row for row in diverged["history"])


def test_a_resumed_ddp_run_ends_as_an_uninterrupted_one(ranks):
    for found in ranks:
        assert found["resumed_from"] == [1, 2, 3, 4]  # history of epochs 1-2 came back
        assert found["resumed"] == found["straight"]  # bit for bit, dropout included
    assert ranks[0]["straight"] == ranks[1]["straight"]
    assert ranks[0]["wrote"] == ["state-4.safetensors", "state.json"]
    assert ranks[1]["wrote"] == []  # rank 1 wrote nothing, and read nothing from disk


def test_shares_cut_every_batch_whole_and_weigh_it_as_one_process():
    for n in (1, 2, 5, 9, 10):
        for world in (1, 2, 3):
            shares = [Share(r, world) for r in range(world)]
            bounds = [s.bounds(n) for s in shares]
            assert bounds[0][0] == 0 and bounds[-1][1] == n
            assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
            # DDP averages: sum_r scale_r / world * (part mean) = the global mean
            assert sum(s.scale(n) for s in shares) / world == pytest.approx(1.0)


def test_one_process_splits_an_epoch_into_the_same_batches():
    order = torch.randperm(46, generator=torch.Generator().manual_seed(0))
    full, size, scale, tail = split_epoch(order, 9, Share())
    assert (size, scale) == (9, 1.0)
    got = [*batches(full, size), tail]
    assert [b.tolist() for b in got] == [b.tolist() for b in batches(order, 9)]
    mine, part, scale, _ = split_epoch(order, 9, Share(1, 2))
    assert part == 4 and scale == pytest.approx(8 / 9)
    assert mine.view(5, 4).tolist() == order[:45].view(5, 9)[:, 5:].tolist()


@pytest.mark.parametrize(
    ("n", "share", "want"), [(5, Share(), [(5, 1.0)]), (1, Share(1, 2), [(1, 0.0)])]
)
def test_an_epoch_shorter_than_a_batch_is_one_step(n, share, want):
    seen = []
    EagerEpoch(lambda starts, scale: seen.append((len(starts), scale)), 9, share)(torch.arange(n))
    assert seen == want  # no empty step; a rank without a window steps on a stand-in


def test_a_checkpoint_state_travels_as_bytes_unchanged():
    model, _ = _fit({"model": "simple", "epochs": 1})
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.zeros(2, 8, 3)).sum().backward()
    optimizer.step()
    state = TrainState(
        3,
        model.state_dict(),
        model.state_dict(),
        optimizer.state_dict(),
        {"torch": torch.get_rng_state(), "torch.1": torch.get_rng_state()},
        {"lr": 0.5, "best_val": math.inf, "recoveries": ["a"]},
        [{"epoch": 1, "train_loss": 0.5, "val_loss": math.nan}],
    )
    back = from_bytes(to_bytes(state))
    assert back.epoch == 3 and back.counters == state.counters
    assert back.history[0]["train_loss"] == 0.5 and math.isnan(back.history[0]["val_loss"])
    for key, value in state.model.items():
        assert torch.equal(back.model[key], value)
    assert torch.equal(back.rng["torch.1"], state.rng["torch.1"])
    assert back.optimizer["param_groups"] == optimizer.state_dict()["param_groups"]


def test_threads_per_rank_share_the_cores_unless_the_user_chose():
    cores = distributed.cores()
    assert distributed.threads_per_rank({"LOCAL_WORLD_SIZE": "2"}) == max(1, cores // 2)
    # torchrun's own default (1) counts as unset; any other value is the user's
    assert distributed.threads_per_rank({"LOCAL_WORLD_SIZE": "2", "OMP_NUM_THREADS": "1"}) == (
        max(1, cores // 2)
    )
    assert distributed.threads_per_rank({"LOCAL_WORLD_SIZE": "2", "OMP_NUM_THREADS": "3"}) == 3


@pytest.mark.parametrize(
    "options",
    [
        {"model": "simple"},
        {"model": "stacked"},
        {"model": "bidirectional"},
        {"model": "lstm", "intervals": "0.8", "interval_method": "quantile"},
        {"model": "seglstm", "model_options": {"segment": 4}},
        {"model": "seglstm", "ensemble": 2, "model_options": {"segment": 4}},
        {"model": "linear"},
    ],
    ids=lambda o: o["model"] + ("-ensemble" if "ensemble" in o else ""),
)
def test_every_parameter_gets_a_gradient_from_one_batch(options):
    """DDP runs with find_unused_parameters off: a parameter without a gradient would stop
    the second step of every rank."""
    config = _config(**options)
    model = models.build_for_run(config, 3, 3)
    x = torch.randn(4, 8, 3)
    model(x).float().pow(2).mean().backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert missing == []


def test_outside_torchrun_there_is_one_process(monkeypatch):
    for name in distributed.TORCHRUN_ENV:
        monkeypatch.delenv(name, raising=False)
    assert not distributed.launched() and not distributed.active()
    assert (distributed.rank(), distributed.world(), distributed.is_leader()) == (0, 1, True)
    t = torch.ones(3)
    assert distributed.all_sum(t) is t and distributed.leader_says(False) is False
    assert distributed.broadcast_bytes(b"abc", torch.device("cpu")) == b"abc"


def test_train_run_under_ddp_rank_0_writes_and_resumes_alone(ranks):
    leader, follower = ranks[0]["run"], ranks[1]["run"]
    assert "metrics" not in follower["keys"] and follower["keys"] == ["training"]
    assert {"model", "repeat_last", "training"} <= set(leader["keys"])
    assert leader["left_a_checkpoint"] and leader["epochs"] == 4
    assert leader["resumed"] == leader["straight"] == follower["resumed"]
    assert leader["same_weights"] is True  # the resumed run's model file is the straight one's


def _session_worker(rank: int, ports: tuple[int, int], out: str) -> None:
    """One rank in two torchrun-like sessions: rank 0 is slow to finish the first (it still
    writes while rank 1 is done) and fails inside the second."""
    os.environ.update(
        RANK=str(rank), WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1"
    )
    found: dict = {}
    os.environ["MASTER_PORT"] = str(ports[0])
    with distributed.session("cpu"):
        if rank == 0:
            time.sleep(0.3)  # rank 1 is done long before
            (Path(out) / "rank0_done").touch()  # marks the end of rank 0's block
    found["left_after_rank_0"] = (Path(out) / "rank0_done").exists()
    found["active_after"] = distributed.active()
    os.environ["MASTER_PORT"] = str(ports[1])
    try:
        with distributed.session("cpu"):
            if rank == 0:
                raise Interrupted
        found["second"] = "ended"
    except Interrupted:
        found["second"] = "raised"
    found["active_after_error"] = distributed.active()
    (Path(out) / f"session{rank}.json").write_text(json.dumps(found))


def test_ranks_leave_a_session_together_and_an_error_does_not_strand_the_others():
    """Rank 1 leaves only once rank 0 has ended its block (a rank that left early aborted now
    and then in gloo's teardown); rank 0's error reaches rank 0 alone, and rank 1, whose
    barrier that broke, ends its session cleanly instead of waiting or failing too."""
    with tempfile.TemporaryDirectory() as out:
        ports = (free_port(), free_port())
        mp.start_processes(_session_worker, args=(ports, out), nprocs=WORLD, start_method="fork")
        found = [json.loads((Path(out) / f"session{r}.json").read_text()) for r in range(WORLD)]
    assert [f["left_after_rank_0"] for f in found] == [True, True]
    assert [f["second"] for f in found] == ["raised", "ended"]
    assert not any(f["active_after"] or f["active_after_error"] for f in found)


@pytest.mark.parametrize(
    ("exitcode", "code", "line"),
    [(-6, 134, "worker rank 1 was killed by SIGABRT"), (2, 2, ""), (-9, 137, "SIGKILL")],
)
def test_a_failed_worker_gives_its_exit_code_and_a_killed_one_a_line(
    monkeypatch, capsys, exitcode, code, line
):
    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError, ProcessFailure

    def fail(args):
        failure = ProcessFailure(local_rank=1, pid=1, exitcode=exitcode, error_file="")
        failure.timestamp = 0  # the first failure
        raise ChildFailedError("lstmcast", {1: failure})

    monkeypatch.setattr(torchrun, "run", fail)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert distributed.launch(2, ["train", "x.csv"]) == code
    err = capsys.readouterr().err.strip()
    assert (line in err and len(err.splitlines()) == 1) if line else err == ""


def test_two_processes_train_on_a_panel_what_one_trains(ranks):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each rank runs
    try:
        alone = _panel_fit()
    finally:
        torch.set_num_threads(threads)
    weights = _weights(alone.model_)
    for found in ranks:
        assert found["panel"]["best"] == alone.training_.best_epoch > 0  # it learned
        assert found["panel"]["weights"].keys() == weights.keys()
        for name, values in weights.items():
            np.testing.assert_allclose(
                found["panel"]["weights"][name], values, rtol=1e-4, atol=1e-6
            )
