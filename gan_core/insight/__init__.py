"""Reading a run: health rules, reference curves, memorisation, latent maths, evaluating and diagnosing a run."""
