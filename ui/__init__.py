"""Drawing helpers shared by the Streamlit pages. Compute lives in gan_core; this package only draws."""
