"""Save and load a model folder (ARCHITECTURE.md "Model folder").

A model folder holds exactly three plain files, and nothing in it is ever unpickled or executed:

* ``config.json``: format marker and version, library version, the model config, the text
  pipeline config, the vocabulary fingerprint and size, the sha256 of ``model.safetensors`` and
  an ``extra`` dict (e.g. a training summary);
* ``vocab.json``: the vocabulary (words in attribute-head order, counts), ``Vocabulary.write``;
* ``model.safetensors``: the full state dict (backbone included).

One optional file may follow: ``grounding.json``, each word's visual grounding
(:mod:`stylesearch.model.grounding`), written after training or by ``stylesearch vocab --write``.
It records the weights' sha256 and the vocabulary's fingerprint of the save it scored; a folder
without it (saved before grounding existed) loads as before, with ``model.grounding = None``,
and one that belongs to another save is ignored with a warning. ``synonyms.json``, the synonym
groups learned from the model (:mod:`stylesearch.model.synonyms`), follows the same rules
(``model.synonyms = None`` without it).

Each file is written to a temporary name in the same folder and moved into place with
``os.replace`` (:func:`stylesearch.folders.replace_files`); ``config.json`` goes last. A crash
therefore never leaves a half-written file, and a folder whose files come from different saves
is refused at load time by the sha256/fingerprint checks.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from stylesearch.config import ConfigError, ModelConfig, TextConfig, from_dict, to_dict
from stylesearch.errors import StylesearchError
from stylesearch.folders import ManifestFormat, read_manifest_json, recover, replace_files
from stylesearch.model.device import resolve_device
from stylesearch.model.grounding import Grounding
from stylesearch.model.joint import JointModel
from stylesearch.model.look import LOOK_VERSIONS
from stylesearch.model.synonyms import Synonyms

if TYPE_CHECKING:
    from stylesearch.text.vocabulary import Vocabulary

CONFIG_FILE = "config.json"
VOCAB_FILE = "vocab.json"
WEIGHTS_FILE = "model.safetensors"
GROUNDING_FILE = "grounding.json"
SYNONYMS_FILE = "synonyms.json"
FORMAT_NAME = "stylesearch-model"
FORMAT_VERSION = 1


class ModelFolderError(StylesearchError, ValueError):
    """A model folder that cannot be used (mismatched or corrupt files); says what to do."""


class StaleLookWarning(UserWarning):
    """A model folder whose look was fitted on grids read at another version than this
    stylesearch reads them (``stylesearch refit-look`` fits it again)."""


MANIFEST_FORMAT = ManifestFormat(
    file=CONFIG_FILE,
    name=FORMAT_NAME,
    title="stylesearch model config",
    newest=FORMAT_VERSION,
    oldest=0,  # every older folder loads (saved before format_version existed: 0)
    error=ModelFolderError,
    fix="upgrade stylesearch",
)


def _library_version() -> str:
    import stylesearch

    return str(getattr(stylesearch, "__version__", "0.1.0"))


def file_sha256(path: str | Path, *, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def save_model(
    model: JointModel,
    out_dir: str | Path,
    *,
    vocab: Vocabulary,
    text_config: TextConfig | None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Write ``model`` as a model folder (created if missing; existing files are replaced).

    Args:
        model: the model (a ``DistributedDataParallel`` wrapper is unwrapped).
        out_dir: the folder.
        vocab: the vocabulary the model was trained with; ``len(vocab)`` must equal
            ``model.vocab_size``.
        text_config: the text pipeline config that produced the bags of words.
        extra: JSON-serialisable extras stored under ``"extra"`` (e.g. a training summary).

    Raises:
        ValueError: vocabulary size and model disagree, or ``extra`` is not JSON-serialisable.
    """
    from safetensors.torch import save_file

    model = getattr(model, "module", model)  # unwrap DDP
    if len(vocab) != model.vocab_size:
        raise ValueError(
            f"vocabulary has {len(vocab)} words but the model was built for {model.vocab_size}"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    sha: dict[str, str] = {}

    def write_weights(tmp: Path) -> None:
        save_file(state, str(tmp), metadata={"format": FORMAT_NAME})
        sha["weights"] = file_sha256(tmp)

    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "library_version": _library_version(),
        "model": to_dict(model.config),
        "text": to_dict(text_config) if text_config is not None else None,
        "vocab_size": len(vocab),
        "vocab_fingerprint": vocab.fingerprint(),
        "look_version": None if model.look is None else model.look.version,
        "weights_file": WEIGHTS_FILE,
        "weights_sha256": "",
        "extra": extra or {},
    }
    try:
        json.dumps(meta)
    except TypeError as exc:
        raise ValueError(f"extra must be JSON-serialisable: {exc}") from None

    def write_config(tmp: Path) -> None:
        meta["weights_sha256"] = sha["weights"]
        tmp.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")

    replace_files(
        out_dir,
        {WEIGHTS_FILE: write_weights, VOCAB_FILE: vocab.write, CONFIG_FILE: write_config},
    )
    for name in (GROUNDING_FILE, SYNONYMS_FILE):  # they scored the weights just replaced
        (out_dir / name).unlink(missing_ok=True)


