"""Tests of ddim_book.data (MNIST loading, checks, split, download) and ddim_book.toy (2-D toy data)."""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import http.server
import os
import shutil
import socket
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from ddim_book import data, toy

SHIPPED = Path(__file__).resolve().parents[1] / "data" / "mnist"
TEST_IMAGES, TEST_LABELS = data.MNIST_FILES["test"]
TRAIN_IMAGES, TRAIN_LABELS = data.MNIST_FILES["train"]


# ---------------------------------------------------------------- helpers


def idx_gz(array: np.ndarray, magic: bytes | None = None) -> bytes:
    """Encode a uint8 array as a gzip'd IDX file (mtime 0, so the bytes and md5 are reproducible)."""
    header = magic if magic is not None else bytes([0, 0, 0x08, array.ndim])
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes(), mtime=0)


def tiny_train_split(n: int = 6) -> dict[str, bytes]:
    """A valid, tiny 'train' split: n random 28x28 images and their labels, as file name -> bytes."""
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=(n,), dtype=np.uint8)
    return {TRAIN_IMAGES: idx_gz(images), TRAIN_LABELS: idx_gz(labels)}


def md5_table(files: dict[str, bytes]) -> dict[str, str]:
    return {name: hashlib.md5(body).hexdigest() for name, body in files.items()}


def write_files(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, body in files.items():
        (folder / name).write_bytes(body)
    return folder


@contextlib.contextmanager
def serve(folder: Path, handler_base=http.server.SimpleHTTPRequestHandler):
    """Serve ``folder`` on 127.0.0.1 (a free port) in a thread; yields (base URL, list of requested paths)."""
    requests: list[str] = []

    class Handler(handler_base):
        def log_message(self, *args):
            pass

        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=folder))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", requests
    finally:
        server.shutdown()
        server.server_close()


class CutOffHandler(http.server.SimpleHTTPRequestHandler):
    """Promises 100,000 bytes, sends 10, hangs up: a download cut off mid-way."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "100000")
        self.end_headers()
        self.wfile.write(b"0123456789")
        self.wfile.flush()
        self.close_connection = True


def refused_url() -> str:
    """A base URL on which nothing listens (the port was free a moment ago), so connecting is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def copy_shipped(tmp_path: Path) -> Path:
    root = tmp_path / "mnist"
    root.mkdir()
    for name in (TEST_IMAGES, TEST_LABELS):
        shutil.copyfile(SHIPPED / name, root / name)
    return root


# ---------------------------------------------------------------- loading the shipped split


def test_shipped_test_split_loads():
    images, labels = data.load_mnist()
    assert images.shape == (10000, 28, 28) and images.dtype == torch.uint8
    assert labels.shape == (10000,) and labels.dtype == torch.int64
    counts = torch.bincount(labels, minlength=10)
    assert counts.numel() == 10 and int(counts.sum()) == 10000
    assert int(counts.min()) > 800  # every digit is well represented
    assert int(images.min()) == 0 and int(images.max()) == 255
    # digits are white strokes on black: most pixels are background, the centre is inked
    assert float((images == 0).float().mean()) > 0.7
    assert float(images[:, 10:18, 10:18].float().mean()) > float(images[:, :3, :].float().mean()) + 50


def test_md5sums_file_agrees_with_table_and_files():
    listed = {}
    for line in (SHIPPED / "MD5SUMS").read_text().splitlines():
        digest, name = line.split()
        listed[name.lstrip("*")] = digest
    assert listed.keys() == {TEST_IMAGES, TEST_LABELS}
    for name, digest in listed.items():
        assert data.MNIST_MD5[name] == digest == data.md5_of(SHIPPED / name)


def test_default_root_and_env_override(monkeypatch, tmp_path):
    monkeypatch.delenv("DDIM_BOOK_DATA", raising=False)
    assert data.default_root() == SHIPPED
    monkeypatch.setenv("DDIM_BOOK_DATA", str(tmp_path))
    assert data.default_root() == tmp_path / "mnist"
    with pytest.raises(data.DataError, match="missing"):
        data.load_mnist()


