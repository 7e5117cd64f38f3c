"""The drum machine page's morph pad: a square whose corners are four pads, whose point plays the
clip of the bilinear mix of the corners' z, generated as fast as the page's G allows.

The browser and helpers are those of ``test_web_export``; the tiny models are those of
``test_web_keep`` (an unconditional one and a conditional one of three classes). Last, a run
of ``bench/morph_pad.py`` on a tiny G checks what the benchmark prints.
"""

import re
import time

import numpy as np
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from support import run_bench
from test_web_export import (  # noqa: F401 -- browser and serve are fixtures used here
    TOLERANCE, browser, call, open_page, saved_model_audio, serve)
from test_web_keep import (  # noqa: F401 -- the tiny models' sites, fixtures used here
    CLASSES, cond_export_dir, export_dir, sites)

# The square's corners (x, y) in the order of their weights: a (top left), b, c, d.
CORNERS = [(0, 0), (1, 0), (0, 1), (1, 1)]
# The same z through the same page's G: the same audio, up to this.
SAME_AUDIO = 1e-5


@pytest.fixture
def plain(browser, sites):
    """The unconditional model's page, opened afresh (corners 1-4, the point in the middle)."""
    open_page(browser, sites["plain"])
    return browser


def _morph_at(browser, x, y):
    """What morphAt(x, y) resolves with, its audio as a list (None when it was replaced)."""
    return call(browser, "window.wavegan.morphAt(args[0], args[1]).then((m) => m && "
                         "Object.assign({}, m, {audio: Array.from(m.audio)}))", x, y)


def _generated(browser):
    return [(g["x"], g["y"]) for g in call(browser, "window.wavegan.morphGenerated()")]


def _wait_generated(browser, position, what):
    """Waits until the latest generated position is ``position`` (within 1e-9)."""
    deadline = time.monotonic() + 20
    while True:
        generated = _generated(browser)
        if generated and np.allclose(generated[-1], position, atol=1e-9):
            return
        assert time.monotonic() < deadline, f"{what}: generated {generated[-3:]}"
        time.sleep(0.05)


def _pad_z(browser, index):
    return np.asarray(call(browser, "window.wavegan.padZ(args[0])", index), np.float32)


def test_each_corner_of_the_morph_pad_is_that_corners_pad(plain):
    assert call(plain, "window.wavegan.morphCorners()") == [0, 1, 2, 3]
    for corner, (x, y) in enumerate(CORNERS):
        morph = _morph_at(plain, x, y)
        assert morph["z"] == call(plain, "window.wavegan.padZ(args[0])", corner), (x, y)
        pad_audio = np.asarray(call(plain, "window.wavegan.padAudio(args[0])", corner))
        assert np.abs(np.asarray(morph["audio"]) - pad_audio).max() <= SAME_AUDIO, (x, y)
    # Each corner's menu picks its pad (here the top right one takes pad 6).
    menu = plain.find_element(By.ID, "morph-corner-1")
    assert menu.find_element(By.XPATH, "..").text.startswith("Top right")
    Select(menu).select_by_visible_text("6")
    assert call(plain, "window.wavegan.morphCorners()") == [0, 5, 2, 3]
    assert call(plain, "window.wavegan.morphZ(1, 0).z") == call(plain, "window.wavegan.padZ(5)")


def test_the_morph_z_is_the_bilinear_mix_and_the_centre_the_average(plain, export_dir):
    corners = np.stack([_pad_z(plain, i) for i in range(4)]).astype(np.float64)
    centre = np.asarray(call(plain, "window.wavegan.morphZ(0.5, 0.5).z"), np.float32)
    np.testing.assert_allclose(centre, corners.mean(axis=0).astype(np.float32), rtol=0, atol=1e-7)
    x, y = 0.3, 0.8
    weights = np.array([(1 - x) * (1 - y), x * (1 - y), (1 - x) * y, x * y])
    morph = _morph_at(plain, x, y)
    np.testing.assert_allclose(morph["z"], (weights @ corners).astype(np.float32), rtol=0,
                               atol=1e-7)
    assert morph["label"] is None and morph["milliseconds"] >= 0
    expected = saved_model_audio(export_dir, np.asarray([morph["z"]], np.float32))[0, :, 0]
    assert np.abs(np.asarray(morph["audio"]) - expected).max() <= TOLERANCE


