"""The selfgd crop memory: FIFO storage, nearest other-image retrieval, refresh, checkpoint round trip."""
import torch
import torch.nn.functional as F

from selfdesc.methods.parts.neighbours import CropMemory


def _crops(n, value):
    return torch.full((n, 3, 8, 8), value)


def test_push_is_fifo_and_nearest_skips_the_same_image():
    mem = CropMemory(size=4, crop_size=8, dim=3)
    eye = torch.eye(3)
    mem.push(_crops(3, 0.2), eye, torch.tensor([10, 11, 12]))
    slots, ok = mem.nearest(eye[:1], torch.tensor([99]), 2)
    assert ok.all() and mem.ids[slots[0, 0]] == 10  # most similar first
    slots, ok = mem.nearest(eye[:1], torch.tensor([10]), 4)
    assert ok.tolist() == [[True, True, False, False]] and 10 not in mem.ids[slots[ok]].tolist()  # never itself, empty slot never
    mem.push(_crops(2, 0.6), -eye[:2], torch.tensor([13, 14]))  # wraps: overwrites the oldest (id 10)
    assert sorted(mem.ids.tolist()) == [11, 12, 13, 14] and int(mem.ptr) == 1 and int(mem.pushes) == 2
    assert torch.allclose(mem.images(mem.ids.eq(13).nonzero()[0]), _crops(1, 0.6), atol=1 / 255)


def test_refresh_recomputes_every_stored_descriptor_and_state_round_trips():
    mem = CropMemory(size=5, crop_size=8, dim=3)
    mem.push(torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(0)), torch.zeros(3, 3), torch.arange(3))
    describe = lambda crops: F.normalize(crops.mean((2, 3)), dim=1)  # noqa: E731
    mem.refresh(describe, batch_size=2)
    filled = mem.filled
    assert torch.allclose(mem.desc[filled], describe(mem.images(filled.nonzero().squeeze(1))))
    assert (mem.desc[~filled] == 0).all()
    other = CropMemory(size=5, crop_size=8, dim=3)
    other.load_state_dict(mem.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(other.state_dict().values(), mem.state_dict().values()))
