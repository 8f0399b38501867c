"""The shard store: exact round trips (npz, folder of npz, real Fashion-MNIST), streaming memory,
ordered random reads, every corruption case as a clear error, and the CLI."""

from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pytest

from robustscale.data.convert import convert
from robustscale.data.store import MANIFEST, ShardStore, open_store, set_fid
from robustscale.errors import RobustscaleError


def _npz(path, n, seed=0, shape=(8, 8, 3), label_dtype=np.int32, compressed=False):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
    labels = rng.integers(0, 10, n).astype(label_dtype)
    (np.savez_compressed if compressed else np.savez)(path, image=images, label=labels)
    return images, labels.astype(np.int64)


@pytest.mark.parametrize("compressed", [False, True])
def test_npz_round_trip_in_random_order(tmp_path, compressed):
    images, labels = _npz(tmp_path / "gen.npz", 1000, compressed=compressed)
    manifest = convert(tmp_path / "gen.npz", tmp_path / "store", fid=1.82, shard_size=300,
                       chunk_size=128)
    assert [s["count"] for s in manifest["shards"]] == [300, 300, 300, 100]
    store = open_store(tmp_path / "store")
    assert (len(store), store.name, store.fid, store.shape, store.num_classes) == \
        (1000, "gen", 1.82, (8, 8, 3), 10)
    idx = np.random.default_rng(1).integers(0, 1000, 777)  # repeats, all shards, any order
    x, y = store.read(idx)
    assert x.dtype == np.uint8 and y.dtype == np.int64
    np.testing.assert_array_equal(x, images[idx])
    np.testing.assert_array_equal(y, labels[idx])
    x, y = store.read(np.arange(1000))
    np.testing.assert_array_equal(x, images)
    assert store.read(np.array([], np.int64))[0].shape == (0, 8, 8, 3)
    with pytest.raises(IndexError):
        store.read(np.array([1000]))


def test_folder_of_npz_concatenates_in_name_order(tmp_path):
    (tmp_path / "src").mkdir()
    a = _npz(tmp_path / "src" / "part0.npz", 50, seed=1)
    b = _npz(tmp_path / "src" / "part1.npz", 70, seed=2, label_dtype=np.uint8)
    convert(tmp_path / "src", tmp_path / "store", name="edm-20", shard_size=64)
    x, y = ShardStore(tmp_path / "store").read(np.arange(120))
    np.testing.assert_array_equal(x, np.concatenate([a[0], b[0]]))
    np.testing.assert_array_equal(y, np.concatenate([a[1], b[1]]))


def test_fashion_mnist_test_split_round_trip(tmp_path, fashion_mnist):
    _, _, xte, yte = fashion_mnist
    convert("fashion-mnist", tmp_path / "fm", split="test", shard_size=4096)
    store = open_store(tmp_path / "fm")
    assert (len(store), store.shape, store.name) == (10_000, (28, 28, 1), "fashion-mnist")
    x, y = store.read(np.arange(10_000)[::-1].copy())
    np.testing.assert_array_equal(x, xte[::-1])
    np.testing.assert_array_equal(y, yte[::-1])


