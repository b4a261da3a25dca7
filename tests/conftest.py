"""Shared fixtures: a tiny trained model and its index, built on a generated shapes catalog."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

TinyIndexBuilder = Callable[..., Path]


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """One torch thread for a test module: tiny convolutions are slower with several threads on
    a shared machine. Use with ``pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def build_tiny_index() -> TinyIndexBuilder:
    """``build(root, *, items=60, catalog_seed=3, train_seed=0, epochs=1, backends=("exact",))``.

    Returns the catalog manifest's path.

    Writes ``root/catalog`` (a shapes catalog at 32 px), ``root/model`` (trained on the CPU with
    one torch thread: tiny convolutions are slower with several on a shared machine) and one
    index folder per backend, ``root/<backend>``.
    """

    def build(
        root: Path,
        *,
        items: int = 60,
        catalog_seed: int = 3,
        train_seed: int = 0,
        epochs: int = 1,
        backends: Sequence[str] = ("exact",),
    ) -> Path:
        import torch

        from stylesearch.catalog.synthetic import make_shapes_catalog
        from stylesearch.config import Config, ModelConfig, TextConfig, TrainConfig
        from stylesearch.index.build import build_index
        from stylesearch.training.loop import train

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            manifest = make_shapes_catalog(
                root / "catalog", items, seed=catalog_seed, image_size=32
            )
            cfg = Config(
                text=TextConfig(min_count=2),
                model=ModelConfig(embed_dim=32, image_size=32),
                train=TrainConfig(
                    epochs=epochs, batch_size=16, num_workers=0, warmup_steps=2,
                    val_fraction=0.0, lr=2e-3, seed=train_seed,
                ),
            )  # fmt: skip
            train(manifest, root / "model", cfg, progress=False)
            for backend in backends:
                build_index(root / "model", manifest, root / backend, backend=backend,
                            num_workers=0)  # fmt: skip
        finally:
            torch.set_num_threads(threads)
        return manifest

    return build


@pytest.fixture(scope="session")
def milvus_uri(tmp_path_factory) -> Iterator[str]:
    """A real Milvus standalone server (PyPI ``milvus``) on 127.0.0.1 for the session: start-up
    bounded by 180 s, stopped by its PID (SIGTERM, SIGKILL after 15 s)."""
    from stylesearch.testing.milvus_local import LocalMilvus

    server = LocalMilvus(tmp_path_factory.mktemp("milvus"), start_timeout=180, stop_timeout=15)
    uri = server.start()
    try:
        yield uri
    finally:
        server.stop()
