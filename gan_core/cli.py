"""`python -m gan_core train|sample|list|evaluate|diagnose|restore|export|export-script`: the same library the dashboard uses, headless.

Bad input → exit code 2 and one line on stderr saying what is wrong. `train` ends its stdout with one JSON
object so scripts can pick up the result."""
from __future__ import annotations

import argparse
import errno
import json
import sys
from dataclasses import fields
from pathlib import Path

from .config import ConfigError, RunConfig, field_choices, field_help
from .errors import StudioError
from .launch import (UsageError, _fix_config, _follow, _overrides, _report, _resume_dir, _run_dir_arg,  # noqa: F401
                     _train_config, _train_distributed, _workers)
from .presets import PRESETS


class OneLineParser(argparse.ArgumentParser):
    """A bad flag gets the same one-line `error: ...` and exit code 2 as any other bad input (not the usage dump)."""

    def error(self, message):
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per RunConfig field; values stay strings here and are checked by RunConfig itself."""
    group = parser.add_argument_group("run settings (every RunConfig field)")
    for f in fields(RunConfig):
        if f.name == "preset":
            continue
        kind = f.type if isinstance(f.type, str) else f.type.__name__
        choices = field_choices(f.name)
        help_text = field_help(f.name).replace("%", "%%")
        if kind == "bool":
            group.add_argument(_flag(f.name), dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            metavar = "{" + ",".join(map(str, choices)) + "}" if choices else f.name.upper()
            group.add_argument(_flag(f.name), dest=f.name, default=None, metavar=metavar, help=help_text)


def build_parser() -> argparse.ArgumentParser:
    prog = "gan-core" if Path(sys.argv[0]).stem == "gan-core" else "python -m gan_core"  # the installed command
    p = OneLineParser(prog=prog, description="GAN Studio: train and sample GANs headless.")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a run (no flags: the fast MNIST default, offline)",
                       epilog="Several GPUs or machines: torchrun --nproc_per_node N -m gan_core train ... trains one run "
                              "with DistributedDataParallel; --batch-size is then per process (docs/reference.md: Scaling out).")
    t.add_argument("--preset", choices=list(PRESETS), help="start from a named recipe; flags override it")
    t.add_argument("--config", metavar="FILE.json", help="start from a saved config.json; flags override it")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last checkpoint")
    t.add_argument("--fork", metavar="RUN_DIR", help="start a new run from RUN_DIR's checkpoint at --at-step (default: "
                   "its newest), with any flags changed; the child records its parent and fork step (fork.json)")
    t.add_argument("--at-step", type=int, default=None, metavar="N",
                   help="with --fork: the step to fork at (the nearest checkpoint at or before it)")
    t.add_argument("--fix-of", metavar="RUN_DIR", help="start a fresh run from RUN_DIR's config with the fix its diagnosis "
                   "suggests applied (what Monitor's \"Open the fix in Train\" then Start does), named <name>-fixed, "
                   "beside RUN_DIR; flags override it")
    t.add_argument("--out", default="runs", help="folder holding the run folders (default: ./runs)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("--workers", default="auto", metavar="N|auto",
                   help="CPU processes that share each batch of the run (its recipe stays the same): auto (default) "
                        "takes one per core nobody else is using, for an image run of 20 s or 500 steps or more; 1 "
                        "trains in this process alone")
    _add_config_flags(t)

    s = sub.add_parser("sample", help="draw samples from a run's last checkpoint into a .npy (or .png grid)")
    s.add_argument("run_dir")
    s.add_argument("-n", type=int, default=64, help="number of samples")
    s.add_argument("-o", "--output", required=True, help="FILE.npy (float32 in [-1, 1]) or FILE.png (a grid)")
    s.add_argument("--label", type=int, default=None, help="class to draw (conditional runs)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--checkpoint", default=None, help="checkpoint file name inside the run (default: newest)")

    from .engine.metrics import cache_help
    e = sub.add_parser("evaluate", help="quality metrics of a run's last checkpoint, as one JSON line",
                       epilog=cache_help().replace("%", "%%"))
    e.add_argument("run_dir")
    e.add_argument("-n", type=int, default=1000, help="number of generated samples to measure (default 1000)")
    e.add_argument("--checkpoint", default=None, help="checkpoint file name inside the run (default: newest)")
    e.add_argument("--rebuild", action="store_true", help="retrain the dataset's evaluator first (where it is cached: see below)")

    xs = sub.add_parser("export-script", help="write a run as one plain PyTorch file that trains the same GAN",
                        epilog="Then: python my_gan.py --data-root DIR --steps N (DIR in torchvision's dataset layout).")
    xs.add_argument("run_dir")
    xs.add_argument("-o", "--output", default="my_gan.py", help="the .py file to write (default: my_gan.py)")
    dg = sub.add_parser("diagnose", help="the health finding of a run (what Monitor shows), as one JSON line",
                        epilog='prints {"finding": ..., "text": ..., "step": ..., "evidence": {...}, "fix": {"preset": '
                               'name or null, "settings": {field: value}} or null}; findings: healthy, too_early, '
                               "learning, not_learning, unmeasured, d_wins, vanishing_gradient, mode_collapse, "
                               "diverged, oscillating")
    dg.add_argument("run_dir")
    dg.add_argument("--step", type=int, default=None, metavar="N",
                    help="the verdict as it stood at step N (what Monitor's timeline shows there)")
    x = sub.add_parser("export", help="write a run's curves and grids to TensorBoard or MLflow (for runs recorded without "
                                      "--tensorboard/--mlflow)")
    x.add_argument("target", choices=["tensorboard", "mlflow"])
    x.add_argument("run_dir")
    x.add_argument("--out", default=None, help="tensorboard: the log folder (default RUN_DIR/tb, replacing an earlier "
                                               "export); mlflow: the tracking URI (default MLFLOW_TRACKING_URI, else "
                                               "mlruns/ beside the runs folder)")
    _add_restore_parser(sub)

    ls = sub.add_parser("list", help="list runs (or presets)")
    ls.add_argument("--out", default="runs")
    ls.add_argument("--presets", action="store_true", help="list the presets instead")
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    return p


def _add_restore_parser(sub) -> None:
    from .restore.damage import MASKS
    from .tasks import FACTORS, RESTORER_TASKS
    r = sub.add_parser("restore", help="inpaint or super-resolve images with a run: a restorer run (method trained), "
                                       "or a generator run (method prior: a search of its latent space)",
                       epilog="Last stdout line: {output, n, task, method, seconds} as JSON.")
    r.add_argument("run_dir")
    r.add_argument("--task", required=True, choices=RESTORER_TASKS)
    r.add_argument("--input", required=True, metavar="FILE.npy",
                   help="float32 in [-1, 1], (N, C, H, W): damaged images, or the low-res ones for superres")
    r.add_argument("--mask", metavar="FILE.npy|" + "|".join(MASKS),
                   help="inpaint: (N, 1 or C, H, W) with 1 = known pixel, 0 = missing; or a named mask")
    r.add_argument("--factor", type=int, default=None, choices=FACTORS,
                   help="superres: up-sampling factor (default: a restorer run's own, else 4)")
    r.add_argument("-o", "--output", required=True, metavar="FILE.npy", help="(N, C, H, W) float32 in [-1, 1]")
    r.add_argument("--checkpoint", default=None, help="checkpoint file name inside the run (default: newest)")
    r.add_argument("--seed", type=int, default=0, help="seed of the search's random restarts")


def cmd_train(args) -> int:
    from .engine import distributed
    from .engine.threads import CoreClaims, FreeCores
    if distributed.launched():  # DDP hook: started by torchrun or --workers, this process is one rank of the run
        return _train_distributed(args)
    if args.at_step is not None and args.fork is None:
        raise UsageError("--at-step needs --fork RUN_DIR (the run to fork from)")
    if args.fix_of is not None and (args.resume is not None or args.fork is not None or args.preset
                                    or args.config is not None):
        raise UsageError("--fix-of starts from the run's own config: use it without --resume, --fork, --preset "
                         "or --config")
    free = FreeCores()  # measured while this process starts (imports, config), before it trains
    claims = CoreClaims()
    try:
        return _train_here(args, _workers(args, free, claims))
    finally:
        claims.release()


def _train_here(args, workers: int) -> int:
    from .engine import distributed
    from .runs.store import RunStore
    if workers > 1:
        store, helpers = distributed.start_local_group(workers, getattr(args, "argv", None) or sys.argv[1:])
        try:
            return _train_distributed(args, store)
        finally:
            distributed.end_local_group(helpers)
    if args.fix_of is not None:
        run_dir = _run_dir_arg(args.fix_of, "--fix-of")
        store = RunStore(run_dir.parent)
        run_id = store.start(_fix_config(run_dir, _overrides(args)))
    elif args.fork is not None:
        if args.resume is not None:
            raise UsageError("use --resume or --fork, not both")
        from .runs.fork import fork_run
        run_dir = _run_dir_arg(args.fork, "--fork")
        store = RunStore(run_dir.parent)
        run_id = fork_run(store, run_dir.name, args.at_step, **_overrides(args))
    elif args.resume is not None:
        run_dir = _resume_dir(args.resume)
        store = RunStore(run_dir.parent)
        run_id = run_dir.name
        store.continue_run(run_id, **_overrides(args))
    else:
        cfg = _train_config(args)
        store = RunStore(args.out)
        run_id = store.start(cfg)
    snap = store.snapshot(run_id, max_points=2)
    print(f"run folder: {store.run_dir(run_id)} · {snap.device} · {snap.precision}", file=sys.stderr)
    _follow(store, run_id, args.quiet)
    return _report(store, run_id)


def cmd_sample(args) -> int:
    import numpy as np

    from .engine.pictures import generate, noise, to_grid_image
    from .runs.handle import RunHandle
    if not 1 <= args.n <= 100_000:
        raise UsageError(f"-n must be between 1 and 100000, got {args.n}")
    out = Path(args.output)
    if out.suffix.lower() not in (".npy", ".png"):
        raise UsageError(f"-o {args.output}: use a .npy or .png file name")
    G, cfg, step = RunHandle(args.run_dir).generator(args.checkpoint)
    labels = None
    if args.label is not None:
        if not G.num_classes:
            raise UsageError(f"--label: run {Path(args.run_dir).name} is not conditional, it cannot draw a chosen class")
        if not 0 <= args.label < G.num_classes:
            raise UsageError(f"--label must be between 0 and {G.num_classes - 1}, got {args.label}")
        labels = np.full(args.n, args.label)
    x = generate(G, noise(cfg, args.n, args.seed), labels)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".png":
        if x.ndim != 4:
            raise UsageError("-o .png needs an image run; 2-D runs produce points: use .npy")
        from PIL import Image
        Image.fromarray(to_grid_image(x, 10 if G.num_classes and labels is None else None)).save(out)
    else:
        np.save(out, x)
    print(json.dumps({"output": str(out), "shape": list(x.shape), "step": step}))
    return 0


def cmd_evaluate(args) -> int:
    from .engine.metrics import EvaluatorError, cache_help
    from .insight.evaluate import evaluate_run
    from .insight.memorisation import memorisation_key
    if not 2 <= args.n <= 100_000:
        raise UsageError(f"-n must be between 2 and 100000, got {args.n}")
    from .runs.files import read_json
    if ((read_json(Path(args.run_dir) / "config.json") or {}).get("task") or "generate") != "generate":
        from .insight.evaluate import evaluate_restorer  # a restorer run: how well it repairs, not what it draws
        print(json.dumps(evaluate_restorer(args.run_dir, args.n, args.checkpoint)))
        return 0
    try:
        result = evaluate_run(args.run_dir, args.n, args.checkpoint, rebuild=args.rebuild,
                              log=lambda msg: print(msg, file=sys.stderr))
        result["memorisation"] = memorisation_key(args.run_dir, args.n, args.checkpoint)  # is it copying?
    except EvaluatorError as e:
        raise UsageError(f"{e}. {cache_help()}") from None
    print(json.dumps(result))
    return 0


def cmd_export_script(args) -> int:
    from .runs.handle import RunHandle
    out = Path(args.output)
    if out.suffix != ".py":
        raise UsageError(f"-o {args.output}: use a .py file name")
    text = RunHandle(args.run_dir).script()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(json.dumps({"output": str(out), "lines": text.count("\n")}))
    return 0


def cmd_diagnose(args) -> int:
    from .insight.evaluate import diagnose_run
    print(json.dumps(diagnose_run(args.run_dir, args.step).to_json()))
    return 0


def cmd_export(args) -> int:
    from .runs.tracking import export_to_tracker
    print(json.dumps(export_to_tracker(args.target, args.run_dir, args.out)))
    return 0


def _load_npy(path, what: str):
    """A .npy whose header is checked against the size budget before np.load allocates anything."""
    from .restore import restorer as rs
    from .safe_io import UnsafeFile, check_npy_header
    try:
        check_npy_header(Path(path).resolve(), rs.MAX_NPY_BYTES, f"{what} {path}")
    except FileNotFoundError:
        raise UsageError(f"{what} {path}: no such file") from None
    except UnsafeFile as e:
        raise UsageError(str(e)) from None
    return rs.load_npy(path, what)


def cmd_restore(args) -> int:
    import time

    import numpy as np

    from .restore import restorer as rs
    from .restore.damage import MASKS, make_mask
    from .runs.handle import RunHandle
    start = time.perf_counter()
    out = Path(args.output)
    if out.suffix.lower() != ".npy":
        raise UsageError(f"-o {args.output}: use a .npy file name")
    images = rs.check_images(_load_npy(args.input, "--input"))
    mask = None
    if args.task == "inpaint":
        if args.mask is None:
            raise UsageError("--mask is needed for --task inpaint (a .npy of 0/1, or " + "|".join(MASKS) + ")")
        if args.mask in MASKS:
            if images.shape[-1] != images.shape[-2]:
                raise UsageError(f"--mask {args.mask}: named masks need square images, got {tuple(images.shape[2:])}")
            mask = make_mask(args.mask, len(images), images.shape[-1], args.seed)
        else:
            mask = rs.check_mask(_load_npy(args.mask, "--mask"), images)
        if not (mask < 0.5).any():  # as the Restore page: a search with nothing to fill is refused, not run
            raise UsageError("--mask hides no pixel (every value is 1 = known): nothing to inpaint")
    elif args.mask is not None:
        raise UsageError("--mask is for --task inpaint; super-resolution takes only the low-res --input")
    restorer = RunHandle(args.run_dir).restorer(args.checkpoint)
    factor = args.factor or (restorer.cfg.factor if restorer.method == "trained" else 4)
    result = rs.restore(restorer, args.task, images, mask, factor, rs.SearchSettings(seed=args.seed, frames=0))
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, result.images.numpy().astype(np.float32))
    print(json.dumps({"output": str(out), "n": len(images), "task": args.task, "method": restorer.method,
                      "seconds": round(time.perf_counter() - start, 2)}))
    return 0


def cmd_list(args) -> int:
    if args.presets:
        for name, p in PRESETS.items():
            print(json.dumps({"preset": name, "description": p["description"]}) if args.json else f"{name:18} {p['description']}")
        return 0
    from .runs.store import RunStore
    runs = RunStore(args.out).runs()
    if args.json:
        for r in runs:
            print(json.dumps(r))
        return 0
    if not runs:
        print(f"no runs in {Path(args.out).resolve()}")
    for r in runs:
        total = f"/{r['total_steps']}" if r["total_steps"] else ""
        print(f"{r['run_id']:50} {r['status']:11} step {r['step']}{total:8} {r['arch']}/{r['loss']} on {r['dataset']}")
    return 0


def main(argv=None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv  # `train --workers` starts its other processes with the same arguments
    try:
        return {"train": cmd_train, "sample": cmd_sample, "list": cmd_list, "evaluate": cmd_evaluate,
                "diagnose": cmd_diagnose, "export": cmd_export, "restore": cmd_restore,
                "export-script": cmd_export_script}[args.command](args)
    except ConfigError as e:
        print("error: " + "; ".join(f"--{k.replace('_', '-')}: {v}" for k, v in e.problems.items()), file=sys.stderr)
    except (StudioError, KeyError, ValueError) as e:
        print(f"error: {e.args[0] if e.args else e}", file=sys.stderr)
    except OSError as e:  # an unwritable -o file, a full disk: one line, not a traceback
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            print(f"error: {'disk full' if e.errno == errno.ENOSPC else 'disk quota exceeded'}: could not write "
                  f"{e.filename or 'a file'} ({e.strerror}); free some space (or point --out, -o or GAN_STUDIO_CACHE "
                  f"at a folder with room) and try again", file=sys.stderr)
        else:
            print(f"error: {e.filename + ': ' if e.filename else ''}{e.strerror or e}", file=sys.stderr)
    except RecursionError:  # a hostile file nested deeper than any check foresaw
        print("error: an input file is nested too deeply to read", file=sys.stderr)
    return 2
