"""``poolnd demo``: the quick run end to end, the network's gradient against finite differences,
and the IDX loader on small files written here."""
import gzip
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest

from poolnd.cli import main

pytest.importorskip("matplotlib")
pytest.importorskip("tqdm")
pytest.importorskip("mlxtend")

from poolnd.demo import data, net  # noqa: E402


def test_quick_demo_end_to_end(tmp_path):
    """The installed command, its output captured (stderr not a terminal): the table, the
    figure, and no progress bar in the captured stderr without any --no-progress."""
    fig = tmp_path / "demo.png"
    script = shutil.which("poolnd")            # the installed command; else python -m poolnd
    command = [script] if script else [sys.executable, "-m", "poolnd"]
    out = subprocess.run(command + ["demo", "--quick", "--out", str(fig)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "epoch" not in out.stderr and "\r" not in out.stderr, out.stderr[-2000:]
    rows = [line for line in out.stdout.splitlines() if line.startswith("| with")]
    assert len(rows) == 2
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        accuracy = float(cells[3].rstrip("%")) / 100
        assert accuracy > 0.5, row               # chance is 0.1
        assert int(cells[1].replace(",", "")) > 0
    head = fig.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", head[16:24])
    assert 600 <= width <= 3000 and 300 <= height <= 2000
    assert fig.stat().st_size > 20_000


def _loss(model, x, y):
    return net.softmax_cross_entropy(model.forward(x), y)[0]


@pytest.mark.parametrize("pooling", [True, False])
def test_network_gradient_finite_differences(pooling):
    """The whole network (conv, ReLU, poolnd's max pool, linear, softmax cross-entropy) in
    float64 on tie-free tiny inputs: analytic gradients of every parameter and of the input
    against central differences."""
    rng = np.random.default_rng(3)
    model = net.build(pooling, 8, rng, dtype=np.float64, channels=(2, 3))
    for layer in model.layers:                     # nonzero biases: no ReLU sits exactly at 0
        for p in layer.params[1:]:
            p[...] = rng.standard_normal(p.shape) * 0.1
    x = rng.standard_normal((3, 8, 8, 1))
    y = np.array([1, 7, 3])
    loss, d = net.softmax_cross_entropy(model.forward(x), y)
    dx = model.backward(d)
    eps = 1e-6
    checks = [(x, dx)] + list(model.params_and_grads())
    for arr, grad in checks:
        for i in rng.choice(arr.size, size=min(arr.size, 25), replace=False):
            old = arr.flat[i]
            arr.flat[i] = old + eps
            up = _loss(model, x, y)
            arr.flat[i] = old - eps
            down = _loss(model, x, y)
            arr.flat[i] = old
            np.testing.assert_allclose(grad.flat[i], (up - down) / (2 * eps), rtol=1e-4,
                                       atol=1e-8)


def _write_idx(path, array, magic, compress):
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big")
                                                  for d in array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    opener = gzip.open if compress else open
    with opener(path, "wb") as f:
        f.write(payload)


@pytest.mark.parametrize("compress", [True, False])
def test_idx_loader_reads_mnist_files(tmp_path, compress):
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 12), ("t10k", 5)):
        images = rng.integers(0, 256, size=(n, 28, 28))
        labels = rng.integers(0, 10, size=n)
        arrays[split] = (images, labels)
        suffix = ".gz" if compress else ""
        _write_idx(tmp_path / f"{split}-images-idx3-ubyte{suffix}", images, 0x803, compress)
        _write_idx(tmp_path / f"{split}-labels-idx1-ubyte{suffix}", labels, 0x801, compress)
    x_train, y_train, x_test, y_test = data.load_mnist(str(tmp_path))
    assert x_train.shape == (12, 28, 28, 1) and x_train.dtype == np.float32
    np.testing.assert_array_equal(x_train[..., 0] * 255, arrays["train"][0])
    np.testing.assert_array_equal(y_test, arrays["t10k"][1])


def test_idx_loader_errors(tmp_path):
    images = np.zeros((3, 4, 4))
    good = tmp_path / "good"
    _write_idx(good, images, 0x803, False)
    assert data.read_idx(str(good), data.IDX_IMAGES).shape == (3, 4, 4)
    with pytest.raises(data.DataError, match="no such file"):
        data.read_idx(str(tmp_path / "missing"), data.IDX_IMAGES)
    with pytest.raises(data.DataError, match="magic number 0x00000803, expected 0x00000801"):
        data.read_idx(str(good), data.IDX_LABELS)
    truncated = tmp_path / "truncated"
    truncated.write_bytes(good.read_bytes()[:-5])
    with pytest.raises(data.DataError, match="needs"):
        data.read_idx(str(truncated), data.IDX_IMAGES)
    (tmp_path / "tiny").write_bytes(b"\x00\x00")
    with pytest.raises(data.DataError, match="too short"):
        data.read_idx(str(tmp_path / "tiny"), data.IDX_IMAGES)
    bad_gz = tmp_path / "bad.gz"
    bad_gz.write_bytes(b"\x1f\x8b" + b"garbage")
    with pytest.raises(data.DataError, match="unreadable"):
        data.read_idx(str(bad_gz), data.IDX_IMAGES)


def test_demo_reports_missing_mnist_clearly(tmp_path, capsys):
    assert main(["demo", "--data", "mnist", "--data-dir", str(tmp_path), "--quick"]) == 1
    err = capsys.readouterr().err
    assert "not found" in err and "--download" in err


def test_download_verifies_checksums(tmp_path):
    """A mirror serving the wrong bytes is refused (file:// mirror, no network needed)."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for name in data.MNIST_FILES:
        (mirror / name).write_bytes(b"not mnist")
    with pytest.raises(data.DataError, match="MD5"):
        data.download_mnist(str(tmp_path / "cache"), mirrors=(mirror.as_uri() + "/",),
                            log=lambda *a: None)
    assert not any(p.suffix == ".part" for p in (tmp_path / "cache").iterdir())


def test_download_keeps_verified_files(tmp_path, monkeypatch):
    """Files already present with the published checksum are not fetched again."""
    cache = tmp_path / "cache"
    cache.mkdir()
    for name in data.MNIST_FILES:
        (cache / name).write_bytes(name.encode())
    monkeypatch.setattr(data, "MNIST_FILES", {n: data.md5(str(cache / n))
                                              for n in data.MNIST_FILES})
    assert data.download_mnist(str(cache), mirrors=("http://127.0.0.1:9/",),
                               log=lambda *a: None) == str(cache)


def test_shift_moves_and_zero_fills():
    img = np.arange(16.0).reshape(1, 4, 4, 1)
    right = data.shift(img, 0, 1)
    np.testing.assert_array_equal(right[0, :, 1:, 0], img[0, :, :3, 0])
    assert (right[0, :, 0, 0] == 0).all()
    up = data.shift(img, -2, 0)
    np.testing.assert_array_equal(up[0, :2, :, 0], img[0, 2:, :, 0])
    assert (up[0, 2:] == 0).all()


def test_demo_bad_arguments_exit_2():
    for argv in (["demo", "--epochs", "0"], ["demo", "--data", "cifar"],
                 ["demo", "--engine", "cuda"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2


def test_demo_without_the_extra_says_how_to_install(capsys, monkeypatch):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "matplotlib" else real(name, *a))
    assert main(["demo", "--quick"]) == 1
    err = capsys.readouterr().err
    assert "pip install 'poolnd[demo]'" in err and "matplotlib" in err
    assert err.startswith("poolnd demo: ") and err.count("poolnd demo") == 1, err
