"""Datasets: embedded and full MNIST, the offline message, the user's image folder, 2-D mixtures, batching."""
import math

import numpy as np
import pytest
import torch
import torchvision
from conftest import SHARED_DATA
from PIL import Image

from gan_core.data import (DATASETS, DatasetError, ImageBatches, ImageData, PointBatches, grid_25, load_images,
                           load_points, points_from_array, ring_8, to_unit_range)


@pytest.fixture
def no_download(monkeypatch):
    """Any torchvision download attempt fails at once, as it would offline (and no test waits on a network)."""
    calls = []

    def refuse(self, *args, **kwargs):
        calls.append(type(self).__name__)
        raise RuntimeError("network unreachable (test: downloads are disabled)")

    for name in ("MNIST", "FashionMNIST", "CIFAR10"):
        monkeypatch.setattr(getattr(torchvision.datasets, name), "download", refuse)
    return calls


def test_registry_kinds():
    assert DATASETS["mnist-embedded"].kind == "image" and DATASETS["mnist-embedded"].num_classes == 10
    for name in ("ring-8", "grid-25", "spiral", "two-moons", "line"):
        assert DATASETS[name].kind == "points" and DATASETS[name].num_classes == 0


def test_mnist_embedded_is_the_10k_test_digits():
    data = load_images("mnist-embedded", "./nowhere", 28, 1)
    assert data.images.shape == (10_000, 1, 28, 28) and data.images.dtype == torch.uint8
    assert data.labels.shape == (10_000,) and set(data.labels.unique().tolist()) == set(range(10))
    assert int(data.images.max()) == 255 and data.num_classes == 10


def test_mnist_embedded_resized_and_coloured():
    data = load_images("mnist-embedded", "./nowhere", 32, 3)
    assert data.images.shape == (10_000, 3, 32, 32) and data.images.dtype == torch.uint8
    assert torch.equal(data.images[:, 0], data.images[:, 2])  # gray → RGB repeats the channel


@pytest.mark.skipif(not (SHARED_DATA / "MNIST" / "raw").is_dir(), reason=f"full MNIST not found in {SHARED_DATA}")
def test_full_mnist_from_shared_data_without_download(no_download):
    data = load_images("mnist", str(SHARED_DATA), 28, 1)
    assert data.images.shape == (60_000, 1, 28, 28) and data.labels.shape == (60_000,)
    assert no_download == []


def test_offline_mnist_names_the_folder_and_the_embedded_set(tmp_path, no_download):
    with pytest.raises(DatasetError) as e:
        load_images("mnist", str(tmp_path), 28, 1)
    msg = str(e.value)
    assert str(tmp_path / "MNIST") in msg and "mnist-embedded" in msg and "network unreachable" in msg
    assert no_download == ["MNIST"]


def test_offline_mnist_through_the_store_leaves_no_run(store, tmp_path, tiny_config, no_download):
    cfg = tiny_config(dataset="mnist", data_root=str(tmp_path / "empty"))
    with pytest.raises(DatasetError):
        store.start(cfg)
    assert store.runs() == []


def write_png(path, size=(20, 12), colour=(200, 30, 30)):
    Image.new("RGB", size, colour).save(path)


def test_image_folder_skips_unreadable_files_and_reports_the_count(tmp_path):
    folder = tmp_path / "pics"
    (folder / "sub").mkdir(parents=True)
    write_png(folder / "a.png")
    write_png(folder / "sub" / "b.png", (10, 30), (0, 0, 255))
    Image.new("L", (16, 16), 128).save(folder / "c.jpg")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 20)
    (folder / "notes.txt").write_text("not an image")
    data = load_images("image-folder", str(folder), 16, 3)
    assert data.images.shape == (3, 3, 16, 16) and data.labels is None and data.num_classes == 0
    assert any("skipped 2" in note for note in data.notes), data.notes
    assert any("loaded 3" in note for note in data.notes)
    red = data.images[0]  # a.png, centre-cropped and resized
    assert int(red[0].float().mean()) == 200 and int(red[2].float().mean()) == 30
    gray = load_images("image-folder", str(folder), 16, 1)
    assert gray.images.shape == (3, 1, 16, 16)


