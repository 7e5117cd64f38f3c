"""The drum machine page's kept sounds and sequencer patterns, and JSON z files for --z_in.

Kept pads and a saved pattern live in the browser's localStorage under the site's model; kept
sounds export as a JSON z file that ``generate.py --z_in`` reads (and ``--web --z_in`` puts
on the pads), patterns as a pattern file the page imports. Both tiny models' sites are served
from one origin, so that they share a localStorage, as pages opened from disk do; each test
starts from an empty one. The browser and helpers are those of ``test_web_export``.
"""

import json
import os
import re
import time

import numpy as np
import pytest
import soundfile
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from wavegan_tf.cli import generate_wavs
from wavegan_tf.nets import latent
from wavegan_tf.serving import export, web_export

from support import make_loud_train_dir, run_generate_main
from test_web_export import (  # noqa: F401 -- browser and serve are fixtures used here
    LATENT_DIM, SEED, TOLERANCE, browser, call, open_page, saved_model_audio, serve)

CLASSES = ["kick", "snare", "hat"]


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    return export.export_generator(make_loud_train_dir(tmp_path_factory.mktemp("keep_run")))


@pytest.fixture(scope="module")
def cond_export_dir(tmp_path_factory):
    return export.export_generator(
        make_loud_train_dir(tmp_path_factory.mktemp("keep_cond_run"), class_names=CLASSES))


@pytest.fixture(scope="module")
def sites(export_dir, cond_export_dir, serve, tmp_path_factory):
    """The URLs of the unconditional ("plain") and conditional ("cond") sites, one origin."""
    root = tmp_path_factory.mktemp("keep_sites")
    web_export.export_web(export_dir, str(root / "plain"), seed=SEED)
    web_export.export_web(cond_export_dir, str(root / "cond"), seed=SEED)
    url = serve(str(root))
    return {"plain": url + "plain/", "cond": url + "cond/", "root": str(root)}


@pytest.fixture
def fresh(browser, sites):
    """open(name) opens that site with nothing stored; storage is emptied again afterwards."""
    def open_fresh(name):
        open_page(browser, sites[name])
        browser.execute_script("localStorage.clear()")
        open_page(browser, sites[name])
        return browser
    yield open_fresh
    browser.execute_script("localStorage.clear()")


def _keep_button(browser, index):
    return browser.find_elements(By.CSS_SELECTOR, ".pad-keep")[index]


def _press_keep(browser, index):
    """Presses pad ``index``'s Keep from the keyboard (Tab-reachable: focus, Enter)."""
    button = _keep_button(browser, index)
    browser.execute_script("arguments[0].focus()", button)
    button.send_keys(Keys.ENTER)


def _download_to(browser, folder):
    """Makes the browser save downloads into ``folder``."""
    browser.execute_cdp_cmd("Page.setDownloadBehavior",
                            {"behavior": "allow", "downloadPath": str(folder)})


def _downloaded(path):
    """The text of the downloaded file ``path`` once the browser has finished writing it."""
    deadline = time.monotonic() + 10
    while not os.path.isfile(path):
        assert time.monotonic() < deadline, f"nothing was downloaded to {path}"
        time.sleep(0.05)
    time.sleep(0.2)
    with open(path, encoding="utf-8") as f:
        return f.read()


def _read_wavs(paths):
    return np.stack([soundfile.read(p, dtype="float32")[0] for p in paths])


# -- kept pads --------------------------------------------------------------------------------

def test_a_kept_pad_comes_back_bit_for_bit_after_a_reload(fresh, sites):
    browser = fresh("plain")
    button = _keep_button(browser, 2)
    assert button.get_attribute("aria-label") == "keep pad 3"
    assert button.get_attribute("aria-pressed") == "false"
    assert not browser.find_element(By.ID, "kept-export").is_enabled()
    call(browser, "window.wavegan.newSound(2)")
    z = call(browser, "window.wavegan.padZ(2)")
    audio = call(browser, "window.wavegan.padAudio(2)")
    _press_keep(browser, 2)
    assert button.get_attribute("aria-pressed") == "true" and button.text == "Kept"
    assert browser.find_element(By.ID, "kept-count").text == "1 of 8 pads kept."
    open_page(browser, sites["plain"])
    assert call(browser, "window.wavegan.padZ(2)") == z, "the kept z changed on the reload"
    assert call(browser, "window.wavegan.padAudio(2)") == audio
    assert call(browser, "window.wavegan.kept()") == [2]
    assert _keep_button(browser, 2).get_attribute("aria-pressed") == "true"
    seeded = latent.sample_z(web_export.NUM_PADS, LATENT_DIM, SEED)
    np.testing.assert_allclose(call(browser, "window.wavegan.padZ(1)"), seeded[1], atol=1e-7)
    # Keep again releases it: the next visit starts from the seed's z.
    _press_keep(browser, 2)
    open_page(browser, sites["plain"])
    assert call(browser, "window.wavegan.kept()") == []
    np.testing.assert_allclose(call(browser, "window.wavegan.padZ(2)"), seeded[2], atol=1e-7)


