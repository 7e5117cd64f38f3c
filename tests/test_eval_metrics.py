"""Tests of the evaluation metrics on synthetic numbers with known answers."""

import numpy as np
import pytest

from wavegan_tf.eval import metrics
from wavegan_tf.eval.features import LogMelSpectrogram

SAMPLE_RATE = 16000


def one_hot(labels, k):
    return np.eye(k)[labels]


class TestInceptionScore:
    def test_confident_uniform_classifier_scores_number_of_classes(self):
        probs = one_hot(np.tile(np.arange(10), 100), 10)
        mean, std = metrics.inception_score(probs, splits=10)
        assert mean == pytest.approx(10.0, rel=1e-6)
        assert std == pytest.approx(0.0, abs=1e-9)

    def test_constant_prediction_scores_one(self):
        probs = np.tile([0.7, 0.2, 0.1], (500, 1))
        mean, _ = metrics.inception_score(probs, splits=5)
        assert mean == pytest.approx(1.0, abs=1e-9)

    def test_uniform_probabilities_score_one(self):
        mean, _ = metrics.inception_score(np.full((100, 4), 0.25), splits=4)
        assert mean == pytest.approx(1.0, abs=1e-9)

    def test_one_class_only_scores_one_even_when_confident(self):
        mean, _ = metrics.inception_score(one_hot(np.zeros(50, int), 5), splits=5)
        assert mean == pytest.approx(1.0, abs=1e-6)

    def test_random_probabilities_lie_between_one_and_k(self):
        rng = np.random.default_rng(0)
        logits = rng.normal(size=(1000, 7)) * 3
        probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        mean, std = metrics.inception_score(probs, splits=10)
        assert 1.0 < mean < 7.0
        assert std > 0

    def test_half_the_classes_used_confidently_scores_half(self):
        probs = one_hot(np.tile([0, 1, 2, 3, 4], 40), 10)
        mean, _ = metrics.inception_score(probs, splits=4)
        assert mean == pytest.approx(5.0, rel=1e-6)

    @pytest.mark.parametrize("splits", [0, 11, 2.5])
    def test_bad_splits_are_rejected_with_their_value(self, splits):
        with pytest.raises(ValueError, match=f"splits={splits!r}"):
            metrics.inception_score(np.full((10, 2), 0.5), splits=splits)

    def test_rows_that_are_not_probabilities_are_rejected(self):
        with pytest.raises(ValueError, match="sum to 1"):
            metrics.inception_score(np.ones((10, 3)), splits=2)


class TestSplitsFor:
    def test_keeps_at_least_the_minimum_split_size(self):
        assert metrics.splits_for(50) == 1
        assert metrics.splits_for(450) == 4
        assert metrics.splits_for(50000) == 10

    def test_matches_a_given_split_size(self):
        assert metrics.splits_for(300, split_size=100) == 3
        assert metrics.splits_for(10, split_size=100) == 1


class TestFrechetDistance:
    def test_a_set_against_itself_is_zero(self):
        x = np.random.default_rng(0).normal(size=(300, 8))
        assert metrics.frechet_distance(x, x) == pytest.approx(0.0, abs=1e-6)

    def test_one_dimensional_value_is_exact(self):
        # means 0 and 4, sample variances 2 and 8: 4^2 + (sqrt 2 - sqrt 8)^2 = 16 + 2
        a, b = np.array([[-1.0], [1.0]]), np.array([[2.0], [6.0]])
        assert metrics.frechet_distance(a, b) == pytest.approx(18.0, rel=1e-9)

    def test_diagonal_gaussians_match_the_closed_form(self):
        rng = np.random.default_rng(1)
        a = rng.normal(size=(20000, 3))
        b = rng.normal(size=(20000, 3)) * 2.0 + 1.0
        # per dimension (1 - 0)^2 + (2 - 1)^2 = 2, three dimensions
        assert metrics.frechet_distance(a, b) == pytest.approx(6.0, rel=0.05)

    def test_real_against_noise_is_large_and_real_halves_small(self):
        rng = np.random.default_rng(2)
        real = rng.normal(size=(2000, 16)) * 0.5 + 3.0
        noise = rng.uniform(-5, 5, size=(1000, 16))
        close = metrics.frechet_distance(real[:1000], real[1000:])
        far = metrics.frechet_distance(real[:1000], noise)
        assert close < 0.2
        assert far > 100 * close

    def test_rank_deficient_small_sets_give_a_finite_value(self):
        rng = np.random.default_rng(3)
        value = metrics.frechet_distance(rng.normal(size=(5, 64)), rng.normal(size=(6, 64)))
        assert np.isfinite(value) and value > 0

    def test_mismatched_feature_sizes_are_rejected(self):
        with pytest.raises(ValueError, match="feature sizes differ"):
            metrics.frechet_distance(np.zeros((4, 2)), np.zeros((4, 3)))


