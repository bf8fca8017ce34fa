"""One training run, as ``selfdesc train`` and ``selfdesc train-matcher`` start it.

:func:`resolve_run_config` gives the run's config and the lines that say where it came from
(code defaults <- YAML <- CPU preset <- overrides; or, resuming, the run's own ``config.yaml`` <-
overrides); :func:`train_run` builds the method, the image folder, the validation and the
trainer, prints what it will do, and trains.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

from selfdesc.config import load_config, merge, parse_override, read_yaml
from selfdesc.errors import ConfigError

#: config keys that accept new sub-keys
OPEN_KEYS = ["train.extra"]


def default_config(method: str = "hndesc") -> dict[str, Any]:
    """Engine defaults plus the defaults of ``method``."""
    from selfdesc.methods import method_defaults
    from selfdesc.training.trainer import TrainConfig
    from selfdesc.training.validation import ValidationConfig

    return {
        "train": asdict(TrainConfig()),
        "data": {"size": [320, 240], "stylized_root": None, "index": None},
        "val": asdict(ValidationConfig()),
        "method": {"name": method, **method_defaults(method)},
    }


def method_name(file_conf: dict[str, Any], overrides: Sequence[str]) -> str:
    """The method a run trains: ``method.name`` from the last override, else the config file's
    content ``file_conf`` (:func:`~selfdesc.config.read_yaml`), else hndesc."""
    name = (file_conf.get("method") or {}).get("name", "hndesc")
    for text in overrides:
        value = parse_override(text)
        if isinstance(value.get("method"), dict) and "name" in value["method"]:
            name = value["method"]["name"]
    return str(name)


def _file_config(config_path: str | Path | None, overrides: Sequence[str]) -> dict[str, Any]:
    """The code defaults of the run's method (named by ``overrides`` or the file) <- the YAML file, read once."""
    file_conf = read_yaml(config_path) if config_path is not None else {}
    return load_config(default_config(method_name(file_conf, overrides)), config_path, open_keys=OPEN_KEYS, content=file_conf)


def load_run_config(config_path: str | Path | None, overrides: Sequence[str]) -> dict[str, Any]:
    """A run's full config without the CPU preset: the method's code defaults <- YAML <- overrides."""
    return load_config(_file_config(config_path, overrides), None, overrides, open_keys=OPEN_KEYS)


def resolve_run_config(
    config_path: str | Path | None,
    overrides: Sequence[str],
    out: str | Path,
    resume: bool = False,
    preset: str = "auto",
    device: str = "cpu",
) -> tuple[dict[str, Any], list[str]]:
    """The run's config and the lines that say where it came from.

    A new run: code defaults <- ``config_path`` <- the CPU preset (``preset`` ``cpu``, or
    ``auto`` on the CPU) <- overrides. ``resume``: the method's code defaults <- the run's own
    ``out/config.yaml`` <- overrides (the config file and the preset are not applied again, so a
    resumed run keeps its settings; an option added since the run was written takes its default).
    """
    from selfdesc.distributed import available_cores
    from selfdesc.training.presets import cpu_preset

    with_overrides = f" with {' '.join(overrides)}" if overrides else ""
    notes: list[str] = []
    if resume:
        saved = Path(out) / "config.yaml"
        if not saved.is_file():
            raise ConfigError(f"{saved}: no such file; --resume continues a run folder written by selfdesc train")
        saved_conf = read_yaml(saved)
        # over the code defaults, so a run written before an option existed resumes with its default
        conf = load_config(default_config(method_name(saved_conf, overrides)), saved, overrides, open_keys=OPEN_KEYS, content=saved_conf)
        notes.append(f"config: {saved} (the run's own settings)" + with_overrides)
        if config_path is not None:
            notes.append(f"--config {config_path} ignored: a resumed run keeps its config.yaml (change values with key=value)")
        return conf, notes
    conf = _file_config(config_path, overrides)
    if preset == "cpu" or (preset == "auto" and device == "cpu"):
        conf, changes = cpu_preset(conf, available_cores())
        overridden = {text.split("=", 1)[0].strip() for text in overrides}
        kept = [c for c in changes if c.split(" ", 1)[0] not in overridden]
        if kept:
            notes.append("CPU preset (--preset none keeps the config as written): " + ", ".join(kept))
    for text in overrides:
        try:
            conf = merge(conf, parse_override(text), open_keys=OPEN_KEYS)
        except ConfigError as exc:
            raise ConfigError(f"override {text}: {exc}") from None
    notes.insert(0, f"config: {config_path or 'code defaults'}" + with_overrides)
    return conf, notes


