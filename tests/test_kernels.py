"""Triton kernels (backend="triton") against the reference cells: outputs, final states, all gradients.

On the CPU the kernels run under TRITON_INTERPRET=1 (tests/conftest.py sets it before triton is imported);
on a CUDA machine the same tests run compiled on the GPU. Every buffer the kernels fill starts as NaN, so
an element a kernel fails to write shows up as a NaN in an output or a gradient. Both layouts run every
case: ``rows`` (a program per 16 batch rows) and ``units`` (hidden units split over programs; in the
interpreter one launch per step stands in for the GPU's grid barrier, so that barrier itself runs only on a GPU).
"""

import importlib.util
import os
import warnings

import pytest
import torch
from conftest import relative_error

from seqlab import Recurrent

if importlib.util.find_spec("triton") is None:
    pytest.skip("triton is not installed (pip install triton; Linux only)", allow_module_level=True)
if not torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET") != "1":
    pytest.skip("no CUDA and TRITON_INTERPRET is not 1: the kernels cannot run", allow_module_level=True)

from seqlab import kernels  # noqa: E402  (after the skips: imports triton)
from seqlab.kernels import autograd as kernel_module  # noqa: E402
from seqlab.kernels import units as units_module  # noqa: E402
from seqlab.models import LatentAR, LatentARConfig  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
# The interpreter runs one program at a time in Python: what a GPU does in milliseconds takes it seconds, so on the
# CPU the trainings through the kernels are `slow` (pytest -m slow); on a GPU they run by default.
SLOW_INTERPRETED = [pytest.mark.slow] if DEVICE == "cpu" else []
# Max-norm relative error against the float64 reference on the same (rounded) inputs and weights.
# float32: exact fp32 products, only summation order and exp differ (measured ~3e-7 at these sizes).
# bfloat16: h_{t-1} is rounded to bfloat16 in the recurrent product, and outputs and gradients to bfloat16.
TOLERANCE = {torch.float32: 2e-5, torch.bfloat16: 3e-2}
VARIANTS = [("rnn", "after"), ("lstm", "after"), ("gru", "after"), ("gru", "before")]
SHAPES = [  # B, T, D, H, L
    (3, 5, 4, 7, 2),  # H not a power of two, two layers; units: one program, most of its 16 units masked
    (1, 1, 3, 20, 1),  # one batch row, one step; units: two programs
    (18, 3, 5, 70, 1),  # two batch blocks of 16, two hidden chunks of 64; units: five programs, the last partial
]
LAYOUTS = ["rows", "units"]


@pytest.fixture(autouse=True)
def nan_poisoned_buffers(monkeypatch):
    def poisoned(*shape, device):
        return torch.full(shape, float("nan"), device=device)

    monkeypatch.setattr(kernel_module, "_empty", poisoned)


def random_state(layer, B, dtype):
    state = layer.initial_state(B, device=DEVICE, dtype=dtype)
    if isinstance(state, tuple):
        return tuple(torch.randn_like(s).requires_grad_() for s in state)
    return torch.randn_like(state).requires_grad_()


def outputs_and_gradients(layer, x, state):
    """(y, final states...) and the gradients of a random projection of them w.r.t. x, state, parameters."""
    y, final = layer(x, state)
    outputs = (y, *(final if isinstance(final, tuple) else (final,)))
    g = torch.Generator().manual_seed(3)
    loss = sum((torch.randn(o.shape, generator=g).to(o) * o).float().sum() for o in outputs)
    leaves = [x, *(state if isinstance(state, tuple) else (state,)), *layer.parameters()]
    return outputs, torch.autograd.grad(loss, leaves)