def test_a_new_sound_on_a_kept_pad_releases_it(fresh):
    browser = fresh("plain")
    _press_keep(browser, 0)
    _press_keep(browser, 4)
    call(browser, "window.wavegan.newSound(4)")
    assert call(browser, "window.wavegan.kept()") == [0]
    call(browser, "window.wavegan.mixPads(0, 1, 2, 0.5)")
    assert call(browser, "window.wavegan.kept()") == []
    assert call(browser, "window.wavegan.keptFile()") is None
    assert browser.find_element(By.ID, "kept-count").text == "No pad is kept."


def test_another_models_page_does_not_take_the_kept_pads(fresh, sites):
    browser = fresh("plain")
    _press_keep(browser, 0)
    open_page(browser, sites["cond"])
    assert call(browser, "window.wavegan.kept()") == []
    open_page(browser, sites["plain"])
    assert call(browser, "window.wavegan.kept()") == [0]


def test_exported_kept_sounds_give_the_pads_audio_through_generate_py(fresh, export_dir,
                                                                       tmp_path):
    browser = fresh("plain")
    call(browser, "window.wavegan.newSound(1)")
    call(browser, "window.wavegan.mixPads(6, 1, 3, 0.3)")
    for index in (6, 1):
        _press_keep(browser, index)
    _download_to(browser, tmp_path)
    browser.find_element(By.ID, "kept-export").click()
    text = _downloaded(tmp_path / "wavegan_kept.json")
    assert text == call(browser, "window.wavegan.keptFile()")
    document = json.loads(text)
    assert (document["format"], document["version"], document["latent_dim"]) == (
        "wavegan_tf.z", 1, LATENT_DIM)
    assert "labels" not in document
    assert document["z"] == [call(browser, "window.wavegan.padZ(1)"),
                             call(browser, "window.wavegan.padZ(6)")]
    out = tmp_path / "out"
    assert run_generate_main("--model", export_dir, "--z_in", str(tmp_path / "wavegan_kept.json"),
                             "--out_dir", str(out)) == 0
    clips = _read_wavs([out / "wavegan_0000.wav", out / "wavegan_0001.wav"])
    for clip, index in zip(clips, (1, 6)):
        page_audio = np.asarray(call(browser, "window.wavegan.padAudio(args[0])", index))
        assert np.abs(clip - page_audio).max() <= TOLERANCE


def test_a_site_rebuilt_from_kept_sounds_shows_each_once_kept_on_the_files_pads(
        fresh, sites, export_dir, tmp_path):
    browser = fresh("plain")
    for index in (2, 6):
        call(browser, "window.wavegan.newSound(args[0])", index)
        _press_keep(browser, index)
    kept_z = [call(browser, "window.wavegan.padZ(args[0])", i) for i in (2, 6)]
    path = tmp_path / "kept.json"
    path.write_text(call(browser, "window.wavegan.keptFile()"))
    rebuilt = os.path.join(sites["root"], "rebuilt")
    web_export.export_web(export_dir, rebuilt, seed=5, z_in=str(path))
    open_page(browser, sites["plain"].replace("plain/", "rebuilt/"))
    assert call(browser, "window.wavegan.kept()") == [0, 1]
    assert [call(browser, "window.wavegan.padZ(args[0])", i) for i in (0, 1)] == kept_z
    seeded = latent.sample_z(web_export.NUM_PADS, LATENT_DIM, 5)
    for index in (2, 6):
        np.testing.assert_array_equal(call(browser, "window.wavegan.padZ(args[0])", index),
                                      seeded[index])
    assert browser.find_element(By.ID, "kept-count").text == "2 of 8 pads kept."


