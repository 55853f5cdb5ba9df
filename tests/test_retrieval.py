"""Retrieval evaluation (translate-video evaluate-retrieval): the GeM VGG16 descriptor, ranking and
Recall@K, ground truth by names and CSV, the database descriptor cache, and the command's errors.

The images are real: aligned crops of the NASA night/day Earth pair (tests/retrieval_utils.py). The
descriptor uses the real ImageNet VGG16 weights of ../shared/weights; the model is a real
translate-video CycleGAN model file (tests/fixtures/model_files, tiny networks).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from retrieval_utils import make_earth, subset

from vid2vid_app.cli.translate import translate_video
from vid2vid_app.errors import UserError
from vid2vid_app.imaging import read_image, to_tensor, write_image
from vid2vid_app.translate.retrieval import (
    RetrievalOptions,
    evaluate_retrieval,
    ground_truth_by_name,
    load_cached,
    rank_database,
    read_ground_truth_csv,
    recall_at_k,
    save_cached,
)

FIXTURES = Path(__file__).parent / "fixtures" / "model_files"
CYCLEGAN_MODEL = FIXTURES / "translate_cyclegan_v1.pt"
DANCE_MODEL = FIXTURES / "dance_model_v1.pt"


@pytest.fixture(scope="module")
def earth(tmp_path_factory, shared_samples):
    return make_earth(tmp_path_factory.mktemp("earth"), shared_samples)


@pytest.fixture(scope="module")
def small(earth, tmp_path_factory):
    """6 lit night queries and a database of their 6 day crops plus 6 other places (64x64)."""
    queries = sorted(p.name for p in (earth / "heldout" / "night").iterdir())[:6]
    others = sorted(set(p.name for p in (earth / "heldout" / "day").iterdir()) - set(queries))[:6]
    root = tmp_path_factory.mktemp("small")
    return {"queries": subset(earth / "heldout" / "night", root / "q", queries),
            "database": subset(earth / "heldout" / "day", root / "db", queries + others),
            "names": queries, "others": others}


@pytest.fixture(scope="module")
def descriptor(shared_weights):
    from vid2vid_app.models.descriptor import GeMDescriptor

    torch.set_num_threads(1)
    return GeMDescriptor(shared_weights / "vgg16_features_imagenet.pth")


def invoke(*args):
    return CliRunner().invoke(translate_video, ["evaluate-retrieval", *[str(a) for a in args]],
                              catch_exceptions=False)


# ---------------------------------------------------------------------------------------- descriptor


def test_descriptor_is_512_d_unit_norm_at_any_size(descriptor, earth):
    """Two sizes, one network: (N, 512) vectors of L2 norm 1, non-negative (GeM of ReLU maps)."""
    day = read_image(next((earth / "heldout" / "day").iterdir()))
    for image in (day, cv2.resize(day, (128, 96))):
        out = descriptor(to_tensor(np.stack([image, image[::-1].copy()])))
        assert out.shape == (2, 512) and out.dtype == torch.float32
        torch.testing.assert_close(out.norm(dim=1), torch.ones(2), atol=1e-5, rtol=0)
        assert (out >= 0).all()


def test_descriptor_finds_a_shifted_brighter_view_of_the_same_place(descriptor, earth):
    """A crop moved by 4 pixels and brightened by 15% is nearer (cosine) to its original than to any
    of 11 crops of other places: the property retrieval relies on."""
    files = sorted((earth / "heldout" / "day").iterdir())[:12]
    day = [read_image(f) for f in files]
    shifted = np.roll(day[5], (4, 4), axis=(0, 1)).astype(np.float32) * 1.15
    query = np.clip(shifted, 0, 255).astype(np.uint8)
    with torch.inference_mode():
        db = descriptor(to_tensor(np.stack(day))).numpy()
        q = descriptor(to_tensor(query)).numpy()
    assert rank_database(q, db)[0, 0] == 5


def test_gem_lies_between_average_and_max_pooling():
    from vid2vid_app.models.descriptor import gem

    x = torch.tensor([1.0, 2.0, 0.0, 3.0]).view(1, 1, 2, 2)
    assert gem(x, p=1.0).item() == pytest.approx(1.5, abs=1e-6)  # p = 1: the mean
    assert gem(x, p=3.0).item() == pytest.approx(((1 + 8 + 0 + 27) / 4) ** (1 / 3), abs=1e-5)
    assert gem(x, p=50.0).item() == pytest.approx(3.0 * 0.25 ** (1 / 50), abs=1e-4)  # towards the max
    assert gem(torch.full((1, 2, 3, 3), 0.7), p=3.0)[0].tolist() == pytest.approx([0.7, 0.7])


def test_missing_weight_file_is_named():
    from vid2vid_app.models.descriptor import find_descriptor_weights

    with pytest.raises(UserError, match="nope.pth does not exist"):
        find_descriptor_weights("/nope/nope.pth")


def test_working_size_limits_the_longer_and_shorter_side():
    from vid2vid_app.translate.retrieval import working_size

    assert working_size(64, 64, 512, 128) == (128, 128)  # small crops enlarged
    assert working_size(1920, 1080, 512, 128) == (512, 288)  # large frames reduced, aspect kept
    assert working_size(300, 200, 512, 128) == (300, 200)  # within both limits: unchanged
    assert working_size(2000, 40, 512, 128) == (6400, 128)  # a strip: the shorter side wins
    assert working_size(20, 20, 512, 0) == (32, 32)  # never below the descriptor's minimum


# ---------------------------------------------------------------------------------------- recall


def _unit(degrees: list[float]) -> np.ndarray:
    r = np.radians(degrees)
    return np.stack([np.cos(r), np.sin(r)], 1).astype(np.float32)


def test_recall_on_a_constructed_case():
    """Database at 0, 40, 80 and 120 degrees. Query 5 deg matches db 0 (ranked 1st); query 75 deg
    matches db 3 (ranks: 80, 40, 120 -> 3rd); query 170 deg matches db 1 or 3 (120 ranks 1st).
    Recall@1 = 2/3, @2 = 2/3, @3 = 1."""
    ranking = rank_database(_unit([5, 75, 170]), _unit([0, 40, 80, 120]))
    assert ranking[1].tolist() == [2, 1, 3, 0]
    recall = recall_at_k(ranking, [[0], [3], [1, 3]], ks=(1, 2, 3, 10))
    assert recall == pytest.approx({"recall@1": 2 / 3, "recall@2": 2 / 3, "recall@3": 1.0, "recall@10": 1.0})


def test_ties_keep_the_database_order():
    ranking = rank_database(_unit([0]), _unit([10, 50, 10]))
    assert ranking[0].tolist() == [0, 2, 1]


# ---------------------------------------------------------------------------------------- ground truth


def test_ground_truth_by_name_lists_the_unmatched():
    truth = ground_truth_by_name(["a", "b", "c"], ["c", "x", "a"])
    assert truth.matches == {0: [2], 2: [0]} and truth.unmatched == ["b"]


def test_ground_truth_csv_accepts_names_extensions_frame_numbers_and_merges_rows(tmp_path):
    q_files = [tmp_path / "q1.png", tmp_path / "q2.jpg", tmp_path / "q3.png"]
    csv = tmp_path / "gt.csv"
    csv.write_text("query,match\nq1.png, frame_000002 ,4\n\nq2,0\nq1,frame_000002\nq3\n")
    truth = read_ground_truth_csv(csv, ["q1", "q2", "q3"], q_files, [f"frame_{i:06d}" for i in range(5)], [])
    assert truth.matches == {0: [2, 4], 1: [0]}
    assert truth.unmatched == ["q3"]  # a row without matches


def test_ground_truth_csv_naming_missing_files_is_refused_with_lines(tmp_path):
    csv = tmp_path / "gt.csv"
    csv.write_text("q1,d1\nq9,d1\nq1,d7.png\n")
    with pytest.raises(UserError) as info:
        read_ground_truth_csv(csv, ["q1"], [], ["d1"], [])
    assert "2 image(s)" in str(info.value) and "query q9 (line 2)" in str(info.value)
    assert "database image d7.png (line 3)" in str(info.value)
    with pytest.raises(UserError, match="does not exist"):
        read_ground_truth_csv(tmp_path / "none.csv", ["q1"], [], ["d1"], [])


# ---------------------------------------------------------------------------------------- cache


def test_cache_file_round_trip_and_mismatch(tmp_path):
    names = ["a", "b", "c"]
    desc = np.random.default_rng(0).random((3, 512)).astype(np.float32)
    path = tmp_path / "sub" / "k.npz"
    assert save_cached(path, desc, names) is None
    assert np.array_equal(load_cached(path, names, 512), desc)
    assert load_cached(path, ["a", "b", "x"], 512) is None  # other images
    assert load_cached(path, names, 256) is None  # another descriptor size
    path.write_bytes(b"not an npz")
    assert load_cached(path, names, 512) is None  # damaged: recomputed, never an error
    assert not list(path.parent.glob(".*tmp*"))  # no temp files left behind


def test_database_descriptors_are_cached_and_keyed_on_contents(small, tmp_path):
    """The second run reads the database from the cache and gives the same recall; changing one
    database image's pixels (same name) makes a new cache entry."""
    database = subset(small["database"], tmp_path / "db", sorted(p.name for p in small["database"].iterdir()))
    options = RetrievalOptions(queries=small["queries"], database=database, device="cpu", min_side=64,
                               cache_dir=tmp_path / "cache", quiet=True)
    first = evaluate_retrieval(options)
    second = evaluate_retrieval(options)
    assert not first.cache_hit and second.cache_hit
    assert first.results == second.results
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1
    name = small["names"][0]
    write_image(database / name, 255 - read_image(database / name))
    third = evaluate_retrieval(options)
    assert not third.cache_hit and len(list((tmp_path / "cache").glob("*.npz"))) == 2


