"""generate.py --web and wavegan_tf.serving.web_export: the drum machine page, checked in Chromium.

The page is exported from a tiny model, served from a local HTTP server and opened in Debian's
headless Chromium through chromedriver (Selenium with the explicit driver path: nothing is
downloaded). The audio the page computes with TensorFlow.js must equal the SavedModel's.
The screenshot of the page is kept in ``test-artifacts/`` of the repository.
"""

import base64
import functools
import http.server
import io
import json
import os
import re
import shutil
import sys
import threading
import time

import numpy as np
import pytest
import soundfile
import tensorflow as tf
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from wavegan_tf.nets import latent
from wavegan_tf.serving import export, web_export
from wavegan_tf.training.settings import TrainingOptions
from wavegan_tf.version import __version__

from support import make_loud_train_dir, run_generate_main

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARTIFACTS_DIR = os.path.join(REPO_ROOT, "test-artifacts")
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
LATENT_DIM = 8
SAMPLE_RATE = 8000
SEED = 3
CLASSES = ["kick", "snare", "hat"]
# The bound on |page audio - SavedModel audio| in float32.
TOLERANCE = 1e-3


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def serve(tmp_path_factory):
    """serve(folder) -> the URL of a local HTTP server for that folder (stopped at the end)."""
    servers = []

    def start(folder):
        server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=folder))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}/"
    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1200,900",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium_profile')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_script_timeout(60)
    yield driver
    driver.quit()


def open_page(browser, url, query=""):
    """Loads the page and waits until its pads are generated; returns the backend it used."""
    browser.get(url + "index.html" + query)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = browser.execute_script(
            "return window.wavegan && [window.wavegan.status, window.wavegan.error]")
        if status and status[0] != "loading":
            assert status == ["ready", None], status
            return browser.execute_script("return window.wavegan.backend()")
        time.sleep(0.1)
    raise AssertionError("the page did not finish generating its pads within 60 s")


def call(browser, expression, *args):
    """Awaits the JS ``expression`` (using ``args[i]``) in the page; returns its JSON value."""
    result = browser.execute_async_script(
        "const done = arguments[arguments.length - 1]; const args = arguments;"
        f"Promise.resolve().then(() => {expression})"
        ".then((v) => done({value: v instanceof Float32Array || v instanceof Uint8Array ? "
        "Array.from(v) : v}), (e) => done({error: String(e)}));", *args)
    assert "error" not in result, result["error"]
    return result["value"]


def saved_model_audio(export_dir, z, label=None):
    serve_fn = tf.saved_model.load(export_dir).signatures["serving_default"]
    inputs = {"z": tf.constant(z, tf.float32)}
    if label is not None:
        inputs["label"] = tf.constant(label, tf.int32)
    return serve_fn(**inputs)["audio"].numpy()


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    return export.export_generator(make_loud_train_dir(tmp_path_factory.mktemp("run")))


@pytest.fixture(scope="module")
def site(export_dir, tmp_path_factory):
    return web_export.export_web(export_dir, str(tmp_path_factory.mktemp("web") / "site"),
                                 seed=SEED)


@pytest.fixture(scope="module")
def page(browser, serve, site):
    """The browser with the unconditional model's page open."""
    backend = open_page(browser, serve(site))
    return browser, backend


# -- in the browser --------------------------------------------------------------------------

def test_page_audio_for_a_fixed_z_equals_the_savedmodel(page, export_dir):
    browser, backend = page
    assert backend == "cpu", "without a GPU the page should take the CPU backend"
    z = np.random.default_rng(11).uniform(-1, 1, (1, LATENT_DIM)).astype(np.float32)
    expected = saved_model_audio(export_dir, z)[0, :, 0]
    audio = np.asarray(call(browser, "window.wavegan.generate(args[0])", z[0].tolist()),
                       np.float32)
    assert audio.shape == expected.shape == (16384,)
    assert np.abs(expected).max() > 0.3, "the test model should not be nearly silent"
    error = float(np.abs(audio - expected).max())
    print(f"backend={backend} max_abs_err={error:.2e}")
    assert error <= TOLERANCE