def test_a_conditional_pads_kept_label_comes_back_and_goes_to_generate_py(
        fresh, sites, cond_export_dir, tmp_path):
    browser = fresh("cond")
    Select(browser.find_elements(By.CSS_SELECTOR, ".pad select")[3]).select_by_visible_text(
        "hat")
    deadline = time.monotonic() + 20
    while call(browser, "window.wavegan.padLabel(3)") != 2:
        assert time.monotonic() < deadline, "the label menu did not set the pad's label"
        time.sleep(0.05)
    expected = saved_model_audio(cond_export_dir,
                                 np.asarray([call(browser, "window.wavegan.padZ(3)")]), [2])
    while np.abs(np.asarray(call(browser, "window.wavegan.padAudio(3)")) - expected[0, :, 0]
                 ).max() > TOLERANCE:
        assert time.monotonic() < deadline, "the pad was not generated for its new label"
        time.sleep(0.1)
    _press_keep(browser, 3)
    _press_keep(browser, 1)
    open_page(browser, sites["cond"])
    assert call(browser, "window.wavegan.padLabel(3)") == 2
    assert Select(browser.find_elements(By.CSS_SELECTOR, ".pad select")[3]
                  ).first_selected_option.text == "hat"
    document = json.loads(call(browser, "window.wavegan.keptFile()"))
    assert document["labels"] == ["snare", "hat"]
    path = tmp_path / "kept.json"
    path.write_text(json.dumps(document))
    out = tmp_path / "out"
    assert run_generate_main("--model", cond_export_dir, "--z_in", str(path),
                             "--out_dir", str(out)) == 0
    clips = _read_wavs([out / "wavegan_0000.wav", out / "wavegan_0001.wav"])
    for clip, index in zip(clips, (1, 3)):
        page_audio = np.asarray(call(browser, "window.wavegan.padAudio(args[0])", index))
        assert np.abs(clip - page_audio).max() <= TOLERANCE


# -- generate.py --web --z_in -----------------------------------------------------------------

def _z_json(path, z, labels=None, latent_dim=LATENT_DIM):
    document = {"format": "wavegan_tf.z", "version": 1, "latent_dim": latent_dim,
                "z": np.asarray(z, np.float32).tolist()}
    if labels is not None:
        document["labels"] = labels
    path.write_text(json.dumps(document))
    return str(path)


def test_web_z_in_puts_the_files_z_on_the_first_pads(browser, serve, export_dir, tmp_path):
    z = np.random.default_rng(8).uniform(-1, 1, (3, LATENT_DIM)).astype(np.float32)
    site = str(tmp_path / "site")
    assert run_generate_main("--model", export_dir, "--web", site, "--seed", "4",
                             "--z_in", _z_json(tmp_path / "z.json", z)) == 0
    with open(os.path.join(site, web_export.MANIFEST_FILENAME), encoding="utf-8") as f:
        pads = json.load(f)["pads"]
    assert pads["z_file"] == "z.json"
    seeded = latent.sample_z(web_export.NUM_PADS, LATENT_DIM, 4)
    manifest_z = np.asarray([pad["z"] for pad in pads["pads"]], np.float32)
    np.testing.assert_array_equal(manifest_z[:3], z)
    np.testing.assert_array_equal(manifest_z[3:], seeded[3:])
    open_page(browser, serve(site))
    assert call(browser, "window.wavegan.padZ(1)") == z[1].tolist()
    audio = np.asarray(call(browser, "window.wavegan.padAudio(1)"))
    assert np.abs(audio - saved_model_audio(export_dir, z)[1, :, 0]).max() <= TOLERANCE


def test_web_z_in_takes_a_npy_and_the_files_labels(cond_export_dir, export_dir, tmp_path):
    z = latent.sample_z(2, LATENT_DIM, 9)
    np.save(tmp_path / "z.npy", z)
    manifest = web_export.site_manifest(
        *_keras(export_dir), seed=0, source=export_dir, z_in=str(tmp_path / "z.npy"))[0]
    np.testing.assert_array_equal([p["z"] for p in manifest["pads"]["pads"][:2]], z)
    path = _z_json(tmp_path / "labelled.json", z, labels=["hat", 1])
    manifest = web_export.site_manifest(*_keras(cond_export_dir), seed=0, source=cond_export_dir,
                                        z_in=path)[0]
    assert [p["label"] for p in manifest["pads"]["pads"]] == [2, 1, 2, 0, 1, 2, 0, 1]


def _keras(model):
    """``(config, generator, step)`` of ``model``, as export_web loads them."""
    return export.load_keras_generator(model)


