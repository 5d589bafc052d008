"""The 2-D playground: a GAN on points, stepped by hand (session.py), and the maths of its plane (plane.py)."""