# ---------------------------------------------------------------------------------------- command


def test_command_prints_table_and_writes_json_with_keys_as_given(small, tmp_path):
    out = tmp_path / "r.json"
    result = invoke("--queries", small["queries"], "--database", small["database"], "--model", CYCLEGAN_MODEL,
                    "--json", out, "--cache-dir", tmp_path / "c", "--device", "cpu", "--min-side", 64, "-q")
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert list(data) == ["raw", str(CYCLEGAN_MODEL)]
    for values in data.values():
        assert list(values) == ["recall@1", "recall@5", "recall@10"]
        assert 0 <= values["recall@1"] <= values["recall@5"] <= values["recall@10"] <= 1
    assert "6 queries against 12 database images" in result.output and "R@10" in result.output
    assert "at 64x64" in result.output
    again = invoke("--queries", small["queries"], "--database", small["database"], "--json", out, "-q")
    assert again.exit_code == 1 and "already exists" in again.output


def test_other_sizes_are_resized_and_unmatched_queries_counted(small, tmp_path):
    """Queries at 96x96 (the database is 64x64) are noted; all images are described at the default
    working size, the database's size enlarged to a 128 px shorter side. Two queries whose names are
    not in the database are listed, left out and counted."""
    queries = tmp_path / "q"
    queries.mkdir()
    for name in small["names"]:
        write_image(queries / name, cv2.resize(read_image(small["queries"] / name), (96, 96)))
    for name in ("elsewhere_1.png", "elsewhere_2.png"):
        write_image(queries / name, read_image(small["queries"] / small["names"][0]))
    result = invoke("--queries", queries, "--database", small["database"], "--no-cache", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "2 of 8 queries have no match in the database (by file names) and are left out: elsewhere_1, " \
           "elsewhere_2" in result.output
    assert "6 of the 6 queries differ in size from the database's first image (64x64); all images are " \
           "described at 128x128" in result.output
    assert "database images differ" not in result.output
    assert "6 queries against 12 database images" in result.output


@pytest.mark.parametrize("case, message", [
    ("empty database", "empty contains no images"),
    ("csv names missing files", "names 1 image(s) that are not among the queries or the database: "
                                "database image gone.png (line 1)"),
    ("no query matches", "none of the 6 queries has a match"),
    ("dance model", "is a motion-transfer model"),
    ("not a model file", "is not a readable model"),
    ("unknown model", "unknown model 'nosuch'"),
    ("model named raw", "cannot be called 'raw'"),
    ("model twice", "is given twice"),
])
def test_bad_input_is_one_clear_sentence(small, tmp_path, case, message):
    q, db = small["queries"], small["database"]
    args = []
    if case == "empty database":
        db = tmp_path / "empty"
        db.mkdir()
    elif case == "csv names missing files":
        (tmp_path / "gt.csv").write_text(f"{small['names'][0]},gone.png\n")
        args = ["--ground-truth", tmp_path / "gt.csv"]
    elif case == "no query matches":
        db = subset(db, tmp_path / "db", small["others"])
    elif case == "dance model":
        args = ["--model", DANCE_MODEL]
    elif case == "not a model file":
        (tmp_path / "junk.pt").write_bytes(b"\x00junk")
        args = ["--model", tmp_path / "junk.pt"]
    elif case == "unknown model":
        args = ["--model", "nosuch", "--runs-dir", tmp_path / "runs"]
    elif case == "model named raw":
        args = ["--model", "raw"]
    else:
        args = ["--model", CYCLEGAN_MODEL, "--model", CYCLEGAN_MODEL]
    result = invoke("--queries", q, "--database", db, "--no-cache", "--device", "cpu", "--min-side", 64, "-q", *args)
    assert result.exit_code == 1, result.output
    assert message in result.output and "Traceback" not in result.output


def test_json_never_overwrites_an_input(small, tmp_path):
    """--json may not be the model file, the ground truth or a file inside the query/database
    folders, whatever --overwrite says; the refusal comes before any descriptor is computed."""
    import shutil

    model = tmp_path / "model.pt"
    shutil.copy(CYCLEGAN_MODEL, model)
    truth = tmp_path / "truth.csv"
    truth.write_text("")
    kept = {p: p.read_bytes() for p in (model, truth)}
    common = ["--queries", small["queries"], "--database", small["database"], "--overwrite", "-q"]
    for extra, json_path, message in [
        (["--model", model], model, "is the input"),
        (["--ground-truth", truth], truth, "is the input"),
        ([], small["database"] / "r.json", "inside the input folder"),
    ]:
        result = invoke(*common, *extra, "--json", json_path)
        assert result.exit_code == 1 and message in result.output, result.output
    assert all(p.read_bytes() == data for p, data in kept.items())
    assert not (small["database"] / "r.json").exists()