@pytest.mark.parametrize("rows, latent_dim, labels, message", [
    (3, 5, None, r"z file '.*z\.json' must have shape \[n >= 1, latent_dim=8\], got \(3, 5\)"),
    (9, LATENT_DIM, None, r"z file '.*z\.json' holds 9 z, more than the page's 8 pads"),
    (2, LATENT_DIM, ["kick", "kick"],
     r"z file '.*z\.json' names labels, but model .* is unconditional"),
])
def test_web_z_in_that_does_not_fit_is_refused_naming_the_file(export_dir, tmp_path, capsys,
                                                               rows, latent_dim, labels,
                                                               message):
    path = _z_json(tmp_path / "z.json", np.zeros((rows, latent_dim)), labels, latent_dim)
    site = tmp_path / "site"
    assert run_generate_main("--model", export_dir, "--web", str(site), "--z_in", path) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and re.fullmatch("error: " + message + ".*", error[0]), error
    assert not site.exists()


def test_tflite_still_refuses_z_in(export_dir, tmp_path, capsys):
    path = _z_json(tmp_path / "z.json", np.zeros((1, LATENT_DIM)))
    assert run_generate_main("--model", export_dir, "--tflite", str(tmp_path / "g.tflite"),
                             "--z_in", path) == 1
    assert "--z_in shape WAV output and are not used with --tflite" in capsys.readouterr().err


# -- JSON z files in generate.py --------------------------------------------------------------

@pytest.mark.parametrize("content, message", [
    ("{", "cannot read z file {path} as JSON: Expecting property name"),
    ('{"format": "wavegan_tf.z", "version": 1, "latent_dim": 8, "z": [[NaN]]}',
     "cannot read z file {path} as JSON: NaN is not a finite number"),
    ("[1, 2]", "z file {path} is not a wavegan_tf.z JSON file: it must be an object"),
    ('{"format": "npy"}', "z file {path} is not a wavegan_tf.z JSON file: format must be "
                          "'wavegan_tf.z', got 'npy'"),
    ('{"format": "wavegan_tf.z", "version": 2}',
     "version 2 is not supported (this wavegan_tf reads version 1)"),
    ('{"format": "wavegan_tf.z", "version": 1, "latent_dim": 8, "z": []}',
     "z must be a list of n >= 1 rows, got []"),
    ('{"format": "wavegan_tf.z", "version": 1, "latent_dim": 2, "z": [[1, "a"]]}',
     "z[0] must hold finite numbers, got 'a'"),
    ('{"format": "wavegan_tf.z", "version": 1, "latent_dim": 2, "z": [[1, 2]], '
     '"labels": [1, 2]}', "labels must be a list of 1 class names or indices"),
])
def test_a_malformed_json_z_file_is_one_error_naming_it(export_dir, tmp_path, content,
                                                        message):
    path = tmp_path / "z.json"
    path.write_text(content)
    with pytest.raises(ValueError) as err:
        generate_wavs.run_generation(export_dir, str(tmp_path / "out"), z_in=str(path))
    assert message.format(path=repr(str(path))) in str(err.value)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "out").exists()


def test_json_z_labels_give_each_clip_its_class_unless_label_is_given(cond_export_dir,
                                                                      tmp_path):
    z = latent.sample_z(3, LATENT_DIM, 2)
    path = _z_json(tmp_path / "z.json", z, labels=["hat", 0, "snare"])
    written = generate_wavs.run_generation(cond_export_dir, str(tmp_path / "a"), z_in=path)
    expected = saved_model_audio(cond_export_dir, z, [2, 0, 1])[..., 0]
    assert np.abs(_read_wavs(written) - expected).max() <= 1 / 16384
    written = generate_wavs.run_generation(cond_export_dir, str(tmp_path / "b"), z_in=path,
                                           label="kick")
    expected = saved_model_audio(cond_export_dir, z, [0, 0, 0])[..., 0]
    assert np.abs(_read_wavs(written) - expected).max() <= 1 / 16384
    bad = _z_json(tmp_path / "bad.json", z, labels=["hat", "clap", 0])
    with pytest.raises(ValueError, match=re.escape(f"z file {bad!r}: unknown label 'clap'")):
        generate_wavs.run_generation(cond_export_dir, str(tmp_path / "c"), z_in=bad)
    # --label overrides the file's labels, an unknown one among them too.
    written = generate_wavs.run_generation(cond_export_dir, str(tmp_path / "d"), z_in=bad,
                                           label="snare")
    expected = saved_model_audio(cond_export_dir, z, [1, 1, 1])[..., 0]
    assert np.abs(_read_wavs(written) - expected).max() <= 1 / 16384