def _warm_start(method: Any, name: str, init_from: str | Path, out: Path, resume: bool) -> str:
    """Apply ``--init-from`` to a new run (recorded in ``out/init_from.txt``); the line to print."""
    from selfdesc.io.atomic import write_text_atomic
    from selfdesc.training.checkpoint import latest_checkpoint
    from selfdesc.training.warm_start import warm_start

    if resume:
        return f"--init-from {init_from} ignored: a resumed run continues from its checkpoint"
    report = warm_start(method, init_from, name)
    if latest_checkpoint(out) is None:  # else the trainer refuses the folder; leave its record alone
        out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out / "init_from.txt", report.summary(init_from, full=True) + "\n")
    return report.summary(init_from).replace("\n", "\nselfdesc train:   ")


def train_run(
    conf: dict[str, Any],
    notes: list[str],
    images: str | Path,
    out: str | Path,
    device: str = "cpu",
    resume: bool = False,
    max_minutes: float | None = None,
    init_from: str | Path | None = None,
) -> None:
    """Train the method of ``conf`` on ``images`` into the run folder ``out``.

    Prints ``notes`` and what the run will do before the first step, and the last metrics at the
    end. ``max_minutes`` stops at the first step after that long (with a checkpoint);
    ``init_from`` warm-starts a new run from a model file (:mod:`selfdesc.training.warm_start`).
    """
    from selfdesc.distributed import available_cores
    from selfdesc.methods import build_method
    from selfdesc.training.image_folder import ImageFolder
    from selfdesc.training.trainer import TrainConfig, Trainer, loader_workers, seed_everything

    method_conf = dict(conf["method"])
    name = method_conf.pop("name")
    seed_everything(conf["train"]["seed"])  # the method's initial weights are part of a seeded run
    method = build_method(name, method_conf)
    notes = list(notes)
    if init_from is not None:
        notes.append(_warm_start(method, name, init_from, Path(out), resume))
    loader_options = getattr(method, "loader_options", None)  # extras the method needs from the loader
    dataset = ImageFolder(images, **(loader_options(conf["data"]) if loader_options else {"size": tuple(conf["data"]["size"])}))
    train_conf = TrainConfig(**conf["train"])
    validate = None
    if conf["val"]["images"] is None and conf["val"].get("pose_root") is not None:
        raise ConfigError("val.pose_root needs val.images (real pairs are validated beside the held-out synthetic set)")
    if conf["val"]["images"] is not None:
        from selfdesc.training.validation import SyntheticValidation, ValidationConfig

        validation = getattr(method, "validation", SyntheticValidation)  # a method may bring its own
        validate = validation(ValidationConfig(**conf["val"]), name, out, device=device, progress=train_conf.progress)
    trainer = Trainer(method, dataset, train_conf, out, device=device, validate=validate, full_config=conf)
    if trainer.is_main:
        workers = loader_workers(train_conf.num_workers, trainer.world)
        crop = conf["method"].get("hcrops", {}).get("crop_size")
        lines = [
            *notes,
            f"image files: {len(dataset.files)} in {images}",
            f"method {name} on {device} ({available_cores()} CPU cores, {workers} loader worker(s)), precision {train_conf.precision}",
            f"each step: {train_conf.batch_size} images -> {train_conf.batch_size} pairs of "
            + (f"{crop}x{crop} crops" if crop else "views")
            + f" from images resized to {conf['data']['size'][0]}x{conf['data']['size'][1]}; {train_conf.steps} steps"
            + (f", time limit {max_minutes:g} min" if max_minutes else ""),
            (
                f"validation: {len(validate.pairs)} synthetic pairs"
                + (f" and {len(validate.pose_pairs)} real pose pairs" if validate.pose_pairs else "")
                + f" every {train_conf.validate_every} steps, best.pt by {validate.conf.score}"
                if validate
                else "validation: off (val.images=DIR turns it on)"
            ),
        ]
        print("\n".join(f"selfdesc train: {line}" for line in lines), flush=True)
    last = trainer.fit(resume=resume, max_seconds=None if max_minutes is None else 60 * max_minutes)
    if dataset.skipped:
        print(f"skipped {len(dataset.skipped)} unreadable image(s), e.g. {dataset.skipped[0]}")
    if trainer.is_main:
        print(f"step {trainer.step}: " + ", ".join(f"{k} {v:.4g}" for k, v in last.items()))
        print(f"checkpoints in {trainer.run_dir / 'checkpoints'}")


__all__ = ["default_config", "load_run_config", "method_name", "resolve_run_config", "train_run"]
