"""tests/cpu/csv_fixture.py: the small-CSV writer the report and gate tests share (not a test module)."""
import csv
import os


def write_csv(path, cols, rows):
    """Writes rows (dicts) under the header cols to path, creating its folder; missing fields are empty."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({c: r.get(c, "") for c in cols})
