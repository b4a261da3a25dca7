"""The vocabulary ``V``: words seen in at least ``min_count`` items (PAPER.md "Text preprocessing").

Word ids are row indices of the text tower's embedding table and of the attribute head, so the
order is part of a trained model: most frequent first (by document frequency, the number of items
containing the word), ties broken alphabetically, which makes :meth:`Vocabulary.build`
deterministic. :meth:`Vocabulary.fingerprint` hashes that order so a model can check it was given
the vocabulary it was trained with.

On disk a vocabulary is one JSON file::

    {"format_version": 1, "words": [...], "counts": [...], "n_items": N, "min_count": m}
"""

from __future__ import annotations

import difflib
import hashlib
import json
import numbers
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from stylesearch.folders import check_format_version, replace_files

__all__ = ["FORMAT_VERSION", "Vocabulary", "scaled_min_count"]

FORMAT_VERSION = 1


def scaled_min_count(n_items: int) -> int:
    """Default ``min_count`` for a catalog of ``n_items``: ``max(2, round(n_items / 1000))``.

    The paper keeps words seen in at least 500 of ~500k items; this keeps that ratio and never
    goes below 2 (a word seen once cannot be learned from).
    """
    if n_items < 0:
        raise ValueError(f"n_items must be >= 0, got {n_items}")
    return max(2, round(n_items / 1000))


