#!/usr/bin/env python3
"""Write the defaults of the transformers config classes the runtime reads.

The runtime states each model type's config defaults in its own file (the llama
family's `Defaults` constants, `hf_config!` structs). This script instantiates the
config class of every model type a skillset family runs (read from model_types.json,
with the sub-configs they hold) with no arguments, as a checkpoint without a field
would be loaded, and writes its fields to `skillset-runtime/tests/config_defaults.json`;
a unit test of the runtime compares every stated default with this file, so a default
that is not transformers' fails a test instead of loading a checkpoint differently.

Usage:
    pip install transformers
    python scripts/gen_config_defaults.py [--check]

`--check` exits 1 when the file on disk differs from what would be written.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import transformers

ROOT = Path(__file__).resolve().parent.parent


def classes() -> dict[str, type]:
    """The config class of every model type a skillset family runs (model_types.json),
    and the sub-configs they hold (CLIP's text and vision towers; MPT's attention
    config, which transformers does not export), by name."""
    meta = json.loads((ROOT / "model_types.json").read_text())
    found = {e["config_class"]: getattr(transformers, e["config_class"])
             for e in meta["model_types"] if e.get("family")}
    for cls in list(found.values()):
        for sub in getattr(cls, "sub_configs", {}).values():
            if sub.__name__ != "AutoConfig":
                found[sub.__name__] = sub
    return dict(sorted(found.items()))


OUT = ROOT / "skillset-runtime" / "tests" / "config_defaults.json"


def defaults(cls: type) -> dict:
    config = cls()
    fields = config.to_dict()
    # Per-layer lists scale with the default layer count; they say nothing more.
    fields.pop("layer_types", None)
    for key in ("transformers_version", "architectures", "_name_or_path", "dtype"):
        fields.pop(key, None)
    return {k: fields[k] for k in sorted(fields)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    data = {
        "about": "Defaults of transformers' config classes (each instantiated with no "
        "arguments), written by scripts/gen_config_defaults.py; the runtime's unit tests "
        "compare the defaults it states with these.",
        "transformers": transformers.__version__,
        "classes": {name: defaults(cls) for name, cls in classes().items()},
    }
    text = json.dumps(data, indent=1, sort_keys=False) + "\n"
    if args.check:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT} is out of date: run python scripts/gen_config_defaults.py", file=sys.stderr)
            return 1
        print(f"{OUT.name} is up to date ({len(data['classes'])} classes)")
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT} ({len(data['classes'])} classes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
