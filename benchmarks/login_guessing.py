"""Password guessing against classroom mode: N sessions at once, each entering wrong teacher passwords as fast as the
server answers. Prints how many guesses the server actually checked per second (all sessions together).

    python benchmarks/login_guessing.py [--sessions 6] [--seconds 20] [--repo PATH]

--repo runs another checkout's app (e.g. an export of the previous commit) for a before/after in one sitting. Each
session is a Streamlit AppTest in its own thread, in one process, as sessions share one server process."""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--repo", default=str(Path(__file__).resolve().parents[1]))
    args = ap.parse_args()
    repo = Path(args.repo).resolve()
    sys.path.insert(0, str(repo))
    os.chdir(repo)
    os.environ["GAN_STUDIO_TEACHER_PASSWORD"] = "correct horse battery staple"
    os.environ["GAN_STUDIO_RUNS"] = tempfile.mkdtemp(prefix="login-bench-")
    from streamlit.testing.v1 import AppTest

    import gan_core.classroom as classroom
    checked = [0]
    real = classroom.password_matches

    def counting(guess, password):
        checked[0] += 1
        return real(guess, password)
    classroom.password_matches = counting  # the new code calls it from the module; the old code imported the name
    import ui.roles as roles
    if hasattr(roles, "password_matches"):
        roles.password_matches = counting

    tries = [0]
    stop = time.monotonic() + args.seconds

    def guess(n):
        i = 0
        while time.monotonic() < stop:  # AppTest drops an st.navigation app's sidebar after one run: a fresh one each
            at = AppTest.from_file(str(repo / "app.py"), default_timeout=120).run()
            at.text_input(key="roles_guess").input(f"guess-{n}-{i}").run()
            i += 1
            tries[0] += 1

    start = time.monotonic()
    threads = [threading.Thread(target=guess, args=(n,)) for n in range(args.sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.monotonic() - start
    print(f"repo={repo} sessions={args.sessions} seconds={took:.1f} attempts={tries[0]} checked={checked[0]} "
          f"checked_per_s={checked[0] / took:.2f} attempts_per_s={tries[0] / took:.2f} loadavg={os.getloadavg()}")


if __name__ == "__main__":
    main()
