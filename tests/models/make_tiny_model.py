#!/usr/bin/python3
"""The tiny test model as a GGUF file: make_checkpoint's TINY checkpoint (seeded), converted by onellm-convert.

Engine tests and the reference goldens use the same seed, so the file rebuilt in a build tree holds
exactly the weights the committed goldens were computed from.
Usage: make_tiny_model.py OUT.gguf --tokenizer tokenizer.model [--outtype f32] [--seed 0]
"""

import argparse
import importlib.util
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_checkpoint  # noqa: E402


def load_converter():
    path = os.path.join(HERE, "..", "..", "tools", "onellm-convert.py")
    spec = importlib.util.spec_from_file_location("onellm_convert", path)
    mod = importlib.util.module_from_spec(spec)
    sys.path.insert(0, os.path.dirname(path))
    spec.loader.exec_module(mod)
    return mod


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--outtype", default="f32", choices=["f32", "f16", "bf16"])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    convert = load_converter()
    with tempfile.TemporaryDirectory() as work:
        make_checkpoint.write_checkpoint(work, seed=args.seed, dtype="f32")
        convert.convert(work, args.tokenizer, args.outtype, args.out, "OneLLM tiny test model", log=lambda m: None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
