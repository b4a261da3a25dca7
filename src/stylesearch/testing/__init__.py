"""Test and benchmark support, shipped with the package so that ``benchmarks/`` and the tests
import it from an installed stylesearch too (nothing in the library imports it):

* :mod:`~stylesearch.testing.synthetic`: synthetic catalogs of clustered unit vectors with
  attribute probabilities (:func:`~stylesearch.testing.synthetic.make_synthetic_catalog`);
* :mod:`~stylesearch.testing.index_arrays`: an index folder from arrays, no model needed
  (:func:`~stylesearch.testing.index_arrays.write_index_arrays`);
* :mod:`~stylesearch.testing.oracle`: the exact top-k of a search, scored the obvious way
  from the documented formula (:func:`~stylesearch.testing.oracle.exact_topk`), never called
  by the search;
* :mod:`~stylesearch.testing.milvus_local`: a local Milvus standalone server on 127.0.0.1
  (:class:`~stylesearch.testing.milvus_local.LocalMilvus`).
"""
