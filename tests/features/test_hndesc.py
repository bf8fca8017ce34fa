"""The shipped HNDesc-r2d2 model (the default until session 6): it loads, extracts unit 128-D descriptors, and matches."""
import numpy as np
import pytest
import torch

from selfdesc.errors import WeightsError
from selfdesc.eval.mma import match_errors
from selfdesc.features import load_extractor
from selfdesc.features.hndesc import DEFAULT_MODEL
from selfdesc.matching import match_mnn
from selfdesc.weights import package_model
from tests.features.conftest import astronaut_pair


def test_hndesc_r2d2_is_the_shipped_model_and_matches_a_warped_pair():
    assert package_model(DEFAULT_MODEL).is_file()
    image0, image1, H = astronaut_pair()
    ext = load_extractor("hndesc-r2d2", max_keypoints=500)
    f0, f1 = ext.extract(image0), ext.extract(image1)
    assert f0["descriptors"].shape[1] == 128 and 100 < len(f0["keypoints"]) <= 500
    assert torch.allclose(f0["descriptors"].norm(dim=1), torch.ones(len(f0["descriptors"])), atol=1e-4)
    matches, _ = match_mnn(f0["descriptors"], f1["descriptors"])
    errors = match_errors(f0["keypoints"].numpy(), f1["keypoints"].numpy(), np.asarray(matches), H)
    valid = errors[np.isfinite(errors)]
    # trained weights: most mutual matches are correct within 3 px (an untrained network gets ~0)
    assert len(matches) > 100 and (valid <= 3.0).mean() > 0.7


def test_missing_model_is_a_clear_error(tmp_path, monkeypatch):
    import selfdesc.features.hndesc as hndesc_module

    monkeypatch.setattr(hndesc_module, "package_model", lambda name: tmp_path / name)
    with pytest.raises(WeightsError, match="not installed"):
        load_extractor("hndesc-r2d2")
