"""The engine: one GAN step (gan.py), the training loop that writes only through a RunSink (trainer.py), and what
the loop needs: device, threads, budget, checkpoints, live evaluation, metrics, pictures. Never opens a run folder
by itself and imports nothing from runs/, insight/ or playground/ (tests/test_layers.py)."""
