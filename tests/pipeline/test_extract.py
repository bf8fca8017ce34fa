"""Folder extraction: same features as the extractor itself, original-pixel keypoints, clear errors."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from selfdesc.errors import ConfigError, DatasetError, ImageError
from selfdesc.features import load_extractor
from selfdesc.io.image import load_image
from selfdesc.pipeline.extract import ExtractConfig, extract_features
from selfdesc.pipeline.h5io import FeatureFile


@pytest.mark.parametrize("resize_max", [None, 200])
def test_folder_extraction_equals_single_image_extraction(image_dir, tmp_path, resize_max):
    root, names = image_dir
    sift = load_extractor("sift", max_keypoints=300)
    out = tmp_path / "f.h5"
    s = extract_features(sift, "sift", root, out, ExtractConfig(resize_max=resize_max, num_workers=1, batch_size=2, checkpoint_every=2, progress=False))
    assert (s.num_images, s.num_skipped, s.num_extracted, s.written) == (5, 0, 5, True)
    with FeatureFile(out) as ff:
        assert ff.names == names
        for name in names:
            got = ff.read(name)
            ref = sift.extract(load_image(root / name, resize_max=resize_max))
            np.testing.assert_allclose(got["keypoints"], ref["keypoints"].numpy(), atol=1e-4)
            np.testing.assert_allclose(got["descriptors"], ref["descriptors"].numpy(), atol=1e-6)
            assert got["image_size"].tolist() == [320, 240]  # original size, whatever the resize
            if resize_max:  # keypoints in original pixels: they spread beyond the resized image
                assert got["keypoints"][:, 0].max() > 200
    again = extract_features(sift, "sift", root, out, ExtractConfig(resize_max=resize_max, num_workers=0, progress=False))
    assert (again.num_skipped, again.num_extracted, again.written) == (5, 0, False)


def test_other_settings_are_refused(image_dir, tmp_path):
    root, _ = image_dir
    out = tmp_path / "f.h5"
    extract_features(load_extractor("sift", max_keypoints=50), "sift", root, out, ExtractConfig(num_workers=0, progress=False))
    with pytest.raises(ConfigError, match="other settings"):
        extract_features(load_extractor("sift", max_keypoints=50), "sift", root, out, ExtractConfig(fp16=True, num_workers=0, progress=False))


def test_unreadable_image_in_a_worker_is_named_and_the_others_are_extracted(image_dir, tmp_path):
    root, names = image_dir
    (root / "sub" / "zzz_broken.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    out = tmp_path / "f.h5"
    sift = load_extractor("sift", max_keypoints=50)
    s = extract_features(sift, "sift", root, out, ExtractConfig(num_workers=2, batch_size=2, progress=False))
    assert (s.num_images, s.num_extracted, s.written) == (6, 5, True)
    assert len(s.failed) == 1 and "zzz_broken.jpg" in s.failed[0] and "\n" not in s.failed[0]
    with FeatureFile(out) as ff:
        assert ff.names == names
    with pytest.raises(ImageError, match=r"1 image\(s\) could not be read.*zzz_broken.jpg"):
        s.raise_failed(out)
    # a rerun retries only the failed image; the output is untouched while it still fails
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    again = extract_features(sift, "sift", root, out, ExtractConfig(num_workers=1, progress=False))
    assert (again.num_skipped, again.num_extracted, again.written, len(again.failed)) == (5, 0, False, 1)
    assert hashlib.sha256(out.read_bytes()).hexdigest() == digest
    with pytest.raises(DatasetError, match="no such folder"):
        extract_features(sift, "sift", tmp_path / "nope", out, ExtractConfig(progress=False))