def test_pads_play_the_clips_of_generate_py_seed(page, export_dir):
    browser, _ = page
    z = latent.sample_z(web_export.NUM_PADS, LATENT_DIM, SEED)
    expected = saved_model_audio(export_dir, z)[..., 0]
    for index in (0, 7):
        np.testing.assert_allclose(call(browser, "window.wavegan.padZ(args[0])", index),
                                   z[index], atol=1e-7)
        audio = np.asarray(call(browser, "window.wavegan.padAudio(args[0])", index))
        assert np.abs(audio - expected[index]).max() <= TOLERANCE


def test_screenshot_shows_the_pads_and_is_kept(page):
    browser, _ = page
    os.makedirs(ARTIFACTS_DIR, exist_ok=True)
    path = os.path.join(ARTIFACTS_DIR, "web_drum_machine.png")
    assert browser.save_screenshot(path)
    pixels = tf.io.decode_png(tf.io.read_file(path), channels=3).numpy()
    assert pixels.shape[0] >= 400 and pixels.shape[1] >= 800
    colours = np.unique(pixels.reshape(-1, 3), axis=0)
    assert len(colours) > 20 and pixels.std() > 20, "the screenshot looks blank"
    assert len(browser.find_elements(By.CSS_SELECTOR, ".pad canvas")) == 8


def test_shift_key_draws_a_new_sound_and_key_plays_it(page):
    browser, _ = page
    before_z = call(browser, "window.wavegan.padZ(2)")
    before = call(browser, "window.wavegan.padAudio(2)")
    browser.find_element(By.TAG_NAME, "body").click()
    ActionChains(browser).key_down(Keys.SHIFT).send_keys("3").key_up(Keys.SHIFT).perform()
    deadline = time.monotonic() + 20
    while call(browser, "window.wavegan.padZ(2)") == before_z:
        assert time.monotonic() < deadline, "Shift+3 did not draw a new z for pad 3"
        time.sleep(0.1)
    time.sleep(0.5)
    assert call(browser, "window.wavegan.padAudio(2)") != before
    assert re.search(r"Generated 1 clip in \d+ ms",
                     browser.find_element(By.ID, "gen-time").text)
    ActionChains(browser).send_keys("3").perform()
    assert call(browser, "window.wavegan.play(2)") is None
    assert browser.execute_script("return window.wavegan.lastGenerationMs") >= 0


def test_interpolated_pad_is_generated_from_the_mixed_z(page, export_dir):
    browser, _ = page
    za = np.asarray(call(browser, "window.wavegan.padZ(0)"), np.float32)
    zb = np.asarray(call(browser, "window.wavegan.padZ(1)"), np.float32)
    call(browser, "window.wavegan.mixPads(5, 0, 1, 0.25)")
    mixed = 0.75 * za + 0.25 * zb
    np.testing.assert_allclose(call(browser, "window.wavegan.padZ(5)"), mixed, atol=1e-6)
    audio = np.asarray(call(browser, "window.wavegan.padAudio(5)"))
    assert np.abs(audio - saved_model_audio(export_dir, mixed[None])[0, :, 0]).max() <= TOLERANCE


def test_saved_wav_holds_the_pad_audio(page):
    browser, _ = page
    data = bytes(call(browser, "window.wavegan.wav(4)"))
    audio, rate = soundfile.read(io.BytesIO(data), dtype="float32")
    assert rate == SAMPLE_RATE and soundfile.info(io.BytesIO(data)).subtype == "PCM_16"
    expected = np.asarray(call(browser, "window.wavegan.padAudio(4)"), np.float32)
    assert np.abs(audio - expected).max() <= 0.5 / 32768


def test_sequencer_plays_in_a_loop_at_the_set_tempo(page):
    browser, _ = page
    tempo = browser.find_element(By.ID, "seq-tempo")
    tempo.clear()
    tempo.send_keys("240")
    browser.find_element(By.ID, "seq-play").click()
    time.sleep(1.2)
    current = browser.execute_script(
        "return Array.from(document.querySelectorAll('#seq-grid tr:first-child td'))"
        ".findIndex((c) => c.classList.contains('current'))")
    browser.find_element(By.ID, "seq-play").click()
    # 240 BPM in 16th notes: 16 steps per second, so about 19 steps, around the loop once.
    assert browser.find_element(By.ID, "seq-play").text == "Play"
    assert 1 <= current <= 16


