from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from selfdesc.errors import ConfigError
from selfdesc.features import load_extractor
from selfdesc.features.base import to_tensor
from selfdesc.methods import build_method
from selfdesc.methods.residual import Residual, reprojection_matches, valid_region
from selfdesc.training.image_folder import ImageFolder
from selfdesc.training.trainer import TrainConfig, Trainer
from selfdesc.weights import read_model_file

SMALL = {
    "model": {"cnn": {"channels": [8, 8, 16, 16]}},
    "hcrops": {"crop_size": 96, "num_keypoints": 32, "num_source_points": 256, "min_texture_std": 0.02},
    "handcrafted": {"max_keypoints": 128},
    "threads": 2,
}


def _texture(seed, size=(120, 160)):
    rng = np.random.default_rng(seed)
    noise = rng.random(size + (3,)).astype(np.float32)
    img = cv2.GaussianBlur(noise, (0, 0), 1.5) + 0.5 * cv2.GaussianBlur(noise, (0, 0), 5.0)
    return (img - img.min()) / (img.max() - img.min())


def _batch(n=2):
    return {"image": torch.stack([to_tensor(_texture(i))[0] for i in range(n)]), "index": torch.arange(n)}


def test_reprojection_matches_known_answer():
    H = torch.tensor([[[1.0, 0, 2.0], [0, 1, -1.0], [0, 0, 1]]])  # shift by (2, -1)
    kp_a = torch.tensor([[[10.0, 10], [30, 30], [50, 50], [70, 70], [70, 70]]])
    # B: a match 0.5 px off, a match 4 px off (too far), one mutual conflict, two orientation duplicates
    kp_b = torch.tensor([[[12.5, 9], [32, 33], [52, 49], [52.8, 49], [72, 69], [72, 69]]])
    desc_a = F.normalize(torch.eye(4)[[0, 1, 2, 2, 3]], dim=-1)[None]
    desc_b = F.normalize(torch.eye(4)[[0, 1, 2, 2, 3, 2]], dim=-1)[None]
    mask_a, mask_b = torch.ones(1, 5, dtype=torch.bool), torch.ones(1, 6, dtype=torch.bool)
    m = reprojection_matches(kp_a, kp_b, mask_a, mask_b, H, 3.0, desc_a, desc_b)
    # kp_a[3] and kp_a[4] sit at one place with different g descriptors: each takes its look-alike
    assert m.tolist() == [[0, -1, 2, 5, 4]]
    assert reprojection_matches(kp_a, kp_b, mask_a, mask_b, H, 3.0).tolist()[0][:3] == [0, -1, 2]
    mask_b[0, 0] = False
    assert reprojection_matches(kp_a, kp_b, mask_a, mask_b, H, 3.0, desc_a, desc_b)[0, 0] == -1


def test_valid_region_excludes_pixels_outside_the_image_and_a_border():
    # crop = image shifted so that its left 10 columns fall outside the image
    H = torch.tensor([[[1.0, 0, 10], [0, 1, 0], [0, 0, 1]]])
    region = valid_region(H, (64, 64), 32, border=3)
    assert not region[0, :, :13].any() and region[0, :, 13:].all()  # crop edges inside the image stay valid
    H[0, 1, 2] = -40.0  # now the bottom 8 rows of the crop are below the image
    region = valid_region(H, (64, 64), 32, border=3)
    assert region[0, :21, 13:].all() and not region[0, 21:].any()


@pytest.mark.parametrize("squared", [True, False])
def test_step_trains_f_and_h_and_lowers_the_loss(squared):
    torch.manual_seed(0)
    m = Residual({**SMALL, "loss": {"margin": 2.0, "squared": squared}})
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    batch = _batch()
    losses = []
    for _ in range(4):
        torch.manual_seed(1)  # the same pairs and augmentation every step
        out = m(batch)
        opt.zero_grad()
        out["loss"].backward()
        assert out["positives_per_pair"] > 5
        opt.step()
        losses.append(float(out["loss"].detach()))
    assert all(p.grad is not None for p in m.net.parameters())
    # at initialisation all descriptors are nearly equal (loss ~ margin); squared distances start slower
    assert losses[-1] < losses[0] - (0.005 if squared else 0.02), losses


def test_export_rebuilds_the_feature(tmp_path):
    m = Residual(SMALL)
    torch.save({"format": "selfdesc-model/1", "method": "residual", **m.export(), "meta": {}}, tmp_path / "m.pt")
    data = read_model_file(tmp_path / "m.pt", method="residual")
    assert data["conf"]["handcrafted"] == {"name": "sift", "upright": False}
    ext = load_extractor("residual-sift", checkpoint=str(tmp_path / "m.pt"), max_keypoints=128)
    img = to_tensor(_texture(5))
    pred = ext.extract(img)
    g = m.g(img)
    expected = m.net({"image": img, "keypoints": g["keypoints"][None], "handcrafted": g["descriptors"][None]})["descriptors"][0]
    torch.testing.assert_close(pred["descriptors"], expected.detach(), atol=1e-5, rtol=1e-5)


def test_trainer_run_and_training_checkpoint_as_feature(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(4):
        cv2.imwrite(str(folder / f"{i}.png"), (_texture(i) * 255).astype(np.uint8))
    conf = {**SMALL, "handcrafted": {"name": "rootsift", "upright": True, "max_keypoints": 128}}
    trainer = Trainer(
        build_method("residual", conf), ImageFolder(folder, size=(160, 120)),
        TrainConfig(steps=2, batch_size=2, lr=1e-3, num_workers=0, progress=False, log_every=1),
        tmp_path / "run", full_config={"method": {"name": "residual", **conf}, "train": {}},
    )
    last = trainer.fit()
    assert np.isfinite(last["loss"])
    pred = load_extractor("residual-rootsift-upright", checkpoint=str(tmp_path / "run/checkpoints/last.pt")).extract(_texture(7))
    assert pred["descriptors"].shape[1] == 256 and len(pred["keypoints"]) > 0


def test_bad_options():
    with pytest.raises(ConfigError, match="HCropsConfig"):
        Residual({"hcrops": {"crop": 3}})
    with pytest.raises(ConfigError, match="pos_radius"):
        Residual({"pos_radius": 6.0, "neg_radius": 5.0})
    with pytest.raises(ConfigError, match="handcrafted.name"):
        Residual({"handcrafted": {"name": "orb"}})
    with pytest.raises(ConfigError, match="handcrafted.foo"):
        Residual({"handcrafted": {"foo": 1}})
