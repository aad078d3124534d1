"""Which backend runs a layer (lstmcast.kernels.dispatch.backend), on every device and setting,
with the kernels' availability monkeypatched: nothing here compiles or needs a GPU."""

from __future__ import annotations

import pytest
import torch

from lstmcast.kernels import cpu_lstm, dispatch, triton_lstm
from lstmcast.kernels.activations import ACTIVATIONS, CODES
from lstmcast.kernels.dispatch import Backend, backend
from lstmcast.models.keras_lstm import KerasLSTM

CPU, CUDA = torch.device("cpu"), torch.device("cuda")
F32, F64 = torch.float32, torch.float64


@pytest.fixture
def extension(monkeypatch):
    """The C++ layer as if built here, without building it."""
    monkeypatch.setattr(cpu_lstm, "ENABLED", True)
    monkeypatch.setattr(cpu_lstm, "load", lambda: object())


@pytest.fixture
def no_extension(monkeypatch):
    """LSTMCAST_CPU_EXTENSION=0: the extension is not even loaded."""
    monkeypatch.setattr(cpu_lstm, "ENABLED", False)
    monkeypatch.setattr(cpu_lstm, "load", lambda: pytest.fail("loaded while turned off"))


@pytest.fixture
def triton(monkeypatch):
    monkeypatch.setattr(triton_lstm, "AVAILABLE", True)


@pytest.fixture
def no_triton(monkeypatch):
    monkeypatch.setattr(triton_lstm, "AVAILABLE", False)


@pytest.mark.parametrize("fused", [True, False])
def test_the_cpu_runs_the_cpp_layer_for_what_it_implements(extension, fused):
    for activation in CODES:
        assert backend(activation, CPU, F32, 50, fused) is Backend.cpp
    assert backend("gelu", CPU, F32, 50, fused) is Backend.loop  # not compiled
    assert backend("tanh", CPU, F64, 50, fused) is (Backend.nn_lstm if fused else Backend.loop)
    assert backend("relu", CPU, F64, 50, fused) is Backend.loop  # float32 only


def test_the_cpu_without_the_extension_runs_onednn_for_tanh_and_the_loop_otherwise(no_extension):
    assert backend("tanh", CPU, F32, 50, fused=True) is Backend.nn_lstm
    assert backend("tanh", CPU, F32, 50, fused=False) is Backend.loop
    assert backend("relu", CPU, F32, 50, fused=True) is Backend.loop


def test_the_cpu_falls_back_when_the_extension_does_not_build(monkeypatch):
    monkeypatch.setattr(cpu_lstm, "ENABLED", True)
    monkeypatch.setattr(cpu_lstm, "load", lambda: None)
    assert backend("tanh", CPU, F32, 50, fused=True) is Backend.nn_lstm
    assert backend("relu", CPU, F32, 50, fused=True) is Backend.loop


def test_cuda_runs_triton_for_what_it_implements(extension, triton):
    for activation in CODES:
        assert backend(activation, CUDA, F32, 128, fused=False) is Backend.triton
    assert backend("tanh", CUDA, F32, 50, fused=True) is Backend.nn_lstm  # cuDNN
    assert backend("relu", CUDA, F32, triton_lstm.MAX_UNITS + 1, True) is Backend.loop
    assert backend("relu", CUDA, torch.float16, 50, fused=True) is Backend.loop
    assert backend("gelu", CUDA, F32, 50, fused=True) is Backend.loop


def test_cuda_without_triton_runs_cudnn_for_tanh_and_the_loop_otherwise(extension, no_triton):
    assert backend("tanh", CUDA, F32, 50, fused=True) is Backend.nn_lstm
    assert backend("tanh", CUDA, F32, 50, fused=False) is Backend.loop
    assert backend("relu", CUDA, F32, 50, fused=True) is Backend.loop


def test_other_devices_run_nn_lstm_for_tanh_and_the_loop_otherwise(extension, triton):
    meta = torch.device("meta")
    assert backend("tanh", meta, F32, 50, fused=True) is Backend.nn_lstm
    assert backend("relu", meta, F32, 50, fused=True) is Backend.loop


# --- the layer and the recurrence follow it ------------------------------------------------------


@pytest.mark.parametrize(
    ("chosen", "path"),
    [
        (Backend.cpp, "_forward_compiled"),
        (Backend.nn_lstm, "_forward_fused"),
        (Backend.triton, "_forward_explicit"),
        (Backend.loop, "_forward_explicit"),
    ],
)
def test_the_layer_runs_the_backend_dispatch_names(chosen, path, monkeypatch):
    asked, ran = [], []
    monkeypatch.setattr(dispatch, "backend", lambda *args: asked.append(args) or chosen)
    for name in ("_forward_compiled", "_forward_fused", "_forward_explicit"):
        monkeypatch.setattr(KerasLSTM, name, lambda self, x, name=name: ran.append(name))
    layer = KerasLSTM(3, 5, "tanh", fused=False)
    layer(torch.zeros(2, 4, 3, dtype=F64))
    assert asked == [("tanh", CPU, F64, 5, False)]
    assert ran == [path]


@pytest.mark.parametrize("chosen", list(Backend))
def test_the_recurrence_runs_triton_only_when_dispatch_names_it(chosen, monkeypatch):
    asked, ran = [], []

    def ask(activation, device, dtype, units, fused):
        asked.append((activation, device, dtype, units, fused))
        return chosen

    class Fake:
        def __init__(self, name: str) -> None:
            self.name = name

        def apply(self, *args):
            ran.append(self.name)

    monkeypatch.setattr(dispatch, "backend", ask)
    monkeypatch.setattr(triton_lstm, "TritonRecurrence", Fake("triton"))
    monkeypatch.setattr(dispatch, "LoopRecurrence", Fake("loop"))
    xp, w_hh_t = torch.zeros(1, 4, 2, 20, dtype=torch.bfloat16), torch.zeros(1, 5, 20)
    dispatch.keras_recurrence(xp, w_hh_t, "relu", ACTIVATIONS["relu"])
    assert asked == [("relu", CPU, torch.bfloat16, 5, False)]  # xp's dtype: autocast's
    assert ran == ["triton" if chosen is Backend.triton else "loop"]
