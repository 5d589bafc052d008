"""What a viewer's press or a teacher's upload leaves in the server's memory: the GAN-prior search works in small
chunks and gives its freed memory back, and an uploaded picture is capped before it is decoded.
benchmarks/prior_searches.py measures the server's resident memory."""
import io
import threading
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from test_app import app, runs_root  # noqa: F401  (runs_root is a fixture)

from gan_core.restore import prior
from gan_core.restore.demo import MAX_PICTURE_MB, image_from_png
from gan_core.restore.restorer import RestoreError


class TinyConditionalG(torch.nn.Module):
    """Just what prior_search asks of a generator: z_dim, num_classes, G(z, y) → (N, 1, 8, 8)."""
    z_dim, num_classes = 4, 3

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(self.z_dim + self.num_classes, 64)

    def forward(self, z, y):
        return torch.tanh(self.lin(torch.cat([z, F.one_hot(y, self.num_classes).float()], 1))).view(-1, 1, 8, 8)


def damaged(n=8):
    target = torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    mask = torch.ones(n, 1, 8, 8)
    mask[:, :, 2:6, 2:6] = 0
    return target * mask, mask


def test_the_search_never_holds_the_images_once_per_candidate(monkeypatch):
    """8 images × 150 screened candidates: the old screen copied target and mask 1,200 times before its first
    chunk (32 images of 28×28 were 190 MB); every tensor the loss sees now fits one chunk."""
    largest, fit = [], prior._fit_loss

    def measured(task, sample, target, mask, factor, mode):
        largest.append(max(t.untyped_storage().nbytes() for t in (sample, target, mask) if t is not None))
        return fit(task, sample, target, mask, factor, mode)
    monkeypatch.setattr(prior, "_fit_loss", measured)
    target, mask = damaged()
    settings = prior.SearchSettings(screen=50, restarts=2, steps=2, layer_steps=0, frames=0, batch=32)
    result = prior.prior_search(TinyConditionalG(), "gaussian", "inpaint", target, mask, settings=settings)
    assert result.images.shape == target.shape and torch.equal(result.images * mask, target * mask)
    assert max(largest) <= settings.batch * 64 * 4


def test_each_search_gives_its_freed_memory_back_when_its_turn_ends(monkeypatch):
    """Streamlit runs each press in a new thread whose malloc arena kept the search's freed memory: five searches
    one after another held +324 MB (benchmarks/prior_searches.py). The memory is returned once per search, when
    the outermost turn (the page's, around the whole restore) ends, before the next search starts."""
    released, order = [], []
    monkeypatch.setattr(prior, "release_freed_memory", lambda: released.append(len(order)) or True)
    target, mask = damaged(2)
    settings = prior.SearchSettings(screen=4, restarts=1, steps=1, layer_steps=0, frames=0)

    def press():
        with prior.SEARCHES.turn():
            prior.prior_search(TinyConditionalG(), "gaussian", "inpaint", target, mask, settings=settings)
            order.append("searched")
    for _ in range(2):
        t = threading.Thread(target=press)
        t.start()
        t.join()
    assert released == [1, 2]


def test_release_freed_memory_works_here():
    from gan_core.engine.memory import release_freed_memory
    assert release_freed_memory() in (True, False)  # never raises, whatever the C library


def png_bytes(side=64, pad_to=0) -> bytes:
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(np.full((side, side), 255, np.uint8)).save(buf, format="PNG")
    return buf.getvalue() + b"\0" * max(0, pad_to - buf.tell())  # PIL reads past trailing bytes


def test_an_uploaded_picture_over_the_cap_is_refused_before_decoding():
    run = SimpleNamespace(channels=1, size=28)
    assert image_from_png(png_bytes(), run).shape == (1, 1, 28, 28)
    with pytest.raises(RestoreError, match=f"limit is {MAX_PICTURE_MB} MB"):
        image_from_png(png_bytes(pad_to=(MAX_PICTURE_MB + 1) * 2**20), run)


def test_the_restore_page_refuses_a_picture_over_the_cap_with_a_message_and_keeps_the_result(runs_root, tiny_config):
    """The server checks the size itself (a script can post up to server.maxUploadSize, 200 MB, whatever the browser
    is told); the earlier restoration stays."""
    from test_restore_page import tiny_generator_run
    tiny_generator_run(tiny_config)
    at = app("pages/restore.py")
    at.slider(key="rst_count").set_value(2).run()
    at.button(key="rst_go").click().run()
    assert not at.exception and at.dataframe
    at.segmented_control(key="rst_source").set_value("a picture").run()
    at.file_uploader(key="rst_upload").set_value(("big.png", png_bytes(pad_to=(MAX_PICTURE_MB + 1) * 2**20),
                                                  "image/png")).run()
    assert not at.exception, at.exception
    assert any(f"limit is {MAX_PICTURE_MB} MB" in e.value.replace("\\", "") for e in at.error)
    assert at.session_state["rst_demo"] is not None  # nothing lost
    at.file_uploader(key="rst_upload").set_value(("small.png", png_bytes(), "image/png")).run()
    assert not at.exception and not at.error
