"""Compare: several runs' curves overlaid, their latest grids side by side, and how their configs differ."""
import pandas as pd
import streamlit as st

from gan_core.runs.record import LIVE_STATUSES
from gan_core.runs.timeline import difference, nearest
from ui import charts, present
from ui.scrubber import scrubber
from ui.state import get_store
from ui.text import plain

store = get_store()
runs = store.runs()
if len(runs) < 1:
    st.title("Compare runs")
    st.info("No runs yet. Start a few on the Train page (e.g. the same preset with two learning rates).")
    st.stop()

ids = [r["run_id"] for r in runs]
if present.presenting():  # ?runs=a,b&present=1: two runs side by side for a projector
    shown = [r for r in str(st.query_params.get("runs", "")).split(",") if r in ids][:2] or ids[:2]
    present.compare_view(store, shown)
    present.leave_link("compare", {})
    st.stop()
st.title("Compare runs")
linked = [r for r in str(st.query_params.get("runs", "")).split(",") if r in ids][:8]
if linked and st.session_state.get("cmp_link_applied") != linked:  # ?runs=a,b: a shared link picks the runs, once
    st.session_state["cmp_runs"] = linked
    st.session_state["cmp_link_applied"] = linked
st.session_state.setdefault("cmp_runs", ids[: min(3, len(ids))])
st.session_state["cmp_runs"] = [r for r in st.session_state["cmp_runs"] if r in ids]  # a run deleted meanwhile
chosen = st.multiselect("Runs", ids, key="cmp_runs", max_selections=8)
if not chosen:
    st.caption("Choose at least one run.")
    st.stop()

c1, c2, c3 = st.columns([1, 2, 2])
align = c1.segmented_control("Align by", ["step", "wall time"], default="step", key="cmp_align") or "step"
metrics = c2.multiselect("Curves", ["d_loss", "g_loss", "d_real", "d_fake", "grad_norm_d", "grad_norm_g", "images_per_s",
                                    "fid", "modes_covered", "confidence", "label_accuracy"],
                         default=["d_loss", "g_loss"], format_func=lambda c: charts.LABELS.get(c, c), key="cmp_metrics")
smoothing = c3.slider("Smoothing", 0.0, 0.99, 0.6, 0.01, key="cmp_smooth")
st.page_link("pages/compare.py", label="Presenter view: the first two side by side", icon=":material/slideshow:",
             query_params={"runs": ",".join(chosen[:2]), "present": "1"})
live = any(r["status"] in LIVE_STATUSES for r in runs if r["run_id"] in chosen)


RANKED = {"Fréchet distance": "fid", "classes / modes covered": "modes_covered", "label accuracy": "label_accuracy",
          "diversity": "diversity"}  # losses are left to the curves: across losses their values do not compare


def ranking_table(snaps: dict) -> tuple[pd.DataFrame, str]:
    """(the runs' last values as display text, a note on the order). Columns no run has (a 2-D run has no Fréchet
    distance) are left out; a value one run lacks shows as "—", never "None". images/s is Monitor's figure."""
    rows = []
    for rid, s in snaps.items():
        df = s.metrics
        last = {label: (float(df[c].dropna().iloc[-1]) if c in df and df[c].notna().any() else None)
                for label, c in RANKED.items()}
        rows.append({"run": rid, "status": s.status, "step": s.step, "seconds": s.elapsed,
                     "images/s": s.images_per_s, **last})
    table = pd.DataFrame(rows)
    note = ""
    if table["Fréchet distance"].notna().any():
        table = table.sort_values("Fréchet distance", na_position="last")
        note = "Sorted by Fréchet distance (lower = closer to the real digits)."
    table = table[[c for c in table if c not in RANKED or table[c].notna().any()]]
    digits = {"step": "{:,.0f}", "seconds": "{:,.0f}", "images/s": "{:,.0f}", "classes / modes covered": "{:.0f}",
              "Fréchet distance": "{:.1f}"}
    for col in table.columns[2:]:
        fmt = digits.get(col, "{:.3g}")
        table[col] = [fmt.format(v) if v is not None and v == v else "—" for v in table[col]]
    return table, note


