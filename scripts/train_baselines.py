"""Train the demo's shipped baselines (seeded, CPU, one thread) into demo/artifacts/ with manifest.json.

    .venv/bin/python scripts/train_baselines.py            # all, about 12 minutes on one core
    .venv/bin/python scripts/train_baselines.py --steps 3 --out /tmp/x   # a smoke run

See demo/shipped.py for what is trained on which phantoms, and the manifest for the settings and figures.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from demo import shipped  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=shipped.ARTIFACT_DIR)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=None, help="Override every model's training steps.")
    parser.add_argument("--only", nargs="*", choices=sorted(shipped.GENERATIVE), default=None)
    args = parser.parse_args()
    shipped.build_all(args.out, seed=args.seed, only=args.only, steps=args.steps, log=lambda m: print(m, flush=True))


if __name__ == "__main__":
    main()
