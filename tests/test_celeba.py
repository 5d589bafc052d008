"""CelebA through torchvision, on a small stand-in written in torchvision's layout (the real set is 1.4 GB)."""
import numpy as np
import pytest
import torchvision
from PIL import Image

from gan_core.data import DATASETS, DatasetError, load_images
from gan_core.presets import PRESETS, build_config

SPLITS = [0, 0, 0, 0, 1, 2]  # four training faces, one for validation, one for testing
ATTRS = ["5_o_Clock_Shadow", "Smiling"]  # the real file has 40; torchvision reads whatever header it finds


def write_celeba(root, splits=SPLITS):
    """Aligned 178×218 'faces': a distinct colour in the centre square, red bands above and below it."""
    folder = root / "celeba"
    (folder / "img_align_celeba").mkdir(parents=True)
    names = [f"{i + 1:06d}.jpg" for i in range(len(splits))]
    for i, name in enumerate(names):
        img = np.zeros((218, 178, 3), np.uint8)
        img[:] = (255, 0, 0)
        img[20:198] = (0, 40 * i, 255 - 40 * i)
        Image.fromarray(img).save(folder / "img_align_celeba" / name, quality=95)
    rows = lambda values: "".join(f"{n} {v}\n" for n, v in zip(names, values))  # noqa: E731
    (folder / "list_eval_partition.txt").write_text(rows(splits))
    (folder / "identity_CelebA.txt").write_text(rows(range(1, len(names) + 1)))
    (folder / "list_attr_celeba.txt").write_text(f"{len(names)}\n{' '.join(ATTRS)}\n" + rows(["1 -1"] * len(names)))
    (folder / "list_bbox_celeba.txt").write_text(f"{len(names)}\nimage_id x_1 y_1 width height\n" +
                                                 rows(["95 71 226 313"] * len(names)))
    (folder / "list_landmarks_align_celeba.txt").write_text(
        f"{len(names)}\nlefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x "
        f"rightmouth_y\n" + rows(["69 109 106 113 77 142 73 152 108 154"] * len(names)))
    return root


@pytest.fixture
def no_download(monkeypatch):
    calls = []

    def refuse(*args, **kwargs):
        calls.append("CelebA")
        raise RuntimeError("network unreachable (test: downloads are disabled)")

    monkeypatch.setattr(torchvision.datasets.CelebA, "download", refuse)
    return calls


@pytest.mark.parametrize("size", [64, 32])
def test_celeba_training_faces_centre_cropped_and_resized(tmp_path, size, no_download):
    data = load_images("celeba", str(write_celeba(tmp_path)), size, 3)
    assert data.images.shape == (4, 3, size, size) and data.labels is None and no_download == []
    red = data.images[:, 0, 1:-1].float()  # (the resampling filter may blend the band into the edge row)
    assert red.max() < 40  # the bands outside the centre square are cropped away
    blue = data.images[:, 2].float().mean((1, 2))
    assert blue.tolist() == sorted(blue.tolist(), reverse=True) and blue[0] > 240  # in the listed order


def test_celeba_in_gray(tmp_path, no_download):
    assert load_images("celeba", str(write_celeba(tmp_path)), 32, 1).images.shape == (4, 1, 32, 32)


def test_offline_celeba_names_the_folder_and_the_image_folder_route(tmp_path, no_download):
    with pytest.raises(DatasetError) as e:
        load_images("celeba", str(tmp_path / "data"), 64, 3)
    msg = str(e.value)
    assert str(tmp_path / "data" / "celeba") in msg and "img_align_celeba/" in msg and "network unreachable" in msg
    assert no_download == ["CelebA"] and not (tmp_path / "data").exists()  # no empty folder left behind


def test_celeba_preset_is_seed_004_on_faces():
    cfg = build_config("dcgan64-celeba").validate()
    dcgan64 = build_config("dcgan64")
    recipe = ["arch", "g_features", "d_features", "z_dim", "init", "loss", "lr_d", "lr_g", "beta1", "beta2", "batch_size"]
    assert [getattr(cfg, k) for k in recipe] == [getattr(dcgan64, k) for k in recipe]
    assert (cfg.dataset, cfg.channels, DATASETS["celeba"].channels) == ("celeba", 3, 3)
    assert "celeba" in PRESETS["dcgan64-celeba"]["description"].lower()


def test_a_run_trains_on_the_celeba_stand_in(store, tiny_config, tmp_path, no_download):
    cfg = tiny_config(dataset="celeba", data_root=str(write_celeba(tmp_path)), arch="dcgan32", steps=2)
    run_id = store.start(cfg)
    assert store.wait(run_id, timeout=120) == "finished"
    snap = store.snapshot(run_id)
    assert snap.step == 2 and snap.latest_grid.shape[2] == 3