class Vocabulary:
    """An ordered word list with document frequencies.

    Attributes:
        words: the words; a word's position is its id.
        counts: ``counts[i]`` is the number of items whose text contains ``words[i]``.
        n_items: number of items the vocabulary was built from.
        min_count: the document-frequency cutoff used to build it.
    """

    def __init__(self, words: list[str], counts: list[int], n_items: int, min_count: int) -> None:
        _validate(words, counts, n_items, min_count)
        self.words = list(words)
        self.counts = [int(c) for c in counts]
        self.n_items = int(n_items)
        self.min_count = int(min_count)
        self._ids = {w: i for i, w in enumerate(self.words)}

    # ------------------------------------------------------------------ construction

    @classmethod
    def build(
        cls, bags: Iterable[Iterable[str]], *, min_count: int, max_words: int | None = None
    ) -> Vocabulary:
        """Build from one bag of words per item.

        A word's count is the number of bags containing it (repeats within a bag count once).
        Words with ``count < min_count`` are dropped; the rest are ordered by count descending,
        then alphabetically, and the first ``max_words`` kept (``None``: all).
        """
        if not _is_int(min_count) or min_count < 1:
            raise ValueError(f"min_count must be an integer >= 1, got {min_count!r}")
        if max_words is not None and (not _is_int(max_words) or max_words < 1):
            raise ValueError(f"max_words must be an integer >= 1 or None, got {max_words!r}")
        df: Counter[str] = Counter()
        n_items = 0
        for bag in bags:
            if isinstance(bag, str):
                raise TypeError("each bag must be an iterable of words, not a string")
            n_items += 1
            df.update(set(bag))
        kept = sorted((w for w, c in df.items() if c >= min_count), key=lambda w: (-df[w], w))
        if max_words is not None:
            kept = kept[:max_words]
        return cls(kept, [df[w] for w in kept], n_items, min_count)

    # ------------------------------------------------------------------ container protocol

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return word in self._ids

    def __iter__(self) -> Iterator[str]:
        return iter(self.words)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Vocabulary):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]  # mutable lists inside

    def __repr__(self) -> str:
        head = ", ".join(self.words[:5]) + (", ..." if len(self.words) > 5 else "")
        return (
            f"Vocabulary({len(self)} words [{head}], n_items={self.n_items}, "
            f"min_count={self.min_count}, fingerprint={self.fingerprint()})"
        )

    # ------------------------------------------------------------------ lookups

    def get(self, word: str) -> int | None:
        """The id of ``word``, or ``None`` if it is not in the vocabulary."""
        return self._ids.get(word)

    def index(self, word: str) -> int:
        """The id of ``word``; ``KeyError`` naming the closest known words otherwise."""
        i = self._ids.get(word)
        if i is None:
            near = self.closest(word)
            hint = f"; closest: {', '.join(near)}" if near else ""
            raise KeyError(f"{word!r} is not in the vocabulary ({len(self)} words){hint}")
        return i

    def encode(self, words: Iterable[str]) -> list[int]:
        """Ids of the known ``words``, each once, in order of first appearance; unknown dropped."""
        seen: dict[int, None] = {}
        for w in words:
            i = self._ids.get(w)
            if i is not None:
                seen.setdefault(i, None)
        return list(seen)

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Words for ``ids`` (ints or numpy integers); ``IndexError`` for an id out of range."""
        out = []
        n = len(self.words)
        for raw in ids:
            i = int(raw)
            if not 0 <= i < n:
                raise IndexError(f"word id {i} out of range for a vocabulary of {n} words")
            out.append(self.words[i])
        return out

    def closest(self, word: str, n: int = 5) -> list[str]:
        """Up to ``n`` known words resembling ``word`` (for "did you mean" messages).

        First difflib close matches (similarity ratio >= 0.6, best first), then words that share a
        prefix with or contain / are contained in ``word`` (at least 3 letters in common); ties go
        to the more frequent word.
        """
        if n <= 0 or not self.words:
            return []
        query = word.strip().lower()
        if not query:
            return []
        matcher = difflib.SequenceMatcher()
        matcher.set_seq2(query)
        scored: list[tuple[float, int]] = []
        for i, w in enumerate(self.words):
            matcher.set_seq1(w)
            if (
                matcher.real_quick_ratio() >= 0.6
                and matcher.quick_ratio() >= 0.6
                and (ratio := matcher.ratio()) >= 0.6
            ):
                scored.append((-round(ratio, 9), i))
        result = [self.words[i] for _, i in sorted(scored)]
        if len(result) < n:
            chosen = set(result)
            for w in self.words:  # already most frequent first
                if w not in chosen and _related(query, w):
                    result.append(w)
                    if len(result) >= n:
                        break
        return result[:n]

    def fingerprint(self) -> str:
        """16 hex characters of sha256 over the ordered word list (counts excluded)."""
        digest = hashlib.sha256("\n".join(self.words).encode("utf-8")).hexdigest()
        return digest[:16]

    # ------------------------------------------------------------------ serialisation

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (the on-disk format)."""
        return {
            "format_version": FORMAT_VERSION,
            "words": list(self.words),
            "counts": list(self.counts),
            "n_items": self.n_items,
            "min_count": self.min_count,
        }

    @classmethod
    def from_dict(cls, d: Any) -> Vocabulary:
        """Inverse of :meth:`to_dict`; ``ValueError`` with a clear message if ``d`` is malformed."""
        if not isinstance(d, dict):
            raise ValueError(f"vocabulary: expected a JSON object, got {type(d).__name__}")
        required = ("format_version", "words", "counts", "n_items", "min_count")
        missing = [k for k in required if k not in d]
        if missing:
            raise ValueError(f"vocabulary: missing key(s): {', '.join(missing)}")
        unknown = sorted(set(d) - set(required))
        if unknown:
            raise ValueError(f"vocabulary: unknown key(s): {', '.join(unknown)}")
        check_format_version(d, FORMAT_VERSION, "vocabulary", oldest=FORMAT_VERSION)
        return cls(d["words"], d["counts"], d["n_items"], d["min_count"])

    def write(self, path: Path) -> None:
        """Write the JSON file at ``path`` in place (for a caller that replaces files atomically
        itself, e.g. :func:`stylesearch.folders.replace_files`)."""
        path.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=1) + "\n", "utf-8")

    def save(self, path: str | Path) -> Path:
        """Write the JSON file atomically (:func:`stylesearch.folders.replace_files`: a temporary
        file, then a rename); return its path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        replace_files(path.parent, {path.name: self.write})
        return path

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        """Read a file written by :meth:`save`; ``ValueError`` naming the file if malformed."""
        path = Path(path)
        try:
            data = json.loads(path.read_text("utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON: {exc}") from None
        except UnicodeDecodeError as exc:
            raise ValueError(f"{path}: not UTF-8 text: {exc}") from None
        try:
            return cls.from_dict(data)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None


def _related(query: str, word: str) -> bool:
    """Prefix or substring relation with at least 3 shared letters."""
    if len(query) < 3 or len(word) < 3:
        return False
    common = 0
    for a, b in zip(query, word, strict=False):
        if a != b:
            break
        common += 1
    return common >= 3 or query in word or word in query


def _is_int(x: object) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _validate(words: Any, counts: Any, n_items: Any, min_count: Any) -> None:
    """Raise ``ValueError`` (prefixed "vocabulary:") unless the fields are consistent."""
    if not isinstance(words, list) or not all(isinstance(w, str) and w for w in words):
        raise ValueError("vocabulary: 'words' must be a list of non-empty strings")
    if not isinstance(counts, list) or not all(_is_int(c) and c >= 0 for c in counts):
        raise ValueError("vocabulary: 'counts' must be a list of integers >= 0")
    if len(words) != len(counts):
        raise ValueError(
            f"vocabulary: {len(words)} words but {len(counts)} counts; the lengths must match"
        )
    if len(set(words)) != len(words):
        dupes = sorted(w for w, c in Counter(words).items() if c > 1)
        raise ValueError(f"vocabulary: duplicate word(s): {', '.join(dupes[:10])}")
    if not _is_int(n_items) or n_items < 0:
        raise ValueError(f"vocabulary: 'n_items' must be an integer >= 0, got {n_items!r}")
    if not _is_int(min_count) or min_count < 1:
        raise ValueError(f"vocabulary: 'min_count' must be an integer >= 1, got {min_count!r}")
