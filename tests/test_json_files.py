"""The settings and metadata readers name the file they cannot read."""

import os
import re

import pytest

from wavegan_tf.training.config import CONFIG_FILENAME, GANConfig
from wavegan_tf.files.json_files import read_json
from wavegan_tf.training.settings import OPTIONS_FILENAME, TrainingOptions


def test_read_json_returns_the_contents(tmp_path):
    path = tmp_path / "a.json"
    path.write_text('{"step": 3}', encoding="utf-8")
    assert read_json(str(path)) == {"step": 3}


def test_a_file_that_is_not_json_is_named_with_what_it_should_hold(tmp_path):
    path = tmp_path / "a.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match=r"^cannot read run facts '.*a\.json': Expecting"):
        read_json(str(path), "run facts")
    with pytest.raises(ValueError, match=r"^cannot read '.*a\.json': Expecting"):
        read_json(str(path))


def test_a_damaged_config_or_options_file_is_named(tmp_path):
    (tmp_path / CONFIG_FILENAME).write_text("[1,", encoding="utf-8")
    (tmp_path / OPTIONS_FILENAME).write_text("{\"seed\": }", encoding="utf-8")
    config_path = re.escape(repr(os.path.join(str(tmp_path), CONFIG_FILENAME)))
    with pytest.raises(ValueError, match=f"^cannot read run configuration {config_path}: "):
        GANConfig.load(str(tmp_path))
    options_path = re.escape(repr(os.path.join(str(tmp_path), OPTIONS_FILENAME)))
    with pytest.raises(ValueError, match=f"^cannot read training options {options_path}: "):
        TrainingOptions.load(str(tmp_path))


def test_a_file_that_is_not_text_is_named(tmp_path):
    path = tmp_path / "a.json"
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ValueError, match=r"^cannot read training options '.*a\.json': 'utf-8' "):
        read_json(str(path), "training options")
