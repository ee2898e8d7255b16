"""Name -> builder registry for the model zoo.

Registration is explicit (in ``kdzoo/models/__init__.py``); a duplicate name raises and a
miss lists the valid names, as in TF Model Garden's ``official/core/registry.py``.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping

import keras


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A registered model family.

    Attributes:
        name: registry name, e.g. ``"image_cnn"``.
        builder: function ``builder(num_classes, name=..., **config) -> keras.Model``.
        presets: preset name -> dict of builder keyword arguments (``"teacher"`` and
            ``"student"`` at least).
        modalities: the input keys the model reads, e.g. ``("image", "audio")``.
        description: one line for ``kdzoo list``.
    """

    name: str
    builder: Callable[..., keras.Model]
    presets: Mapping[str, Mapping]
    modalities: tuple[str, ...]
    description: str


@dataclasses.dataclass(frozen=True)
class PairSpec:
    """A named (teacher, student) pairing of registered models and presets."""

    name: str
    teacher: tuple[str, str]
    student: tuple[str, str]
    description: str


_MODELS: dict[str, ModelSpec] = {}
_PAIRS: dict[str, PairSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    """Adds ``spec`` to the registry; raises ``ValueError`` if the name is taken."""
    if spec.name in _MODELS:
        raise ValueError(f"A model named {spec.name!r} is already registered.")
    for required in ("teacher", "student"):
        if required not in spec.presets:
            raise ValueError(f"Model {spec.name!r} must define a {required!r} preset.")
    _MODELS[spec.name] = spec
    return spec


def register_pair(spec: PairSpec) -> PairSpec:
    """Adds a named teacher/student pair; raises ``ValueError`` if the name is taken."""
    if spec.name in _PAIRS:
        raise ValueError(f"A pair named {spec.name!r} is already registered.")
    for model_name, preset in (spec.teacher, spec.student):
        get_spec(model_name)
        _check_preset(model_name, preset)
    _PAIRS[spec.name] = spec
    return spec


def list_models() -> list[str]:
    """Returns the sorted names of the registered model families."""
    return sorted(_MODELS)


def list_pairs() -> list[str]:
    """Returns the sorted names of the registered teacher/student pairs."""
    return sorted(_PAIRS)


def get_spec(name: str) -> ModelSpec:
    """Returns the ``ModelSpec`` for ``name``; a miss lists the valid names."""
    try:
        return _MODELS[name]
    except KeyError:
        raise ValueError(
            f"Unknown model {name!r}. Valid names: {', '.join(list_models())}."
        ) from None


def get_pair(name: str) -> PairSpec:
    try:
        return _PAIRS[name]
    except KeyError:
        raise ValueError(
            f"Unknown pair {name!r}. Valid pairs: {', '.join(list_pairs())}."
        ) from None


def _check_preset(name: str, preset: str) -> Mapping:
    presets = get_spec(name).presets
    if preset not in presets:
        raise ValueError(
            f"Model {name!r} has no preset {preset!r}. Valid presets: {', '.join(presets)}."
        )
    return presets[preset]


def build(name: str, preset: str = "student", num_classes: int = 10, **overrides) -> keras.Model:
    """Builds a registered model.

    Args:
        name: a name from ``list_models()``.
        preset: a preset of that model, e.g. ``"teacher"`` or ``"student"``.
            Defaults to ``"student"``.
        num_classes: number of output logits. Defaults to 10.
        **overrides: builder keyword arguments that replace the preset's values
            (e.g. ``image_shape=(28, 28, 1)`` or ``dropout=0.0``).

    Returns:
        A functional ``keras.Model`` named ``f"{name}_{preset}"`` whose output is logits.
    """
    spec = get_spec(name)
    config = dict(_check_preset(name, preset))
    accepted = set(inspect.signature(spec.builder).parameters) - {"num_classes", "name"}
    unknown = sorted(set(overrides) - accepted)
    if unknown:
        raise ValueError(
            f"Unknown argument(s) {unknown} for model {name!r}. "
            f"Valid arguments: {', '.join(sorted(accepted))}."
        )
    config.update(overrides)
    config.setdefault("name", f"{name}_{preset}")
    return spec.builder(num_classes=num_classes, **config)


def build_pair(
    name: str, num_classes: int = 10, teacher_overrides=None, student_overrides=None, **shared
) -> tuple[keras.Model, keras.Model]:
    """Builds ``(teacher, student)`` for a named pair.

    ``name`` is either a registered pair (``list_pairs()``) or a model family, in which case
    the family's ``teacher`` and ``student`` presets are paired. ``shared`` overrides go to
    both builders where they accept them (e.g. input shapes); the per-side dicts go to one.
    """
    if name in _PAIRS:
        pair = _PAIRS[name]
    elif name in _MODELS:
        pair = PairSpec(name, (name, "teacher"), (name, "student"), "")
    else:
        raise ValueError(
            f"Unknown pair {name!r}. Valid pairs: {', '.join(list_pairs())}; "
            f"or a model family: {', '.join(list_models())}."
        )
    models = []
    for (model_name, preset), side in (
        (pair.teacher, teacher_overrides),
        (pair.student, student_overrides),
    ):
        accepted = set(inspect.signature(get_spec(model_name).builder).parameters)
        kwargs = {k: v for k, v in shared.items() if k in accepted}
        kwargs.update(side or {})
        models.append(build(model_name, preset, num_classes=num_classes, **kwargs))
    return models[0], models[1]
