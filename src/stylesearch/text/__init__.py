"""Item metadata -> bags of vocabulary words (PAPER.md "Text preprocessing").

* :class:`TextPipeline` tokenizes, POS-filters and lemmatizes texts (spaCy, or simplemma as a
  fallback) and maps single query words onto the catalog's tokens.
* :class:`Vocabulary` is the ordered word list ``V`` with document frequencies, saved as JSON.

Importing this package does not import spaCy; the pipeline loads it on first use.
"""

from stylesearch.text.lexicon import PLURALIA_TANTUM, STOP_WORDS
from stylesearch.text.pipeline import TextPipeline, TextPipelineError
from stylesearch.text.vocabulary import Vocabulary, scaled_min_count

__all__ = [
    "PLURALIA_TANTUM",
    "STOP_WORDS",
    "TextPipeline",
    "TextPipelineError",
    "Vocabulary",
    "scaled_min_count",
]