# -- sequencer patterns -----------------------------------------------------------------------

def _grid(browser):
    return call(browser, "window.wavegan.patternFile().grid")


def _set_pattern(browser, steps, tempo, swing):
    """Clears the grid, clicks ``steps`` ((row, step) pairs) and sets tempo and swing."""
    browser.find_element(By.ID, "seq-clear").click()
    buttons = browser.find_elements(By.CSS_SELECTOR, "#seq-grid button")
    for row, step in steps:
        buttons[row * 16 + step].click()
    field = browser.find_element(By.ID, "seq-tempo")
    field.click()
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(str(tempo), Keys.TAB)
    browser.execute_script(
        "const e = document.getElementById('seq-swing'); e.value = arguments[0];"
        "e.dispatchEvent(new Event('input', {bubbles: true}));", str(swing))


def test_a_saved_pattern_comes_back_after_a_reload(fresh, sites):
    browser = fresh("plain")
    default = _grid(browser)
    assert default[0] == "x...x...x...x..." and default[3] == "." * 16
    _set_pattern(browser, [(0, 0), (3, 5), (7, 15)], 150, 0.6)
    grid = _grid(browser)
    assert grid[3] == "....." + "x" + "." * 10
    browser.find_element(By.ID, "seq-save").click()
    message = browser.find_element(By.ID, "seq-message")
    assert message.is_displayed() and "saved" in message.text
    open_page(browser, sites["plain"])
    assert _grid(browser) == grid
    assert call(browser, "window.wavegan.tempo()") == 150
    assert call(browser, "window.wavegan.swing()") == pytest.approx(0.6)
    assert browser.find_element(By.ID, "seq-tempo").get_attribute("value") == "150"
    assert browser.find_element(By.ID, "seq-swing-value").text == "0.60"
    on = browser.execute_script("return Array.from(document.querySelectorAll('#seq-grid button'))"
                                ".map((b) => b.classList.contains('on'))")
    assert on == [c == "x" for row in grid for c in row]


def test_an_exported_pattern_imports_and_a_bad_file_shows_a_message(fresh, tmp_path):
    browser = fresh("plain")
    _set_pattern(browser, [(1, 2), (6, 9)], 90, 0.7)
    _download_to(browser, tmp_path)
    browser.find_element(By.ID, "seq-export").click()
    exported = json.loads(_downloaded(tmp_path / "wavegan_pattern.json"))
    assert exported == call(browser, "window.wavegan.patternFile()")
    assert exported["format"] == "wavegan_tf.pattern" and exported["tempo"] == 90
    browser.find_element(By.ID, "seq-clear").click()
    tempo = browser.find_element(By.ID, "seq-tempo")
    tempo.send_keys(Keys.CONTROL, "a")
    tempo.send_keys("200", Keys.TAB)
    chooser = browser.find_element(By.ID, "seq-import")
    chooser.send_keys(str(tmp_path / "wavegan_pattern.json"))
    message = browser.find_element(By.ID, "seq-message")
    deadline = time.monotonic() + 5
    while _grid(browser) != exported["grid"]:
        assert time.monotonic() < deadline, "the imported pattern was not taken"
        time.sleep(0.05)
    assert call(browser, "window.wavegan.tempo()") == 90
    assert "Imported the pattern of wavegan_pattern.json" in message.text
    bad = {
        "not_json.json": "{grid",
        "other.json": json.dumps({"format": "wavegan_tf.z", "version": 1}),
        "short.json": json.dumps(dict(exported, grid=exported["grid"][:3])),
        "fast.json": json.dumps(dict(exported, tempo=1000)),
    }
    reasons = {"not_json.json": "it is not JSON", "other.json": "its format is not",
               "short.json": "its grid must be 8 rows of 16 steps",
               "fast.json": "its tempo must be a number from 30 to 300 BPM"}
    for name, content in bad.items():
        (tmp_path / name).write_text(content)
        chooser.send_keys(str(tmp_path / name))
        deadline = time.monotonic() + 5
        while name not in message.text:
            assert time.monotonic() < deadline, f"no message for {name}"
            time.sleep(0.05)
        assert message.text.startswith(f"Cannot import {name}: {reasons[name]}"), message.text
        assert message.text.endswith("the pattern is unchanged.")
        assert "error" in message.get_attribute("class")
        assert _grid(browser) == exported["grid"]
        assert call(browser, "window.wavegan.tempo()") == 90
        assert call(browser, "window.wavegan.status") == "ready"
