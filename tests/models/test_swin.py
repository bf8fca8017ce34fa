import torch

from selfdesc.models.swin import SwinBackbone, SwinBlock, WindowAttention, shift_mask, window_partition, window_reverse

TINY = {"embed_dim": 16, "num_heads": [1, 2], "window": 4, "dim": 32}


def test_window_round_trip():
    x = torch.randn(2, 8, 12, 5)
    windows = window_partition(x, 4)
    assert windows.shape == (2 * 2 * 3, 16, 5)
    assert torch.equal(windows[0], x[0, :4, :4].reshape(16, 5))
    assert torch.equal(window_reverse(windows, 4, 8, 12), x)


def test_shift_mask_separates_regions():
    mask = shift_mask(8, 8, 4, 2, torch.device("cpu"))
    assert mask.shape == (4, 16, 16)
    assert torch.all(mask[0] == 0)  # the top-left window holds one region
    last = mask[3]  # the bottom-right window mixes 4 regions of 2x2 tokens
    assert (last == 0).sum() == 4 * 16 and torch.all(last.diagonal() == 0)


def test_relative_position_index():
    attn = WindowAttention(8, 2, 3)
    idx = attn.bias_index
    assert idx.shape == (9, 9) and idx.min() == 0 and idx.max() == 24
    assert torch.all(idx.diagonal() == 12)  # zero offset is the centre of the (2w-1)^2 table
    assert idx[0, 1] == idx[3, 4]  # same relative offset, same bias


def test_shifted_block_keeps_tokens_apart():
    """With a shift, a token's output ignores tokens of other regions of its window."""
    torch.manual_seed(0)
    block = SwinBlock(8, 2, 4, 2, 2.0).eval()
    x = torch.randn(1, 8, 8, 8)
    y = block(x)
    x2 = x.clone()
    x2[0, 0, 0, 0] += 5.0  # one channel of token (0, 0): after the roll it sits in the bottom-right window with wrapped tokens
    y2 = block(x2)
    changed = (y2 - y).abs().sum(-1)[0] > 1e-6
    assert changed[0, 0] and not changed[7, 7]  # (7, 7) shares its shifted window, not its region
    assert changed[1, 1]


def test_backbone_shapes_and_gradients():
    torch.manual_seed(0)
    net = SwinBackbone(TINY)
    out = net(torch.rand(2, 3, 30, 45))  # padded to 32 x 48
    assert out["features"].shape == (2, 32, 8, 12) and out["scores"].shape == (2, 1, 32, 48)
    (out["features"].square().mean() + out["scores"].mean()).backward()
    assert all(p.grad is not None for p in net.parameters())
    three = SwinBackbone({**TINY, "depths": [2, 2, 2], "num_heads": [1, 2, 4]})
    assert three.divisor == 16 and three(torch.rand(1, 3, 40, 40))["features"].shape == (1, 32, 12, 12)
