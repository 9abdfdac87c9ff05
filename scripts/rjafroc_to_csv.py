"""Convert RJafroc's FROC datasets (R binary ``data/datasetNN.RData``) to the CSV files under tests/data/rjafroc/.

One-off provenance tool, not part of the platform: it needs the ``rdata`` package (PyPI), which is not a project
dependency. Run it in a throw-away virtual environment:

    python -m venv /tmp/conv && /tmp/conv/bin/pip install rdata
    git clone https://github.com/dpc10ster/RJafroc   # or any copy of its data/ folder
    /tmp/conv/bin/python scripts/rjafroc_to_csv.py RJafroc/data tests/data/rjafroc dataset01 dataset04 dataset05

Each dataset becomes three files (the shapes readerstudy.stats.froc takes):
- ``<name>_cases.csv``: case, truth (0 = normal, 1 = abnormal); case ids are RJafroc's 1-based case index
  (normal cases first, as RJafroc stores them).
- ``<name>_lesions.csv``: case, lesion, weight (RJafroc's lesions$IDs and lesions$weights).
- ``<name>_marks.csv``: reader, modality, case, lesion, rating; lesion is empty for a non-lesion localisation.
  Unmarked lesions and empty NL slots (-Inf in RJafroc) are simply absent.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np


def convert(rdata_file: Path, out_dir: Path, name: str) -> None:
    import rdata  # noqa: PLC0415 - optional, only for this script

    ds = rdata.conversion.convert(rdata.parser.parse_file(rdata_file))[name]
    nl, ll = np.asarray(ds["ratings"]["NL"]), np.asarray(ds["ratings"]["LL"])
    per_case = np.asarray(ds["lesions"]["perCase"]).astype(int)
    ids, weights = np.asarray(ds["lesions"]["IDs"]), np.asarray(ds["lesions"]["weights"])
    modalities = [str(m) for m in np.asarray(ds["descriptions"]["modalityID"])]
    readers = [str(r) for r in np.asarray(ds["descriptions"]["readerID"])]
    n_mod, n_rdr, k, _ = nl.shape
    k2 = ll.shape[2]
    k1 = k - k2

    with open(out_dir / f"{name}_cases.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["case", "truth"])
        for c in range(k):
            w.writerow([c + 1, int(c >= k1)])
    with open(out_dir / f"{name}_lesions.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["case", "lesion", "weight"])
        for a in range(k2):
            for j in range(per_case[a]):
                w.writerow([k1 + a + 1, int(ids[a, j]), repr(float(weights[a, j]))])
    with open(out_dir / f"{name}_marks.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["reader", "modality", "case", "lesion", "rating"])
        for i in range(n_mod):
            for j in range(n_rdr):
                for c in range(k):
                    for rating in nl[i, j, c]:
                        if np.isfinite(rating):
                            w.writerow([readers[j], modalities[i], c + 1, "", repr(float(rating))])
                for a in range(k2):
                    for slot in range(per_case[a]):
                        rating = ll[i, j, a, slot]
                        if np.isfinite(rating):
                            w.writerow([readers[j], modalities[i], k1 + a + 1, int(ids[a, slot]), repr(float(rating))])


def main(argv: list[str]) -> None:
    src, out = Path(argv[0]), Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for name in argv[2:]:
        convert(src / f"{name}.RData", out, name)


if __name__ == "__main__":
    main(sys.argv[1:])
