"""The :class:`Searcher`: an index, the model it was built with, and the six search methods.

    >>> searcher = Searcher.load("runs/demo/index")                       # doctest: +SKIP
    >>> response = searcher.search(Query(image="q.png", add=["red"], method="combined"))
    >>> response.to_dict()  # {"method", "query", "took_ms", "results": [...], "message"}

Methods (``f_I``: the unit query image vector; ``f_T(w)``: a word's vector; see
:mod:`stylesearch.search.scoring` for the scores):

==============  =================================================  ============================
method          query vector                                       ranked by
==============  =================================================  ============================
``visual``      ``f_I`` (words ignored)                            cos
``text``        ``sum f_T(w+) - sum f_T(w-)`` (normalised parts)   cos
``arithmetic``  ``f_I + sum f_T(w+) - sum f_T(w-)`` (configurable) cos
``filter``      ``f_I``                                            ``((1 + cos) / 2)^g * p``
``filter-hard`` ``f_I``; w+ must be in the metadata, w- must not   cos among the allowed items
``combined``    the ``arithmetic`` query                           ``((1 + cos) / 2)^g * p``
==============  =================================================  ============================

(``g``: the cosine power; the word weights and ``g`` come from the :mod:`settings
<stylesearch.search.settings>` in force: the query's own, the searcher's, the index's tuned ones
or the measured defaults.) Every query may also carry hard metadata
filters (``must`` / ``must_not``), applied before ranking in every method. Each result reports
``score`` (what ranked it), ``cosine`` (raw), ``attribute_score`` (``p`` of the query's words; 1.0
without words, reported for every method) and the title. A query by ``item_id`` uses that item's
stored vector (the item itself is not excluded). Query words go through the model's text pipeline
("Dresses" -> "dress"); a word outside the vocabulary raises
:class:`~stylesearch.search.words.UnknownWordError` listing the closest vocabulary words. A hard
filter that matches nothing gives an empty result with a ``message``, not an error. The response
and result classes live in :mod:`stylesearch.search.response`.

Words that are not visual (their grounding, :mod:`stylesearch.model.grounding`, is below the
searcher's ``grounding_threshold``: brands, "bestseller", "washable") are no evidence an image can
give. Every method but ``filter-hard`` leaves such a wanted or unwanted word out: it adds no word
vector to the query and no factor to ``p``. The response lists it in ``ignored_words`` and says
so in its ``message``. ``filter-hard`` and the ``must`` / ``must_not`` filters match the
metadata's text, so they use every word. A model folder without grounding scores, or
``grounding_threshold=None``, uses every word, as before grounding existed.

Synonyms: with the model's learned synonym groups (:mod:`stylesearch.model.synonyms`) and
``synonyms`` on (the default; off per searcher or per :class:`Query`), a metadata filter word
(``filter-hard``'s words, ``must`` / ``must_not``) covers its group: ``+red`` keeps an item
whose metadata says "red", "scarlet" or "crimson", ``-red`` drops all of them. The soft filter
and the query arithmetic use the word as given (its own ``p_w`` and vector). The response's
``synonyms`` maps each word expanded to the group it used.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from stylesearch.index.filters import RowFilter
from stylesearch.index.store import Index
from stylesearch.model.device import resolve_device
from stylesearch.model.grounding import (
    VISUAL_THRESHOLD,
    check_threshold,
    not_visual_note,
    visual_mask,
)
from stylesearch.search import kernels
from stylesearch.search.feedback import apply_feedback, drop_rows
from stylesearch.search.query import ItemRows, Query, QueryError, UnknownItemError
from stylesearch.search.response import Result, SearchResponse
from stylesearch.search.scoring import ArithmeticConfig, compose_query, with_look
from stylesearch.search.settings import ARITHMETIC_METHODS, SearchSettings, SettingsError
from stylesearch.search.topk import (
    TopK,
    TopKConfig,
    attribute_probs,
    hard_filter_mask,
    hard_filter_topk,
    index_removal_scale,
    soft_filter_topk,
)
from stylesearch.search.words import QueryWords, UnknownWordError, query_words

if TYPE_CHECKING:
    from stylesearch.model.joint import JointModel
    from stylesearch.text.pipeline import TextPipeline

__all__ = ["Searcher"]

SOFT_METHODS = ("filter", "combined")


class Searcher:
    """Search an index with the model it was built with.

    Args:
        index: a loaded :class:`~stylesearch.index.store.Index`.
        model: the :class:`~stylesearch.model.joint.JointModel` whose fingerprint the index
            records (checked here: :class:`IndexMismatchError` otherwise).
        settings: the word weights and cosine power (default: the ones the index records,
            else :data:`~stylesearch.search.settings.DEFAULT_SETTINGS`).
        word_weight: overrides the settings' word weight of every method (``b = c``).
        cosine_power: overrides ``g`` of the soft-filter score ``c~^g * p`` (``filter``,
            ``combined``); 1 is the plain product, larger values weigh the looks more.
        look_weight: overrides ``a``, the look's share of the query (an index with a look).
        arithmetic: the whole query-arithmetic config of every method (weights and
            normalisation); overrides ``word_weight`` and the settings' weights.
        topk: the exact top-k's knobs (speed only, never the result).
        grounding_threshold: least visual grounding of a word used to rank (module docstring;
            default: the measured :data:`~stylesearch.model.grounding.VISUAL_THRESHOLD`);
            ``None`` uses every word.
        synonyms: let a metadata filter word cover its learned synonym group (module
            docstring); no effect for a model folder without ``synonyms.json``.
        device: torch device for encoding query images.
    """

    def __init__(
        self,
        index: Index,
        model: JointModel,
        *,
        settings: SearchSettings | None = None,
        word_weight: float | None = None,
        cosine_power: float | None = None,
        look_weight: float | None = None,
        arithmetic: ArithmeticConfig | None = None,
        topk: TopKConfig | None = None,
        grounding_threshold: float | None = VISUAL_THRESHOLD,
        synonyms: bool = True,
        device: str = "cpu",
    ) -> None:
        index.check_model(model)
        try:
            self.grounding_threshold = check_threshold(grounding_threshold)
        except ValueError as exc:
            raise SettingsError(str(exc)) from None
        #: (V,) bool: the vocabulary words used to rank (all without grounding scores)
        self.visual_words = visual_mask(
            getattr(model, "grounding", None),
            [] if model.vocab is None else model.vocab.words,
            self.grounding_threshold,
            getattr(model, "synonyms", None),
        )
        #: expand metadata filter words to their synonym groups (by default)
        self.synonyms = bool(synonyms)
        base = settings or SearchSettings.from_manifest(index.manifest)  # SettingsError if bad
        self.settings = base.overridden(
            word_weight=word_weight, cosine_power=cosine_power, look_weight=look_weight
        )
        self._arithmetic = arithmetic
        if arithmetic is not None:
            self.settings = self.settings.overridden(word_weight=arithmetic.add_weight)
        self.index = index
        self.model = model
        self.topk = topk or TopKConfig()
        self.device = resolve_device(device)
        self._pipeline: TextPipeline | None = None
        self._transform: Any = None

    @classmethod
    def load(
        cls,
        index_dir: str | Path,
        *,
        model_dir: str | Path | None = None,
        device: str = "cpu",
        **kwargs: Any,
    ) -> Searcher:
        """Open ``index_dir`` and the model it records (or ``model_dir``), checking they match."""
        from stylesearch.model.io import load_model

        index = Index.load(index_dir)
        model = load_model(index.model_dir(model_dir), device=device)
        searcher = cls(index, model, device=device, **kwargs)
        searcher.pipeline.load()  # load the text pipeline now, not inside the first query
        kernels.warm_up()  # and the soft filter's compiled loops
        return searcher

    def with_settings(
        self,
        *,
        word_weight: float | None = None,
        cosine_power: float | None = None,
        look_weight: float | None = None,
    ) -> Searcher:
        """A searcher of the same index, model and words with these settings overridden. It
        shares this one's text pipeline, so a query word is read once for all of them (the
        tuning's grid runs every query once per setting). An ``arithmetic`` config given to
        this one's constructor is not carried over: the new one's comes from its settings."""
        other = copy.copy(self)
        other.settings = self.settings.overridden(
            word_weight=word_weight, cosine_power=cosine_power, look_weight=look_weight
        )
        other._arithmetic = None
        other._pipeline = self.pipeline
        return other

    @property
    def cosine_power(self) -> float:
        return self.settings.cosine_power

    def arithmetic_for(
        self, method: str, settings: SearchSettings | None = None
    ) -> ArithmeticConfig:
        """The query arithmetic ``method`` uses under ``settings`` (default: the searcher's)."""
        if self._arithmetic is not None and settings is None:
            return self._arithmetic
        return (settings or self.settings).arithmetic(method)

    # ------------------------------------------------------------------ words

    @property
    def pipeline(self) -> TextPipeline:
        if self._pipeline is None:
            from stylesearch.text.pipeline import TextPipeline

            self._pipeline = TextPipeline(self.model.text_config)
        return self._pipeline

    def word_id(self, word: str) -> int:
        """Vocabulary id of a user's word through the text pipeline; UnknownWordError if none."""
        vocab = self.model.vocab
        assert vocab is not None
        token = self.pipeline.normalize_query_word(word, vocabulary=vocab)
        if token is None or token not in vocab:
            raise UnknownWordError(word, vocab.closest(token or word), len(vocab))
        return int(vocab.index(token))

    def _ids(self, words: Any) -> list[int]:
        return list(dict.fromkeys(self.word_id(w) for w in words))

    def _query_words(self, query: Query) -> QueryWords:
        """The query's words as vocabulary ids (:func:`~stylesearch.search.words.query_words`)."""
        return query_words(query, self._ids, self.model.vocab, self.visual_words, self.ignored_note)

    def synonym_groups(self, ids: list[int], use: bool | None = None) -> list[list[int]]:
        """Each word of ``ids`` with its synonyms (its own id first) when synonyms are on
        (``use``, default the searcher's) and the model has groups; ``[[id]]`` each else."""
        learned = getattr(self.model, "synonyms", None)
        if not (self.synonyms if use is None else use) or learned is None:
            return [[i] for i in ids]
        vocab = self.model.vocab
        assert vocab is not None
        out = []
        for i in ids:
            word = vocab.decode([i])[0]
            others = [w for w in learned.others(word) if w in vocab]
            out.append([i, *(int(vocab.index(w)) for w in others)])
        return out

    def ignored_note(self, ids: list[int]) -> str:
        """The message of a query whose words ``ids`` were left out as not visual."""
        assert self.model.vocab is not None and self.grounding_threshold is not None
        return not_visual_note(
            self.model.grounding, self.model.vocab.decode(ids), self.grounding_threshold
        )

    # ------------------------------------------------------------------ items

    def row(self, item_id: str) -> int:
        """The index row of the live item ``item_id``; :class:`UnknownItemError` if none."""
        row = self.index.row_of(item_id)
        if row is None:
            raise UnknownItemError(item_id)
        return row

    def item_rows(self, query: Query) -> ItemRows:
        """The rows of the query's items, each id looked up once: its ``item_id``, then its
        ``like`` and ``unlike`` ids (:class:`UnknownItemError` for the first one unknown)."""
        return ItemRows(
            None if query.item_id is None else self.row(query.item_id),
            [self.row(item_id) for item_id in dict.fromkeys(query.like)],
            [self.row(item_id) for item_id in dict.fromkeys(query.unlike)],
        )

    def attributes(self, rows: Any) -> np.ndarray:
        """``(R, V)`` float32: the attribute probabilities ``p_w`` the index holds for ``rows``."""
        return np.asarray(self.index.attributes[np.asarray(rows, dtype=np.int64)], np.float32)

    # ------------------------------------------------------------------ vectors

    def encode_image(self, image: Any) -> np.ndarray:
        """A path / bytes / PIL image -> its unit index vector ``(index_dim,)`` float32, as
        the index stores its items' (:meth:`JointModel.encode_index`)."""
        import torch

        from stylesearch.catalog.images import load_image
        from stylesearch.catalog.transforms import eval_transform

        size = self.model.config.image_size
        if self._transform is None:
            self._transform = eval_transform(size)
        tensor = self._transform(load_image(image, shrink_to=size))[None].to(self.device)
        with torch.no_grad():
            vec = self.model.encode_index(tensor)
        return vec[0].float().cpu().numpy()

    def word_vectors(self, ids: list[int]) -> np.ndarray:
        """``(W, D)`` float32 single-word embeddings ``f_T(w)`` (unnormalised)."""
        import torch

        if not ids:
            return np.zeros((0, self.model.config.embed_dim), np.float32)
        with torch.no_grad():
            t = torch.as_tensor(ids, dtype=torch.long, device=self.device)
            return self.model.encode_words(t).float().cpu().numpy()

    # ------------------------------------------------------------------ search

    def search(
        self,
        query: Query,
        *,
        image_vector: np.ndarray | None = None,
        rows: ItemRows | None = None,
    ) -> SearchResponse:
        """Answer one query (see the module docstring).

        ``image_vector``: ``query.image`` already encoded by :meth:`encode_image` ``(D,)``, used
        instead of encoding it again (the server encodes uploads outside its search lock).
        ``rows``: the query's :meth:`item_rows`, when the caller has looked them up already.
        """
        t0 = time.perf_counter()
        query.validate()
        words = self._query_words(query)
        add, remove, must, must_not = words.add, words.remove, words.must, words.must_not
        vocab = self.model.vocab
        assert vocab is not None
        method = query.method
        notes = [self.ignored_note(words.ignored)] if words.ignored else []
        ignored = vocab.decode(words.ignored)
        understood = query.as_dict() | {
            "add": vocab.decode(add),
            "remove": vocab.decode(remove),
            "must": vocab.decode(must),
            "must_not": vocab.decode(must_not),
        }
        settings = self._query_settings(query)
        arithmetic = self.arithmetic_for(method, None if settings is self.settings else settings)
        if method in ARITHMETIC_METHODS:
            understood["word_weight"] = arithmetic.add_weight
        if method in SOFT_METHODS:
            understood["cosine_power"] = settings.cosine_power
        if self.model.look is not None and method != "text":
            understood["look_weight"] = settings.look_weight

        t_enc = time.perf_counter()
        rows = self.item_rows(query) if rows is None else rows
        q = self._query_vector(
            query, add, remove, image_vector, arithmetic, settings.look_weight, item_row=rows.item
        )
        q = apply_feedback(self.index, query, q, rows)
        k = query.k + len(rows.unlike)  # the rejected items are dropped from these
        t_search = time.perf_counter()
        allowed, used = self._metadata_filter(must, must_not, query.synonyms)
        if allowed is not None and not allowed.mask.any():
            took = (time.perf_counter() - t0) * 1e3
            empty = self._no_item_message(understood["must"], understood["must_not"])
            message = "; ".join([empty, *notes])
            return SearchResponse(
                method, understood, took, [], message, ignored_words=ignored, synonyms=used
            )
        top = self._top_k(query, q, k, add, remove, allowed, settings)
        top = drop_rows(top, rows.unlike, query.k)
        t_end = time.perf_counter()
        results = self._results(top)
        if (must or must_not) and len(results) < query.k:
            notes.insert(0, f"only {len(results)} items match the metadata filter")
        took = (time.perf_counter() - t0) * 1e3
        return SearchResponse(
            method,
            understood,
            took,
            results,
            message="; ".join(notes) or None,
            ignored_words=ignored,
            synonyms=used,
            timings={
                "encode": (t_search - t_enc) * 1e3,
                "search": (t_end - t_search) * 1e3,
            },
            stats=top.stats.as_dict(),
        )

    def _metadata_filter(
        self, must: list[int], must_not: list[int], synonyms: bool | None
    ) -> tuple[RowFilter | None, dict[str, list[str]]]:
        """The hard filter's allowed rows (:func:`hard_filter_mask`), each word covering its
        synonym group, and the groups used (head word -> the group's words)."""
        vocab = self.model.vocab
        assert vocab is not None
        must_groups = self.synonym_groups(must, synonyms)
        must_not_groups = self.synonym_groups(must_not, synonyms)
        used = {
            vocab.decode([g[0]])[0]: vocab.decode(g)
            for g in (*must_groups, *must_not_groups)
            if len(g) > 1
        }
        allowed = hard_filter_mask(
            self.index, must_groups, list(dict.fromkeys(w for g in must_not_groups for w in g))
        )
        return allowed, used

    def _query_settings(self, query: Query) -> SearchSettings:
        """The index's settings with the query's own overrides (QueryError when invalid)."""
        try:
            return self.settings.overridden(
                word_weight=query.word_weight,
                cosine_power=query.cosine_power,
                look_weight=query.look_weight,
            )
        except SettingsError as exc:
            raise QueryError(str(exc)) from None

    @staticmethod
    def _no_item_message(must: list[str], must_not: list[str]) -> str:
        """Why no item can be returned: the metadata filter (its words) matches none, or none
        is left."""
        return (
            "no item matches the metadata filter"
            f" (must: {', '.join(must) or '-'}; must not: {', '.join(must_not) or '-'})"
            if must or must_not
            else "the index has no item left (every item was deleted)"
        )

    def _top_k(
        self, query: Query, q: np.ndarray, k: int, add: list[int], remove: list[int],
        allowed: RowFilter | None, settings: SearchSettings,
    ) -> TopK:  # fmt: skip
        """The query vector's top ``k`` among the ``allowed`` rows: by the soft filter's score
        for the soft methods, else by cosine (with the attribute probabilities alongside)."""
        if query.method in SOFT_METHODS:
            return soft_filter_topk(
                self.index, q, k, add, remove, allowed=allowed, config=self.topk,
                cosine_power=settings.cosine_power,
            )  # fmt: skip
        cos, rows = hard_filter_topk(self.index, q, k, allowed, self.topk)
        p = attribute_probs(
            self.index.attributes, rows, add, remove, index_removal_scale(self.index)
        )
        return TopK(rows, cos, cos, p)

    def _results(self, top: TopK) -> list[Result]:
        """The ranked rows as results, with each item's id and title."""
        results = []
        for i, row in enumerate(top.rows.tolist()):
            rec = self.index.item(row)
            results.append(Result(
                id=rec.id, score=float(top.scores[i]), cosine=float(top.cosines[i]),
                attribute_score=float(top.attribute_scores[i]), title=rec.title, row=row,
            ))  # fmt: skip
        return results

    def _query_vector(
        self,
        query: Query,
        add: list[int],
        remove: list[int],
        image_vector: np.ndarray | None = None,
        arithmetic: ArithmeticConfig | None = None,
        look_weight: float | None = None,
        *,
        item_row: int | None = None,
    ) -> np.ndarray:
        """The unit query vector in the index's space (docs/search.md): the joint part
        composed from the image's ``f_I`` and the words, and with a look, ``n([(1 - a) q;
        a look])``. ``item_row``: the row of ``query.item_id`` (looked up here if not given)."""
        image: np.ndarray | None = None
        if query.item_id is not None:
            row = self.row(query.item_id) if item_row is None else item_row
            image = np.array(self.index.vectors[row], dtype=np.float32)
        elif image_vector is not None and query.method != "text":
            image = np.asarray(image_vector, dtype=np.float32)
        elif query.image is not None and query.method != "text":
            image = self.encode_image(query.image)
        arithmetic = arithmetic or self.arithmetic_for(query.method)
        dim = self.model.config.embed_dim
        joint = None if image is None else image[:dim]
        try:
            if query.method == "text":
                joint = None
                q = compose_query(
                    None, self.word_vectors(add), self.word_vectors(remove), arithmetic
                )
            elif query.method in ("arithmetic", "combined"):
                q = compose_query(
                    joint, self.word_vectors(add), self.word_vectors(remove), arithmetic
                )
            else:
                assert joint is not None
                q = joint
        except ValueError as exc:
            raise QueryError(str(exc)) from None
        if self.model.look is None:
            return q
        look = None if joint is None or image is None else image[dim:]
        weight = self.settings.look_weight if look_weight is None else look_weight
        return with_look(q, look, weight, self.model.look.dim)
