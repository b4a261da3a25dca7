"""The search service behind the HTTP API: one :class:`Searcher`, safe to call from many threads.

HTTP-free on purpose (no FastAPI import), so it can be tested and reused directly.

Thread safety: searches (word normalisation, query arithmetic, the vector backend, top-k) run under
one lock; encoding an uploaded image (the image tower, the slow part) runs under a second one, so
item-id queries never wait behind an upload's encoding. Everything else reads immutable data (the
vocabulary, the id -> row table built at start-up, memory-mapped arrays, ``os.pread`` of titles),
so item, vocabulary and random-item requests never wait for a search.

Item ids and attribute probabilities are read through the searcher (:meth:`Searcher.row`,
:meth:`Searcher.item_rows`, :meth:`Searcher.attributes`): a search looks each of its item ids up
once, and reads its results' attribute rows once for their attributes and the facets.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from stylesearch.config import DEFAULT_METHOD, METHOD_LABELS
from stylesearch.errors import StylesearchError
from stylesearch.index.fusion import TextFusion
from stylesearch.model.grounding import word_grounding
from stylesearch.search import Query, Searcher, UnknownItemError

__all__ = [
    "FACET_THRESHOLD",
    "LOOPBACK_HOSTS",
    "SearchService",
    "ServerLimits",
    "ServiceError",
    "UnknownItemError",
]

#: the Host names of this machine that a server bound to a loopback address answers by default
LOOPBACK_HOSTS: tuple[str, ...] = ("127.0.0.1", "localhost", "[::1]")

#: a result "has" an attribute in the facets when its predicted probability is at least this
FACET_THRESHOLD = 0.5
#: words the attribute head predicts for more than this share of the catalog ("size", "fit":
#: non-visual words it cannot tell apart) are never offered as facets
MAX_FACET_SHARE = 0.5


def rank_facets(
    p: np.ndarray,
    words: list[str],
    allowed: np.ndarray,
    limit: int,
    groups: Sequence[Sequence[int]] = (),
) -> list[dict[str, Any]]:
    """Facets of a result list: the allowed words most often predicted among its rows.

    Args:
        p: (R, V) attribute probabilities of the R results.
        words: the V vocabulary words.
        allowed: (V,) bool, the words that may be facets.
        limit: at most this many facets.
        groups: synonym groups as word ids, head first: a group is one facet under its head
            word, a result counting when it has any of the group's allowed words (their largest
            ``p``); the other words are no facets of their own. Empty: every word alone.

    Returns ``[{"word", "count", "synonyms", "label"}]`` (``synonyms``: the other words merged
    into the facet; ``label``: ``"red (also: scarlet, crimson)"``, the word alone without
    synonyms), most frequent first (ties: higher mean probability); words predicted for no
    result are left out.
    """
    p = np.asarray(p, dtype=np.float32)
    allowed = np.asarray(allowed, dtype=bool).copy()
    also: dict[int, list[str]] = {}
    if groups:
        p = p.copy()
        for group in groups:
            members = [int(i) for i in group if allowed[int(i)]]
            if len(members) < 2:
                continue
            head, rest = members[0], members[1:]
            p[:, head] = p[:, members].max(axis=1)
            allowed[rest] = False
            also[head] = [words[i] for i in rest]
    counts = np.where(allowed, (p >= FACET_THRESHOLD).sum(axis=0), 0)
    order = np.lexsort((-p.mean(axis=0), -counts))
    out = []
    for i in order[:limit].tolist():
        if counts[i]:
            others = also.get(i, [])
            label = f"{words[i]} (also: {', '.join(others)})" if others else words[i]
            out.append(
                {"word": words[i], "count": int(counts[i]), "synonyms": others, "label": label}
            )
    return out


class ServiceError(StylesearchError, ValueError):
    """An index and model that cannot be served (an empty index, a model without a vocabulary)."""


@dataclass(frozen=True)
class ServerLimits:
    """Request limits (docs/server.md "Limits and status codes").

    Attributes:
        max_upload_bytes: largest accepted query image upload, in bytes (413 above it).
        max_pixels: largest accepted query image, width x height, checked from the header
            before decoding (413 above it).
        max_decode_bytes: the most memory that decoding one query image may take, estimated
            from its header before decoding (after a JPEG's scaled decoding; 413 above it).
        max_decoding: how many uploads are decoded at once; others wait their turn.
        max_k: largest number of results per search.
        max_random: largest ``n`` of ``/api/random-items``.
        max_vocabulary: largest ``limit`` of ``/api/vocabulary``.
        result_attributes: how many of its most probable attributes each result carries.
        facets: how many facets a search response carries at most.
        header_timeout: seconds a client may take to send a request's headers, from the
            connection's opening or the previous response (then 408 and closed; applied by the
            HTTP protocol of :mod:`stylesearch.server.protocol`, which ``serve`` runs).
        body_timeout: seconds a client may take to send a request's body after its headers
            (408 and closed after; at 10 MiB, a client slower than about 350 KB/s is cut).
        max_header_bytes: the largest request line plus headers (400 above it; likewise
            applied by that protocol).
        allowed_hosts: the ``Host`` names answered (400 ``bad_host`` for others; a port is
            ignored; ``"*"``: any); browsers' POSTs must come from this server's own origin
            or from one of these names that is not a loopback name (403 ``cross_site``).
    """

    max_upload_bytes: int = 10 * 1024 * 1024
    max_pixels: int = 25_000_000
    max_decode_bytes: int = 48 * 1024 * 1024
    max_decoding: int = 2
    max_k: int = 100
    max_random: int = 100
    max_vocabulary: int = 100
    result_attributes: int = 5
    facets: int = 12
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_header_bytes: int = 16 * 1024
    allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS


class SearchService:
    """A loaded searcher plus the read-only tables the API needs.

    Args:
        searcher: the loaded :class:`~stylesearch.search.Searcher`.
        limits: request limits.
    """

    def __init__(self, searcher: Searcher, limits: ServerLimits | None = None) -> None:
        self.searcher = searcher
        self.index = searcher.index
        self.limits = limits or ServerLimits()
        vocab = searcher.model.vocab
        if vocab is None:
            raise ServiceError("the model has no vocabulary; it cannot serve word queries")
        self.vocab = vocab
        self.words: list[str] = list(vocab.words)
        self.counts: list[int] = list(vocab.counts)
        self.grounding = getattr(searcher.model, "grounding", None)
        # words below the searcher's grounding threshold are never suggested nor facets
        self.visual = searcher.visual_words
        # most frequent first, then alphabetical: the autocomplete order
        self._by_count = sorted(
            range(len(self.words)), key=lambda i: (-self.counts[i], self.words[i])
        )
        if self.index.count < 1:
            raise ServiceError("the index is empty")
        # share of (a sample of) the catalog for which the head predicts each word
        sample = np.unique(np.linspace(0, self.index.count - 1, num=20000).astype(np.int64))
        probs = searcher.attributes(sample)
        self._facet_words = (
            (probs >= FACET_THRESHOLD).mean(axis=0) <= MAX_FACET_SHARE
        ) & self.visual
        self._lock = threading.Lock()
        self._encode_lock = threading.Lock()
        self.index.row_of("")  # build the id -> row table now: later lookups only read it

    @classmethod
    def load(
        cls,
        index_dir: Any,
        *,
        model_dir: Any = None,
        device: str = "cpu",
        limits: ServerLimits | None = None,
        **searcher: Any,
    ) -> SearchService:
        """Open the index and its model once (see :meth:`Searcher.load`; ``searcher``: its
        scoring overrides, ``word_weight``, ``cosine_power`` and ``look_weight``, and its
        ``grounding_threshold``)."""
        return cls(Searcher.load(index_dir, model_dir=model_dir, device=device, **searcher), limits)

    # ------------------------------------------------------------------ items

    def top_attributes(
        self, p: np.ndarray, n: int, visual_only: bool = False
    ) -> list[dict[str, Any]]:
        """The ``n`` most probable attribute words of an item whose probabilities are ``p``
        (``(V,)``, a row of :meth:`Searcher.attributes`): ``[{"word", "p"}]``, best first; only
        the visual words when ``visual_only``."""
        if visual_only and self.visual.any():
            p = np.where(self.visual, p, np.float32(-1.0))
            n = min(n, int(self.visual.sum()))
        n = min(n, p.shape[0])
        top = np.argpartition(-p, n - 1)[:n]
        top = top[np.lexsort((top, -p[top]))]
        return [{"word": self.words[i], "p": round(float(p[i]), 4)} for i in top.tolist()]

    def item_summary(self, row: int) -> dict[str, Any]:
        rec = self.index.item(row)
        return {"id": rec.id, "title": rec.title, "image_url": image_url(rec.id)}

    def item(self, item_id: str) -> dict[str, Any]:
        """One item: id, title, image URL, its 8 most probable attributes, metadata words."""
        row = self.searcher.row(item_id)
        words = self.vocab.decode(self.index.metadata_word_ids(row).tolist())
        return self.item_summary(row) | {
            "attributes": self.top_attributes(self.searcher.attributes([row])[0], 8),
            "metadata": words,
        }

    def image_path(self, item_id: str) -> str:
        """The stored image path of an item (from the index, never from a client)."""
        return self.index.item(self.searcher.row(item_id)).image

    def random_items(self, n: int, seed: int | None = None) -> list[dict[str, Any]]:
        """``n`` distinct items drawn at random (reproducibly with ``seed``)."""
        live = self.index.live_mask()
        pool = np.arange(self.index.count) if live is None else np.flatnonzero(live)
        n = max(0, min(n, pool.shape[0]))
        rows = np.random.default_rng(seed).choice(pool, size=n, replace=False)
        return [self.item_summary(int(r)) for r in rows]

    def vocabulary(
        self, prefix: str, limit: int, visual_only: bool = True
    ) -> tuple[list[dict[str, Any]], int]:
        """Vocabulary words for autocomplete: words starting with ``prefix``, then words
        containing it; each group most frequent first; only the visual words unless
        ``visual_only`` is false. Returns ``(words, total matches)``."""
        prefix = prefix.strip().lower()
        pool = [i for i in self._by_count if self.visual[i]] if visual_only else self._by_count
        starts = [i for i in pool if self.words[i].startswith(prefix)]
        inside = []
        if prefix:
            inside = [i for i in pool if prefix in self.words[i][1:]]
            inside = [i for i in inside if not self.words[i].startswith(prefix)]
        hits = starts + inside
        return [self._word(i) for i in hits[:limit]], len(hits)

    def _word(self, i: int) -> dict[str, Any]:
        """A vocabulary entry: word, catalog count, grounding and whether it is visual at the
        searcher's threshold (null and true for a model folder without grounding scores)."""
        word = self.words[i]
        score, _ = word_grounding(self.grounding, word)
        visual = bool(self.visual[i])
        learned = getattr(self.searcher.model, "synonyms", None)
        others = learned.others(word) if learned is not None and self.searcher.synonyms else []
        return {
            "word": word,
            "count": self.counts[i],
            "grounding": score,
            "visual": visual,
            "synonyms": others,
        }

    # ------------------------------------------------------------------ search

    def search(self, query: Query) -> dict[str, Any]:
        """Answer ``query``: the ``search --json`` object, each result with its image URL and its
        most probable attributes, plus ``facets``.

        Raises:
            UnknownItemError: ``query.item_id`` (or a ``like`` / ``unlike`` id) is not indexed,
                found before any other work, an upload's encoding included.
            SearchError / ImageError: a query that cannot be answered (HTTP 400 / 413).
        """
        rows = self.searcher.item_rows(query)  # UnknownItemError: 404
        vector = None
        if query.image is not None and query.item_id is None and query.method != "text":
            with self._encode_lock:  # the image tower; item queries do not wait for it
                vector = self.searcher.encode_image(query.image)
        with self._lock:
            response = self.searcher.search(query, image_vector=vector, rows=rows)
        out = response.to_dict()
        p = self.searcher.attributes([r.row for r in response.results])  # (R, V)
        for result, p_row in zip(out["results"], p, strict=True):
            result["image_url"] = image_url(result["id"])
            result["attributes"] = self.top_attributes(
                p_row, self.limits.result_attributes, visual_only=True
            )
        out["facets"] = self.facets(p)
        return out

    def facets(self, p: np.ndarray) -> list[dict[str, Any]]:
        """The attributes most often predicted (``p >= FACET_THRESHOLD``) among the current
        results, whose probabilities are ``p`` (``(R, V)``, so the counts follow them), leaving
        out words predicted for most of the catalog and words that are not visual, with the
        model's synonym groups merged (when the searcher's synonyms are on): ``[{"word",
        "count", "synonyms", "label"}]`` (:func:`rank_facets`)."""
        if not len(p):
            return []
        return rank_facets(
            p, self.words, self._facet_words, self.limits.facets, groups=self._synonym_groups()
        )

    def _synonym_groups(self) -> list[list[int]]:
        """The model's synonym groups as word ids (head first); none when the searcher's
        synonyms are off or the model has none."""
        learned = getattr(self.searcher.model, "synonyms", None)
        if not self.searcher.synonyms or learned is None:
            return []
        return [[self.vocab.index(w) for w in g if w in self.vocab] for g in learned.groups]

    def health(self) -> dict[str, Any]:
        from stylesearch import __version__

        manifest = self.index.manifest
        look = self.searcher.model.look
        fusion = TextFusion.from_manifest(manifest)
        return {
            "status": "ok",
            "version": __version__,
            "items": self.index.live_count,
            "vocabulary": len(self.words),
            "dimension": self.index.dimension,
            "look_dim": 0 if look is None else look.dim,
            "look_kind": None if look is None else look.kind,
            "backend": manifest.get("backend", {}).get("name"),
            "model_fingerprint": str(manifest.get("model_fingerprint", ""))[:12],
            "text_fusion": {"rule": fusion.rule, "weight": fusion.weight},
            "settings": self.searcher.settings.to_dict(),
            "grounding_threshold": self.searcher.grounding_threshold,
            "visual_words": int(self.visual.sum()),
            "methods": [{"name": m, "label": label} for m, label in METHOD_LABELS.items()],
            "default_method": DEFAULT_METHOD,
        }


def image_url(item_id: str) -> str:
    """The API path of an item's image (ids are percent-encoded)."""
    from urllib.parse import quote

    return f"/api/items/{quote(item_id, safe='')}/image"
