"""load_stylizer: built-in names and aliases, plugins by path, one-line ConfigErrors."""
from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from selfdesc.errors import ConfigError
from selfdesc.stylize import DayToNight, StyleBank, apply_stylizer, load_stylizer

PLUGIN = '''
import numpy as np
from selfdesc.stylize import Stylizer


class Invert(Stylizer):
    name = "invert"

    def __init__(self, amount=1.0):
        self.amount = amount

    def __call__(self, image, rng):
        return (1 - image) * self.amount + image * (1 - self.amount)


class BankUser:
    name = "bank_user"

    def __init__(self, style_bank):
        self.style_bank = style_bank

    def __call__(self, image, rng):
        return np.broadcast_to(self.style_bank.draw(rng).mean((0, 1)), image.shape).astype(np.float32)


class NoName:
    def __call__(self, image, rng):
        return image


class BadCall:
    name = "bad"

    def __call__(self, image):
        return image


NOT_A_CLASS = 3
'''


@pytest.fixture
def plugin(tmp_path: Path) -> Path:
    path = tmp_path / "my_styles.py"
    path.write_text(textwrap.dedent(PLUGIN))
    return path


def test_builtin_names_and_aliases() -> None:
    assert isinstance(load_stylizer("night"), DayToNight)
    assert load_stylizer("day_to_night", ambient=(0.01, 0.01)).ambient == (0.01, 0.01)


def test_plugin_by_path_with_options_and_style_bank(plugin: Path) -> None:
    image = np.full((8, 10, 3), 0.25, np.float32)
    inv = load_stylizer(f"{plugin}:Invert", amount=1.0)
    assert inv.name == "invert"
    np.testing.assert_allclose(apply_stylizer(inv, image, np.random.default_rng(0)), 0.75)
    bank = StyleBank([np.full((4, 4, 3), 0.6, np.float32)])
    user = load_stylizer(f"{plugin}:BankUser", style_bank=bank)
    np.testing.assert_allclose(user(image, np.random.default_rng(0)), 0.6)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nosuch", "unknown stylizer 'nosuch'"),
        ("{dir}/missing.py:X", "missing.py: no such stylizer file"),
        ("{plugin}:Nope", r"my_styles.py: no class 'Nope' \(classes defined there: BadCall, BankUser, Invert, NoName\)"),
        ("{plugin}:NOT_A_CLASS", "'NOT_A_CLASS' is not a class"),
        ("{plugin}:NoName", "needs a 'name' string attribute"),
        ("{plugin}:BadCall", r"__call__ must take exactly \(image, rng\)"),
        ("{plugin}:BankUser", "bad constructor arguments"),
        ("{broken}:X", r"import failed \(ZeroDivisionError: division by zero\)"),
    ],
)
def test_bad_specs_give_one_line_config_errors(plugin: Path, tmp_path: Path, spec: str, message: str) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("x = 1 / 0\n")
    with pytest.raises(ConfigError, match=message) as info:
        load_stylizer(spec.format(dir=tmp_path, plugin=plugin, broken=broken))
    assert "\n" not in str(info.value)


def test_bad_constructor_option_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="stylizer 'fog': bad constructor arguments"):
        load_stylizer("fog", strength=2)