def test_unknown_split_is_a_value_error():
    with pytest.raises(ValueError, match="'test'.*'train'|'train'.*'test'"):
        data.load_mnist(split="validation")


# ---------------------------------------------------------------- broken files give clear errors


def flip_byte(path: Path, offset: int) -> None:
    body = bytearray(path.read_bytes())
    body[offset] ^= 0xFF
    path.write_bytes(bytes(body))


def test_corrupted_copy_fails_md5(tmp_path):
    root = copy_shipped(tmp_path)
    flip_byte(root / TEST_IMAGES, 800_000)
    with pytest.raises(data.DataError) as info:
        data.load_mnist(root)
    message = str(info.value)
    assert TEST_IMAGES in message and "md5" in message
    assert data.MNIST_MD5[TEST_IMAGES] in message
    assert "download_mnist" in message and "data/mnist" in message


def test_corrupted_copy_without_md5_check_still_fails_clearly(tmp_path):
    root = copy_shipped(tmp_path)
    flip_byte(root / TEST_IMAGES, 800_000)
    with pytest.raises(data.DataError, match="not a readable gzip") as info:
        data.load_mnist(root, verify=False)
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert TEST_IMAGES in str(info.value)


@pytest.mark.parametrize("verify, expected", [(True, "truncated"), (False, "not a readable gzip")])
def test_truncated_file(tmp_path, verify, expected):
    root = copy_shipped(tmp_path)
    path = root / TEST_LABELS
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(data.DataError, match=expected) as info:
        data.load_mnist(root, verify=verify)
    assert TEST_LABELS in str(info.value)


def test_missing_file_message_says_what_to_do(tmp_path):
    root = copy_shipped(tmp_path)
    (root / TEST_LABELS).unlink()
    with pytest.raises(data.DataError) as info:
        data.load_mnist(root)
    message = str(info.value)
    assert str(root / TEST_LABELS) in message and "missing" in message
    assert "re-copy" in message and "download_mnist" in message


def test_missing_train_split_points_to_download(tmp_path):
    with pytest.raises(data.DataError, match="download_mnist") as info:
        data.load_mnist(tmp_path, split="train")
    assert TRAIN_IMAGES in str(info.value)


@pytest.mark.parametrize(
    "images, labels, expected",
    [
        (idx_gz(np.zeros((3, 28, 28)), magic=b"\x00\x00\x0d\x03"), idx_gz(np.zeros(3)), "IDX magic"),
        (idx_gz(np.zeros((3, 28, 28))), idx_gz(np.zeros((3, 28))), "IDX magic"),
        (gzip.compress(b"\x00\x00\x08\x03" + (5).to_bytes(4, "big") * 3 + b"\x00" * 10), None, "declares shape"),
        (idx_gz(np.zeros((3, 14, 14))), idx_gz(np.zeros(3)), r"expected \(28, 28\)"),
        (idx_gz(np.zeros((3, 28, 28))), idx_gz(np.zeros(4)), "4 labels for 3 images"),
        (idx_gz(np.zeros((3, 28, 28))), idx_gz(np.full(3, 11)), "label 11"),
        (b"this is not gzip", None, "not a readable gzip"),
    ],
)
def test_bad_idx_contents(tmp_path, images, labels, expected):
    files = {TRAIN_IMAGES: images, TRAIN_LABELS: labels if labels is not None else idx_gz(np.zeros(3))}
    root = write_files(tmp_path, files)
    # the md5 table is made to match, so the IDX checks themselves are what must catch the problem
    with pytest.raises(data.DataError, match=expected):
        data.load_mnist(root, split="train", md5s=md5_table(files))


def test_tiny_valid_split_round_trips(tmp_path):
    files = tiny_train_split()
    images, labels = data.load_mnist(write_files(tmp_path, files), split="train", md5s=md5_table(files))
    assert images.shape == (6, 28, 28) and labels.shape == (6,)
    assert idx_gz(images.numpy()) == files[TRAIN_IMAGES]
    assert idx_gz(labels.numpy().astype(np.uint8)) == files[TRAIN_LABELS]


# ---------------------------------------------------------------- pixel range


