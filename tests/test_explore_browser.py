"""The explore page in a real browser (headless Chromium from the distribution, driven by Selenium): it loads with no
console error and no network request, hovering a character shows that character's distribution, choosing a unit
recolours the text with that unit's values, the JavaScript step's logits equal ``LatentAR.step``'s over a
500-character prompt, and greedy decoding in the page reproduces Python's greedy sample."""

import numpy as np
import pytest
import torch
from conftest import relative_error
from explore_browser import NO_BROWSER, browser, open_page, requests_made
from helpers import SMALL_TEXT
from test_explore import TEXT, build, tiny_model

import seqlab
from seqlab.data.text import Vocabulary
from seqlab.models import NGram
from seqlab.runs import explore
from seqlab.streaming import StreamingSampler

pytestmark = pytest.mark.skipif(NO_BROWSER is not None, reason=str(NO_BROWSER))

STEP_TOLERANCE = 1e-4  # float32 weights; the page sums in a different order (SIMD lanes) than torch and NumPy
VARIANTS = [("rnn", "after"), ("lstm", "after"), ("gru", "after"), ("gru", "before")]


@pytest.fixture(scope="module")
def driver():
    with browser() as d:
        yield d


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("text") / "text.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def lstm_page(tmp_path_factory, text_file):
    """A two-layer LSTM's page, compared with a 3-gram."""
    tmp = tmp_path_factory.mktemp("lstm")
    ngram = NGram(order=3, vocabulary=Vocabulary.from_text(SMALL_TEXT)).fit(SMALL_TEXT)
    seqlab.save(ngram, tmp / "ngram")
    model = tiny_model("lstm", layers=2)
    _, out = build(tmp, model, text_file, against=tmp / "ngram")
    return model, out


def test_page_loads_without_errors_or_network(driver, lstm_page):
    _, out = lstm_page
    driver.get("about:blank")
    requests_made(driver)  # forget what the browser did before
    driver.get_log("browser")
    open_page(driver, out)
    assert driver.get_log("browser") == []  # no console message at all: no error, no warning
    assert requests_made(driver) == [out.resolve().as_uri()]  # the page itself, nothing else
    assert driver.execute_script("return seqlab.engine()") == "wasm-simd"
    for view in ("units", "saturation", "against", "sampler", "surprise"):
        driver.execute_script("seqlab.setView(arguments[0])", view)
    assert driver.get_log("browser") == [] and requests_made(driver) == []


def test_hover_shows_the_characters_distribution(driver, lstm_page):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    model, out = lstm_page
    open_page(driver, out)
    s = 137
    span = driver.find_elements(By.CSS_SELECTOR, "#text span")[s]
    ActionChains(driver).move_to_element(span).perform()
    box = driver.find_element(By.ID, "char-box").text
    assert f"Character {s + 1} of {len(TEXT)}" in box
    # what the model expected before character s, from LatentAR.step
    state = model.initial_state()
    logits, state = model.step(None, state)
    for x in model.encode(TEXT)[:s]:
        logits, state = model.step(x, state)
    p = torch.softmax(logits.double(), 0)
    top = torch.topk(p, 10)
    rows = driver.find_elements(By.CSS_SELECTOR, "#top10 tr")
    shown = [row.find_elements(By.TAG_NAME, "td") for row in rows]
    symbols = [model.vocabulary.symbols[i] for i in top.indices.tolist()]
    expected_cells = [{"\n": "\u21b5", " ": "\u2423"}.get(ch, ch) for ch in symbols]
    assert [cells[0].text for cells in shown] == expected_cells
    assert [float(cells[1].text) for cells in shown] == pytest.approx(top.values.tolist(), abs=6e-5)
    own = float(p[model.vocabulary.index[TEXT[s]]])
    assert f"{-np.log2(own):.3f} bits" in box


def test_choosing_a_unit_recolours_the_text_with_its_values(driver, lstm_page):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    model, out = lstm_page
    open_page(driver, out)
    spans = lambda: driver.execute_script("return seqlab.spans.map(s => s.style.backgroundColor)")  # noqa: E731
    surprise = spans()
    driver.find_element(By.CSS_SELECTOR, 'nav button[data-view="units"]').click()
    Select(driver.find_element(By.ID, "layer")).select_by_value("1")
    Select(driver.find_element(By.ID, "quantity")).select_by_value("f")
    unit = driver.find_element(By.ID, "unit")
    unit.clear()
    unit.send_keys("5\n")
    driver.execute_script("document.getElementById('unit').dispatchEvent(new Event('change'))")
    state = driver.execute_script("return [seqlab.state.layer, seqlab.state.quantity, seqlab.state.unit]")
    assert state == [1, "f", 5]
    shown = np.array(driver.execute_script("return seqlab.state.shown"))
    trace = explore.unit_values(StreamingSampler(model), model.encode(TEXT).numpy())
    assert relative_error(torch.from_numpy(shown), torch.from_numpy(trace[1, "f"][:, 5].astype(np.float64))) < 1e-5
    coloured = spans()
    assert coloured != surprise
    # the gate's scale runs from white (0) to dark blue (1): the most open gate is the darkest character
    red = [int(c.split("(")[1].split(",")[0]) for c in coloured]
    assert red[int(np.argmax(shown))] == min(red)
    # the keyboard: down moves to the next unit
    driver.find_element(By.ID, "text").click()
    driver.find_element(By.ID, "text").send_keys("\ue015")  # arrow down
    assert driver.execute_script("return seqlab.state.unit") == 6


