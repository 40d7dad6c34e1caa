"""The table of every cell's executable copies (``seqlab.cells.copies``) names files, definitions and parity tests
that exist; the gates per cell come from one place; the explore page's WebAssembly matvec equals numpy's float32
sum in node."""

import ast
import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from seqlab.cells import NUM_GATES, GRUCell, LSTMCell, RNNCell
from seqlab.cells.copies import CELLS, COPIES
from seqlab.runs import explore

ROOT = Path(__file__).resolve().parents[1]


def python_definitions(path: Path) -> set[str]:
    """Module-level functions and classes, and ``Class.method`` for their methods."""
    names = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        if isinstance(node, ast.ClassDef):
            names |= {f"{node.name}.{n.name}" for n in node.body if isinstance(n, ast.FunctionDef)}
    return names


def javascript_defines(text: str, name: str) -> bool:
    """``function name``, or ``Class.member``: a method ``member(`` or ``this.member =`` inside ``class Class``."""
    if "." not in name:
        return re.search(rf"^function {re.escape(name)}\(", text, re.M) is not None
    owner, member = name.split(".")
    body = re.search(rf"^class {re.escape(owner)} {{\n(.*?)^}}", text, re.M | re.S)
    pattern = rf"^  {re.escape(member)}\(|this\.{re.escape(member)} ="
    return body is not None and re.search(pattern, body.group(1), re.M) is not None


def defined(path: Path, name: str) -> bool:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".py":
        return name in python_definitions(path)
    if path.suffix == ".js":
        return javascript_defines(text, name)
    return f'(export "{name}")' in text  # WebAssembly text


def test_every_cell_has_each_copy_and_every_entry_exists():
    assert set(COPIES) == set(CELLS) == set(NUM_GATES)
    for cell, copies in COPIES.items():
        assert [c.kind for c in copies] == ["torch reference", "Triton", "NumPy", "JavaScript", "WebAssembly"]
        for copy in copies:
            path = ROOT / copy.path
            assert path.is_file(), copy.path
            for name in copy.definitions:
                assert defined(path, name), f"{copy.path} does not define {name} ({cell})"
            for test in copy.tests:
                file, _, function = test.partition("::")
                assert function in python_definitions(ROOT / file), f"no test {test} ({cell}, {copy.kind})"


def test_the_checks_of_the_table_can_fail():
    """The checker itself: a name that is not there is not found, in each language."""
    assert not defined(ROOT / "src/seqlab/streaming.py", "NumpyRecurrence.no_such_step")
    assert not defined(ROOT / "src/seqlab/runs/explore_page/page.js", "Model.no_such_step")
    assert not defined(ROOT / "src/seqlab/runs/explore_page/page.js", "Arena.step")
    assert not defined(ROOT / "src/seqlab/runs/explore_page/matvec.wat", "matmul")
    assert defined(ROOT / "src/seqlab/runs/explore_page/page.js", "draw")


def test_the_gates_per_cell_are_the_cells_own():
    """The one count: each cell's packed weights have NUM_GATES x H rows, and the kernels read the same."""
    for cell, cls in (("rnn", RNNCell), ("lstm", LSTMCell), ("gru", GRUCell)):
        assert cls(3, 5).weight_hh.shape[0] == NUM_GATES[cell] * 5
    common = pytest.importorskip("seqlab.kernels.common", reason="the kernels need triton")
    assert common.NUM_GATES == {"rnn": 1, "lstm": 4, "gru_after": 3, "gru_before": 3}


def lane_sums(W: np.ndarray, x: np.ndarray) -> np.ndarray:
    """What matvec computes, in float32: four lanes, each summing every fourth column in order, then
    (l0 + l1) + (l2 + l3)."""
    rows, cols = W.shape
    lanes = np.zeros((rows, 4), dtype=np.float32)
    for c in range(0, cols, 4):
        lanes = lanes + W[:, c : c + 4] * x[c : c + 4]  # float32 throughout
    return (lanes[:, 0] + lanes[:, 1]) + (lanes[:, 2] + lanes[:, 3])


NODE = shutil.which("node")


@pytest.mark.skipif(NODE is None, reason="node (to run WebAssembly without a browser) is not installed")
def test_matvec_wasm_equals_numpy_in_node(tmp_path):
    """matvec.wasm, as the page inlines it, run by node's WebAssembly on a 37 x 24 float32 matrix: bit for bit
    the float32 lane sums, and within 1e-5 of float64's product."""
    rng = np.random.default_rng(0)
    W, x = rng.normal(size=(37, 24)).astype(np.float32), rng.normal(size=24).astype(np.float32)
    script = tmp_path / "matvec.cjs"
    script.write_text(
        f"""
const bytes = require("fs").readFileSync({json.dumps(str(ROOT / "src/seqlab/runs/explore_page/matvec.wasm"))});
const memory = new WebAssembly.Memory({{ initial: 1 }});
const {{ matvec }} = new WebAssembly.Instance(new WebAssembly.Module(bytes), {{ env: {{ memory }} }}).exports;
const W = new Float32Array(memory.buffer, 0, {W.size}), x = new Float32Array(memory.buffer, {W.nbytes}, 24);
W.set({json.dumps(W.ravel().tolist())}); x.set({json.dumps(x.tolist())});
const y = new Float32Array(memory.buffer, {W.nbytes + x.nbytes}, 37);
matvec(0, {W.nbytes}, {W.nbytes + x.nbytes}, 37, 24);
console.log(JSON.stringify(Array.from(y)));
""",
        encoding="utf-8",
    )
    done = subprocess.run([NODE, str(script)], stdin=subprocess.DEVNULL, capture_output=True, text=True)  # no deadline
    assert done.returncode == 0, done.stderr
    y = np.array(json.loads(done.stdout), dtype=np.float32)
    assert np.array_equal(y, lane_sums(W, x))
    exact = W.astype(np.float64) @ x.astype(np.float64)
    assert np.abs(y - exact).max() < 1e-5 * np.abs(exact).max()


def test_the_page_inlines_the_wasm_file():
    """The page's script holds matvec.wasm in base64 (no placeholder left, no other copy of the module)."""
    page = explore.render_page({"title": "t"})
    wasm = (ROOT / "src/seqlab/runs/explore_page/matvec.wasm").read_bytes()
    assert f'const MATVEC_WASM = "{base64.b64encode(wasm).decode()}";' in page and "/*MATVEC_WASM*/" not in page
