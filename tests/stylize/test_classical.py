"""Built-in stylizers: contract (shape, range, determinism), geometry kept, colour-transfer known answers."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from selfdesc.errors import ConfigError
from selfdesc.stylize import (
    DayToNight,
    HistogramMatch,
    LabTransfer,
    MixedStylizer,
    StyleBank,
    apply_stylizer,
    available_stylizers,
    load_stylizer,
)
from selfdesc.stylize.classical import linear_to_srgb, match_channel, srgb_to_linear

BUILTINS = ["lab_transfer", "histogram_match", "day_to_night", "dusk", "overcast", "fog", "low_light", "mixed"]


def edges(image: np.ndarray) -> np.ndarray:
    """Sobel gradient magnitude of the (lightly smoothed) gray image, normalised to zero mean, unit std."""
    gray = cv2.GaussianBlur(image.mean(axis=2).astype(np.float32), (0, 0), 1.0)
    mag = np.hypot(cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1))[4:-4, 4:-4]
    return (mag - mag.mean()) / (mag.std() + 1e-12)


def edge_correlation(a: np.ndarray, b: np.ndarray, dx: int = 0, dy: int = 0) -> float:
    """Correlation of the edge maps of ``a`` and of ``b`` shifted by ``(dx, dy)`` pixels (interior only)."""
    ea, eb = edges(a), edges(np.roll(b, (dy, dx), axis=(0, 1)))
    m = 3
    return float((ea[m:-m, m:-m] * eb[m:-m, m:-m]).mean())


@pytest.fixture
def bank(style_images: list[np.ndarray]) -> StyleBank:
    return StyleBank(style_images)


def test_registry_lists_every_builtin() -> None:
    assert sorted(BUILTINS) == available_stylizers()


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_contract_and_geometry(name: str, scene: np.ndarray, bank: StyleBank) -> None:
    stylizer = load_stylizer(name, style_bank=bank)
    out = stylizer(scene, np.random.default_rng(3))
    assert out.shape == scene.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert np.abs(out - scene).mean() > 0.03, "the image should change visibly"
    # deterministic for a seed, different for another seed
    assert np.array_equal(out, stylizer(scene, np.random.default_rng(3)))
    assert any(not np.array_equal(out, stylizer(scene, np.random.default_rng(s))) for s in (4, 5, 6))
    # geometry: edges stay in place (no shift of up to 2 px aligns the edge maps better, and they correlate strongly)
    scores = {(dx, dy): edge_correlation(scene, out, dx, dy) for dx in (-2, -1, 0, 1, 2) for dy in (-2, -1, 0, 1, 2)}
    best_shifted = max(v for k, v in scores.items() if k != (0, 0))
    assert scores[(0, 0)] > best_shifted + 0.03
    assert scores[(0, 0)] > 0.7


def lab_stats(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lab = cv2.cvtColor(image.astype(np.float32), cv2.COLOR_RGB2Lab).reshape(-1, 3)
    return lab.mean(0), lab.std(0)


def test_lab_transfer_moves_lab_mean_and_std_to_the_style(scene: np.ndarray, style_images: list[np.ndarray]) -> None:
    for style in style_images:
        out = LabTransfer(StyleBank([style]))(scene, np.random.default_rng(0))
        mean_out, std_out = lab_stats(out)
        mean_style, std_style = lab_stats(style)
        mean_in, _ = lab_stats(scene)
        np.testing.assert_allclose(mean_out, mean_style, atol=1.5)
        np.testing.assert_allclose(std_out, std_style, rtol=0.1, atol=0.5)
        assert np.abs(mean_in - mean_style).max() > 10  # the known answer is far from the input's


def test_histogram_match_reproduces_the_style_histogram(scene: np.ndarray, style_images: list[np.ndarray]) -> None:
    style = style_images[1]
    scene = np.clip(scene + np.random.default_rng(1).normal(0, 0.02, scene.shape), 0, 1).astype(np.float32)  # no ties
    q = np.linspace(2, 98, 25)
    out = HistogramMatch(StyleBank([style]), space="rgb")(scene, np.random.default_rng(0))
    for c in range(3):
        np.testing.assert_allclose(np.percentile(out[..., c], q), np.percentile(style[..., c], q), atol=0.02)
    out_lab = HistogramMatch(StyleBank([style]), space="lab")(scene, np.random.default_rng(0))
    lab_out = cv2.cvtColor(out_lab, cv2.COLOR_RGB2Lab)
    lab_style = cv2.cvtColor(style, cv2.COLOR_RGB2Lab)
    for c in range(3):
        np.testing.assert_allclose(np.percentile(lab_out[..., c], q), np.percentile(lab_style[..., c], q), atol=2.0)


def test_match_channel_is_monotonic_and_exact_on_continuous_data() -> None:
    rng = np.random.default_rng(0)
    src, ref = rng.normal(0, 1, 5000), rng.exponential(2.0, 3000)
    out = match_channel(src, ref)
    order = np.argsort(src)
    assert np.all(np.diff(out[order]) >= 0)
    np.testing.assert_allclose(np.sort(out)[[250, 2500, 4750]], np.quantile(ref, [0.05, 0.5, 0.95]), rtol=0.02)


def test_style_bank_drawn_uniformly_and_required(style_images: list[np.ndarray], scene: np.ndarray) -> None:
    bank = StyleBank(style_images)
    rng = np.random.default_rng(0)
    draws = [bank.draw(rng) is bank.get(0) for _ in range(400)]
    assert 0.4 < np.mean(draws) < 0.6
    with pytest.raises(ConfigError, match="needs a style bank"):
        load_stylizer("lab")
    with pytest.raises(ConfigError, match="expected H x W x 3"):
        StyleBank([np.zeros((4, 4))])


def test_srgb_round_trip() -> None:
    x = np.linspace(0, 1, 101, dtype=np.float32)
    np.testing.assert_allclose(linear_to_srgb(srgb_to_linear(x)), x, atol=1e-5)
    assert abs(float(srgb_to_linear(np.float32(0.5))) - 0.214) < 1e-3


def test_night_is_dark_and_bad_ranges_are_rejected(scene: np.ndarray) -> None:
    out = DayToNight()(scene, np.random.default_rng(0))
    assert out.mean() < 0.5 * scene.mean()
    with pytest.raises(ConfigError, match="ambient"):
        DayToNight(ambient=(0.5, 0.1))


class Constant:
    """A stub stylizer returning a constant image (records nothing, follows the interface)."""

    def __init__(self, name: str, value: float) -> None:
        self.name, self.value = name, value

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return np.full_like(image, self.value)


def test_mixed_picks_by_weight(scene: np.ndarray) -> None:
    a, b = Constant("a", 0.2), Constant("b", 0.8)
    rng = np.random.default_rng(0)
    picks = [MixedStylizer([a, b], weights={"a": 1, "b": 3})(scene, rng)[0, 0, 0] for _ in range(2000)]
    assert abs(np.mean(np.isclose(picks, 0.2)) - 0.25) < 0.03
    only_a = MixedStylizer([a, b], weights=[1, 0])
    assert all(only_a(scene, rng)[0, 0, 0] == np.float32(0.2) for _ in range(50))
    with pytest.raises(ConfigError, match="unknown stylizer"):
        MixedStylizer([a, b], weights={"c": 1})
    with pytest.raises(ConfigError, match="not all 0"):
        MixedStylizer([a, b], weights=[0, 0])


def test_mixed_defaults(bank: StyleBank) -> None:
    assert MixedStylizer().names == ["day_to_night", "dusk", "overcast", "fog", "low_light"]
    assert MixedStylizer(style_bank=bank).names[-2:] == ["lab_transfer", "histogram_match"]
    assert load_stylizer("random", style_bank=bank).names == MixedStylizer(style_bank=bank).names


def test_apply_stylizer_rejects_resized_output(scene: np.ndarray) -> None:
    class Shrink:
        name = "shrink"

        def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
            return image[::2, ::2]

    with pytest.raises(ConfigError, match="stylizer 'shrink' returned shape"):
        apply_stylizer(Shrink(), scene, np.random.default_rng(0))
