"""Restoring images with GANs: damage (damage.py), restorer nets and their training (nets.py, training.py), the
GAN-prior search (prior.py), scores and the restore entry point (restorer.py), the page's demo (demo.py)."""