def test_model_range_and_inverse():
    images, _ = data.load_mnist()
    x = data.to_model_range(images[:500])
    assert x.shape == (500, 1, 28, 28) and x.dtype == torch.float32
    assert float(x.min()) == -1.0 and float(x.max()) == 1.0
    assert torch.equal(data.to_uint8(x), images[:500])
    assert torch.equal(data.to_model_range(images[:5].unsqueeze(1)), x[:5])


def test_to_uint8_clips_and_rounds():
    x = torch.tensor([-3.0, -1.0, -0.999, 0.0, 1.0, 7.0]).reshape(1, 1, 1, 6)
    assert data.to_uint8(x).tolist() == [[[0, 0, 0, 128, 255, 255]]]


def test_pixel_conversion_rejects_wrong_types():
    with pytest.raises(TypeError, match="images_uint8"):
        data.to_model_range(torch.zeros(2, 28, 28))
    with pytest.raises(ValueError, match="images_uint8"):
        data.to_model_range(torch.zeros(2, 3, 28, 28, dtype=torch.uint8))
    with pytest.raises(TypeError, match="x must"):
        data.to_uint8(torch.zeros(2, 28, 28, dtype=torch.uint8))


# ---------------------------------------------------------------- held-out split


def test_split_indices_follow_the_documented_hash_rule():
    train, held = data.split_indices(50, held_out=7, seed=3)
    by_hash = sorted(range(50), key=lambda i: hashlib.sha256(f"3:{i}".encode()).digest())
    assert held.tolist() == sorted(by_hash[:7]) and train.tolist() == sorted(by_hash[7:])


def test_mnist_split_is_deterministic_disjoint_and_complete():
    images, labels = data.load_mnist()
    (train_x, train_y), (held_x, held_y) = data.mnist_split(images, labels)
    again = data.mnist_split(images, labels)
    assert torch.equal(again[0][0], train_x) and torch.equal(again[1][1], held_y)
    assert train_x.shape == (9000, 28, 28) and held_x.shape == (1000, 28, 28)
    train_idx, held_idx = data.split_indices(10000, 1000, 0)
    assert not set(train_idx.tolist()) & set(held_idx.tolist())
    assert sorted(train_idx.tolist() + held_idx.tolist()) == list(range(10000))
    assert torch.equal(held_x, images[held_idx]) and torch.equal(held_y, labels[held_idx])
    assert int(torch.bincount(held_y, minlength=10).min()) > 50  # every digit is held out
    other = data.split_indices(10000, 1000, 1)[1]
    assert not torch.equal(other, held_idx)


def test_split_rejects_bad_arguments():
    images, labels = torch.zeros(10, 28, 28, dtype=torch.uint8), torch.zeros(10, dtype=torch.int64)
    with pytest.raises(ValueError, match="held_out"):
        data.mnist_split(images, labels, held_out=11)
    with pytest.raises(ValueError, match="share N"):
        data.mnist_split(images, labels[:9])
    with pytest.raises(TypeError, match="held_out"):
        data.split_indices(10, held_out=2.5)


def test_mnist_dataset_parts():
    x_train, y_train = data.mnist_dataset("train")
    x_held, y_held = data.mnist_dataset("held_out")
    x_all, y_all = data.mnist_dataset("all")
    assert x_train.shape == (9000, 1, 28, 28) and x_held.shape == (1000, 1, 28, 28)
    assert x_all.shape == (10000, 1, 28, 28) and x_all.dtype == torch.float32
    for x in (x_train, x_held, x_all):
        assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0
    train_idx, held_idx = data.split_indices(10000)
    assert torch.equal(x_all[held_idx], x_held) and torch.equal(y_all[train_idx], y_train)
    with pytest.raises(ValueError, match="held_out"):
        data.mnist_dataset("validation")


# ---------------------------------------------------------------- download (local HTTP servers only)