def _save_stamped(model_dir: str | Path, name: str, body: dict[str, Any]) -> Path:
    model_dir = Path(model_dir)
    meta = read_model_config(model_dir)
    body = body | {
        "vocab_fingerprint": meta.get("vocab_fingerprint"),
        "weights_sha256": meta.get("weights_sha256"),
    }

    def write(tmp: Path) -> None:
        tmp.write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")

    replace_files(model_dir, {name: write})
    return model_dir / name


def save_synonyms(model_dir: str | Path, synonyms: Synonyms) -> Path:
    """Write ``synonyms`` as the model folder's ``synonyms.json`` (atomically), stamped like
    ``grounding.json``; returns the file's path.

    Raises:
        ModelFolderError: a group has a word the folder's vocabulary does not have.
    """
    from stylesearch.text.vocabulary import Vocabulary

    vocab = Vocabulary.load(Path(model_dir) / VOCAB_FILE)
    unknown = [w for g in synonyms.groups for w in g if w not in vocab]
    if unknown:
        raise ModelFolderError(
            f"{model_dir}: synonym words not in the model's vocabulary: {', '.join(unknown)}"
        )
    return _save_stamped(model_dir, SYNONYMS_FILE, synonyms.to_dict())


def _read_stamped(
    model_dir: Path, name: str, parse: Any, what: str, meta: dict[str, Any] | None,
    weights_sha256: str | None,
) -> Any:  # fmt: skip
    """The folder's file ``name`` read by ``parse`` (a ``from_dict``), or ``None`` when there
    is none. One that cannot be read, or whose stamps (weights, vocabulary) differ from
    ``config.json`` because it ``what`` another save, is ``None`` too, with a warning saying
    how to compute it again."""
    path = model_dir / name
    if not path.is_file():
        return None
    meta = meta if meta is not None else read_model_config(model_dir)
    redo = f"; recompute it with `stylesearch vocab --model {model_dir} --catalog ... --write`"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        value = parse(data)
    except (OSError, ValueError, TypeError) as exc:
        warnings.warn(f"{path}: ignored, unreadable: {exc}{redo}", stacklevel=3)
        return None
    sha = weights_sha256 or meta.get("weights_sha256")
    if data.get("weights_sha256") != sha or data.get("vocab_fingerprint") != meta.get(
        "vocab_fingerprint"
    ):
        warnings.warn(f"{path}: ignored, it {what} another save of the model{redo}", stacklevel=3)
        return None
    return value


def read_synonyms(
    model_dir: str | Path, meta: dict[str, Any] | None = None, weights_sha256: str | None = None
) -> Synonyms | None:
    """The folder's ``synonyms.json``, or ``None`` when it has none (a folder saved before
    synonyms existed); one that cannot be read or that belongs to another save is ``None`` with
    a warning."""
    return _read_stamped(
        Path(model_dir), SYNONYMS_FILE, Synonyms.from_dict, "grouped", meta, weights_sha256
    )


def save_grounding(model_dir: str | Path, grounding: Grounding) -> Path:
    """Write ``grounding`` as the model folder's ``grounding.json`` (atomically), stamped with
    the sha256 of its weights and its vocabulary's fingerprint; returns the file's path.

    Raises:
        FileNotFoundError / ModelFolderError: ``model_dir`` is not a model folder.
        ModelFolderError: ``grounding`` scores words the folder's vocabulary does not have.
    """
    model_dir = Path(model_dir)
    meta = read_model_config(model_dir)
    body = grounding.to_dict() | {
        "vocab_fingerprint": meta.get("vocab_fingerprint"),
        "weights_sha256": meta.get("weights_sha256"),
    }
    if len(grounding.scores) != int(meta.get("vocab_size", -1)):
        raise ModelFolderError(
            f"{model_dir}: the grounding scores {len(grounding.scores)} words but the model's "
            f"vocabulary has {meta.get('vocab_size')}"
        )

    def write(tmp: Path) -> None:
        tmp.write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")

    replace_files(model_dir, {GROUNDING_FILE: write})
    return model_dir / GROUNDING_FILE


