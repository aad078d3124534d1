"""One table of activation codes (lstmcast.kernels.activations.CODES) for Python, the C++ layer
and the Triton kernels. The kernel sources are read as text (the Triton one runs without
Triton), so a code written by hand into either fails here, not as a wrong activation."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import lstmcast.models
from lstmcast import choices
from lstmcast.kernels import cpu_lstm, triton_lstm
from lstmcast.kernels.activations import (
    ACTIVATION_GRADS,
    ACTIVATIONS,
    CODES,
    constant_name,
    cpp_defines,
    macro,
)
from lstmcast.models import keras_lstm

KERAS = set(choices.values(choices.Activation))
CONSTANTS = {constant_name(name): name for name in CODES}  # TANH -> tanh


def test_the_kernels_implement_keras_activations_each_with_its_own_code():
    assert set(CODES) <= KERAS
    assert len(set(CODES.values())) == len(CODES)


def test_the_layer_offers_every_keras_activation_with_its_gradient():
    assert set(keras_lstm.ACTIVATIONS) == KERAS
    assert keras_lstm.ACTIVATIONS is ACTIVATIONS is lstmcast.models.ACTIVATIONS
    assert set(ACTIVATION_GRADS) == KERAS


def test_the_cpp_flags_carry_every_code():
    assert cpp_defines() == [f"-DLSTMCAST_ACT_{n.upper()}={c}" for n, c in CODES.items()]
    assert macro("hard_sigmoid") == "LSTMCAST_ACT_HARD_SIGMOID"


# --- the C++ source -----------------------------------------------------------------------------


def cpp_code() -> str:
    """cpu_lstm.cpp without its comments."""
    text = re.sub(r"/\*.*?\*/", " ", cpu_lstm.SOURCE.read_text(), flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def block_after(text: str, start: int) -> str:
    """The text of the {...} block that opens at or after `start`."""
    open_at = text.index("{", start)
    depth = 0
    for at in range(open_at, len(text)):
        depth += {"{": 1, "}": -1}.get(text[at], 0)
        if depth == 0:
            return text[open_at + 1 : at]
    raise AssertionError("unbalanced braces")


def test_the_cpp_enum_takes_every_code_from_its_macro():
    body = re.search(r"enum Act\s*\{(.*?)\};", cpp_code(), re.S)
    assert body is not None
    entries = dict(
        (part.strip() for part in entry.split("="))
        for entry in body.group(1).split(",")
        if entry.strip()
    )
    assert entries == {constant_name(name): macro(name) for name in CODES}


def test_the_cpp_source_refuses_to_compile_without_the_macros():
    guard = re.search(r"#if (.*?)\n#error", cpp_code(), re.S)
    assert guard is not None
    assert set(re.findall(r"!defined\((\w+)\)", guard.group(1))) == {macro(n) for n in CODES}


def test_the_cpp_switches_over_the_activation_name_every_code_and_no_number():
    code = cpp_code()
    switches = [m.end() for m in re.finditer(r"switch \((kind|KIND)\)", code)]
    assert len(switches) == 3  # act, act_grad, LSTMCAST_DISPATCH
    for start in switches:
        labels = re.findall(r"case\s+([^:]+):", block_after(code, start))
        assert sorted(labels) == sorted(CONSTANTS), labels
    assert not re.search(r"kind\s*[=!<>]=?\s*\d", code)


# --- the Triton source --------------------------------------------------------------------------


def triton_tree() -> ast.Module:
    return ast.parse(Path(triton_lstm.__file__).read_text())


def test_the_triton_constants_are_read_from_the_table():
    found = {}
    for node in ast.walk(triton_tree()):
        if isinstance(node, ast.Assign) and ast.unparse(node.value).startswith("tl.constexpr("):
            call = node.value
            assert isinstance(call, ast.Call)
            arg = call.args[0]
            assert isinstance(arg, ast.Subscript) and ast.unparse(arg.value) == "CODES"
            assert isinstance(arg.slice, ast.Constant)
            found[ast.unparse(node.targets[0])] = arg.slice.value
    assert found == CONSTANTS


def test_the_triton_kernels_compare_with_the_constants_not_numbers():
    functions = {
        node.name: node for node in ast.walk(triton_tree()) if isinstance(node, ast.FunctionDef)
    }
    for name in ("_act", "_act_grad"):
        compared = [
            node.comparators[0]
            for node in ast.walk(functions[name])
            if isinstance(node, ast.Compare) and ast.unparse(node.left) == "ACT"
        ]
        assert all(isinstance(c, ast.Name) for c in compared), name
        assert sorted(c.id for c in compared if isinstance(c, ast.Name)) == sorted(CONSTANTS)


def test_the_triton_launches_pass_the_table_codes():
    launched = [
        ast.unparse(keyword.value)
        for node in ast.walk(triton_tree())
        if isinstance(node, ast.Call)
        for keyword in node.keywords
        if keyword.arg == "ACT"
    ]
    assert launched == ["CODES[activation]", "CODES[ctx.activation]"]
