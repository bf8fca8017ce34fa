from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from selfdesc.errors import DatasetError, ImageError
from selfdesc.io.image import list_images, load_image, rescale_keypoints, resize_image


def _gradient(w: int = 40, h: int = 30) -> np.ndarray:
    x = np.linspace(0, 255, w, dtype=np.float64)[None, :].repeat(h, 0)
    y = np.linspace(0, 255, h, dtype=np.float64)[:, None].repeat(w, 1)
    return np.stack([x, y, 255 - x], axis=2).astype(np.uint8)


def test_rgb_png_round_trip(tmp_path):
    arr = _gradient()
    Image.fromarray(arr).save(tmp_path / "a.png")
    img = load_image(tmp_path / "a.png")
    assert img.image.dtype == np.float32 and img.image.shape == (30, 40, 3)
    np.testing.assert_allclose(img.image * 255, arr, atol=1e-3)
    assert img.original_size == (40, 30) and img.scale == (1.0, 1.0)


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "CMYK", "1"])
def test_modes_become_rgb(tmp_path, mode):
    base = Image.fromarray(_gradient())
    img = base.convert(mode)
    path = tmp_path / ("x.tif" if mode == "CMYK" else "x.png")
    img.save(path)
    out = load_image(path)
    assert out.image.shape == (30, 40, 3)
    assert 0.0 <= out.image.min() and out.image.max() <= 1.0
    assert load_image(path, gray=True).image.shape == (30, 40)


def test_rgba_alpha_dropped(tmp_path):
    arr = np.zeros((10, 10, 4), np.uint8)
    arr[..., 0] = 200
    arr[..., 3] = 0  # fully transparent: colour must still be read, not blended away
    Image.fromarray(arr, "RGBA").save(tmp_path / "t.png")
    out = load_image(tmp_path / "t.png")
    np.testing.assert_allclose(out.image[..., 0], 200 / 255, atol=1e-6)


def test_16bit_scaled_to_unit_range(tmp_path):
    arr = np.full((12, 16), 65535, np.uint16)
    arr[:, :8] = 32768
    Image.fromarray(arr).save(tmp_path / "d.png")
    out = load_image(tmp_path / "d.png")
    np.testing.assert_allclose(out.image[0, 0, 0], 32768 / 65535, atol=1e-6)
    np.testing.assert_allclose(out.image[0, -1, 0], 1.0, atol=1e-6)


def test_exif_orientation_applied(tmp_path):
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :5] = 255  # white band on the left
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 CW to display
    img.save(tmp_path / "r.jpg", exif=exif.tobytes(), quality=95)
    out = load_image(tmp_path / "r.jpg")
    assert out.image.shape[:2] == (40, 20)  # portrait after transpose
    assert out.image[:5].mean() > 0.8  # the band is now at the top
    assert out.original_size == (20, 40)


def test_truncated_jpeg_is_an_error(tmp_path):
    Image.fromarray(_gradient(200, 150)).save(tmp_path / "full.jpg", quality=90)
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="cut.jpg"):
        load_image(tmp_path / "cut.jpg")


def test_non_image_and_missing(tmp_path):
    (tmp_path / "notes.png").write_text("this is not a picture")
    with pytest.raises(ImageError, match=r"notes.png: not an image"):
        load_image(tmp_path / "notes.png")
    with pytest.raises(ImageError, match="no such file"):
        load_image(tmp_path / "absent.jpg")
    with pytest.raises(ImageError, match="folder"):
        load_image(tmp_path)


def test_error_message_is_one_line(tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0garbage")
    with pytest.raises(ImageError) as info:
        load_image(tmp_path / "bad.jpg")
    assert "\n" not in str(info.value) and "bad.jpg" in str(info.value)


def test_resize_records_scale_and_keypoints_map_back():
    arr = np.random.default_rng(0).random((300, 400, 3)).astype(np.float32)
    small, scale = resize_image(arr, resize_max=100)
    assert small.shape[:2] == (75, 100) and scale == (4.0, 4.0)
    # pixel centre 0 of the small image covers original pixels 0..3, centre at 1.5
    np.testing.assert_allclose(rescale_keypoints(np.array([[0.0, 0.0]]), scale), [[1.5, 1.5]])
    # the last small pixel centre maps to the centre of the last original 4x4 block
    np.testing.assert_allclose(rescale_keypoints(np.array([[99.0, 74.0]]), scale), [[397.5, 297.5]])
    same, s = resize_image(arr, resize_max=1000)
    assert same is arr and s == (1.0, 1.0)
    forced, s = resize_image(arr, size=(200, 200))
    assert forced.shape[:2] == (200, 200) and s == (2.0, 1.5)


def test_list_images(tmp_path):
    with pytest.raises(DatasetError, match="no image files"):
        list_images(tmp_path)
    with pytest.raises(DatasetError, match="no such folder"):
        list_images(tmp_path / "nope")
    (tmp_path / "sub").mkdir()
    Image.fromarray(_gradient()).save(tmp_path / "sub" / "b.JPG")
    Image.fromarray(_gradient()).save(tmp_path / "a.png")
    (tmp_path / "readme.txt").write_text("x")
    assert [p.name for p in list_images(tmp_path)] == ["a.png", "b.JPG"]
