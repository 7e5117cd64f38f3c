"""Window arithmetic: counts, positions, padding, and the rules as properties."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wavegan_tf.audio import slicing


def test_hop_length_follows_overlap():
    assert slicing.hop_length(256) == 256
    assert slicing.hop_length(256, 0.5) == 128
    assert slicing.hop_length(256, 0.75) == 64
    assert slicing.hop_length(4, 0.99) == 1


@pytest.mark.parametrize("ratio", [-0.1, 1.0, 1.5])
def test_overlap_ratio_outside_unit_interval_is_refused(ratio):
    with pytest.raises(ValueError, match=r"overlap_ratio.*" + str(ratio)):
        slicing.hop_length(256, ratio)


@pytest.mark.parametrize("slice_len", [0, -4, 2.5])
def test_bad_slice_len_is_refused(slice_len):
    with pytest.raises(ValueError, match="slice_len"):
        slicing.hop_length(slice_len)


def test_whole_windows_drop_the_tail():
    np.testing.assert_array_equal(slicing.window_starts(1000, 256), [0, 256, 512])
    np.testing.assert_array_equal(slicing.window_starts(1000, 256, offset=100), [100, 356, 612])
    np.testing.assert_array_equal(slicing.window_starts(1000, 256, offset=250), [250, 506])


def test_pad_end_keeps_the_last_partial_window():
    np.testing.assert_array_equal(slicing.window_starts(1000, 256, pad_end=True),
                                  [0, 256, 512, 768])
    np.testing.assert_array_equal(slicing.window_starts(1024, 256, pad_end=True),
                                  [0, 256, 512, 768])


def test_overlap_gives_windows_every_hop():
    np.testing.assert_array_equal(slicing.window_starts(512, 256, overlap_ratio=0.5),
                                  [0, 128, 256])
    np.testing.assert_array_equal(slicing.window_starts(600, 256, 0.5, pad_end=True),
                                  [0, 128, 256, 384])


def test_first_slice_is_one_window_at_zero():
    np.testing.assert_array_equal(slicing.window_starts(5000, 256, first_slice=True), [0])
    np.testing.assert_array_equal(slicing.window_starts(5000, 256, first_slice=True, offset=7),
                                  [0])


def test_short_file_is_one_padded_window():
    assert list(slicing.window_starts(100, 256)) == [0]
    windows = slicing.extract_windows(np.arange(1, 101, dtype=np.float32), 256)
    assert windows.shape == (1, 256)
    np.testing.assert_array_equal(windows[0, :100], np.arange(1, 101))
    np.testing.assert_array_equal(windows[0, 100:], 0)


def test_offset_never_passes_the_first_whole_window():
    assert int(slicing.max_offset(300, 256, 256)) == 45
    assert int(slicing.max_offset(100, 256, 256)) == 1
    assert int(slicing.max_offset(5000, 256, 128)) == 128
    with pytest.raises(ValueError, match="offset"):
        slicing.window_starts(300, 256, offset=45)


def test_multichannel_windows_keep_channels():
    signal = np.stack([np.arange(600), -np.arange(600)], axis=1).astype(np.float32)
    windows = slicing.extract_windows(signal, 256, pad_end=True)
    assert windows.shape == (3, 256, 2)
    np.testing.assert_array_equal(windows[1, :, 1], -np.arange(256, 512))


def test_table_of_many_files_matches_single_file_rule():
    lengths = np.array([100, 1000, 2000, 256])
    offsets = np.array([0, 100, 255, 0])
    file_index, local, valid = slicing.window_table(lengths, 256, 256, True, False, offsets)
    for f, n in enumerate(lengths):
        expected = slicing.window_starts(n, 256, pad_end=True, offset=offsets[f])
        np.testing.assert_array_equal(local[file_index == f], expected)
        np.testing.assert_array_equal(valid[file_index == f], np.minimum(256, n - expected))


settings_cases = dict(
    n=st.integers(1, 5000), slice_len=st.integers(1, 700),
    overlap=st.floats(0.0, 0.95), pad_end=st.booleans(), first_slice=st.booleans(),
    offset_share=st.floats(0.0, 0.999))


@settings(max_examples=150, deadline=None)
@given(**settings_cases)
def test_windows_lie_inside_padded_signal_and_count_matches_formula(
        n, slice_len, overlap, pad_end, first_slice, offset_share):
    hop = slicing.hop_length(slice_len, overlap)
    offset = int(offset_share * int(slicing.max_offset(n, slice_len, hop)))
    starts = slicing.window_starts(n, slice_len, overlap, pad_end, first_slice, offset)
    padded = slicing.padded_length(n, slice_len, starts)
    assert len(starts) == int(slicing.num_windows(n, slice_len, hop, pad_end, first_slice,
                                                  offset))
    assert len(starts) >= 1
    assert np.all(starts >= 0) and np.all(starts + slice_len <= padded)
    assert np.all(starts < n)
    np.testing.assert_array_equal(np.diff(starts), hop)
    if not pad_end and n >= slice_len and not first_slice:
        assert np.all(starts + slice_len <= n)
        assert starts[-1] + hop + slice_len > n  # no further whole window was left out
    if pad_end and not first_slice:
        assert starts[-1] + slice_len >= n
        assert len(starts) == 1 or starts[-2] + slice_len < n


@settings(max_examples=100, deadline=None)
@given(**settings_cases)
def test_no_sample_is_invented(n, slice_len, overlap, pad_end, first_slice, offset_share):
    hop = slicing.hop_length(slice_len, overlap)
    offset = int(offset_share * int(slicing.max_offset(n, slice_len, hop)))
    signal = np.random.default_rng(n).uniform(0.1, 1.0, n).astype(np.float32)
    windows = slicing.extract_windows(signal, slice_len, overlap, pad_end, first_slice, offset)
    starts = slicing.window_starts(n, slice_len, overlap, pad_end, first_slice, offset)
    for window, start in zip(windows, starts):
        inside = signal[start:start + slice_len]
        np.testing.assert_array_equal(window[:len(inside)], inside)
        np.testing.assert_array_equal(window[len(inside):], 0)


@settings(max_examples=100, deadline=None)
@given(lengths=st.lists(st.integers(1, 3000), min_size=1, max_size=8),
       slice_len=st.integers(1, 500), overlap=st.floats(0.0, 0.9), pad_end=st.booleans(),
       first_slice=st.booleans(), seed=st.integers(0, 1000))
def test_table_agrees_with_per_file_starts(lengths, slice_len, overlap, pad_end, first_slice,
                                           seed):
    hop = slicing.hop_length(slice_len, overlap)
    limits = slicing.max_offset(lengths, slice_len, hop)
    offsets = (np.random.default_rng(seed).random(len(lengths)) * limits).astype(np.int64)
    file_index, local, valid = slicing.window_table(lengths, slice_len, hop, pad_end,
                                                    first_slice, offsets)
    for f, n in enumerate(lengths):
        expected = slicing.window_starts(n, slice_len, overlap, pad_end, first_slice, offsets[f])
        np.testing.assert_array_equal(local[file_index == f], expected)
    assert np.all((valid >= 1) & (valid <= slice_len))


@settings(max_examples=150, deadline=None)
@given(**settings_cases, channels=st.integers(1, 3))
def test_count_matches_the_documented_formula_and_padding_stays_within_one_window(
        n, slice_len, overlap, pad_end, first_slice, offset_share, channels):
    # The module doc's rule, written out independently of num_windows.
    hop = max(1, int(round(slice_len * (1.0 - overlap))))
    offset = int(offset_share * max(1, min(hop, n - slice_len + 1)))
    m = n - (0 if first_slice else offset)
    if first_slice or n < slice_len:
        expected = 1
    elif pad_end:
        expected = 1 + -(-(m - slice_len) // hop)
    else:
        expected = 1 + (m - slice_len) // hop
    signal = np.random.default_rng(n).uniform(0.1, 1.0, (n, channels)).astype(np.float32)
    windows = slicing.extract_windows(signal, slice_len, overlap, pad_end, first_slice, offset)
    assert windows.shape == (expected, slice_len, channels)
    starts = slicing.window_starts(n, slice_len, overlap, pad_end, first_slice, offset)
    padded = slicing.pad_signal(signal, slice_len, starts)
    assert 0 <= len(padded) - n < slice_len  # never more zeros than one window can hold
    np.testing.assert_array_equal(padded[:n], signal)
    assert not padded[n:].any()
    # Every sample of a window is a sample of the signal at the same place, or a pad zero.
    for window, start in zip(windows, starts):
        assert 0 <= start and start + slice_len <= len(padded)
        np.testing.assert_array_equal(window, padded[start:start + slice_len])