@pytest.fixture
def mirrors(tmp_path):
    """Four local mirrors: refused connection, 404 (empty folder), corrupt files, good files."""
    files = tiny_train_split()
    good = write_files(tmp_path / "good", files)
    corrupt = write_files(tmp_path / "corrupt", {name: body[:-3] + b"xyz" for name, body in files.items()})
    empty = tmp_path / "empty"
    empty.mkdir()
    with serve(good) as (good_url, good_log), serve(corrupt) as (bad_url, bad_log), serve(empty) as (nf_url, _):
        yield {
            "files": files,
            "md5s": md5_table(files),
            "refused": refused_url(),
            "not_found": nf_url,
            "corrupt": bad_url,
            "good": good_url,
            "good_log": good_log,
            "corrupt_log": bad_log,
        }


def no_temp_files(root: Path) -> bool:
    return not [p for p in root.iterdir() if p.name.endswith(".tmp")]


def test_download_falls_through_to_the_good_mirror(tmp_path, mirrors):
    root = tmp_path / "dest"
    order = [mirrors["refused"], mirrors["not_found"], mirrors["corrupt"], mirrors["good"]]
    paths = data.download_mnist(root, mirrors=order, md5s=mirrors["md5s"], timeout=5, progress=False)
    assert paths == [root / TRAIN_IMAGES, root / TRAIN_LABELS]
    for path in paths:
        assert path.read_bytes() == mirrors["files"][path.name]
    assert len(mirrors["corrupt_log"]) == 2  # the corrupt mirror was asked, and rejected, for both files
    assert no_temp_files(root)
    images, labels = data.load_mnist(root, split="train", md5s=mirrors["md5s"])
    assert images.shape == (6, 28, 28) and labels.shape == (6,)


def test_download_is_atomic(tmp_path, mirrors, monkeypatch):
    root = write_files(tmp_path / "dest", {TRAIN_IMAGES: b"old, broken"})
    real_replace, moves = os.replace, []

    def spy(src, dst):
        src, dst = Path(src), Path(dst)
        # at the moment of the move the real name still holds the old content (or nothing)
        old = dst.read_bytes() if dst.exists() else None
        moves.append((src, dst, old, src.read_bytes()))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    data.download_mnist(root, mirrors=[mirrors["good"]], md5s=mirrors["md5s"], progress=True)
    assert [dst.name for _, dst, _, _ in moves] == [TRAIN_IMAGES, TRAIN_LABELS]
    for src, dst, _old, new in moves:
        assert src.parent == dst.parent and src != dst and src.name.endswith(".tmp")
        assert new == mirrors["files"][dst.name]
    assert moves[0][2] == b"old, broken" and moves[1][2] is None
    assert no_temp_files(root)


def test_download_skips_files_already_valid(tmp_path, mirrors):
    root = write_files(tmp_path / "dest", mirrors["files"])
    data.download_mnist(root, mirrors=[mirrors["good"]], md5s=mirrors["md5s"], progress=False)
    assert mirrors["good_log"] == []
    (root / TRAIN_LABELS).write_bytes(b"stale")
    data.download_mnist(root, mirrors=[mirrors["good"]], md5s=mirrors["md5s"], progress=False)
    assert mirrors["good_log"] == ["/" + TRAIN_LABELS]
    assert (root / TRAIN_LABELS).read_bytes() == mirrors["files"][TRAIN_LABELS]


def test_download_failure_lists_every_mirror(tmp_path, mirrors):
    root = write_files(tmp_path / "dest", {TRAIN_IMAGES: b"old, broken"})
    with serve(tmp_path, handler_base=CutOffHandler) as (cut_url, _):
        order = [mirrors["refused"], mirrors["not_found"], mirrors["corrupt"], cut_url]
        with pytest.raises(data.DataError) as info:
            data.download_mnist(root, mirrors=order, md5s=mirrors["md5s"], timeout=5, progress=False)
    lines = str(info.value).splitlines()
    assert TRAIN_IMAGES in lines[0] and "every mirror failed" in lines[0]
    assert mirrors["refused"] in lines[1] and "network error" in lines[1]
    assert mirrors["not_found"] in lines[2] and "HTTP 404" in lines[2]
    assert mirrors["corrupt"] in lines[3] and "bad md5" in lines[3] and mirrors["md5s"][TRAIN_IMAGES] in lines[3]
    assert cut_url in lines[4] and "closed after 10 of 100000 bytes" in lines[4]
    assert "mirrors=" in lines[-1]
    assert (root / TRAIN_IMAGES).read_bytes() == b"old, broken"  # a failed download leaves the old file alone
    assert no_temp_files(root)


