"""Compare: several runs' curves overlaid, their latest grids side by side, and how their configs differ."""
import pandas as pd
import streamlit as st

from gan_core.store import LIVE_STATUSES
from ui import charts, present
from ui.state import get_store

st.title("Compare runs")
store = get_store()
runs = store.runs()
if len(runs) < 1:
    st.info("No runs yet. Start a few on the Train page (e.g. the same preset with two learning rates).")
    st.stop()

ids = [r["run_id"] for r in runs]
if present.presenting():  # ?runs=a,b&present=1: two runs side by side for a projector
    shown = [r for r in str(st.query_params.get("runs", "")).split(",") if r in ids][:2] or ids[:2]
    present.compare_view(store, shown)
    present.leave_link("compare", {})
    st.stop()
chosen = st.multiselect("Runs", ids, default=ids[: min(3, len(ids))], key="cmp_runs", max_selections=8)
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


@st.fragment(run_every=2.0 if live else None)
def overlay() -> None:
    snaps = {rid: store.snapshot(rid) for rid in chosen}
    frames = {rid: s.metrics for rid, s in snaps.items()}
    losses = {s.config.loss if s.config else "?" for s in snaps.values()}
    kinds = {s.score_kind for s in snaps.values()}
    if len(losses) > 1 and any(c in metrics for c in ("d_loss", "g_loss", "d_real", "d_fake")):
        st.caption(f"These runs use different losses ({', '.join(sorted(losses))}): their loss values are on different "
                   f"scales and are not comparable" + (" — and their D(real)/D(fake) are probabilities for some runs, "
                   "raw critic scores for others" if len(kinds) > 1 else "") + ". Compare them by the quality curves.")
    for col in metrics:
        st.plotly_chart(charts.compare_figure(frames, col, align, smoothing), key=f"cmp_{col}", width="stretch")

    st.subheader("Ranking")
    table = []
    for rid, s in snaps.items():
        df = s.metrics
        last = lambda c: (df[c].dropna().iloc[-1] if c in df and df[c].notna().any() else None)  # noqa: E731
        table.append({"run": rid, "status": s.status, "step": s.step, "seconds": round(s.elapsed, 1),
                      "images/s": round(s.images_per_s or 0), "Fréchet distance": last("fid"),
                      "classes covered": last("modes_covered"), "label accuracy": last("label_accuracy"),
                      "diversity": last("diversity"), "D loss": last("d_loss"), "G loss": last("g_loss")})
    ranking = pd.DataFrame(table)
    if ranking["Fréchet distance"].notna().any():
        ranking = ranking.sort_values("Fréchet distance", na_position="last")
        st.caption("Sorted by Fréchet distance (lower = closer to the real digits).")
    st.dataframe(ranking, hide_index=True, width="stretch")

    st.subheader("Latest samples")
    cols = st.columns(min(len(chosen), 4))
    for i, (rid, s) in enumerate(snaps.items()):
        with cols[i % len(cols)]:
            if s.latest_grid is not None:
                st.image(s.latest_grid, caption=f"{rid} · step {s.latest_grid_step}", width="stretch")
            else:
                st.caption(f"{rid}: no samples yet")


overlay()

st.subheader("How their configs differ")
snaps = {rid: store.snapshot(rid) for rid in chosen}  # an unreadable run has no config to compare
configs = pd.DataFrame({rid: {k: str(v) for k, v in (s.config.to_dict() if s.config else {}).items()} for rid, s in snaps.items()})
differ = configs[configs.nunique(axis=1) > 1] if len(chosen) > 1 else configs
if len(chosen) > 1 and differ.empty:
    st.caption("Identical configs (the runs differ only in when they ran).")
else:
    st.dataframe(differ, width="stretch")