def test_convert_streams_with_bounded_memory(tmp_path):
    n, shape = 24_000, (32, 32, 3)  # 74 MB of images, written without ever holding them
    rng = np.random.default_rng(0)
    with open(tmp_path / "big.npy", "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False,
                                                 "shape": (n, *shape)})
        for _ in range(n // 1000):
            f.write(rng.integers(0, 256, (1000, *shape), dtype=np.uint8).tobytes())
    np.save(tmp_path / "label.npy", rng.integers(0, 10, n))
    import zipfile
    with zipfile.ZipFile(tmp_path / "big.npz", "w") as zf:
        zf.write(tmp_path / "big.npy", "image.npy")
        zf.write(tmp_path / "label.npy", "label.npy")
    data_bytes = n * int(np.prod(shape))
    tracemalloc.start()
    convert(tmp_path / "big.npz", tmp_path / "store", shard_size=10_000, chunk_size=512)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < data_bytes / 10, f"peak {peak} bytes for {data_bytes} bytes of images"
    store = open_store(tmp_path / "store")
    x, _ = store.read(np.array([0, n - 1]))
    full = np.load(tmp_path / "big.npy", mmap_mode="r")
    np.testing.assert_array_equal(x, full[[0, n - 1]])


@pytest.fixture
def store(tmp_path):
    _npz(tmp_path / "gen.npz", 200)
    convert(tmp_path / "gen.npz", tmp_path / "store", shard_size=100)
    return tmp_path / "store"


def _manifest(store):
    return json.loads((store / MANIFEST).read_text())


def test_missing_manifest(store):
    (store / MANIFEST).unlink()
    with pytest.raises(RobustscaleError, match=r"manifest.json: missing"):
        open_store(store)


def test_malformed_manifest(store):
    m = _manifest(store)
    m["shards"][0]["count"] = "100"
    (store / MANIFEST).write_text(json.dumps(m))
    with pytest.raises(RobustscaleError, match=r"shards\[0\].count must be a int"):
        open_store(store)


def test_truncated_shard_is_caught_without_verify(store):
    path = store / "images-00001.npy"
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(RobustscaleError, match=r"images-00001.npy: truncated: expected \d+ bytes"):
        open_store(store, verify=False)


def test_missing_shard(store):
    (store / "labels-00000.npy").unlink()
    with pytest.raises(RobustscaleError, match="labels-00000.npy: missing shard file"):
        open_store(store, verify=False)


def test_wrong_dtype_and_shape(store):
    np.save(store / "labels-00000.npy", np.zeros(100, np.int32))
    with pytest.raises(RobustscaleError, match=r"labels-00000.npy: expected int64 of shape \(100,\)"
                                               r", found int32"):
        open_store(store, verify=False)
    np.save(store / "labels-00000.npy", np.zeros(100, np.int64))
    np.save(store / "images-00000.npy", np.zeros((100, 8, 8, 1), np.uint8))
    with pytest.raises(RobustscaleError, match=r"expected uint8 of shape \(100, 8, 8, 3\)"):
        open_store(store, verify=False)


def test_corrupt_header(store):
    (store / "images-00000.npy").write_bytes(b"garbage" * 100)
    with pytest.raises(RobustscaleError, match="images-00000.npy: not a readable .npy array"):
        open_store(store, verify=False)


def test_checksum_mismatch_needs_verify(store):
    path = store / "images-00001.npy"
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0xFF  # same size, one flipped byte: only the checksum can tell
    path.write_bytes(bytes(raw))
    open_store(store, verify=False)
    with pytest.raises(RobustscaleError, match=r"images-00001.npy: checksum mismatch \(expected "
                                               r"sha256 [0-9a-f]{64}"):
        open_store(store, verify=True)


def test_label_out_of_range_in_store(store):
    labels = np.load(store / "labels-00000.npy")
    labels[3] = 10
    np.save(store / "labels-00000.npy", labels)
    m = _manifest(store)  # a consistent checksum, so the range check itself must catch it
    import hashlib
    m["shards"][0]["labels_sha256"] = hashlib.sha256(
        (store / "labels-00000.npy").read_bytes()).hexdigest()
    (store / MANIFEST).write_text(json.dumps(m))
    open_store(store)  # opening reads no labels: only sizes and the manifest
    with pytest.raises(RobustscaleError, match=r"labels-00000.npy: expected labels in \[0, 10\), "
                                               r"found 0..10"):
        open_store(store, verify=True)


def test_convert_rejects_bad_inputs(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "labels.npz", image=rng.integers(0, 256, (5, 4, 4, 3), dtype=np.uint8),
             label=np.array([0, 1, 2, 11, 3]))
    with pytest.raises(RobustscaleError, match=r"labels.npz:label: expected labels in \[0, 10\)"):
        convert(tmp_path / "labels.npz", tmp_path / "s1")
    assert not (tmp_path / "s1").exists()  # nothing half-written
    assert [p.name for p in tmp_path.iterdir()] == ["labels.npz"]
    np.savez(tmp_path / "float.npz", image=np.zeros((5, 4, 4, 3), np.float32), label=np.zeros(5))
    with pytest.raises(RobustscaleError, match=r"float.npz:image: expected uint8 of shape"):
        convert(tmp_path / "float.npz", tmp_path / "s2")
    np.savez(tmp_path / "keys.npz", x=np.zeros(3))
    with pytest.raises(RobustscaleError, match=r"keys.npz: expected npz members 'image', 'label'"):
        convert(tmp_path / "keys.npz", tmp_path / "s3")
    _npz(tmp_path / "ok.npz", 2000)
    raw = (tmp_path / "ok.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(RobustscaleError, match=r"cut.npz: not a readable npz file"):
        convert(tmp_path / "cut.npz", tmp_path / "s4")
    convert(tmp_path / "ok.npz", tmp_path / "s5")
    with pytest.raises(RobustscaleError, match=r"s5: expected a new or empty folder"):
        convert(tmp_path / "ok.npz", tmp_path / "s5")


def test_corrupt_npz_member_bytes(tmp_path):
    _npz(tmp_path / "ok.npz", 2000, compressed=True)
    raw = bytearray((tmp_path / "ok.npz").read_bytes())
    raw[len(raw) // 3] ^= 0xFF  # inside the deflated image stream: CRC/zlib error while streaming
    (tmp_path / "bad.npz").write_bytes(bytes(raw))
    with pytest.raises(RobustscaleError, match=r"bad.npz: corrupt npz file"):
        convert(tmp_path / "bad.npz", tmp_path / "s")


def test_set_fid_rewrites_manifest(store):
    set_fid(store, 2.48)
    assert open_store(store).fid == 2.48 and _manifest(store)["fid"] == 2.48


def test_verified_once_at_convert_and_recorded_by_verify(store):
    stamp = _manifest(store)["verified"]
    assert stamp and open_store(store).verified == stamp  # convert hashed every byte it wrote
    checked = open_store(store, verify=True).verified
    assert checked >= stamp and _manifest(store)["verified"] == checked  # recorded in the manifest


def test_cli_convert_verify_json(tmp_path, cli):
    images, labels = _npz(tmp_path / "gen.npz", 300)
    r = cli("data", "convert", tmp_path / "gen.npz", "--out", tmp_path / "s", "--name", "dg",
            "--fid", "1.65", "--shard-size", "128", "--json")
    assert r.returncode == 0, r.stderr
    out = r.json
    assert out.pop("verified") == _manifest(tmp_path / "s")["verified"]
    assert out == {"store": str(tmp_path / "s"), "name": "dg", "count": 300, "shards": 3,
                   "shape": [8, 8, 3], "num_classes": 10, "fid": 1.65}
    r = cli("data", "verify", tmp_path / "s", "--json")
    assert r.returncode == 0 and r.json["ok"] is True
    (tmp_path / "s" / "images-00002.npy").write_bytes(b"\x93NUMPY")
    r = cli("data", "verify", tmp_path / "s", "--json")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith("error: ") and "images-00002.npy" in r.stderr
    r = cli("data", "convert", "fashion-mnist", "--split", "test", "--out", tmp_path / "fm", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["count"] == 10_000