def float64_copy(layer, x, state):
    """The same layer, input and state in float64 on the reference backend (the oracle)."""
    reference = Recurrent(layer.cell, layer.input_size, layer.hidden_size, layer.num_layers, backend="reference")
    reference.reset = layer.reset
    for cell in reference.cells:
        cell.reset = layer.reset
    reference.load_state_dict(layer.state_dict())
    reference = reference.double().to(DEVICE)
    x64 = x.detach().double().requires_grad_()
    if isinstance(state, tuple):
        return reference, x64, tuple(s.detach().double().requires_grad_() for s in state)
    return reference, x64, state.detach().double().requires_grad_()


def assert_close(actual, expected, tolerance):
    for a, e in zip(actual, expected, strict=True):
        assert a.shape == e.shape
        assert torch.isfinite(a).all(), "NaN or inf: an element the kernels did not write"
        assert relative_error(a.double(), e) < tolerance, relative_error(a.double(), e)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("cell,reset", VARIANTS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("B,T,D,H,L", SHAPES)
def test_triton_matches_reference(layout, cell, reset, dtype, B, T, D, H, L):
    torch.manual_seed(0)
    layer = Recurrent(cell, D, H, num_layers=L, reset=reset, backend="triton", layout=layout).to(DEVICE, dtype)
    x = torch.randn(B, T, D, device=DEVICE, dtype=dtype, requires_grad=True)
    state = random_state(layer, B, dtype)
    outputs, grads = outputs_and_gradients(layer, x, state)
    expected_outputs, expected_grads = outputs_and_gradients(*float64_copy(layer, x, state))
    assert_close(outputs, expected_outputs, TOLERANCE[dtype])
    assert len(grads) == 1 + (2 if cell == "lstm" else 1) + 4 * L
    assert_close(grads, expected_grads, TOLERANCE[dtype])


def test_poisoned_buffers_are_in_effect():
    """The fixture reaches the buffers the kernels fill: an unwritten element would stay NaN."""
    assert torch.isnan(kernel_module._empty(2, 3, device=DEVICE)).all()


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("cell,reset", [("lstm", "after"), ("gru", "before")])
def test_state_carries_across_chunks(cell, reset, layout):
    """T steps at once equal two calls with the state carried between them."""
    torch.manual_seed(0)
    layer = Recurrent(cell, 3, 9, num_layers=2, reset=reset, backend="triton", layout=layout).to(DEVICE)
    x = torch.randn(2, 7, 3, device=DEVICE)
    y_all, final_all = layer(x)
    y1, s1 = layer(x[:, :4])
    y2, final_2 = layer(x[:, 4:], s1)
    tolerance = TOLERANCE[torch.float32]
    assert relative_error(torch.cat([y1, y2], 1), y_all) < tolerance
    finals = (final_2, final_all) if cell == "lstm" else ((final_2,), (final_all,))
    for a, e in zip(*finals, strict=True):
        assert relative_error(a, e) < tolerance


def test_dropout_between_layers_matches_reference():
    """In training, the same seed draws the same dropout masks between layers as the reference backend."""
    torch.manual_seed(0)
    layer = Recurrent("gru", 4, 6, num_layers=3, dropout=0.5, backend="triton").to(DEVICE).train()
    x = torch.randn(2, 5, 4, device=DEVICE)
    torch.manual_seed(1)
    y_triton, _ = layer(x)
    layer.backend = "reference"
    torch.manual_seed(1)
    y_reference, _ = layer(x)
    torch.manual_seed(2)
    y_other_masks, _ = layer(x)
    assert relative_error(y_triton, y_reference) < TOLERANCE[torch.float32]
    assert relative_error(y_other_masks, y_reference) > 1e-2  # dropout is really on


def test_unsupported_dtype_falls_back_with_one_warning(monkeypatch):
    monkeypatch.setattr(kernel_module, "_warned", set())
    torch.manual_seed(0)
    layer = Recurrent("gru", 3, 5, reset="before", backend="triton").double().to(DEVICE)
    x = torch.randn(2, 4, 3, dtype=torch.float64, device=DEVICE)
    with pytest.warns(UserWarning, match=r"float64.*backend=\"reference\""):
        y, _ = layer(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        layer(x)  # the notice comes once
    layer.backend = "reference"
    assert relative_error(y, layer(x)[0]) < 1e-12


def test_hidden_size_over_the_limit_falls_back(monkeypatch):
    monkeypatch.setattr(kernel_module, "_warned", set())
    monkeypatch.setattr(kernel_module, "MAX_HIDDEN", 4)
    layer = Recurrent("lstm", 3, 5, backend="triton").to(DEVICE)
    x = torch.randn(2, 4, 3, device=DEVICE)
    with pytest.warns(UserWarning, match=r"hidden size 5 > 4.*backend=\"torch\""):
        y, _ = layer(x)
    layer.backend = "torch"
    assert torch.equal(y, layer(x)[0])


@pytest.mark.slow  # a Python process importing torch and triton
@pytest.mark.skipif(torch.cuda.is_available(), reason="a CPU-only check: without the interpreter")
def test_cpu_without_interpreter_falls_back_with_a_warning():
    """Without CUDA and without TRITON_INTERPRET the kernels cannot run: a notice, then backend="torch"."""
    import subprocess
    import sys

    program = (
        "import warnings, torch; from seqlab import Recurrent\n"
        "layer, x = Recurrent('lstm', 3, 5, backend='triton'), torch.randn(2, 4, 3)\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always'); y, _ = layer(x); layer(x)\n"
        "layer.backend = 'torch'; assert torch.equal(y, layer(x)[0])\n"
        "print(len(caught), caught[0].message)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    done = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("1 ") and "tensors on cpu" in done.stdout and 'backend="torch"' in done.stdout


def test_auto_never_picks_triton():
    assert Recurrent("lstm", 3, 4).resolved_backend() == "torch"
    assert Recurrent("gru", 3, 4, reset="before").resolved_backend() == "reference"


def test_missing_triton_is_a_clear_error(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "triton" else real_find_spec(name)
    )
    with pytest.raises(ImportError, match="triton"):
        Recurrent("lstm", 3, 4, backend="triton")


@pytest.mark.parametrize(
    "cell,reset,layout",
    [
        pytest.param(cell, reset, layout, marks=SLOW_INTERPRETED)
        for cell, reset in [("lstm", "after"), ("gru", "before")]
        for layout in ["rows", "units"]
    ],
)
def test_training_loss_curve_matches_reference(cell, reset, layout, monkeypatch):
    """A few AdamW steps of a tiny LatentAR give the same losses through the kernels as through backend="torch"
    (the reference loop for the GRU with the reset before, which torch cannot run).

    LatentAR leaves the layout to "auto"; the threshold moves so that "auto" picks the layout under test."""
    from seqlab.data import Vocabulary
    from seqlab.training import Trainer, TrainerConfig

    monkeypatch.setattr(kernel_module, "UNITS_MIN_AUTO_HIDDEN", 1 if layout == "units" else 10**9)
    picked = []  # what Recurrent's "auto" chose, call by call
    monkeypatch.setattr(kernels, "pick_layout", lambda *a: picked.append(kernel_module.pick_layout(*a)) or picked[-1])

    text = "to be, or not to be: that is the question.\n" * 8
    vocabulary = Vocabulary.from_text(text)
    ids = vocabulary.encode(text)
    baseline = "reference" if reset == "before" else "torch"
    losses = {}
    for backend in ("triton", baseline):
        torch.manual_seed(0)
        config = LatentARConfig(cell, hidden_size=12, num_layers=2, embedding_dim=6, reset=reset, backend=backend)
        model = LatentAR(vocabulary, config)
        trainer_config = TrainerConfig(steps=6, batch_size=4, window=10, warmup_steps=0)
        losses[backend] = []
        record = [lambda trainer, progress, b=backend: losses[b].append(progress.loss)]
        Trainer(model, trainer_config, callbacks=record).fit(ids)
    losses = {backend: torch.tensor(curve) for backend, curve in losses.items()}
    assert picked and set(picked) == {layout}
    assert len(losses["triton"]) == 6
    assert losses["triton"][-1] < losses["triton"][0]  # it trains
    assert relative_error(losses["triton"], losses[baseline]) < 1e-5


@pytest.mark.slow  # 20 to 40 s with a cold Triton cache
@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU the tests above compile and run every kernel")
def test_every_kernel_compiles_for_hopper():
    """The compiler (not only the interpreter) accepts all 32 kernels: 2 layouts x forward and backward x 4 cells x
    2 dtypes; the units kernels persistent, with their grid barrier, at H = 256 (tests/compile_kernels.py)."""
    import subprocess
    import sys
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_DEFAULT_FP_FUSION"] = "1"  # today's default, stated (Triton 3.9 warns while it is unset)
    script = Path(__file__).with_name("compile_kernels.py")
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("ok ") == 32, done.stdout


def test_layouts_are_the_same_names_in_recurrent_and_kernels():
    from seqlab import recurrent

    assert recurrent.LAYOUTS == kernels.LAYOUTS
    with pytest.raises(ValueError, match="layout must be one of"):
        Recurrent("lstm", 3, 4, backend="triton", layout="columns")


@pytest.mark.parametrize(
    "B,H,expected",
    [(1, 256, "units"), (16, 1024, "units"), (64, 128, "units"), (65, 256, "rows"), (4, 64, "rows"), (4, 4096, "rows")],
)
def test_auto_layout_by_shape(B, H, expected):
    """ "auto": units from H = 128 at B <= 64 (a resident slice of W_hh pays off), rows otherwise or past its limit."""
    x = torch.zeros(B, 2, 3)
    assert kernels.pick_layout(x, torch.zeros(4 * H, H), "auto") == expected
    assert kernels.pick_layout(x, torch.zeros(4 * H, H), "rows") == "rows"


def test_units_over_its_limit_falls_back_to_rows_once(monkeypatch):
    monkeypatch.setattr(kernel_module, "_warned", set())
    monkeypatch.setattr(units_module, "UNITS_MAX_HIDDEN", 4)
    torch.manual_seed(0)
    layer = Recurrent("gru", 3, 5, backend="triton", layout="units").to(DEVICE)
    x = torch.randn(2, 4, 3, device=DEVICE)
    with pytest.warns(UserWarning, match=r'hidden size 5 > 4 for layout="units"; using layout="rows"'):
        y, _ = layer(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        layer(x)  # the notice comes once
    layer.layout = "rows"
    assert torch.equal(y, layer(x)[0])


@pytest.mark.parametrize(
    "H,sms,block_u,programs",
    [(256, 132, 16, 16), (1024, 132, 16, 64), (2048, 132, 16, 128), (2048, 78, 32, 64), (1000, 8, 128, 8)],
)
def test_units_grid_fits_the_sm_count(monkeypatch, H, sms, block_u, programs):
    """On a GPU the grid never exceeds the SMs (all programs resident, so the grid barrier ends): BLOCK_U grows."""
    monkeypatch.setattr(units_module, "sm_count", lambda device: sms)
    plan = units_module.units_plan(H, torch.device("cpu"))
    assert (plan.block_u, plan.programs) == (block_u, programs)
    assert plan.programs <= sms and plan.programs * plan.block_u >= H


def test_units_grid_too_large_for_the_gpu_is_refused(monkeypatch):
    monkeypatch.setattr(units_module, "sm_count", lambda device: 4)
    reason = units_module.units_plan(1024, torch.device("cpu"))
    assert reason == 'hidden size 1024 needs 8 resident programs for layout="units", the GPU has 4 SMs'


class CountingKernel:
    """Stands in for a Triton kernel: records each launch's grid, PERSISTENT and PHASE, then launches."""

    def __init__(self, kernel):
        self.kernel, self.launches = kernel, []

    def __getitem__(self, grid):
        def launch(*args, **kwargs):
            self.launches.append((grid, kwargs["PERSISTENT"], kwargs["PHASE"]))
            return self.kernel[grid](*args, **kwargs)

        return launch


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CPU check: on a GPU the units kernels run persistent")
def test_interpreter_runs_units_one_launch_per_step(monkeypatch):
    """Under the interpreter the units kernels never enter the grid barrier (it would wait forever there): one
    launch per step and, for the GRU with the reset before, per half-step, each over all programs."""
    forward = CountingKernel(units_module.units_forward_kernel)
    backward = CountingKernel(units_module.units_backward_kernel)
    monkeypatch.setattr(units_module, "units_forward_kernel", forward)
    monkeypatch.setattr(units_module, "units_backward_kernel", backward)
    layer = Recurrent("gru", 3, 40, reset="before", backend="triton", layout="units").to(DEVICE)
    y, _ = layer(torch.randn(2, 5, 3, device=DEVICE, requires_grad=True))
    y.sum().backward()
    assert forward.launches == [((3,), False, 1), ((3,), False, 2)] * 5  # 40 units in 3 programs of 16
    assert backward.launches == forward.launches


@pytest.fixture
def persistent_in_the_interpreter(monkeypatch):
    """The units kernels as the GPU runs them (one launch for all steps, the grid barrier), in the interpreter:
    float32 only (the bfloat16 product needs the interpreter's workaround, which the GPU path turns off). A few
    barrier reads only: a barrier that should pass at once but waits gives up quickly and the call raises."""
    monkeypatch.setattr(units_module, "INTERPRETED", False)
    monkeypatch.setattr(units_module, "MAX_SPINS", 8)


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU every units test runs persistent")
@pytest.mark.parametrize("cell,reset", VARIANTS)
def test_persistent_units_kernels_with_one_program_match_reference(
    persistent_in_the_interpreter, monkeypatch, cell, reset
):
    """One program (H <= 16) never waits at the barrier, so the persistent loop and its barrier arithmetic (two
    barriers a step for gru_before; a wrong count would give up and raise) run in the interpreter: one launch
    each way, outputs and every gradient against float64."""
    forward = CountingKernel(units_module.units_forward_kernel)
    backward = CountingKernel(units_module.units_backward_kernel)
    monkeypatch.setattr(units_module, "units_forward_kernel", forward)
    monkeypatch.setattr(units_module, "units_backward_kernel", backward)
    torch.manual_seed(0)
    layer = Recurrent(cell, 3, 13, reset=reset, backend="triton", layout="units").to(DEVICE)
    x = torch.randn(3, 4, 3, device=DEVICE, requires_grad=True)
    state = random_state(layer, 3, torch.float32)
    outputs, grads = outputs_and_gradients(layer, x, state)
    expected_outputs, expected_grads = outputs_and_gradients(*float64_copy(layer, x, state))
    assert_close(outputs, expected_outputs, TOLERANCE[torch.float32])
    assert_close(grads, expected_grads, TOLERANCE[torch.float32])
    assert forward.launches == backward.launches == [((1,), True, 0)]


@pytest.mark.skipif(torch.cuda.is_available(), reason="the interpreter runs programs one after another")
def test_units_barrier_gives_up_with_an_error_instead_of_hanging(persistent_in_the_interpreter):
    """Programs that are not all resident (here: the interpreter's one after another) would wait at the barrier
    forever; after MAX_SPINS reads it gives up and the call raises."""
    layer = Recurrent("lstm", 3, 40, backend="triton", layout="units").to(DEVICE)  # three programs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the steps after the give-up compute garbage
        with pytest.raises(RuntimeError, match="not all resident at once"):
            layer(torch.randn(2, 4, 3, device=DEVICE))
