"""Do the verdicts agree with the samples? Every Learn demo, its one-click fix and every recipe a lesson recommends.

    python benchmarks/verdicts.py [--cap 120] [--only demo-minimax,...] [--markdown docs/verdicts.md]

Each case is started as the Learn page starts it (build_config(preset, name="learn-<preset>")); a fix is the demo's
diagnosis applied exactly as Monitor's "Open the fix in Train" then Start does (health.fix_config). Only two things
differ from a class's run: checkpoints are saved every 100 steps (every 250 on 2-D runs) so there are samples to score,
and a recipe longer than --cap seconds stops there (the Learn lessons say how long the slow ones take).

At every checkpoint the samples are scored by the project's evaluators (2,000 samples: images by the digit classifier
of gan_core.engine.metrics, 2-D points by their mode coverage), independently of the live evaluation the verdict reads, and
the verdict as it stood at that step (`diagnose --step N`) is compared with what they show:
  samples good    images: Fréchet distance <= health.DIGITS_FID and >= 8 of 10 classes; ring-8: >= 7 of 8 modes
  verdict         healthy (ok) / not yet (info: too early, learning, unmeasured) / problem (warning or error)
  cell            agree: good & healthy, or not good & not healthy; false alarm: good & problem;
                  false healthy: not good & healthy; late: good & not yet (an info line, no alarm)
A fix passes when its last checkpoint is good and its final verdict is Healthy. Prints a table (and writes it to
--markdown) with the load average beside the timings: the machine may be shared.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from gan_core import RunStore, build_config  # noqa: E402
from gan_core.insight.health import DIGITS_FID
from gan_core.insight.diagnosis import fix_config
from gan_core.insight.evaluate import diagnose_run
from gan_core.engine.point_metrics import point_modes

DEMOS = ["demo-minimax", "demo-d-too-strong", "demo-lr-too-high", "demo-mode-collapse"]
RECIPES = ["fast-mnist", "classic-dcgan", "lsgan-mlp", "wgan-gp-mlp", "2d-default"]  # Learn's "working" buttons
LESSON_FINDING = {"demo-minimax": "vanishing_gradient", "demo-d-too-strong": "d_wins", "demo-lr-too-high": "diverged",
                  "demo-mode-collapse": "mode_collapse"}
SAMPLES = 2000


def learn_config(preset: str, cap: float):
    cfg = build_config(preset, name=f"learn-{preset}")
    cfg = cfg.replace(checkpoint_every=250 if cfg.is_2d else 100)
    if not cfg.max_seconds or cfg.max_seconds > cap:
        cfg = cfg.replace(max_seconds=cap)
    return cfg.validate()


def score(run_dir: Path, checkpoint: str, cfg) -> tuple[bool, str]:
    """(the samples are good, what they show) for one checkpoint."""
    if cfg.is_2d:
        from gan_core.data import load_points
        from gan_core.runs.handle import load_run_generator
        from gan_core.insight.latent import noise
        G, _, _ = load_run_generator(run_dir, checkpoint)
        with torch.no_grad():
            points = G(noise(cfg, SAMPLES, 12345)).float().numpy()
        m = point_modes(points, load_points(cfg.dataset))
        return m["modes_covered"] >= 7, f"{m['modes_covered']}/8 modes"
    from gan_core.insight.evaluate import evaluate_run
    r = evaluate_run(run_dir, n=SAMPLES, checkpoint=checkpoint)
    good = r["fid"] <= DIGITS_FID and r["modes_covered"] >= 8
    return good, f"FID {r['fid']:.0f}, {r['modes_covered']}/10 classes"


def kind(finding) -> str:
    return {"ok": "healthy", "info": "not yet"}.get(finding.level, "problem")


def cell(good: bool, verdict: str) -> str:
    if good:
        return {"healthy": "agree", "problem": "false alarm", "not yet": "late"}[verdict]
    return "false healthy" if verdict == "healthy" else "agree"


def run_case(store: RunStore, label: str, cfg) -> dict:
    start = time.perf_counter()
    run_id = store.start(cfg)
    status = store.wait(run_id)
    seconds = time.perf_counter() - start
    run_dir = store.run_dir(run_id)
    cells, rows = [], []
    for path in sorted((run_dir / "checkpoints").glob("step_*.safetensors")):
        step = int(path.stem.split("_")[1])
        good, shows = score(run_dir, path.name, cfg)
        finding = diagnose_run(run_dir, step)
        c = cell(good, kind(finding))
        cells.append(c)
        rows.append(f"    step {step:5d}: {shows:28} · {finding.code:18} → {c}")
    final = diagnose_run(run_dir)
    evaluation = json.loads((run_dir / "eval.json").read_text()) if (run_dir / "eval.json").is_file() else {}
    history = evaluation.get("history", [])
    return {"case": label, "run_dir": run_dir, "status": status, "steps": store.snapshot(run_id, max_points=2).step,
            "seconds": seconds, "cells": cells, "rows": rows, "final": final, "good_at_end": cells[-1:] == ["agree"]
            and final.level == "ok", "last_shows": rows[-1].split(":", 1)[1].split("·")[0].strip() if rows else "",
            "evals": len(history), "eval_seconds": evaluation.get("seconds")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cap", type=float, default=120.0, help="seconds at most per run (default 120)")
    p.add_argument("--only", default="", help="comma-separated presets (demos bring their fix)")
    p.add_argument("--markdown", default="", help="also write the table to this file")
    args = p.parse_args()
    wanted = set(filter(None, args.only.split(",")))
    root = Path(tempfile.mkdtemp(prefix="verdict-runs-"))
    store = RunStore(root)
    results, load_before = [], os.getloadavg()
    try:
        for preset in DEMOS + RECIPES:
            if wanted and preset not in wanted:
                continue
            res = run_case(store, preset, learn_config(preset, args.cap))
            results.append(res)
            print(f"{preset}: {res['final'].code} ({res['seconds']:.0f} s, load {os.getloadavg()[0]:.1f})", flush=True)
            print("\n".join(res["rows"]), flush=True)
            if preset in DEMOS:
                res["lesson"] = res["final"].code == LESSON_FINDING[preset]
                if res["final"].fix is None:
                    continue
                fixed = fix_config(json.loads((res["run_dir"] / "config.json").read_text()), res["final"])
                if fixed.max_seconds > args.cap or not fixed.max_seconds and not fixed.steps:
                    fixed = fixed.replace(max_seconds=args.cap)
                fixed = fixed.replace(checkpoint_every=250 if fixed.is_2d else 100).validate()
                fix = run_case(store, f"{preset} → fix ({fixed.preset})", fixed)
                results.append(fix)
                print(f"  fix: {fix['final'].code} ({fix['seconds']:.0f} s)", flush=True)
                print("\n".join(fix["rows"]), flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    load_after = os.getloadavg()
    header = ("| case | steps | s | checkpoints: agree / false alarm / false healthy / late | final verdict | samples at "
              "the end | passes |\n|---|---|---|---|---|---|---|")
    lines = [header]
    for r in results:
        c = r["cells"]
        counts = " / ".join(str(c.count(k)) for k in ("agree", "false alarm", "false healthy", "late"))
        if "→ fix" in r["case"]:
            passes = "yes" if r["good_at_end"] else "NO"
        elif "lesson" in r:
            passes = "yes" if r["lesson"] and not c.count("false healthy") else "NO"
        else:
            passes = "yes" if not c.count("false alarm") and not c.count("false healthy") else "NO"
        lines.append(f"| {r['case']} | {r['steps']} | {r['seconds']:.0f} | {counts} | {r['final'].title} | "
                     f"{r['last_shows']} | {passes} |")
    evals = [r for r in results if r["evals"] and r["eval_seconds"] is not None]
    cost = "; ".join(f"{r['case']}: {r['evals']} measurements, the last took {r['eval_seconds']:.2f} s"
                     for r in evals[:4])
    table = "\n".join(lines)
    note = (f"\nLoad average (1 min) {load_before[0]:.1f} before, {load_after[0]:.1f} after, on "
            f"{os.cpu_count()} cores. Live-evaluation cost: {cost}.\n")
    print(table + note)
    if args.markdown:
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text(table + "\n" + note)


if __name__ == "__main__":
    main()
