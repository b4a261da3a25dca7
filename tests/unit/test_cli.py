"""The command line, in-process with click's CliRunner: help, exit codes, messages, a tiny run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import numpy as np
import pytest
import torch
from click.testing import CliRunner, Result

from stylesearch import __version__
from stylesearch.catalog.fashion_mnist import SETS, write_idx
from stylesearch.catalog.synthetic import make_shapes_catalog
from stylesearch.cli import cli


def command_paths(command: click.Command = cli, prefix: tuple[str, ...] = ()) -> list[str]:
    """Every command and group of the tree below ``command``, as "catalog check" ("" = root)."""
    paths = [" ".join(prefix)]
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            paths += command_paths(sub, (*prefix, name))
    return paths


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="stylesearch")


def assert_user_error(result: Result, *phrases: str, code: int = 1) -> None:
    """A non-zero exit with one ``Error: ...`` line on stderr naming ``phrases``; no traceback."""
    assert result.exit_code == code, (result.output, result.exc_info)
    assert isinstance(result.exception, SystemExit), result.exc_info  # not a crash
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output
    for phrase in phrases:
        assert phrase in result.stderr, (phrase, result.stderr)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# --- help and version -------------------------------------------------------------------------


def test_the_tree_has_the_documented_commands() -> None:
    paths = command_paths()
    for path in ("catalog check", "catalog make-shapes", "catalog build-demo", "train", "demo"):
        assert path in paths


@pytest.mark.parametrize("path", command_paths())
def test_help_of_every_command(path: str) -> None:
    for flag in ("--help", "-h"):
        result = run(*path.split(), flag)
        assert result.exit_code == 0, (path, result.output, result.exc_info)
        assert result.stdout.startswith(f"Usage: stylesearch {path}".rstrip() + " ")
        assert "Options:" in result.stdout


def test_version() -> None:
    result = run("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"stylesearch, version {__version__}"


def test_python_dash_m_works_like_the_console_script(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "stylesearch", "--help"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Usage: stylesearch ")
    assert "catalog" in proc.stdout and "train" in proc.stdout


def test_unknown_command_is_a_usage_error() -> None:
    result = run("frobnicate")
    assert result.exit_code == 2
    assert "No such command" in result.stderr


# --- catalog check ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shapes20(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_shapes_catalog(tmp_path_factory.mktemp("shapes20"), 20, image_size=32)


def bad_catalog(folder: Path) -> Path:
    """20 good shapes rows followed by 5 bad ones (one per kind of reason)."""
    manifest = make_shapes_catalog(folder, 20, image_size=32)
    (folder / "images" / "broken.png").write_bytes(b"this is not a png")
    bad = [
        json.dumps({"id": "no-title", "image": "images/shape-00000.png"}),
        json.dumps({"id": "shape-00001", "image": "images/shape-00001.png", "title": "Again"}),
        json.dumps({"id": "gone", "image": "images/gone.png", "title": "Red dress"}),
        json.dumps({"id": "broken", "image": "images/broken.png", "title": "Blue dress"}),
        '{"id": "half", "image": ',
    ]
    with manifest.open("a", encoding="utf-8") as out:
        out.write("\n".join(bad) + "\n")
    return manifest


def test_check_good_catalog(shapes20: Path) -> None:
    result = run("catalog", "check", shapes20)
    assert result.exit_code == 0, result.output
    assert "20 rows: 20 accepted, 0 rejected" in result.stdout
    assert not list(shapes20.parent.glob("*.rejects.jsonl"))

    result = run("catalog", "check", shapes20, "--json")
    assert result.exit_code == 0
    counts = json.loads(result.stdout)
    assert counts["rows_in"] == counts["accepted"] == 20
    assert counts["rejected"] == 0 and counts["rejects_file"] is None


def test_check_bad_rows_prints_reasons_and_writes_rejects(tmp_path: Path) -> None:
    manifest = bad_catalog(tmp_path / "cat")
    result = run("catalog", "check", manifest)
    assert result.exit_code == 3, (result.output, result.exc_info)
    out = result.stdout
    assert "25 rows: 20 accepted, 5 rejected" in out
    for reason in (
        "row 21 (id 'no-title'): missing field 'title'",
        "row 22 (id 'shape-00001'): duplicate id 'shape-00001' (first seen on row 2)",
        "row 23 (id 'gone'): image: image not found: ",
        "row 24 (id 'broken'): image: not an image (unrecognised format): ",
        "row 25 (no id): invalid JSON: ",
    ):
        assert reason in out, (reason, out)
    rejects = manifest.with_name("manifest.rejects.jsonl")
    assert f"rejected rows written to {rejects}" in out
    rows = read_jsonl(rejects)
    assert [r["row"] for r in rows] == [21, 22, 23, 24, 25]
    assert [r["id"] for r in rows] == ["no-title", "shape-00001", "gone", "broken", None]
    assert all(set(r) == {"row", "id", "reason"} and r["reason"] for r in rows)


def test_check_rejects_option_and_json_counts(tmp_path: Path) -> None:
    manifest = bad_catalog(tmp_path / "cat")
    target = tmp_path / "elsewhere" / "bad.jsonl"
    result = run("catalog", "check", manifest, "--rejects", target, "--json")
    assert result.exit_code == 3
    counts = json.loads(result.stdout)
    assert counts["rows_in"] == counts["accepted"] + counts["rejected"] == 25
    assert counts["rejected"] == 5 and counts["rejects_file"] == str(target)
    assert counts["manifest"] == str(manifest)
    assert len(read_jsonl(target)) == 5
    assert not manifest.with_name("manifest.rejects.jsonl").exists()


def test_check_no_images_and_max_pixels(tmp_path: Path, shapes20: Path) -> None:
    manifest = bad_catalog(tmp_path / "cat")
    counts = json.loads(run("catalog", "check", manifest, "--no-images", "--json").stdout)
    assert counts["rejected"] == 4  # the corrupt image exists, so it passes without decoding

    result = run("catalog", "check", shapes20, "--max-pixels", "100", "--rejects", tmp_path / "r")
    assert result.exit_code == 3
    assert "20 rows: 0 accepted, 20 rejected" in result.stdout
    assert "image: image too large" in result.stdout
    assert "32 x 32 = 1024 pixels > limit 100" in result.stdout


def test_check_images_outside_need_images_root(tmp_path: Path, shapes20: Path) -> None:
    manifest = tmp_path / "elsewhere" / "m.jsonl"
    manifest.parent.mkdir()
    rows = read_jsonl(shapes20)[:3]
    for row in rows:
        row["image"] = str(shapes20.parent / row["image"])
        row["extra_images"] = []
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    result = run("catalog", "check", manifest, "--no-images")
    assert result.exit_code == 3
    assert "3  image: image outside the catalog folder" in result.stdout
    assert "--images-root" in result.stdout
    result = run("catalog", "check", manifest, "--images-root", shapes20.parent / "images")
    assert result.exit_code == 0, result.output
    assert "3 rows: 3 accepted, 0 rejected" in result.stdout


def test_check_missing_file_is_one_line(tmp_path: Path) -> None:
    result = run("catalog", "check", tmp_path / "nothere.jsonl")
    assert_user_error(result, "manifest not found", "nothere.jsonl")


def test_check_unsupported_extension(tmp_path: Path) -> None:
    path = tmp_path / "catalog.txt"
    path.write_text("id,image,title\n")
    assert_user_error(run("catalog", "check", path), "unsupported manifest extension '.txt'")


# --- catalog make-shapes and build-demo -------------------------------------------------------


def test_make_shapes(tmp_path: Path) -> None:
    result = run("catalog", "make-shapes", "--out", tmp_path / "s", "--items", "12", "--size", "32")
    assert result.exit_code == 0, result.output
    manifest = tmp_path / "s" / "manifest.jsonl"
    assert result.stdout.strip() == f"wrote 12 items: {manifest}"
    assert len(read_jsonl(manifest)) == 12
    assert run("catalog", "check", manifest).exit_code == 0


def write_fake_fashion_mnist(folder: Path, n_train: int = 60, n_test: int = 20) -> Path:
    """The four gzipped IDX files of a tiny fake Fashion-MNIST (a noisy block per image)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for which, n in (("train", n_train), ("t10k", n_test)):
        images = np.zeros((n, 28, 28), np.uint8)
        images[:, 6:22, 8:20] = rng.integers(80, 256, size=(n, 16, 12))
        image_stem, label_stem = SETS[which]
        write_idx(folder / f"{image_stem}.gz", images)
        write_idx(folder / f"{label_stem}.gz", (np.arange(n) % 10).astype(np.uint8))
    return folder