def read_grounding(
    model_dir: str | Path, meta: dict[str, Any] | None = None, weights_sha256: str | None = None
) -> Grounding | None:
    """The folder's ``grounding.json``, or ``None`` when it has none. One that cannot be read,
    or that scored another save (its stamps differ from ``config.json``), is ``None`` too, with
    a warning saying how to compute it again."""
    return _read_stamped(
        Path(model_dir), GROUNDING_FILE, Grounding.from_dict, "scored", meta, weights_sha256
    )


def model_is_complete(model_dir: str | Path) -> bool:
    """Whether ``model_dir`` holds the three files of one save (its checksums agree), without
    building the model: what a finished training run leaves."""
    from stylesearch.text.vocabulary import Vocabulary

    model_dir = Path(model_dir)
    try:
        meta = read_model_config(model_dir)
        vocab = Vocabulary.load(model_dir / VOCAB_FILE)
        return (
            vocab.fingerprint() == meta["vocab_fingerprint"]
            and file_sha256(model_dir / WEIGHTS_FILE) == meta["weights_sha256"]
        )
    except (OSError, ValueError, KeyError, TypeError):
        return False


def read_model_config(model_dir: str | Path) -> dict[str, Any]:
    """The parsed ``config.json`` of a model folder (no weights loaded).

    Raises:
        FileNotFoundError: not a model folder (missing folder or files).
        ModelFolderError: ``config.json`` is not a stylesearch model config.
    """
    model_dir = Path(model_dir)
    if not model_dir.exists():
        recover(model_dir)  # a `train --overwrite` killed between its swap's two renames
    if not model_dir.is_dir():
        raise FileNotFoundError(
            f"model folder not found: {model_dir} (train one with `stylesearch train`)"
        )
    missing = [n for n in (CONFIG_FILE, VOCAB_FILE, WEIGHTS_FILE) if not (model_dir / n).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{model_dir} is not a stylesearch model folder: missing {', '.join(missing)} "
            f"(a model folder holds {CONFIG_FILE}, {VOCAB_FILE} and {WEIGHTS_FILE}; "
            "train one with `stylesearch train`)"
        )
    return read_manifest_json(model_dir, MANIFEST_FORMAT, missing=f"{model_dir}: no {CONFIG_FILE}")


def load_model(model_dir: str | Path, *, device: str | torch.device = "cpu") -> JointModel:
    """Load a model folder written by :func:`save_model`, offline, in eval mode.

    The backbone is built without loading pretrained weights (``pretrained`` and
    ``weights_path`` in the saved config are ignored here): the safetensors file holds every
    weight. Checks, each with a clear error: the folder has its three files; the vocabulary's
    size and fingerprint match ``config.json``; the weights file's sha256 matches ``config.json``;
    the state dict matches the architecture exactly. A folder whose look was fitted on grids
    read at another version than this stylesearch reads them (``look_version``) loads with a
    warning.

    Returns:
        the model on ``device``, ``eval()``, with ``model.vocab``, ``model.text_config``,
        ``model.grounding`` (``None`` without a valid ``grounding.json``), ``model.synonyms``
        (``None`` without a valid ``synonyms.json``) set and
        ``model.fingerprint()`` = sha256 of ``model.safetensors``.

    Raises:
        FileNotFoundError: not a model folder.
        ModelFolderError: mismatched or corrupt files.
    """
    model_dir = Path(model_dir)
    meta = read_model_config(model_dir)
    model_config, text_config, vocab_size, vocab_fp, weights_sha = _saved_configs(model_dir, meta)
    vocab = _load_vocabulary(model_dir, vocab_size, vocab_fp)
    weights_path = model_dir / WEIGHTS_FILE
    actual_sha = file_sha256(weights_path)
    if actual_sha != weights_sha:
        raise ModelFolderError(
            f"{weights_path}: sha256 {actual_sha} does not match config.json ({weights_sha}); "
            "the weights file is corrupt or from another save"
        )

    model = JointModel(model_config, vocab_size, load_backbone_weights=False)
    _load_weights(model, weights_path)
    model.to(resolve_device(device))
    model.vocab = vocab
    model.text_config = text_config
    model._fingerprint = actual_sha
    model.grounding = read_grounding(model_dir, meta, actual_sha)
    model.synonyms = read_synonyms(model_dir, meta, actual_sha)
    _warn_of_older_looks(model_dir, meta, model)
    model.eval()
    return model


