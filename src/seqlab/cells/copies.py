"""Every executable copy of each cell's equations, and the test that holds it to the reference.

The equations of ``seqlab.cells`` (plain torch, the oracle) are written again where speed or a place without
torch needs them. Change a cell here and in every copy below, then run each listed test:

    cell  torch reference (cells/)   Triton (kernels/pointwise.py)     NumPy (streaming.py)      JavaScript (page.js)
    rnn   rnn_step                   cell_forward, cell_backward       NumpyRecurrence.advance   Model.step
    lstm  lstm_step, lstm_values     cell_forward, cell_backward       NumpyRecurrence.advance   Model.step
    gru   gru_step, gru_values       the same, candidate_forward,      NumpyRecurrence.advance   Model.step
                                     reset_backward (reset before)

The page's matrix-vector products run in WebAssembly (``runs/explore_page/matvec.wasm``, its text form
``matvec.wat`` beside it), shared by every cell. ``COPIES`` holds the same table with each copy's file,
definitions and parity tests (``path::test_name``); ``tests/test_cell_copies.py`` checks that every file,
definition and test it names exists, so the table cannot drift from the code silently. The number of gates per
cell is ``seqlab.cells.NUM_GATES``, read by the kernels and the explore page. Not copies: the ONNX export
(``seqlab.export``) traces the reference cells (its generation graph: torch's fused functions, ONNX's own
recurrent ops), and the explore page's unit values (``runs/explore.py``) are the
NumPy copy's, through the hook of ``NumpyRecurrence.advance``.
"""

from __future__ import annotations

from dataclasses import dataclass

CELLS = ("rnn", "lstm", "gru")


@dataclass(frozen=True)
class Copy:
    """One executable copy: where (``path`` from the repository root), which definitions hold the equations
    (``Class.method`` or a function; in JavaScript the same; in WebAssembly text an export), and its tests."""

    kind: str  # torch reference, Triton, NumPy, JavaScript, WebAssembly
    path: str
    definitions: tuple[str, ...]
    tests: tuple[str, ...]


def _copies(reference: tuple[str, ...], kernels: tuple[str, ...], reference_tests: tuple[str, ...]) -> tuple:
    cell = reference[0].split("_")[0]
    browser = "tests/test_explore_browser.py::test_page_step_equals_latent_ar_step"
    return (
        Copy("torch reference", f"src/seqlab/cells/{cell}.py", reference, reference_tests),
        Copy(
            "Triton",
            "src/seqlab/kernels/pointwise.py",
            kernels,
            (
                "tests/test_kernels.py::test_triton_matches_reference",
                "tests/test_kernels.py::test_persistent_units_kernels_with_one_program_match_reference",
            ),
        ),
        Copy(
            "NumPy",
            "src/seqlab/streaming.py",
            ("NumpyRecurrence.advance",),
            (
                "tests/test_streaming.py::test_logits_match_the_reference_step",
                "tests/test_streaming.py::test_frame_params_match_the_reference_step",
                "tests/test_explore.py::test_unit_values_follow_torch_cells",  # its gates, through the hook
            ),
        ),
        Copy("JavaScript", "src/seqlab/runs/explore_page/page.js", ("Model.step", "Arena.jsMatvec"), (browser,)),
        Copy(
            "WebAssembly",
            "src/seqlab/runs/explore_page/matvec.wat",
            ("matvec",),
            ("tests/test_cell_copies.py::test_matvec_wasm_equals_numpy_in_node", browser),
        ),
    )


CELL_TESTS = (
    "tests/test_cells.py::test_cell_matches_torch_forward_and_gradients",
    "tests/test_cells.py::test_gradcheck",
)
KERNELS = ("cell_forward", "cell_backward")
COPIES: dict[str, tuple[Copy, ...]] = {
    "rnn": _copies(("rnn_step",), KERNELS, CELL_TESTS),
    "lstm": _copies(("lstm_step", "lstm_values"), KERNELS, CELL_TESTS),
    "gru": _copies(
        ("gru_step", "gru_values"),
        (*KERNELS, "candidate_forward", "reset_backward"),
        (*CELL_TESTS, "tests/test_cells.py::test_gru_reset_before_matches_the_equation"),
    ),
}