class TestNearestNeighbourDistances:
    def test_exact_duplicates_give_zero_self_distance(self):
        x = np.random.default_rng(0).normal(size=(50, 4))
        doubled = np.concatenate([x, x])
        assert metrics.mean_nearest_neighbour_distance(doubled) == pytest.approx(0.0, abs=1e-6)

    def test_self_distance_excludes_the_point_itself(self):
        points = np.array([[0.0], [1.0], [3.0]])
        np.testing.assert_allclose(metrics.nearest_neighbour_distances(points), [1, 1, 2])
        assert metrics.mean_nearest_neighbour_distance(points) == pytest.approx(4 / 3)

    def test_distances_to_references_in_the_plane(self):
        queries = np.array([[0.0, 0.0], [3.0, 4.0], [10.0, 0.0]])
        references = np.array([[0.0, 1.0], [6.0, 8.0]])
        np.testing.assert_allclose(metrics.nearest_neighbour_distances(queries, references),
                                   [1.0, np.sqrt(9 + 9), np.sqrt(16 + 64)], rtol=1e-9)

    def test_a_set_against_itself_as_reference_is_zero(self):
        x = np.random.default_rng(1).normal(size=(30, 5))
        assert metrics.mean_nearest_neighbour_distance(x, x) == pytest.approx(0.0, abs=1e-6)

    def test_chunking_does_not_change_the_result(self):
        x = np.random.default_rng(2).normal(size=(37, 3))
        np.testing.assert_allclose(metrics.nearest_neighbour_distances(x, chunk_size=5),
                                   metrics.nearest_neighbour_distances(x, chunk_size=100))

    def test_one_point_has_no_self_neighbour(self):
        with pytest.raises(ValueError, match="at least 2"):
            metrics.nearest_neighbour_distances(np.zeros((1, 3)))


class TestKMeans:
    def test_recovers_well_separated_clusters(self):
        rng = np.random.default_rng(0)
        centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
        x = np.concatenate([c + rng.normal(scale=0.1, size=(40, 2)) for c in centres])
        found = metrics.kmeans(x, 3, seed=0)
        order = np.argsort(found[:, 0] * 100 + found[:, 1])
        np.testing.assert_allclose(found[order], centres[[0, 2, 1]], atol=0.1)

    def test_k_larger_than_the_number_of_points_is_rejected(self):
        with pytest.raises(ValueError, match="k=5"):
            metrics.kmeans(np.zeros((3, 2)), 5)


def log_mel_images(audio):
    """Pooled log-mel images of clips [n, time], as scoring uses them for NDB."""
    mel = np.asarray(LogMelSpectrogram(sample_rate=SAMPLE_RATE)(audio.astype(np.float32)))
    n, frames, bins = mel.shape
    return mel[:, :frames // 4 * 4].reshape(n, frames // 4, 4, bins // 4, 4).mean(
        axis=(2, 4)).reshape(n, -1)


def tones(n, rng, length=4096):
    t = np.arange(length) / SAMPLE_RATE
    freqs = rng.choice([200.0, 400.0, 800.0, 1600.0], size=n) * rng.uniform(0.97, 1.03, n)
    return np.sin(2 * np.pi * freqs[:, None] * t + rng.uniform(0, 6, (n, 1)))


class TestNumberOfDifferentBins:
    def test_two_halves_of_one_set_have_no_different_bins(self):
        rng = np.random.default_rng(0)
        images = log_mel_images(tones(400, rng))
        result = metrics.number_of_different_bins(images[:200], images[200:], k=10, seed=0)
        assert result["ndb"] == 0
        assert result["ndb_over_k"] == 0.0

    def test_noise_against_tones_differs_in_most_bins(self):
        rng = np.random.default_rng(1)
        reference = log_mel_images(tones(200, rng))
        noise = log_mel_images(rng.normal(size=(200, 4096)))
        result = metrics.number_of_different_bins(reference, noise, k=10, seed=0)
        assert result["ndb"] >= 8
        assert result["ndb_over_k"] == result["ndb"] / 10

    def test_z_test_on_known_counts(self):
        # 50/50 against 90/10 with 100 points each: z = 0.4 / sqrt(0.7 * 0.3 * 0.02) = 6.2
        result = metrics.ndb_test(np.repeat([0, 1], [50, 50]), np.repeat([0, 1], [90, 10]), 2)
        assert result["different_bins"] == [0, 1]
        same = metrics.ndb_test(np.repeat([0, 1], [50, 50]), np.repeat([0, 1], [52, 48]), 2)
        assert same["ndb"] == 0

    def test_bins_empty_in_both_sets_do_not_differ(self):
        result = metrics.ndb_test(np.array([0, 0, 1]), np.array([0, 1, 1]), 4)
        assert 2 not in result["different_bins"] and 3 not in result["different_bins"]

    def test_bad_alpha_is_rejected(self):
        with pytest.raises(ValueError, match="alpha=1.5"):
            metrics.ndb_test(np.array([0]), np.array([0]), 1, alpha=1.5)


def test_shuffled_rows_make_splits_of_a_class_sorted_set_fair():
    probs = one_hot(np.repeat(np.arange(4), 50), 4)
    sorted_score, _ = metrics.inception_score(probs, splits=4)
    fair_score, _ = metrics.inception_score(metrics.shuffled(probs, seed=0), splits=4)
    assert sorted_score == pytest.approx(1.0, abs=1e-6)
    assert fair_score > 3.8