@pytest.mark.parametrize("cell, reset", VARIANTS, ids=[f"{c}-{r}" for c, r in VARIANTS])
def test_page_step_equals_latent_ar_step(driver, tmp_path, text_file, cell, reset):
    model = tiny_model(cell, layers=2, reset=reset)
    _, out = build(tmp_path, model, text_file, chars=50)
    open_page(driver, out)
    prompt = SMALL_TEXT[1000:1500]
    ids = model.encode(prompt)
    expected, state = [], model.initial_state()
    logits, state = model.step(None, state)
    expected.append(logits)
    for x in ids:
        logits, state = model.step(x, state)
        expected.append(logits)
    expected = torch.stack(expected).double()  # (501, V)
    for engine in ("wasm-simd", "js"):
        driver.execute_script("seqlab.engine(arguments[0])", engine)
        got = torch.tensor(driver.execute_script("return seqlab.logitsOver(arguments[0])", ids.tolist()))
        assert got.shape == expected.shape
        assert relative_error(got, expected) < STEP_TOLERANCE, engine


def test_greedy_decoding_in_the_page_equals_pythons(driver, tmp_path, text_file):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    model = tiny_model("gru", layers=2, hidden=24)
    _, out = build(tmp_path, model, text_file, chars=50)
    prompt = "ROMEO.\nWhat light"
    expected = model.sample(prompt, 200, top_k=1)
    # the test needs no luck: along Python's greedy path the best logit leads the next by far more than rounding
    state, gaps = model.initial_state(), []
    logits, state = model.step(None, state)
    for x in model.encode(prompt + expected):
        logits, state = model.step(x, state)
        gaps.append(float(torch.topk(logits.double(), 2).values.diff().abs()))
    assert min(gaps[len(prompt) - 1 : -1]) > 1e-3
    open_page(driver, out)
    driver.find_element(By.CSS_SELECTOR, 'nav button[data-view="sampler"]').click()
    for field, value in (("prompt", prompt), ("top-k", "1"), ("length", "200")):
        element = driver.find_element(By.ID, field)
        element.clear()
        element.send_keys(value)
    driver.find_element(By.ID, "generate").click()
    WebDriverWait(driver, 60).until(lambda d: d.execute_script("return !!seqlab.state.lastSample"))
    assert driver.execute_script("return seqlab.state.lastSample.text") == expected
    assert driver.find_element(By.ID, "output").text.replace("\n", "") == (prompt + expected).replace("\n", "")


def test_clicking_a_saturation_point_selects_its_unit(driver, lstm_page):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    _, out = lstm_page
    open_page(driver, out)
    driver.find_element(By.TAG_NAME, "body").send_keys("3")  # the saturation view, by its key
    assert driver.execute_script("return seqlab.state.view") == "saturation"
    sat = driver.execute_script("return seqlab.data.units.saturation['1:o']")
    size, pad = driver.execute_script("return [SCATTER, PAD]")
    points = np.array(
        [[pad + l * (size - 8), size - r * (size - 8)] for l, r in zip(sat["left"], sat["right"], strict=True)]
    )
    distance = np.linalg.norm(points[:, None] - points[None], axis=-1) + np.eye(len(points)) * 1e9
    unit = int(np.argmax(distance.min(1)))  # the most isolated point: one click cannot mean another unit
    canvas = driver.find_element(By.CSS_SELECTOR, 'canvas[data-key="1:o"]')
    # the offsets count from the centre of what is visible: show all of it
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", canvas)
    x, y = points[unit] - canvas.size["width"] / 2
    ActionChains(driver).move_to_element_with_offset(canvas, int(round(x)), int(round(y))).click().perform()
    assert driver.execute_script(
        "return [seqlab.state.view, seqlab.state.layer, seqlab.state.quantity, seqlab.state.unit]"
    ) == ["units", 1, "o", unit]
    # the keyboard walks the text
    text = driver.find_element(By.ID, "text")
    driver.execute_script("seqlab.select(10)")
    text.send_keys("\ue014\ue014")  # arrow right twice
    assert driver.execute_script("return seqlab.state.selected") == 12
    assert "Character 13 of" in driver.find_element(By.ID, "char-box").text
