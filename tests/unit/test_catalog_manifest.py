"""load_catalog: every bad row is rejected with its reason and every row is accounted for."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import struct
import tempfile
import zlib
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from stylesearch.catalog.manifest import (
    Catalog,
    CatalogError,
    CatalogItem,
    RejectedRow,
    iter_manifest_rows,
    load_catalog,
    reason_kind,
)


def _png(colour: tuple[int, int, int] = (200, 30, 30), size: int = 16) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def _bomb_png(side: int) -> bytes:
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    sig = b"\x89PNG\r\n\x1a\n"
    return sig + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


@pytest.fixture
def images(tmp_path: Path) -> Path:
    """``tmp_path/images`` with good and bad image files."""
    folder = tmp_path / "images"
    folder.mkdir()
    for k in range(4):
        (folder / f"ok{k}.png").write_bytes(_png((60 * k, 100, 30)))
    big = Image.new("RGB", (64, 64))
    big.putdata([(i % 256, (i * 7) % 256, (i * 13) % 256) for i in range(64 * 64)])
    buffer = io.BytesIO()
    big.save(buffer, format="JPEG")
    (folder / "cut.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    full = _png(size=64)
    (folder / "cut.png").write_bytes(full[: len(full) - 30])
    (folder / "text.png").write_text("not an image")
    (folder / "bomb.png").write_bytes(_bomb_png(20000))
    return folder


def _write_jsonl(path: Path, rows: list[Any]) -> Path:
    lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _row(
    item_id: str, image: str = "images/ok0.png", title: str = "Red dress", **extra: Any
) -> dict:
    return {"id": item_id, "image": image, "title": title, **extra}


def test_every_kind_of_bad_row_is_rejected_with_its_reason(tmp_path: Path, images: Path) -> None:
    rows: list[Any] = [
        _row("a", description="long text", attributes=["cotton"]),  # 1 ok
        "",  # blank line: not a row
        "{not json",  # 3
        "[1, 2]",  # 4
        {"image": "images/ok0.png", "title": "t"},  # 5 missing id
        _row("b", title="   "),  # 6 empty title
        _row("c", image=""),  # 7 empty image
        {"id": "d", "image": "images/ok0.png", "title": ["x"]},  # 8 wrong type
        _row("a", image="images/ok1.png"),  # 9 duplicate of row 1
        _row("e", image="images/missing.png"),  # 10
        _row("f", image="images/text.png"),  # 11
        _row("g", image="images/cut.png"),  # 12
        _row("h", image="images/cut.jpg"),  # 13
        _row("i", image="images/bomb.png"),  # 14
        _row("j", extra_images=["images/ok1.png", "images/missing-b.png"]),  # 15
        _row("k", extra_images="images/ok2.png"),  # 16 ok: a string is a one-element list
        _row("l", attributes=[1]),  # 17
        _row("m", image="https://example.com/m.png"),  # 18
        _row(7, image="images/ok3.png"),  # 19 ok: integer id becomes "7"
    ]
    catalog = load_catalog(_write_jsonl(tmp_path / "m.jsonl", rows))
    by_row = {rej.row: rej for rej in catalog.rejected}
    expected = {
        3: (None, r"^invalid JSON: "),
        4: (None, r"^row is not a JSON object \(got array\)$"),
        5: (None, r"^missing field 'id'$"),
        6: ("b", r"^empty field 'title'$"),
        7: ("c", r"^empty field 'image'$"),
        8: ("d", r"^wrong type for field 'title': expected a string, got array$"),
        9: ("a", r"^duplicate id 'a' \(first seen on row 1\)$"),
        10: ("e", r"^image: image not found: .*images/missing\.png$"),
        11: ("f", r"^image: not an image \(unrecognised format\): .*text\.png$"),
        12: ("g", r"^image: truncated or corrupt image: .*cut\.png \(.+\)$"),
        13: ("h", r"^image: truncated or corrupt image: .*cut\.jpg \(.+\)$"),
        14: ("i", r"^image: image too large: 20000 x 20000 = 400000000 pixels > limit 50000000$"),
        15: ("j", r"^extra image 2: image not found: .*missing-b\.png$"),
        17: ("l", r"^wrong type for field 'attributes': element 1 is int"),
        18: ("m", r"^image: URLs are not supported"),
    }
    assert sorted(by_row) == sorted(expected)
    for row, (item_id, pattern) in expected.items():
        assert by_row[row].id == item_id, row
        assert re.search(pattern, by_row[row].reason), (row, by_row[row].reason)
    assert [item.id for item in catalog.items] == ["a", "k", "7"]
    assert catalog.rows_in == 18 == len(catalog.items) + len(catalog.rejected)
    assert catalog.items[1].extra_images == (images / "ok2.png",)
    assert catalog.items[0].attributes == ("cotton",)


def test_rows_that_would_crash_or_hang_a_later_run_are_rejected(
    tmp_path: Path, images: Path
) -> None:
    os.mkfifo(images / "fifo.png")  # opening it for reading would block for ever
    long_image = Image.new("RGB", (420, 20))
    long_image.save(images / "long.png")  # 21:1, beyond the aspect-ratio cap
    rows: list[Any] = [
        _row("ok"),  # 1
        _row("x" * 513),  # 2
        _row("x" * 512, image="images/ok1.png"),  # 3 ok: at the limit
        _row("nul\x00id"),  # 4
        _row("new\nline"),  # 5
        _row("rtl\u202eid"),  # 6
        _row("caf\u00e9"),  # 7 ok (NFC)
        _row("cafe\u0301", image="images/ok2.png"),  # 8 NFD spelling of row 7
        _row("t", title="word " * 400_000),  # 9: 2M characters
        _row("fifo", image="images/fifo.png"),  # 10
        _row("long", image="images/long.png"),  # 11
    ]
    catalog = load_catalog(_write_jsonl(tmp_path / "m.jsonl", rows))
    by_row = {rej.row: rej.reason for rej in catalog.rejected}
    expected = {
        2: r"^id too long: 513 characters \(at most 512\)$",
        4: r"^bad character in id: U\+0000 \(U\+0000\) at position 4",
        5: r"^bad character in id: U\+000A \(U\+000A\) at position 4",
        6: r"^bad character in id: RIGHT-TO-LEFT OVERRIDE \(U\+202E\) at position 4",
        8: r"^duplicate id 'cafe\u0301' \(first seen on row 7, equal to 'caf\u00e9' once NFC",
        9: r"^text too long: title, description and attributes have 1999999 characters",  # stripped
        10: r"^image: cannot read image: .*fifo\.png \(not a regular file\)$",
        11: r"^image: image too elongated: .*long\.png: 420 x 20",
    }
    assert sorted(by_row) == sorted(expected)
    for row, pattern in expected.items():
        assert re.search(pattern, by_row[row]), (row, by_row[row])
    assert [item.id for item in catalog.items] == ["ok", "x" * 512, "caf\u00e9"]


def test_rejects_file_and_summary(tmp_path: Path, images: Path) -> None:
    rows = [
        _row("a"),
        _row("b", title=""),
        _row("c", title=""),
        _row("d", image="images/missing.png"),
        _row("a"),
    ]
    catalog = load_catalog(_write_jsonl(tmp_path / "m.jsonl", rows))
    out = tmp_path / "out" / "rejects.jsonl"
    catalog.write_rejects(out)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert records[0] == {"row": 2, "id": "b", "reason": "empty field 'title'"}
    assert [r["row"] for r in records] == [2, 3, 4, 5]
    assert set(records[0]) == {"row", "id", "reason"}
    summary = catalog.summary()
    assert summary.splitlines()[0] == "5 rows: 1 accepted, 4 rejected"
    assert "2  empty field 'title'" in summary
    assert "1  image: image not found" in summary
    assert "1  duplicate id" in summary


def test_reason_kind() -> None:
    assert reason_kind("image: image not found: /a/b.png") == "image: image not found"
    assert reason_kind("extra image 3: truncated or corrupt image: /x (y)") == (
        "extra image: truncated or corrupt image"
    )
    assert reason_kind("duplicate id 'x' (first seen on row 3)") == "duplicate id"
    assert reason_kind("missing field 'title'") == "missing field 'title'"
    assert reason_kind("row is not a JSON object (got array)") == "row is not a JSON object"
    assert reason_kind("invalid JSON: Expecting value (column 1)") == "invalid JSON"


def test_duplicate_keeps_the_first_accepted_row(tmp_path: Path, images: Path) -> None:
    rows = [_row("x", image="images/text.png"), _row("x", image="images/ok1.png"), _row("x")]
    catalog = load_catalog(_write_jsonl(tmp_path / "m.jsonl", rows))
    assert [item.image.name for item in catalog.items] == ["ok1.png"]
    assert catalog.rejected[0].reason.startswith("image: not an image")
    assert catalog.rejected[1].reason == "duplicate id 'x' (first seen on row 2)"


def _table_rows() -> list[dict[str, Any]]:
    return [
        {
            "id": "p1",
            "image": "images/ok0.png",
            "title": "Red striped dress",
            "description": "Cotton. Machine washable.",
            "extra_images": ["images/ok1.png", "images/ok2.png"],
            "attributes": ["red", "striped"],
        },
        {"id": "p2", "image": "images/ok3.png", "title": "Blue shirt", "description": "",
         "extra_images": [], "attributes": []},
        {"id": "p3", "image": "images/missing.png", "title": "Gone", "description": "",
         "extra_images": [], "attributes": []},
    ]  # fmt: skip


def test_jsonl_csv_parquet_give_the_same_items(tmp_path: Path, images: Path) -> None:
    rows = _table_rows()
    jsonl = _write_jsonl(tmp_path / "m.jsonl", rows)
    with open(tmp_path / "m.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        for k, row in enumerate(rows):  # both list encodings: JSON array and "|"-separated
            lists = {name: row[name] for name in ("extra_images", "attributes")}
            encode = json.dumps if k == 0 else "|".join
            writer.writerow({**row, **{name: encode(v) for name, v in lists.items()}})
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "m.parquet")
    catalogs = [load_catalog(tmp_path / name) for name in ("m.jsonl", "m.csv", "m.parquet")]
    for catalog in catalogs:
        assert catalog.items == catalogs[0].items
        assert [(r.row, r.id) for r in catalog.rejected] == [(3, "p3")]
        assert catalog.rows_in == 3
    first = catalogs[0].items[0]
    assert first.extra_images == (images / "ok1.png", images / "ok2.png")
    assert first.attributes == ("red", "striped")
    assert first.text == "Red striped dress. Cotton. Machine washable. red, striped"
    assert first.all_images == (images / "ok0.png", images / "ok1.png", images / "ok2.png")
    assert catalogs[0].path == jsonl


def test_csv_specifics(tmp_path: Path, images: Path) -> None:
    text = (
        "\ufeffid,image,title,extra_images,colour\n"
        "1,images/ok0.png,Red dress,,red\n"
        "\n"
        "2,images/ok1.png,  ,,\n"
        "3,images/ok2.png,Hat,images/ok3.png|images/ok0.png,x,EXTRA\n"
        "4,images/ok2.png\n"
    )
    (tmp_path / "m.csv").write_text(text, encoding="utf-8")
    catalog = load_catalog(tmp_path / "m.csv")
    assert [item.id for item in catalog.items] == ["1"]
    assert catalog.items[0].extra_images == ()
    assert [(r.row, r.reason) for r in catalog.rejected] == [
        (2, "empty field 'title'"),
        (3, "row has 6 fields but the header has 5 columns"),
        (4, "missing field 'title'"),
    ]


def test_whole_file_errors(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="manifest not found"):
        load_catalog(tmp_path / "none.jsonl")
    (tmp_path / "m.txt").write_text("x")
    with pytest.raises(CatalogError, match=r"unsupported manifest extension '\.txt'"):
        load_catalog(tmp_path / "m.txt")
    (tmp_path / "m.csv").write_text("id,title\n1,x\n")
    with pytest.raises(CatalogError, match="missing required column.*image"):
        load_catalog(tmp_path / "m.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(CatalogError, match="no header"):
        load_catalog(tmp_path / "empty.csv")
    (tmp_path / "m.parquet").write_bytes(b"garbage")
    with pytest.raises(CatalogError, match="cannot read Parquet"):
        load_catalog(tmp_path / "m.parquet")
    pq.write_table(pa.table({"id": ["a"], "title": ["t"]}), tmp_path / "cols.parquet")
    with pytest.raises(CatalogError, match="missing required column.*image"):
        load_catalog(tmp_path / "cols.parquet")
    with pytest.raises(CatalogError, match="is a directory"):
        load_catalog(tmp_path)


def test_relative_and_absolute_paths(
    tmp_path: Path, images: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sub = tmp_path / "manifests"
    sub.mkdir()
    rows = [
        _row("rel", image="../images/ok0.png"),
        _row("abs", image=str(images / "ok1.png")),
        _row("wrong-base", image="images/ok2.png"),  # relative to manifests/, not the cwd
    ]
    _write_jsonl(sub / "m.jsonl", rows)
    monkeypatch.chdir(tmp_path)
    catalog = load_catalog("manifests/m.jsonl", image_roots=["images"])  # beside manifests/
    assert catalog.path.is_absolute()
    assert [item.id for item in catalog.items] == ["rel", "abs"]
    assert all(item.image.is_absolute() for item in catalog.items)
    assert catalog.items[0].image.resolve() == (images / "ok0.png").resolve()
    assert catalog.items[1].image == images / "ok1.png"
    assert catalog.rejected[0].reason.startswith("image: image not found: ")
    assert str(sub / "images" / "ok2.png") in catalog.rejected[0].reason


def test_images_outside_the_manifest_folder_are_rejected(tmp_path: Path, images: Path) -> None:
    """``..`` paths, absolute paths elsewhere and symlinks that lead out are rejected rows;
    a symlink that stays inside is fine; nothing outside is opened."""
    shop = tmp_path / "shop"
    (shop / "img").mkdir(parents=True)
    (shop / "img" / "in.png").write_bytes(_png())
    (shop / "img" / "link-out.png").symlink_to(images / "ok1.png")
    (shop / "img" / "link-in.png").symlink_to(shop / "img" / "in.png")
    (shop / "elsewhere").symlink_to(images, target_is_directory=True)
    rows = [
        _row("in", image="img/in.png"),
        _row("dotdot", image="../images/ok0.png"),
        _row("dotdot-in", image="img/../img/in.png"),
        _row("absolute", image=str(images / "ok2.png")),
        _row("absolute-in", image=str(shop / "img" / "in.png")),
        _row("link-out", image="img/link-out.png"),
        _row("link-in", image="img/link-in.png"),
        _row("dir-link", image="elsewhere/ok3.png"),
        _row("extra", extra_images=["../images/ok0.png"], image="img/in.png"),
        _row("missing-outside", image="../images/nothere.png"),
        _row("bomb-outside", image="../images/bomb.png"),
    ]
    manifest = _write_jsonl(shop / "m.jsonl", rows)
    for validate in (True, False):
        catalog = load_catalog(manifest, validate_images=validate)
        assert [item.id for item in catalog.items] == ["in", "dotdot-in", "absolute-in", "link-in"]
        reasons = {rej.id: rej.reason for rej in catalog.rejected}
        assert list(reasons) == [
            "dotdot", "absolute", "link-out", "dir-link", "extra", "missing-outside",
            "bomb-outside",
        ]  # fmt: skip
        for item_id, reason in reasons.items():
            prefix = "extra image 1: " if item_id == "extra" else "image: "
            assert reason.startswith(prefix + "image outside the catalog folder: "), reason
            assert str(shop.resolve()) in reason and "--images-root" in reason
        assert str((images / "ok1.png").resolve()) in reasons["link-out"]  # where it leads
        assert catalog.rows_in == len(catalog.items) + len(catalog.rejected)
        assert "image: image outside the catalog folder" in catalog.summary()


def test_images_root_allows_another_folder(tmp_path: Path, images: Path) -> None:
    shop = tmp_path / "shop"
    shop.mkdir()
    other = tmp_path / "other"
    other.mkdir()
    (other / "o.png").write_bytes(_png())
    (shop / "link.png").symlink_to(images / "ok1.png")
    rows = [
        _row("dotdot", image="../images/ok0.png"),
        _row("link", image="link.png"),
        _row("other", image=str(other / "o.png")),
        _row("bad-inside-root", image="../images/cut.png"),
    ]
    manifest = _write_jsonl(shop / "m.jsonl", rows)
    catalog = load_catalog(manifest, image_roots=[images])
    assert [item.id for item in catalog.items] == ["dotdot", "link"]
    reasons = {rej.id: rej.reason for rej in catalog.rejected}
    assert reasons["other"].startswith("image: image outside the catalog folder: ")
    assert str(images.resolve()) in reasons["other"]  # the allowed roots are named
    assert reasons["bad-inside-root"].startswith("image: truncated or corrupt image")
    both = load_catalog(manifest, image_roots=[images, other / ".." / "other"])
    assert [item.id for item in both.items] == ["dotdot", "link", "other"]
    assert load_catalog(manifest, image_roots=["/"]).rows_in == 4  # "/" allows any path
    assert len(load_catalog(manifest, image_roots=["/"]).items) == 3


def test_validate_images_false_checks_existence_only(tmp_path: Path, images: Path) -> None:
    rows = [_row("a", image="images/cut.png"), _row("b", image="images/missing.png")]
    catalog = load_catalog(_write_jsonl(tmp_path / "m.jsonl", rows), validate_images=False)
    assert [item.id for item in catalog.items] == ["a"]
    assert catalog.rejected[0].reason.startswith("image: image not found")


def test_workers_progress_and_get(
    tmp_path: Path, images: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [_row(f"i{k}", image=f"images/ok{k % 4}.png") for k in range(10)]
    rows.append(_row("bad", image="images/cut.png"))
    path = _write_jsonl(tmp_path / "m.jsonl", rows)
    serial = load_catalog(path, workers=1)
    threaded = load_catalog(path, workers=3, progress=True)
    assert "checking images" in capsys.readouterr().err
    assert serial.items == threaded.items and serial.rejected == threaded.rejected
    assert len(threaded) == 10 and [item.id for item in threaded] == [f"i{k}" for k in range(10)]
    assert threaded.get("i3") == threaded.items[3]
    assert threaded.get("bad") is None
    threaded.items = threaded.items[:2]
    assert threaded.get("i3") is None


def test_invalid_utf8_line_and_iter_rows(tmp_path: Path) -> None:
    path = tmp_path / "m.ndjson"
    path.write_bytes(b'{"id": "a"}\n\n{"id": "\xff"}\n  \n[]\n')
    rows = list(iter_manifest_rows(path))
    assert rows[0] == (1, {"id": "a"})
    assert rows[1][0] == 3 and isinstance(rows[1][1], str) and "UTF-8" in rows[1][1]
    assert rows[2] == (5, "row is not a JSON object (got array)")


def test_item_text_and_dataclasses() -> None:
    item = CatalogItem(id="x", image=Path("/a.png"), title="Red dress.")
    assert item.text == "Red dress."
    assert item.all_images == (Path("/a.png"),)
    full = CatalogItem("y", Path("/b.png"), "Shirt", "Soft", attributes=("blue", "linen"))
    assert full.text == "Shirt. Soft. blue, linen"
    catalog = Catalog(Path("/m.jsonl"), [item], [RejectedRow(2, None, "invalid JSON: x")], 2)
    assert catalog.summary() == "2 rows: 1 accepted, 1 rejected\n  1  invalid JSON"


_ROW_KINDS = st.sampled_from(["ok", "ok-dup", "blank", "bad-json", "no-title", "missing-image"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_ROW_KINDS, max_size=12))
def test_rows_in_always_equals_accepted_plus_rejected(kinds: list[str]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        (base / "ok.png").write_bytes(_png())
        lines = []
        for k, kind in enumerate(kinds):
            lines.append(
                {
                    "ok": json.dumps(_row(f"id{k}", image="ok.png")),
                    "ok-dup": json.dumps(_row("dup", image="ok.png")),
                    "blank": "   ",
                    "bad-json": '{"id": ',
                    "no-title": json.dumps({"id": f"id{k}", "image": "ok.png"}),
                    "missing-image": json.dumps(_row(f"id{k}", image="gone.png")),
                }[kind]
            )
        (base / "m.jsonl").write_text("\n".join(lines) + "\n")
        catalog = load_catalog(base / "m.jsonl", workers=1)
        non_blank = sum(kind != "blank" for kind in kinds)
        assert catalog.rows_in == non_blank == len(catalog.items) + len(catalog.rejected)
        expected_ok = kinds.count("ok") + min(1, kinds.count("ok-dup"))
        assert len(catalog.items) == expected_ok