def _warn_of_older_looks(model_dir: Path, meta: dict[str, Any], model: JointModel) -> None:
    """Warn when the look of the model saved in ``model_dir`` was fitted on grids read at
    another version than this stylesearch reads them (``config.json``'s ``look_version``)."""
    saved = meta.get("look_version")
    if model.look is None or saved == model.look.version:
        return
    read = "before looks had versions" if saved is None else f"at version {saved}"
    warnings.warn(
        f"{model_dir}: its {model.look.kind!r} look was fitted on grids read {read}, and this "
        f"stylesearch reads them at version {model.look.version}. Search works, but the look's "
        "projection and the look head no longer fit the grids exactly; fit them again "
        f"(`stylesearch refit-look --model {model_dir}`), then rebuild its indexes",
        StaleLookWarning,
        stacklevel=3,
    )


def current_look_version(model_dir: str | Path) -> int | None:
    """The version (``LOOK_VERSIONS``) this stylesearch reads the look of the model saved in
    ``model_dir`` at, without loading its weights; ``None`` for a model without a look."""
    model_dir = Path(model_dir)
    config = _saved_configs(model_dir, read_model_config(model_dir))[0]
    return LOOK_VERSIONS[config.look_kind] if config.look_dim else None


def _saved_configs(
    model_dir: Path, meta: dict[str, Any]
) -> tuple[ModelConfig, TextConfig | None, int, str, str]:
    """``config.json``'s model and text configs (filled in for older folders), vocabulary size
    and fingerprint, and weights sha256; :class:`ModelFolderError` when incomplete."""
    try:
        # folders saved before the look existed have no look_dim: they have no look; those
        # saved before its kinds existed have no look_kind: their look reads the luminance;
        # those saved before the look head existed have no look_head: the linear head gives p
        saved = meta["model"]
        if isinstance(saved, dict):
            saved = {"look_dim": 0, "look_kind": "luminance", "look_head": 0, **saved}
        model_config = from_dict(ModelConfig, saved, where="model")
        text_meta = meta.get("text")
        # folders saved before pattern_participles existed built their vocabulary without it
        if isinstance(text_meta, dict):
            text_meta = {"pattern_participles": False, **text_meta}
        text_config = from_dict(TextConfig, text_meta, where="text") if text_meta else None
        vocab_size = int(meta["vocab_size"])
        vocab_fp = str(meta["vocab_fingerprint"])
        weights_sha = str(meta["weights_sha256"])
    except (KeyError, TypeError, ValueError, ConfigError) as exc:
        raise ModelFolderError(f"{model_dir / CONFIG_FILE}: incomplete or invalid: {exc}") from None
    return model_config, text_config, vocab_size, vocab_fp, weights_sha


def _load_vocabulary(model_dir: Path, vocab_size: int, vocab_fp: str) -> Vocabulary:
    """The folder's vocabulary, checked against the size and fingerprint ``config.json`` gives."""
    from stylesearch.text.vocabulary import Vocabulary

    try:
        vocab = Vocabulary.load(model_dir / VOCAB_FILE)
    except ValueError as exc:
        raise ModelFolderError(f"{model_dir}: unreadable vocabulary: {exc}") from None
    if len(vocab) != vocab_size or vocab.fingerprint() != vocab_fp:
        raise ModelFolderError(
            f"{model_dir}: {VOCAB_FILE} does not belong to this model: config.json expects "
            f"{vocab_size} words with fingerprint {vocab_fp}, {VOCAB_FILE} has {len(vocab)} "
            f"words with fingerprint {vocab.fingerprint()}. Restore the vocabulary the model "
            "was trained with (or retrain)."
        )
    return vocab


def _load_weights(model: JointModel, weights_path: Path) -> None:
    """Load the safetensors file into ``model`` (on the CPU), every key matching exactly."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(weights_path), device="cpu")
    except SafetensorError as exc:
        raise ModelFolderError(f"{weights_path}: not a readable safetensors file: {exc}") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelFolderError(
            f"{weights_path}: weights do not match the architecture in config.json: {exc}"
        ) from None