def _current_steps(browser):
    """How many sequencer cells are lit as the current step."""
    return browser.execute_script(
        "return document.querySelectorAll('#seq-grid td.current').length")


def _wait_playing(browser, playing):
    """Waits up to 5 s until the sequencer is (or is not) playing."""
    deadline = time.monotonic() + 5
    while browser.find_element(By.ID, "seq-play").text != ("Stop" if playing else "Play"):
        assert time.monotonic() < deadline, f"the sequencer did not turn playing={playing}"
        time.sleep(0.05)


def test_space_starts_and_stops_the_sequencer_except_while_typing(page):
    browser, _ = page
    browser.find_element(By.TAG_NAME, "h1").click()
    ActionChains(browser).send_keys(Keys.SPACE).perform()
    _wait_playing(browser, True)
    time.sleep(0.4)
    assert _current_steps(browser) == 8, "a playing sequencer lights its current step"
    ActionChains(browser).send_keys(Keys.SPACE).perform()
    _wait_playing(browser, False)
    assert _current_steps(browser) == 0, "the step highlight stays lit after Stop"
    # A focused button takes Space once, not as a second toggle by its click.
    browser.execute_script("document.querySelector('.pad .row button').focus()")
    ActionChains(browser).send_keys(Keys.SPACE).perform()
    _wait_playing(browser, True)
    time.sleep(0.3)
    assert browser.find_element(By.ID, "seq-play").text == "Stop"
    ActionChains(browser).send_keys(Keys.SPACE).perform()
    _wait_playing(browser, False)
    tempo = browser.find_element(By.ID, "seq-tempo")
    tempo.click()
    ActionChains(browser).send_keys(Keys.SPACE).perform()
    time.sleep(0.3)
    assert browser.find_element(By.ID, "seq-play").text == "Play"


def _type_tempo(browser, text):
    """Types ``text`` into the tempo field and leaves it (which commits it)."""
    tempo = browser.find_element(By.ID, "seq-tempo")
    tempo.click()
    tempo.send_keys(Keys.CONTROL, "a")
    tempo.send_keys(text, Keys.TAB)


def test_tempo_shows_its_limits_and_refuses_an_out_of_range_value(page):
    browser, _ = page
    tempo = browser.find_element(By.ID, "seq-tempo")
    assert (tempo.get_attribute("min"), tempo.get_attribute("max")) == ("30", "300")
    assert browser.find_element(By.ID, "seq-tempo-limits").text == "30-300 BPM"
    error = browser.find_element(By.ID, "seq-tempo-error")
    _type_tempo(browser, "200")
    assert call(browser, "window.wavegan.tempo()") == 200 and not error.is_displayed()
    for refused in ("1000", "20", "fast"):
        _type_tempo(browser, refused)
        assert call(browser, "window.wavegan.tempo()") == 200, f"{refused} was taken"
        assert error.is_displayed()
        assert "from 30 to 300 BPM" in error.text and "keeps 200 BPM" in error.text
        assert tempo.get_attribute("aria-invalid") == "true"
    _type_tempo(browser, "120")
    assert call(browser, "window.wavegan.tempo()") == 120 and not error.is_displayed()



def _set_slider(browser, element_id, value):
    """Moves the range input ``element_id`` to ``value`` as a drag would (an input event)."""
    browser.execute_script(
        "const e = document.getElementById(arguments[0]); e.value = arguments[1];"
        "e.dispatchEvent(new Event('input', {bubbles: true}));", element_id, str(value))


def test_volume_slider_sets_the_output_gain(page):
    browser, _ = page
    call(browser, "window.wavegan.play(0)")
    assert browser.find_element(By.ID, "volume-value").text == "0.80"
    assert call(browser, "window.wavegan.outputGain()") == pytest.approx(0.8)
    for volume in (0.3, 0.0, 1.0, 0.8):
        _set_slider(browser, "volume", volume)
        assert call(browser, "window.wavegan.outputGain()") == pytest.approx(volume)
        assert browser.find_element(By.ID, "volume-value").text == f"{volume:.2f}"


