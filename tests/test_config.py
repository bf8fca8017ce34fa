import dataclasses

import pytest

from selfdesc.config import dump_config, load_config, merge, parse_override, read_yaml, to_dataclass
from selfdesc.errors import ConfigError

DEFAULTS = {"optim": {"lr": 1e-4, "betas": [0.9, 0.999]}, "data": {"batch_size": 4, "root": None}, "extra": {}}


def test_yaml_then_overrides(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("optim:\n  lr: 0.001\ndata:\n  root: /images\n")
    conf = load_config(DEFAULTS, f, ["data.batch_size=16", "optim.betas=[0.5, 0.9]", "extra.note=hello"], open_keys=["extra"])
    assert conf["optim"] == {"lr": 0.001, "betas": [0.5, 0.9]}
    assert conf["data"] == {"batch_size": 16, "root": "/images"}
    assert conf["extra"] == {"note": "hello"}
    assert DEFAULTS["optim"]["lr"] == 1e-4  # defaults untouched


def test_override_value_types():
    assert parse_override("a.b=1e-3") == {"a": {"b": 1e-3}}
    assert parse_override("a=true") == {"a": True}
    assert parse_override("a=null") == {"a": None}
    assert parse_override("a=some/path.jpg") == {"a": "some/path.jpg"}


def test_unknown_keys_and_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="optim.lrr"):
        load_config(DEFAULTS, overrides=["optim.lrr=1"])
    with pytest.raises(ConfigError, match="not of the form"):
        load_config(DEFAULTS, overrides=["optim.lr"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim: [1, 2\n")
    with pytest.raises(ConfigError, match="bad.yaml: invalid YAML"):
        load_config(DEFAULTS, bad)
    typo = tmp_path / "typo.yaml"
    typo.write_text("dta:\n  batch_size: 3\n")
    with pytest.raises(ConfigError, match="typo.yaml: unknown config key 'dta'"):
        load_config(DEFAULTS, typo)
    with pytest.raises(ConfigError, match="no such config file"):
        read_yaml(tmp_path / "nope.yaml")


def test_dump_round_trip(tmp_path):
    conf = load_config(DEFAULTS, overrides=["data.batch_size=2"])
    f = tmp_path / "d.yaml"
    f.write_text(dump_config(conf))
    assert load_config(DEFAULTS, f) == conf


def test_exponent_floats_in_files(tmp_path):
    f = tmp_path / "e.yaml"
    f.write_text("optim:\n  lr: 3e-4\n")
    assert load_config(DEFAULTS, f)["optim"]["lr"] == 3e-4


def test_merge_names_the_owner_of_unknown_options():
    base = {"dim": 128, "head": {"depth": 2}}
    assert merge(base, {"head": {"depth": 3}}, owner="Net") == {"dim": 128, "head": {"depth": 3}}
    with pytest.raises(ConfigError, match=r"^Net: unknown option 'head.width' \(known: depth\)$"):
        merge(base, {"head": {"width": 3}}, owner="Net")
    with pytest.raises(ConfigError, match=r"^unknown config key 'dims'"):
        merge(base, {"dims": 3})


def test_to_dataclass_is_strict_and_turns_lists_into_tuples():
    @dataclasses.dataclass
    class Crops:
        size: int = 8
        zoom: tuple[float, float] = (0.5, 1.0)

    crops = to_dataclass(Crops, {"zoom": [0.8, 1.2]})
    assert crops == Crops(size=8, zoom=(0.8, 1.2)) and isinstance(crops.zoom, tuple)
    with pytest.raises(ConfigError, match=r"^method.crops: unknown option\(s\) szie \(known: size, zoom\)$"):
        to_dataclass(Crops, {"szie": 4}, "method.crops")
    with pytest.raises(ConfigError, match=r"^Crops: unknown option"):
        to_dataclass(Crops, {"szie": 4})


def test_load_config_takes_the_file_content_already_read(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("data:\n  batch_size: 8\n")
    content = read_yaml(f)
    f.unlink()  # not read again
    assert load_config(DEFAULTS, f, content=content)["data"]["batch_size"] == 8
    with pytest.raises(ConfigError, match="c.yaml: unknown config key 'dta'"):
        load_config(DEFAULTS, f, content={"dta": 1})