def test_dragging_on_the_square_generates_and_plays_the_sound_under_the_pointer(plain):
    square = plain.find_element(By.ID, "morph-square")
    assert square.get_attribute("aria-label") == "morph pad"
    plain.execute_script("arguments[0].scrollIntoView({block: 'center'})", square)
    size = square.size["width"]
    assert square.size["height"] == size >= 200
    plays = call(plain, "window.wavegan.morphPlays")
    count = len(_generated(plain))
    # From the middle, a quarter of the way right and down: the point ends at (0.75, 0.75).
    (ActionChains(plain).move_to_element(square).click_and_hold()
     .move_by_offset(size // 8, size // 8).move_by_offset(size // 8, size // 8).release()
     .perform())
    deadline = time.monotonic() + 20
    while not np.allclose(_generated(plain)[-1:] or [(0, 0)], [(0.75, 0.75)], atol=0.02):
        assert time.monotonic() < deadline, f"the drag generated {_generated(plain)[count:]}"
        time.sleep(0.05)
    assert np.allclose(call(plain, "window.wavegan.morphPosition()"), [0.75, 0.75], atol=0.02)
    assert len(_generated(plain)) > count
    assert call(plain, "window.wavegan.morphPlays") > plays
    assert not plain.find_element(By.ID, "morph-put").get_attribute("disabled")


def test_only_the_newest_position_waits_while_a_generation_runs(plain):
    _morph_at(plain, 0.5, 0.5)
    before = len(_generated(plain))
    # Four positions asked for at once: the first starts G, the next two are replaced while it
    # runs, and the last is generated when it ends.
    positions = [[0.1, 0.1], [0.2, 0.2], [0.3, 0.3], [0.9, 0.8]]
    results = call(plain, "Promise.all(args[0].map(([x, y]) => window.wavegan.morphAt(x, y)))"
                          ".then((all) => all.map((m) => m && [m.x, m.y]))", positions)
    assert results == [[0.1, 0.1], None, None, [0.9, 0.8]]
    assert _generated(plain)[before:] == [(0.1, 0.1), (0.9, 0.8)]
    assert call(plain, "window.wavegan.morphPosition()") == [0.9, 0.8]


def test_arrow_keys_move_the_point_and_enter_or_space_plays_it_again(plain):
    _morph_at(plain, 0.5, 0.5)
    square = plain.find_element(By.ID, "morph-square")
    plain.execute_script("arguments[0].focus()", square)
    (ActionChains(plain).send_keys(Keys.ARROW_RIGHT, Keys.ARROW_RIGHT, Keys.ARROW_DOWN)
     .key_down(Keys.SHIFT).send_keys(Keys.ARROW_LEFT).key_up(Keys.SHIFT).perform())
    _wait_generated(plain, (0.59, 0.55), "the arrow keys")
    assert call(plain, "window.wavegan.morphPosition()") == [0.59, 0.55]
    assert square.get_attribute("aria-valuetext") == "x 0.59, y 0.55"
    _morph_at(plain, 1, 0)
    ActionChains(plain).send_keys(Keys.ARROW_RIGHT, Keys.ARROW_UP).perform()
    _wait_generated(plain, (1, 0), "an arrow key at the edge")
    plays = call(plain, "window.wavegan.morphPlays")
    for key in (Keys.ENTER, Keys.SPACE):
        ActionChains(plain).send_keys(key).perform()
    time.sleep(0.3)
    assert call(plain, "window.wavegan.morphPlays") == plays + 2
    assert not call(plain, "window.wavegan.playing()"), "Space on the square started the sequencer"


def test_put_on_pad_gives_a_pad_the_morph_sound_and_releases_its_keep(plain):
    keep = plain.find_elements(By.CSS_SELECTOR, ".pad-keep")[6]
    keep.click()
    assert call(plain, "window.wavegan.kept()") == [6]
    morph = _morph_at(plain, 0.3, 0.6)
    Select(plain.find_element(By.ID, "morph-target")).select_by_visible_text("7")
    plain.find_element(By.ID, "morph-put").click()
    assert call(plain, "window.wavegan.padZ(6)") == morph["z"]
    assert call(plain, "window.wavegan.padAudio(6)") == morph["audio"]
    assert call(plain, "window.wavegan.kept()") == []
    plain.execute_script("localStorage.clear()")


def test_a_conditional_morph_takes_the_label_of_the_nearest_corner(browser, sites,
                                                                    cond_export_dir):
    open_page(browser, sites["cond"])
    labels = [call(browser, "window.wavegan.padLabel(args[0])", i) for i in range(4)]
    assert labels == [0, 1, 2, 0]
    for (x, y), corner in [((0.2, 0.3), 0), ((0.8, 0.1), 1), ((0.1, 0.9), 2),
                           ((0.6, 0.7), 3), ((0.5, 0.5), 0)]:
        assert call(browser, "window.wavegan.morphZ(args[0], args[1]).label", x, y) == \
            labels[corner], (x, y)
    morph = _morph_at(browser, 0.8, 0.1)
    assert morph["label"] == 1
    expected = saved_model_audio(cond_export_dir, np.asarray([morph["z"]], np.float32), [1])
    assert np.abs(np.asarray(morph["audio"]) - expected[0, :, 0]).max() <= TOLERANCE
    square = browser.find_element(By.ID, "morph-square")
    assert square.get_attribute("aria-valuetext") == "x 0.80, y 0.10, label snare"


def test_the_morph_pad_bench_prints_ms_per_generation_and_generations_per_second():
    result = run_bench("morph_pad.py", "--model_dims", "2", "--generations", "2", timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert re.fullmatch(r"d=2 cpu: 2 morph generations, median \d+ ms each \(G \d+ ms; "
                        r"min \d+, max \d+\), [\d.]+ generations/s", lines[-2]), lines
    values = dict(pair.split("=") for pair in lines[-1].split())
    assert set(values) == {"ms_d2", "g_ms_d2", "per_s_d2"}
    assert 0 <= int(values["g_ms_d2"]) <= int(values["ms_d2"])
    assert float(values["per_s_d2"]) > 0


def test_the_morph_pad_bench_has_only_its_own_flags_and_refuses_an_unknown_backend():
    helped = run_bench("morph_pad.py", "--helpfull", timeout=120)  # absl exits 1 after help
    assert "bench/morph_pad.py:" in helped.stdout, helped.stderr
    for flag in ("--model_dims", "--backend", "--generations", "--timeout_s"):
        assert flag in helped.stdout, flag
    for flag in ("--model_dim:", "--backends", "--clips"):
        assert flag not in helped.stdout, flag
    refused = run_bench("morph_pad.py", "--backend", "wasm", timeout=120)
    assert refused.returncode != 0
    assert "--backend" in refused.stderr and "cpu" in refused.stderr, refused.stderr