def test_download_rejects_bad_arguments(tmp_path, mirrors):
    with pytest.raises(ValueError, match="file"):
        data.download_mnist(tmp_path, mirrors=[mirrors["good"]], files=["nope.gz"], md5s=mirrors["md5s"])
    with pytest.raises(ValueError, match="mirrors"):
        data.download_mnist(tmp_path, mirrors=mirrors["good"], md5s=mirrors["md5s"])
    with pytest.raises(ValueError, match="timeout"):
        data.download_mnist(tmp_path, mirrors=[mirrors["good"]], md5s=mirrors["md5s"], timeout=0)
    with pytest.raises(TypeError, match="timeout"):
        data.download_mnist(tmp_path, mirrors=[mirrors["good"]], md5s=mirrors["md5s"], timeout="soon")


def test_default_mirrors_are_base_urls_for_the_official_names():
    assert data.DEFAULT_MIRRORS and all(url.startswith(("https://", "http://")) for url in data.DEFAULT_MIRRORS)
    assert set(data.MNIST_MD5) == {name for pair in data.MNIST_FILES.values() for name in pair}


# ---------------------------------------------------------------- 2-D toy data


@pytest.mark.parametrize("name", toy.TOY_NAMES)
def test_toy_shape_and_determinism(name):
    x = toy.toy_2d(name, 500, generator=torch.Generator().manual_seed(0))
    assert x.shape == (500, 2) and x.dtype == torch.float32 and bool(torch.isfinite(x).all())
    same = toy.toy_2d(name, 500, generator=torch.Generator().manual_seed(0))
    other = toy.toy_2d(name, 500, generator=torch.Generator().manual_seed(1))
    assert torch.equal(x, same) and not torch.equal(x, other)
    assert 0.3 < float(x.var(dim=0).mean()) < 3.0  # roughly unit variance
    assert toy.toy_2d(name, 0).shape == (0, 2)


@pytest.mark.parametrize("name", ["moons", "swiss_roll"])
def test_toy_is_standardised(name):
    x = toy.toy_2d(name, 40000, generator=torch.Generator().manual_seed(2))
    assert torch.allclose(x.mean(dim=0), torch.zeros(2), atol=0.03)
    assert torch.allclose(x.var(dim=0), torch.ones(2), atol=0.04)


def test_toy_shapes_follow_their_curves():
    generator = torch.Generator().manual_seed(3)
    mean, std = toy._standardisation("moons")
    moons = toy.toy_2d("moons", 4000, generator).double() * std + mean
    to_upper = (moons.norm(dim=1) - 1).abs()
    to_lower = ((moons - torch.tensor([1.0, 0.5], dtype=torch.float64)).norm(dim=1) - 1).abs()
    assert float((torch.minimum(to_upper, to_lower) < 0.4).double().mean()) > 0.99
    mean, std = toy._standardisation("swiss_roll")
    roll = toy.toy_2d("swiss_roll", 4000, generator).double() * std + mean
    radius = roll.norm(dim=1)
    assert float(radius.min()) > 1.5 * np.pi - 2 and float(radius.max()) < 4.5 * np.pi + 2
    assert float(radius.std()) > 2.5  # spread along the spiral, not a blob


def test_toy_mixture_is_the_oracle_data_distribution():
    from ddim_book.oracles import GaussianMixtureOracle

    x = toy.toy_2d("mixture", 300, generator=torch.Generator().manual_seed(4))
    expected = GaussianMixtureOracle.ring_2d().sample(300, t=0, generator=torch.Generator().manual_seed(4))
    assert torch.equal(x, expected.float())


def test_toy_rejects_bad_arguments():
    with pytest.raises(ValueError, match="'moons', 'swiss_roll', 'mixture'"):
        toy.toy_2d("circles", 10)
    with pytest.raises(ValueError, match="n must"):
        toy.toy_2d("moons", -1)
    with pytest.raises(TypeError, match="generator"):
        toy.toy_2d("moons", 10, generator=0)
    assert data.toy_2d is toy.toy_2d
