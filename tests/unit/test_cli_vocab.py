"""``stylesearch vocab``: words by grounding, --json, measuring with --catalog and --write."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner, Result

from stylesearch.catalog.synthetic import make_shapes_catalog
from stylesearch.cli import cli
from stylesearch.config import ModelConfig, TextConfig
from stylesearch.model import JointModel, save_model
from stylesearch.text.pipeline import TextPipeline
from stylesearch.text.vocabulary import Vocabulary

TEXT = TextConfig(backend="simplemma", min_count=2)


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="stylesearch")


@pytest.fixture(scope="module")
def catalogs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the "training" catalog, another catalog) of 40 and 24 shapes."""
    root = tmp_path_factory.mktemp("vocab")
    train = make_shapes_catalog(root / "train", 40, seed=1, image_size=32)
    other = make_shapes_catalog(root / "other", 24, seed=2, image_size=32)
    return train, other


@pytest.fixture(scope="module")
def model_dir(catalogs: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained model (no training in the fast tests) on the shapes words, whose config
    records the training catalog and split as `stylesearch train` does."""
    from stylesearch.catalog.manifest import load_catalog

    train, _ = catalogs
    texts = [it.text for it in load_catalog(train).items]
    vocab = Vocabulary.build(TextPipeline(TEXT).words_many(texts), min_count=2)
    torch.manual_seed(0)
    model = JointModel(ModelConfig(embed_dim=8, image_size=32), vocab_size=len(vocab))
    out = tmp_path_factory.mktemp("model") / "m"
    extra = {
        "training": {"catalog": str(train.resolve())},
        "train_config": {"train": {"val_fraction": 0.25, "seed": 0, "val_max_items": 2000}},
    }
    save_model(model.eval(), out, vocab=vocab, text_config=TEXT, extra=extra)
    return out


def test_vocab_without_grounding_lists_words_by_count(model_dir: Path) -> None:
    result = run("vocab", "--model", model_dir)
    assert result.exit_code == 0, (result.output, result.exc_info)
    assert "no grounding.json" in result.stderr and "--write" in result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["word", "count", "grounding", "visual", "synonyms"]
    counts = [int(line.split()[1]) for line in lines[1:]]
    assert counts == sorted(counts, reverse=True)
    assert all(line.split()[2:] == ["-", "yes"] for line in lines[1:])

    rows = json.loads(run("vocab", "--model", model_dir, "--json").stdout)
    assert rows and all(
        set(r) == {"word", "count", "grounding", "visual", "synonyms"} for r in rows
    )
    assert all(r["grounding"] is None and r["visual"] and r["synonyms"] == [] for r in rows)


def test_vocab_measures_on_the_training_catalogs_held_out_split(
    model_dir: Path, catalogs: tuple[Path, Path]
) -> None:
    train, _ = catalogs
    args = ("vocab", "--model", model_dir, "--catalog", train, "--min-positives", "1", "--json")
    result = run(*args)
    assert result.exit_code == 0, (result.output, result.exc_info)
    assert "10 items of the held-out split" in result.stderr  # 40 * 0.25
    assert not (model_dir / "grounding.json").exists()  # not without --write
    rows = json.loads(result.stdout)
    scored = [r["grounding"] for r in rows if r["grounding"] is not None]
    assert scored and all(-1.0 <= g <= 1.0 for g in scored)
    assert scored == sorted(scored, reverse=True)

    def by_rule(rows: list[dict], threshold: float) -> bool:
        """visual: a score at the threshold, or a synonym with one"""
        scored = [r for r in rows if r["grounding"] is not None]
        own = {r["word"] for r in scored if r["grounding"] >= threshold}
        return all(
            r["visual"] == (r["word"] in own or bool(own & set(r["synonyms"]))) for r in rows
        )

    assert by_rule(rows, 0.75)
    strict = json.loads(run(*args, "--threshold", "-1").stdout)
    assert by_rule(strict, -1.0)


def test_vocab_write_saves_grounding_that_later_runs_read(
    model_dir: Path, catalogs: tuple[Path, Path], tmp_path: Path
) -> None:
    import shutil

    _, other = catalogs
    folder = tmp_path / "m"
    shutil.copytree(model_dir, folder)
    result = run("vocab", "--model", folder, "--catalog", other, "--write", "--json")
    assert result.exit_code == 0, (result.output, result.exc_info)
    assert "24 items of the catalog" in result.stderr
    saved = json.loads((folder / "grounding.json").read_text())
    assert saved["method"] == "auc-gini" and saved["items"] == 24
    assert saved["min_positives"] == 5
    learned = json.loads((folder / "synonyms.json").read_text())
    assert learned["method"] == "head-logit-correlation+cooccurrence" and learned["items"] == 24
    assert {"min_correlation", "max_cooccurrence", "grounding_threshold"} <= set(learned)
    again = run("vocab", "--model", folder, "--json")
    assert again.exit_code == 0 and "no grounding.json" not in again.stderr
    assert json.loads(again.stdout) == json.loads(result.stdout)


def test_vocab_json_lists_the_learned_synonyms(model_dir: Path, tmp_path: Path) -> None:
    import shutil

    from stylesearch.model.io import save_synonyms
    from stylesearch.model.synonyms import Synonyms

    folder = tmp_path / "m"
    shutil.copytree(model_dir, folder)
    a, b, c = Vocabulary.load(folder / "vocab.json").words[:3]
    save_synonyms(folder, Synonyms(groups=[[a, b, c]]))
    rows = {r["word"]: r for r in json.loads(run("vocab", "--model", folder, "--json").stdout)}
    assert rows[a]["synonyms"] == [b, c] and rows[c]["synonyms"] == [a, b]
    assert all(r["synonyms"] == [] for w, r in rows.items() if w not in (a, b, c))
    table = run("vocab", "--model", folder).stdout.splitlines()
    assert next(line for line in table if line.split()[0] == a).endswith(f"{b}, {c}")


def test_vocab_usage_and_user_errors(model_dir: Path, tmp_path: Path) -> None:
    result = run("vocab", "--model", model_dir, "--write")
    assert result.exit_code == 2 and "--catalog" in result.stderr
    result = run("vocab", "--model", tmp_path / "nothing")
    assert result.exit_code == 1 and "model folder not found" in result.stderr
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    result = run("vocab", "--model", model_dir, "--catalog", empty)
    assert result.exit_code == 1 and "Traceback" not in result.output
