"""Search settings: the scoring knobs that are tuned on validation queries and kept with the index.

Three knobs (docs/search.md "Methods and scores"):

- ``word_weight``, per method: ``b = c`` of query arithmetic in ``arithmetic`` and
  ``combined`` (``text`` has no image part, so the scale of its words does not matter);
- ``cosine_power``: ``g`` of the soft filter's score ``c~^g * p`` (``filter``, ``combined``);
- ``look_weight``: ``a``, the share of the look (the colour-blind shape vector,
  :mod:`stylesearch.model.look`) in the query of every method with an image, on an index whose
  model has one.

Where a search takes them from, first match wins: a request field or a command-line flag, then
the settings ``stylesearch tune`` wrote into the index's manifest, then :data:`DEFAULT_SETTINGS`
(the best general values measured, docs/results.md). Indexes written by ``index add`` and
``index delete`` keep the recorded settings; a rebuild starts untuned.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from stylesearch.errors import StylesearchError
from stylesearch.search.scoring import ArithmeticConfig

__all__ = [
    "ARITHMETIC_METHODS",
    "DEFAULT_SETTINGS",
    "SETTINGS_KEY",
    "SearchSettings",
    "SettingsError",
    "write_settings",
]

#: the manifest key that holds an index's tuned settings
SETTINGS_KEY = "search_settings"
#: the methods whose query vector mixes the image with word vectors
ARITHMETIC_METHODS = ("arithmetic", "combined")


class SettingsError(StylesearchError, ValueError):
    """Settings that cannot be used; the message names the value and its allowed range."""


def _check_weight(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise SettingsError(f"{what} must be a number >= 0, got {value!r}")
    if not math.isfinite(value):
        raise SettingsError(f"{what} must be finite, got {value!r}")
    return float(value)


def _check_look(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise SettingsError(f"the look weight must be a number in [0, 1], got {value!r}")
    return float(value)


def _check_power(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise SettingsError(f"the cosine power must be a number > 0, got {value!r}")
    if not math.isfinite(value):
        raise SettingsError(f"the cosine power must be finite, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class SearchSettings:
    """The scoring settings in force, and where they came from.

    ``source``: ``"default"`` (:data:`DEFAULT_SETTINGS`), ``"tuned"`` (recorded by ``stylesearch
    tune``; ``tuned_on`` names the queries) or ``"given"`` (a flag or argument overrode them).
    """

    word_weight: Mapping[str, float]
    cosine_power: float
    look_weight: float = 0.3
    source: str = "default"
    tuned_on: str | None = None
    #: how the tuning chose (objective, grid, scores); informative only
    tuning: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.word_weight) - set(ARITHMETIC_METHODS))
        if unknown:
            raise SettingsError(
                f"word weights are for {', '.join(ARITHMETIC_METHODS)}, not {', '.join(unknown)}"
            )
        for method in ARITHMETIC_METHODS:
            if method not in self.word_weight:
                raise SettingsError(f"no word weight for {method!r}")
            _check_weight(self.word_weight[method], f"the word weight of {method!r}")
        _check_power(self.cosine_power)
        _check_look(self.look_weight)

    def arithmetic(self, method: str) -> ArithmeticConfig:
        """The query arithmetic of ``method`` (the defaults for methods without words)."""
        return ArithmeticConfig.with_word_weight(self.word_weight.get(method))

    def overridden(
        self,
        *,
        word_weight: float | None = None,
        cosine_power: float | None = None,
        look_weight: float | None = None,
    ) -> SearchSettings:
        """These settings with a word weight (for every method), a cosine power and / or a
        look weight given by the caller; unchanged when all are ``None``."""
        if word_weight is None and cosine_power is None and look_weight is None:
            return self
        weight = None if word_weight is None else _check_weight(word_weight, "the word weight")
        return replace(
            self,
            word_weight=self.word_weight
            if weight is None
            else dict.fromkeys(ARITHMETIC_METHODS, weight),
            cosine_power=self.cosine_power if cosine_power is None else _check_power(cosine_power),
            look_weight=self.look_weight if look_weight is None else _check_look(look_weight),
            source="given",
        )

    def to_dict(self) -> dict[str, Any]:
        """What ``/api/health`` and the manifest show: the values and their source."""
        return {
            "word_weight": dict(self.word_weight),
            "cosine_power": self.cosine_power,
            "look_weight": self.look_weight,
            "source": self.source,
            "tuned_on": self.tuned_on,
        }

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any]) -> SearchSettings:
        """The index's recorded settings, or :data:`DEFAULT_SETTINGS` when it has none.

        Raises:
            SettingsError: recorded settings that are not valid (the message says to tune
                again).
        """
        recorded = manifest.get(SETTINGS_KEY)
        if recorded is None:
            return DEFAULT_SETTINGS
        try:
            if not isinstance(recorded, Mapping) or not isinstance(
                recorded.get("word_weight"), Mapping
            ):
                raise SettingsError(f"expected an object with word_weight, got {recorded!r}")
            return cls(
                word_weight=dict(recorded["word_weight"]),
                cosine_power=recorded.get("cosine_power"),
                look_weight=recorded.get("look_weight", DEFAULT_SETTINGS.look_weight),
                source="tuned",
                tuned_on=recorded.get("tuned_on"),
                tuning=recorded.get("tuning") or {},
            )
        except SettingsError as exc:
            raise SettingsError(
                f"the index's recorded search settings are not valid ({exc}); run "
                "`stylesearch tune` again"
            ) from None


#: the settings of an index that was never tuned: the values that did best on the demo's
#: validation queries (docs/results.md, "MBMR against triplet at each loss's own look weight")
DEFAULT_SETTINGS = SearchSettings(
    word_weight={"arithmetic": 1.0, "combined": 0.25},
    cosine_power=4.0,
    look_weight=0.4,
    source="default",
)


def write_settings(
    index_dir: str | Path, settings: SearchSettings, *, tuning: Mapping[str, Any] | None = None
) -> None:
    """Record ``settings`` (and how they were chosen) in the index's manifest, atomically."""
    from stylesearch.index.store import read_manifest, write_manifest

    manifest = read_manifest(index_dir)
    manifest[SETTINGS_KEY] = {
        "word_weight": dict(settings.word_weight),
        "cosine_power": settings.cosine_power,
        "look_weight": settings.look_weight,
        "tuned_on": settings.tuned_on,
        "tuning": dict(tuning or settings.tuning),
    }
    write_manifest(index_dir, manifest)