def _rendered(browser):
    """Pad 1 played once through the page's output, rendered offline: channel 0."""
    return np.asarray(call(browser, "window.wavegan.renderPad(0).then((c) => Array.from(c[0]))"),
                      np.float32)


def test_reverb_zero_is_dry_and_reverb_adds_a_tail(page):
    browser, _ = page
    clip = np.asarray(call(browser, "window.wavegan.padAudio(0)"), np.float32)
    try:
        _set_slider(browser, "volume", 1)
        _set_slider(browser, "reverb", 0)
        dry = _rendered(browser)
        assert len(dry) == len(clip) + int(1.5 * SAMPLE_RATE)
        np.testing.assert_allclose(dry[:len(clip)], clip, atol=1e-6)
        assert np.abs(dry[len(clip):]).max() == 0
        _set_slider(browser, "volume", 0.5)
        np.testing.assert_allclose(_rendered(browser)[:len(clip)], 0.5 * clip, atol=1e-6)
        _set_slider(browser, "volume", 1)
        _set_slider(browser, "reverb", 0.6)
        assert browser.find_element(By.ID, "reverb-value").text == "0.60"
        wet = _rendered(browser)
        assert np.abs(wet[:len(clip)] - clip).max() > 0.05, "reverb did not change the sound"
        tail = np.sqrt(np.mean(wet[len(clip):len(clip) + SAMPLE_RATE // 4] ** 2))
        assert tail > 1e-3, "reverb left no tail after the clip"
        assert np.array_equal(_rendered(browser), wet), "the impulse should be fixed"
    finally:
        _set_slider(browser, "reverb", 0)
        _set_slider(browser, "volume", 0.8)


def _scheduled_at_swing(browser, swing):
    """Plays the sequencer about a second at ``swing``; returns the steps it scheduled."""
    _set_slider(browser, "seq-swing", swing)
    browser.find_element(By.ID, "seq-play").click()
    _wait_playing(browser, True)
    time.sleep(1.0)
    browser.find_element(By.ID, "seq-play").click()
    _wait_playing(browser, False)
    return call(browser, "window.wavegan.scheduledSteps()")


def test_swing_delays_the_off_beat_steps_by_the_set_fraction(page):
    browser, _ = page
    swing = browser.find_element(By.ID, "seq-swing")
    assert (swing.get_attribute("min"), swing.get_attribute("max")) == ("0.5", "0.8")
    assert browser.find_element(By.ID, "seq-swing-limits").text == "0.50-0.80"
    _type_tempo(browser, "120")
    assert call(browser, "window.wavegan.tempo()") == 120
    pair = 2 * 60 / 120 / 4
    for fraction in (0.5, 0.7, 0.8):
        steps = _scheduled_at_swing(browser, fraction)
        assert call(browser, "window.wavegan.swing()") == fraction
        assert browser.find_element(By.ID, "seq-swing-value").text == f"{fraction:.2f}"
        assert [s["step"] for s in steps[:6]] == [0, 1, 2, 3, 4, 5]
        assert len(steps) >= 6
        for before, after in zip(steps, steps[1:]):
            gap = after["time"] - before["time"]
            expected = fraction * pair if before["step"] % 2 == 0 else (1 - fraction) * pair
            assert gap == pytest.approx(expected, abs=1e-9), (before, after)
    _set_slider(browser, "seq-swing", 0.5)



def test_phone_width_does_not_overflow_sideways(page):
    browser, _ = page
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": False})
    try:
        time.sleep(0.3)
        widths = browser.execute_script(
            "const e = document.documentElement;"
            "return [window.innerWidth, e.clientWidth, e.scrollWidth];")
        assert widths[0] == 390, widths
        assert widths[2] <= widths[1], f"the page overflows sideways at 390 px: {widths}"
        right = browser.execute_script(
            "return Math.max(...Array.from(document.querySelectorAll("
            "'.pad, #morph-square, .morph-corners, #morph select, #morph button'))"
            ".map((p) => p.getBoundingClientRect().right))")
        assert right <= widths[1]
        square = browser.find_element(By.ID, "morph-square").size
        assert square["width"] == square["height"] >= 200, square
        os.makedirs(ARTIFACTS_DIR, exist_ok=True)
        assert browser.save_screenshot(os.path.join(ARTIFACTS_DIR, "web_drum_machine_390px.png"))
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_tab_reaches_every_pad_in_order(page):
    browser, _ = page
    browser.find_element(By.TAG_NAME, "h1").click()
    reached = []
    for _ in range(80):
        ActionChains(browser).send_keys(Keys.TAB).perform()
        focus = browser.execute_script(
            "const e = document.activeElement;"
            "return e.classList.contains('pad-play') ? [e.tagName, Number(e.dataset.pad)] : null")
        if focus:
            assert focus[0] == "BUTTON"
            reached.append(focus[1])
        if len(reached) == 8:
            break
    assert reached == list(range(8)), reached


def test_enter_and_space_on_a_focused_pad_play_it_and_leave_the_sequencer(page):
    browser, _ = page
    browser.execute_script("document.querySelectorAll('.pad-play')[3].focus()")
    assert not call(browser, "window.wavegan.playing()")
    for key in (Keys.ENTER, Keys.SPACE):
        plays = browser.execute_script("return window.wavegan.plays")
        ActionChains(browser).send_keys(key).perform()
        time.sleep(0.3)
        assert browser.execute_script("return window.wavegan.plays") == plays + 1, key
        assert not call(browser, "window.wavegan.playing()"), "the pad's key toggled the sequencer"
    assert browser.find_element(By.ID, "seq-play").text == "Play"
    browser.find_element(By.TAG_NAME, "h1").click()
    ActionChains(browser).send_keys(Keys.SPACE).perform()
    _wait_playing(browser, True)
    ActionChains(browser).send_keys(Keys.SPACE).perform()
    _wait_playing(browser, False)


def test_page_names_the_model_its_data_version_and_docs(browser, serve, tmp_path_factory):
    run = make_loud_train_dir(tmp_path_factory.mktemp("named_run"))
    TrainingOptions(data_dir=str(tmp_path_factory.mktemp("data") / "my_kicks")).save(run)
    site = web_export.export_web(run, str(tmp_path_factory.mktemp("named") / "site"))
    open_page(browser, serve(site))
    facts = browser.find_element(By.ID, "facts").text
    assert facts == (f"WaveGAN d=2, 16384 samples at {SAMPLE_RATE} Hz (2.05 s), z of "
                     f"{LATENT_DIM} values, trained 7 steps on my_kicks, wavegan_tf "
                     f"{__version__}."), facts
    link = browser.find_element(By.ID, "docs-link")
    assert link.is_displayed() and link.get_attribute("href") == web_export.DOCS_URL
    with open(os.path.join(site, web_export.MANIFEST_FILENAME), encoding="utf-8") as f:
        manifest = json.load(f)
    assert (manifest["model"], manifest["model_dim"], manifest["data"]) == (
        "wavegan", 2, "my_kicks")


def test_an_export_names_its_runs_data_and_an_unknown_folder_none(export_dir, tmp_path):
    assert web_export.training_data_name(export_dir) == "demo_drums"
    assert web_export.training_data_name(str(tmp_path)) is None


def test_an_older_manifest_still_loads_and_shows_what_it_holds(browser, serve, site,
                                                               tmp_path):
    old_site = str(tmp_path / "old_site")
    shutil.copytree(site, old_site)
    path = os.path.join(old_site, web_export.MANIFEST_FILENAME)
    with open(path, encoding="utf-8") as f:
        manifest = json.load(f)
    for key in ("model", "model_dim", "data", "docs_url", "wavegan_tf_version"):
        del manifest[key]
    with open(path, "w", encoding="utf-8") as f:
        json.dump(manifest, f)
    open_page(browser, serve(old_site))
    assert browser.find_element(By.ID, "facts").text == (
        f"16384 samples at {SAMPLE_RATE} Hz (2.05 s), z of {LATENT_DIM} values, "
        "trained 7 steps.")
    assert not browser.find_element(By.ID, "docs-link").is_displayed()


def test_page_loads_nothing_from_outside_the_site(page):
    browser, _ = page
    urls = browser.execute_script(
        "return performance.getEntriesByType('resource').map((e) => e.name)")
    origin = browser.execute_script("return location.origin")
    assert any(url.endswith("weights.bin") for url in urls)
    assert all(url.startswith(origin) for url in urls), urls


def test_page_opened_from_disk_loads_and_a_pad_plays(browser, site, export_dir):
    assert open_page(browser, f"file://{site}/") == "cpu"
    assert browser.execute_script("return location.protocol") == "file:"
    z = latent.sample_z(web_export.NUM_PADS, LATENT_DIM, SEED)
    np.testing.assert_allclose(call(browser, "window.wavegan.padZ(1)"), z[1], atol=1e-7)
    audio = np.asarray(call(browser, "window.wavegan.padAudio(1)"), np.float32)
    assert np.abs(audio - saved_model_audio(export_dir, z)[1, :, 0]).max() <= TOLERANCE
    plays = browser.execute_script("return window.wavegan.plays")
    browser.find_elements(By.CSS_SELECTOR, ".pad canvas")[1].click()
    assert browser.execute_script("return window.wavegan.plays") == plays + 1
    deadline = time.monotonic() + 5
    while call(browser, "window.wavegan.audioState()") != "running":
        assert time.monotonic() < deadline, "the pad's audio did not start"
        time.sleep(0.05)
    assert browser.execute_script(
        "return Array.from(document.scripts).map((s) => s.getAttribute('src'))"
        ".filter((src) => /^(manifest|weights)\\./.test(src))") == ["manifest.js", "weights.js"]


def test_page_from_disk_without_its_weights_names_its_folder_and_hides_controls(
        browser, site, tmp_path):
    broken = str(tmp_path / "broken site")
    shutil.copytree(site, broken)
    os.remove(os.path.join(broken, web_export.WEIGHTS_SCRIPT))
    browser.get(f"file://{broken}/index.html")
    deadline = time.monotonic() + 30
    while browser.execute_script("return window.wavegan && window.wavegan.status") != "error":
        assert time.monotonic() < deadline, "the page did not report the missing weights"
        time.sleep(0.1)
    error = browser.find_element(By.ID, "error")
    assert error.is_displayed()
    assert "weights.js" in error.text and f"--web {broken} --overwrite" in error.text
    assert "SITE" not in error.text
    assert not browser.find_element(By.TAG_NAME, "main").is_displayed()


def test_served_page_without_its_weights_names_its_address(browser, serve, site, tmp_path):
    broken = str(tmp_path / "served_broken")
    shutil.copytree(site, broken)
    os.remove(os.path.join(broken, web_export.WEIGHTS_FILENAME))
    url = serve(broken)
    browser.get(url + "index.html")
    deadline = time.monotonic() + 30
    while browser.execute_script("return window.wavegan && window.wavegan.status") != "error":
        assert time.monotonic() < deadline, "the page did not report the missing weights"
        time.sleep(0.1)
    error = browser.find_element(By.ID, "error").text
    assert "weights.bin: HTTP 404" in error and f"beside it at {url})" in error, error
    assert "--web" not in error
    assert not browser.find_element(By.TAG_NAME, "main").is_displayed()


def test_conditional_page_has_label_menus_and_matches_the_savedmodel(
        browser, serve, tmp_path_factory):
    export_dir = export.export_generator(
        make_loud_train_dir(tmp_path_factory.mktemp("cond_run"), class_names=CLASSES))
    site = web_export.export_web(export_dir, str(tmp_path_factory.mktemp("cond") / "site"))
    open_page(browser, serve(site))
    menus = browser.find_elements(By.CSS_SELECTOR, ".pad select")
    assert len(menus) == 8
    assert [o.text for o in menus[0].find_elements(By.TAG_NAME, "option")] == CLASSES
    z = np.random.default_rng(5).uniform(-1, 1, (1, LATENT_DIM)).astype(np.float32)
    for label in (0, 2):
        expected = saved_model_audio(export_dir, z, [label])[0, :, 0]
        audio = np.asarray(call(browser, "window.wavegan.generate(args[0], args[1])",
                                z[0].tolist(), label))
        assert np.abs(audio - expected).max() <= TOLERANCE
    assert call(browser, "window.wavegan.manifest.class_names") == CLASSES
    pad_z = np.asarray([call(browser, "window.wavegan.padZ(0)")], np.float32)
    expected = saved_model_audio(export_dir, pad_z, [2])[0, :, 0]
    Select(menus[0]).select_by_visible_text("hat")
    deadline = time.monotonic() + 20
    while np.abs(np.asarray(call(browser, "window.wavegan.padAudio(0)")) - expected).max() \
            > TOLERANCE:
        assert time.monotonic() < deadline, "choosing a label did not regenerate the pad"
        time.sleep(0.1)


def test_webgl_backend_and_other_layers_match_the_savedmodel(browser, serve,
                                                            tmp_path_factory):
    """Nearest-neighbour upsampling, batch norm and an even-length post-processing filter,
    computed by the TensorFlow.js WebGL backend (chosen with ?backend=webgl: without a GPU the
    page takes the CPU backend by default)."""
    export_dir = export.export_generator(make_loud_train_dir(
        tmp_path_factory.mktemp("ablation_run"), upsample="nearest", batchnorm=True,
        post_proc_filt_len=8))
    site = web_export.export_web(export_dir, str(tmp_path_factory.mktemp("abl") / "site"))
    assert open_page(browser, serve(site), "?backend=webgl") == "webgl"
    z = np.random.default_rng(6).uniform(-1, 1, (1, LATENT_DIM)).astype(np.float32)
    expected = saved_model_audio(export_dir, z)[0, :, 0]
    audio = np.asarray(call(browser, "window.wavegan.generate(args[0])", z[0].tolist()))
    assert np.abs(expected).max() > 0.3
    assert np.abs(audio - expected).max() <= TOLERANCE


# -- the exported folder and bad input -------------------------------------------------------

def test_site_holds_page_runtime_weights_and_manifest(site, export_dir):
    names = sorted(os.listdir(site))
    assert names == sorted(list(web_export.PAGE_FILES) + [
        web_export.MANIFEST_FILENAME, web_export.WEIGHTS_FILENAME, web_export.VENDOR_SUBDIR,
        web_export.MANIFEST_SCRIPT, web_export.WEIGHTS_SCRIPT])
    assert sorted(os.listdir(os.path.join(site, "vendor"))) == sorted(
        os.path.basename(p) for p in web_export.RUNTIME_FILES)
    with open(os.path.join(site, web_export.MANIFEST_FILENAME), encoding="utf-8") as f:
        manifest = json.load(f)
    assert (manifest["sample_rate"], manifest["latent_dim"], manifest["slice_len"],
            manifest["num_channels"], manifest["step"], manifest["class_names"]) == (
        SAMPLE_RATE, LATENT_DIM, 16384, 1, 7, None)
    generator = tf.keras.models.load_model(os.path.join(export_dir, "generator.keras"))
    size = sum(int(np.prod(w.shape)) for w in generator.weights) * 4
    assert os.path.getsize(os.path.join(site, web_export.WEIGHTS_FILENAME)) == size
    with open(os.path.join(site, web_export.MANIFEST_SCRIPT), encoding="ascii") as f:
        script = f.read()
    assert script.startswith("window.WAVEGAN_MANIFEST = ") and script.endswith(";\n")
    assert json.loads(script[len("window.WAVEGAN_MANIFEST = "):-2]) == manifest
    with open(os.path.join(site, web_export.WEIGHTS_SCRIPT), encoding="ascii") as f:
        script = f.read()
    assert script.startswith('window.WAVEGAN_WEIGHTS = "') and script.endswith('";\n')
    with open(os.path.join(site, web_export.WEIGHTS_FILENAME), "rb") as f:
        assert base64.b64decode(script[len('window.WAVEGAN_WEIGHTS = "'):-3]) == f.read()
    with open(os.path.join(site, "index.html"), encoding="utf-8") as f:
        html = f.read()
    for src in re.findall(r'src="([^"]+)"', html):
        assert os.path.isfile(os.path.join(site, src)), src


@pytest.mark.parametrize("layer, message", [
    (tf.keras.layers.LeakyReLU(name="odd"),
     "layer 'odd' (LeakyReLU) of the generator has no browser implementation"),
    (tf.keras.layers.ReLU(max_value=1.0, name="odd"),
     "layer 'odd' has max_value=1.0, which the browser runtime does not support"),
    (tf.keras.layers.Dense(3, activation="softplus", name="odd"),
     "layer 'odd' has activation='softplus'"),
])
def test_unsupported_layer_or_setting_is_named(layer, message):
    z = tf.keras.Input((4,), name="z")
    model = tf.keras.Model(z, layer(tf.keras.layers.Dense(3)(z)))
    with pytest.raises(ValueError, match=re.escape(message)):
        web_export.layer_graph(model)


def test_folder_that_is_neither_model_is_rejected_and_nothing_written(tmp_path):
    (tmp_path / "model").mkdir()
    with pytest.raises(ValueError, match="neither a training directory .* nor a WaveGAN export"):
        web_export.export_web(str(tmp_path / "model"), str(tmp_path / "site"))
    assert sorted(os.listdir(tmp_path)) == ["model"]


def test_non_empty_output_needs_overwrite(export_dir, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match=re.escape(f"{str(site)!r} is not empty; pass "
                                                        "--overwrite")):
        web_export.export_web(export_dir, str(site))
    assert os.listdir(site) == ["notes.txt"]
    web_export.export_web(export_dir, str(site), overwrite=True)
    assert "index.html" in os.listdir(site) and "notes.txt" not in os.listdir(site)
    assert not [n for n in os.listdir(tmp_path) if ".tmp-" in n or ".old-" in n]


def test_unwritable_output_is_named(export_dir, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    site = str(blocker / "site")
    with pytest.raises(OSError, match=re.escape(f"cannot write to output directory "
                                                f"{str(blocker)!r}")):
        web_export.export_web(export_dir, site)


def test_failure_while_writing_leaves_nothing_half_written(export_dir, tmp_path, monkeypatch):
    site = tmp_path / "site"
    web_export.export_web(export_dir, str(site))
    before = sorted(os.listdir(site))

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(web_export.json, "dump", fail)
    with pytest.raises(OSError, match="No space left"):
        web_export.export_web(export_dir, str(site), overwrite=True)
    assert sorted(os.listdir(site)) == before
    assert not [n for n in os.listdir(tmp_path) if ".tmp-" in n or ".old-" in n]


def test_missing_runtime_says_to_run_npm_ci(export_dir, tmp_path):
    web_dir = tmp_path / "web"
    (web_dir / "page").mkdir(parents=True)
    for name in web_export.PAGE_FILES:
        (web_dir / "page" / name).write_text("")
    with pytest.raises(FileNotFoundError, match=re.escape(f"run `npm ci` in {web_dir}")):
        web_export.export_web(export_dir, str(tmp_path / "site"), web_dir=str(web_dir))
    assert not os.path.exists(tmp_path / "site")


def test_cli_writes_the_site_from_the_seed(export_dir, tmp_path, capsys):
    site = str(tmp_path / "site")
    assert run_generate_main("--model", export_dir, "--web", site, "--seed", "4") == 0
    out = capsys.readouterr().out
    assert f"open {os.path.join(site, 'index.html')} in a browser" in out
    assert f"python -m http.server -d {site}" in out
    with open(os.path.join(site, web_export.MANIFEST_FILENAME), encoding="utf-8") as f:
        pads = json.load(f)["pads"]
    np.testing.assert_allclose([pad["z"] for pad in pads["pads"]],
                               latent.sample_z(8, LATENT_DIM, 4), atol=1e-7)
    assert run_generate_main("--model", export_dir, "--web", site, "--n", "3") == 1
    assert "error: --n shape WAV output and are not used with --web" in capsys.readouterr().err