@st.fragment(run_every=present.REFRESH_S if live else None)
def overlay() -> None:
    snaps = {rid: store.snapshot(rid) for rid in chosen}
    frames = {rid: s.metrics for rid, s in snaps.items()}
    at = scrubber("cmp", max(s.step for s in snaps.values()), "One step for every run: a marker on each curve and "
                  "each run's grid nearest to it, side by side. Live follows the newest step.")
    forks = {rid: info for rid in chosen if (info := store.handle(rid).fork_info()) and info.get("parent") in chosen}
    for rid, info in forks.items():
        changed = ", ".join(f"{k}={v}" for k, v in (info.get("changed") or {}).items()) or "nothing changed"
        st.caption(f"{plain(rid)} is a fork of {plain(info['parent'])} at step {info['fork_step']} ({plain(changed)}): "
                   f"the curves overlay from that step on.")
    start = min((info["fork_step"] for info in forks.values()), default=None)
    losses = {s.config.loss if s.config else "?" for s in snaps.values()}
    kinds = {s.score_kind for s in snaps.values()}
    if len(losses) > 1 and any(c in metrics for c in ("d_loss", "g_loss", "d_real", "d_fake")):
        st.caption(f"These runs use different losses ({plain(', '.join(sorted(map(str, losses))))}): their loss values are on different "
                   f"scales and are not comparable" + (" — and their D(real)/D(fake) are probabilities for some runs, "
                   "raw critic scores for others" if len(kinds) > 1 else "") + ". Compare them by the quality curves.")
    for col in metrics:
        fig = charts.compare_figure(frames, col, align, smoothing)
        if align == "step":
            fig = charts.with_marker(fig, at)
            for info in forks.values():
                fig = charts.with_marker(fig, info["fork_step"], name="fork", colour="#868e96", dash="dot")
            if start is not None:
                fig.layout.xaxis.range = [start, max(s.step for s in snaps.values())]
        st.plotly_chart(fig, key=f"cmp_{col}", width="stretch")

    st.subheader("Ranking")
    ranking, note = ranking_table(snaps)
    if note:
        st.caption(note)
    st.table(ranking.set_index("run"))  # a plain table wraps its headers to the page's width: nothing is cut off

    st.subheader("Latest samples" if at is None else f"Samples at step {at}")
    diff = st.toggle("Difference to the first run", key="cmp_diff", disabled=len(chosen) < 2,
                     help="|this grid − the first run's grid|, brightened: where the two runs draw differently")
    cols = st.columns(min(len(chosen), 4))
    first = None
    for i, (rid, s) in enumerate(snaps.items()):
        step = s.latest_grid_step if at is None else nearest(s.grid_steps, at)
        grid = None if step is None else store.grid(rid, step)
        first = grid if i == 0 else first
        with cols[i % len(cols)]:
            if grid is None:
                st.caption(f"{rid}: no samples yet")
                continue
            shown, what = grid, f"{rid} · step {step}"
            if diff and i > 0:
                shown = difference(grid, first)
                what = f"{rid} − {chosen[0]} · step {step}" if shown is not None else what
                if shown is None:
                    st.caption("Different image sizes: no difference to show")
                    shown = grid
            st.image(shown, caption=what, width="stretch")


overlay()

st.subheader("How their configs differ")
snaps = {rid: store.snapshot(rid) for rid in chosen}  # an unreadable run has no config to compare
configs = pd.DataFrame({rid: {k: str(v) for k, v in (s.config.to_dict() if s.config else {}).items()} for rid, s in snaps.items()})
differ = configs[configs.nunique(axis=1) > 1] if len(chosen) > 1 else configs
if len(chosen) > 1 and differ.empty:
    st.caption("Identical configs (the runs differ only in when they ran).")
else:
    st.dataframe(differ, width="stretch")