DEMO_ARGS = ("--items", "20", "--base-items", "10", "--query-items", "5", "--size", "32")


def test_build_demo_with_a_fake_source(tmp_path: Path) -> None:
    source = write_fake_fashion_mnist(tmp_path / "fmnist")
    out = tmp_path / "demo"
    result = run("catalog", "build-demo", "--out", out, *DEMO_ARGS, "--source", source)
    assert result.exit_code == 0, (result.output, result.exc_info)
    assert result.stdout.startswith(f"built {out} in ")
    assert "20 train, 10 base, 5 query items" in result.stdout
    assert f"datasheet {out / 'README.md'}" in result.stdout
    for name in ("truth.jsonl", "README.md", "samples.png", "build.json"):
        assert (out / name).is_file(), name
    for split, n in (("train", 20), ("base", 10), ("query", 5)):
        assert len(read_jsonl(out / split / "manifest.jsonl")) == n
    assert run("catalog", "check", out / "train" / "manifest.jsonl").exit_code == 0

    again = run("catalog", "build-demo", "--out", out, *DEMO_ARGS, "--source", source)
    assert again.exit_code == 0 and again.stdout.startswith(f"reused {out} in ")


def test_build_demo_errors_are_one_line(tmp_path: Path) -> None:
    result = run("catalog", "build-demo", "--out", tmp_path / "d", "--source", tmp_path / "none")
    assert_user_error(result, "apt-get install dataset-fashion-mnist", "--source")
    assert not (tmp_path / "d").exists()

    source = write_fake_fashion_mnist(tmp_path / "fmnist")
    result = run(
        "catalog", "build-demo", "--out", tmp_path / "d", "--items", "60", "--source", source
    )
    assert_user_error(result, "use fewer items")

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "precious.txt").write_text("keep")
    result = run("catalog", "build-demo", "--out", mine, *DEMO_ARGS, "--source", source)
    assert_user_error(result, "not a demo catalog")
    assert (mine / "precious.txt").read_text() == "keep"


