"""What bench/'s result summarizers (summarize.py, kv_summary.py,
kv_bypass_summary.py) share: errors, loading and writing JSON, the date
and machine a result records, the median round. Python 3 standard
library only. Like them it never invents a figure: what it cannot read is
an error (exit 1), never a gap filled in.
"""

import datetime
import json
import os
import platform
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fail(msg):
    """MSG on standard error, after the running program's name; exit 1."""
    name = os.path.basename(sys.argv[0])
    if name.endswith(".py"):
        name = name[:-3]
    print(f"{name}: {msg}", file=sys.stderr)
    sys.exit(1)


def repo_path(p):
    """A path as it is recorded in a result: relative to the repository when
    it lies inside it (build/demi-echo), so that results name no machine's
    directories; other paths unchanged."""
    ap = os.path.abspath(p)
    return os.path.relpath(ap, REPO) if ap.startswith(REPO + os.sep) else p


def load_json(path):
    """The JSON value in the file at path."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        fail(f"{path}: {e}")


def write_json(path, obj):
    """obj to the file at path, indented, replacing it whole (through
    path.tmp) so that a reader never sees half a result."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def utc_now():
    """The time a result is written, in UTC, to the second."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def cpu_model():
    """The CPU's model name (/proc/cpuinfo), else what platform knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for ln in f:
                if ln.startswith("model name"):
                    return ln.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def median_by(items, key):
    """The item with the median value of key (the lower middle for an even
    count; among equal values, the first in items)."""
    items = sorted(items, key=key)
    return items[(len(items) - 1) // 2]