def test_image_folder_skip_count_reaches_the_run_log(store, tmp_path, tiny_config):
    folder = tmp_path / "pics"
    folder.mkdir()
    for i in range(4):
        write_png(folder / f"{i}.png", colour=(60 * i, 0, 0))
    (folder / "junk.bin").write_bytes(b"\x00\x01\x02")
    run_id = store.start(tiny_config(dataset="image-folder", data_root=str(folder), arch="mlp", image_size=8,
                                     channels=3, steps=2))
    assert store.wait(run_id, 120) == "finished"
    events = store.snapshot(run_id).events
    assert any("skipped 1 unreadable" in e for e in events), events
    assert store.snapshot(run_id).latest_grid.shape[2] == 3


def test_empty_image_folder_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError) as e:
        load_images("image-folder", str(tmp_path / "empty"), 16, 3)
    assert "no readable images" in str(e.value) and str(tmp_path / "empty") in str(e.value)
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "a.txt").write_text("x")
    with pytest.raises(DatasetError) as e:
        load_images("image-folder", str(tmp_path / "text"), 16, 3)
    assert "1 unreadable" in str(e.value)


def test_missing_image_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError) as e:
        load_images("image-folder", str(tmp_path / "nope"), 16, 3)
    assert "does not exist" in str(e.value) and "nope" in str(e.value)


def test_unknown_dataset_and_wrong_kind():
    with pytest.raises(DatasetError, match="unknown dataset 'nope'"):
        load_images("nope", ".", 28, 1)
    with pytest.raises(DatasetError, match="2-D point set"):
        load_images("ring-8", ".", 28, 1)
    with pytest.raises(DatasetError, match="holds images"):
        load_points("mnist-embedded")


def test_image_batches_are_normalised_and_cover_an_epoch():
    images = torch.arange(10, dtype=torch.uint8).mul(25).reshape(10, 1, 1, 1).expand(10, 1, 2, 2).contiguous()
    data = ImageData(images, torch.arange(10), 10)
    batches = ImageBatches(data, torch.Generator().manual_seed(0))
    seen = []
    for _ in range(2):  # one epoch of 2 × 5: every image exactly once, label kept with its image
        x, y = batches.sample(5)
        assert x.dtype == torch.float32 and x.shape == (5, 1, 2, 2)
        assert torch.allclose(x[:, 0, 0, 0], to_unit_range(images[y, 0, 0, 0]))
        seen += y.tolist()
    assert sorted(seen) == list(range(10))
    assert float(to_unit_range(torch.tensor([0, 255], dtype=torch.uint8)).min()) == -1.0
    assert float(to_unit_range(torch.tensor([0, 255], dtype=torch.uint8)).max()) == 1.0


def test_image_batches_larger_than_the_set():
    data = ImageData(torch.zeros(3, 1, 2, 2, dtype=torch.uint8), None, 0)
    x, y = ImageBatches(data, torch.Generator().manual_seed(0)).sample(8)
    assert x.shape == (8, 1, 2, 2) and y is None


def test_ring_8_as_in_the_literature():
    ring = ring_8()
    assert ring.centres.shape == (8, 2) and ring.sigma == 0.02
    assert torch.allclose(ring.centres.norm(dim=1), torch.full((8,), 2.0))
    x = ring.sample(4000, torch.Generator().manual_seed(0))
    nearest = torch.cdist(x, ring.centres).min(1).values
    assert float(nearest.mean()) == pytest.approx(0.02 * math.sqrt(math.pi / 2), rel=0.1)  # Rayleigh mean
    assert len(torch.cdist(x, ring.centres).argmin(1).unique()) == 8


def test_grid_25_as_in_the_literature():
    grid = grid_25()
    assert grid.sigma == 0.05 and grid.centres.shape == (25, 2)
    assert sorted(set(grid.centres[:, 0].tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]


@pytest.mark.parametrize("name", ["ring-8", "grid-25", "spiral", "two-moons", "line"])
def test_point_sets_are_seeded_and_inside_their_extent(name):
    points = load_points(name)
    a = PointBatches(points, torch.Generator().manual_seed(3), "cpu").sample(500)[0]
    b = PointBatches(points, torch.Generator().manual_seed(3), "cpu").sample(500)[0]
    assert a.shape == (500, 2) and torch.equal(a, b)
    assert float(a.abs().max()) < points.extent


def test_points_from_array_and_its_errors():
    pts = points_from_array(np.array([[0.0, 0.0], [1.0, 1.0], [2.0, -1.0]]))
    assert pts.sample(10, torch.Generator().manual_seed(0)).shape == (10, 2)
    with pytest.raises(DatasetError, match="at least 2 rows"):
        points_from_array(np.zeros((1, 2)))
    with pytest.raises(DatasetError, match="NaN"):
        points_from_array(np.array([[0.0, np.nan], [1.0, 1.0]]))