# --- train and eval ---------------------------------------------------------------------------

TINY_TOML = """\
[model]
image_size = 32
embed_dim = 16

[text]
min_count = 2

[train]
epochs = 1
batch_size = 8
num_workers = 0
"""


@pytest.fixture(scope="module")
def shapes40(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_shapes_catalog(tmp_path_factory.mktemp("shapes40"), 40, image_size=32)


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("config") / "tiny.toml"
    path.write_text(TINY_TOML)
    return path


@pytest.fixture(scope="module")
def tiny_model(
    shapes40: Path, tiny_config: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Result]:
    out = tmp_path_factory.mktemp("model") / "m"
    result = run(
        "train",
        "--catalog",
        shapes40,
        "--out",
        out,
        "--config",
        tiny_config,
        "--device",
        "cpu",
        "--seed",
        "5",
        "--quiet",
    )
    return out, result


def test_train_tiny_run_writes_the_model_folder(tiny_model: tuple[Path, Result]) -> None:
    out, result = tiny_model
    assert result.exit_code == 0, (result.output, result.exc_info)
    for name in ("config.json", "vocab.json", "model.safetensors", "metrics.jsonl"):
        assert (out / name).is_file(), name
    metrics = json.loads(result.stdout)  # stdout is the validation JSON alone
    assert metrics and all(key.startswith("val_") for key in metrics)
    assert {"val_i2t_r1", "val_t2i_r10", "val_attribute_map"} <= set(metrics)
    assert [r["epoch"] for r in read_jsonl(out / "metrics.jsonl")] == [1]
    saved = json.loads((out / "config.json").read_text())["extra"]["train_config"]
    assert saved["train"]["seed"] == 5 and saved["train"]["device"] == "cpu"
    assert saved["model"]["embed_dim"] == 16 and saved["text"]["min_count"] == 2
    # the words' visual grounding, measured on the held-out items (stylesearch vocab reads it)
    grounding = json.loads((out / "grounding.json").read_text())
    assert grounding["method"] == "auc-gini" and grounding["items"] == metrics["val_items"]
    assert "held-out split" in grounding["source"]
    # and the synonym groups, learned from every catalog item with that grounding
    synonyms = json.loads((out / "synonyms.json").read_text())
    assert synonyms["method"] == "head-logit-correlation+cooccurrence"
    assert synonyms["items"] >= metrics["val_items"] and "training catalog" in synonyms["source"]
    assert (
        synonyms["weights_sha256"]
        == json.loads((out / "config.json").read_text())["weights_sha256"]
    )


def test_train_refuses_an_existing_model_without_overwrite(
    tiny_model: tuple[Path, Result], shapes40: Path, tiny_config: Path
) -> None:
    out, _ = tiny_model
    before = (out / "model.safetensors").stat().st_mtime_ns
    result = run("train", "--catalog", shapes40, "--out", out, "--config", tiny_config, "--quiet")
    assert_user_error(result, "already holds a trained model", "--overwrite")
    assert (out / "model.safetensors").stat().st_mtime_ns == before


def test_train_bad_config_names_the_key(tmp_path: Path, shapes40: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[train]\nepochs = 1\nepochz = 3\n")
    result = run("train", "--catalog", shapes40, "--out", tmp_path / "m", "--config", config)
    assert_user_error(result, "[train] unknown key(s): epochz")
    assert not (tmp_path / "m").exists()

    config.write_text("[model]\nbackbone = 'vgg'\n")
    result = run("train", "--catalog", shapes40, "--out", tmp_path / "m", "--config", config)
    assert_user_error(result, "[model] backbone = 'vgg'")

    result = run(
        "train", "--catalog", shapes40, "--out", tmp_path / "m", "--config", tmp_path / "none.toml"
    )
    assert_user_error(result, "config file not found")


def test_train_on_cuda_without_a_gpu(
    tmp_path: Path, shapes40: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    result = run("train", "--catalog", shapes40, "--out", tmp_path / "m", "--device", "cuda")
    assert_user_error(result, "--device cuda: no CUDA GPU is available here", "--device cpu")


def test_index_on_cuda_without_a_gpu(
    tmp_path: Path, shapes40: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    (tmp_path / "m").mkdir()
    result = run(
        "index", "--model", tmp_path / "m", "--catalog", shapes40, "--out", tmp_path / "i",
        "--device", "cuda",
    )  # fmt: skip
    assert_user_error(result, "--device cuda: no CUDA GPU is available here", "--device cpu")
    assert not (tmp_path / "i").exists()


def test_train_option_ranges_are_usage_errors(tmp_path: Path, shapes40: Path) -> None:
    for bad in (["--epochs", "0"], ["--batch-size", "1"], ["--loss", "contrastive"]):
        result = run("train", "--catalog", shapes40, "--out", tmp_path / "m", *bad)
        assert result.exit_code == 2, (bad, result.output)
        assert bad[0] in result.stderr


def test_eval_attributes_prints_groups(
    tiny_model: tuple[Path, Result], shapes40: Path, tmp_path: Path
) -> None:
    out, _ = tiny_model
    truth = tmp_path / "truth.jsonl"
    rows = read_jsonl(shapes40.parent / "truth.jsonl")  # {"id", "shape", "colour", "pattern"}
    fake = [
        {"id": r["id"], "category": "dress", "colour": r["colour"], "pattern": r["pattern"]}
        for r in rows
    ]
    truth.write_text("".join(json.dumps(r) + "\n" for r in fake))
    result = run("eval", "attributes", "--model", out, "--catalog", shapes40, "--truth", truth)
    assert result.exit_code == 0, (result.output, result.exc_info)
    lines = result.stdout.splitlines()
    assert lines[0] == "40 items; average precision per group"
    assert lines[1].split() == ["group", "vs", "truth", "vs", "metadata"]
    assert [line.split()[0] for line in lines[2:]] == ["category", "colour", "pattern"]
    colour = lines[3].split()
    assert 0.0 <= float(colour[1]) <= 1.0 and 0.0 <= float(colour[2]) <= 1.0


def test_tune_grids_default_to_the_library_grids() -> None:
    from stylesearch.evaluation.tuning import COSINE_POWERS, LOOK_WEIGHTS, WORD_WEIGHTS

    params = {p.name: p.default for p in cli.commands["tune"].params}
    assert [float(x) for x in params["word_weights"].split(",")] == list(WORD_WEIGHTS)
    assert [float(x) for x in params["cosine_powers"].split(",")] == list(COSINE_POWERS)
    assert [float(x) for x in params["look_weights"].split(",")] == list(LOOK_WEIGHTS)


def test_settings_help_states_the_untuned_defaults() -> None:
    from stylesearch.search.settings import DEFAULT_SETTINGS

    helps = {p.name: p.help for p in cli.commands["search"].params}
    assert helps["look_weight"].endswith(f"else {DEFAULT_SETTINGS.look_weight:g}].")
    assert helps["cosine_power"].endswith(f"else {DEFAULT_SETTINGS.cosine_power:g}].")
