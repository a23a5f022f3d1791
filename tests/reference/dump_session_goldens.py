# Writes the language-path goldens (tests/data/session/) from the PyTorch reference, for tests/test-session.c.
"""Usage: /usr/bin/python3 tests/reference/dump_session_goldens.py CHECKPOINT OUTDIR [--tokenizer PATH]

CHECKPOINT is the tiny checkpoint (tests/models/make_checkpoint.py, seed 0, --dtype f32): the one
tests/models/make_tiny_model.py converts into the engine's test model, so the goldens hold for it.

Files (float32 / int32 .npy), for each case (`text`, each modality, `video+audio`):
  <case>.prompt_ids   [n]            BOS + the chat template of the case's question (dump_goldens.QUESTIONS)
  <case>.logits       [V/STRIDE]     prefill logits of the last position, every STRIDE-th id
  <case>.greedy.<mode>  [<= MAX_TOKENS]  greedy ids (official and correct position modes)
  <case>.steps.<mode> [STEPS, V/STRIDE]  logits of the first decode steps (after feeding greedy ids 1..STEPS)
and <modality>.block [32, D]: the reference encoder's LLM input block spliced into the case (the engine
test takes it as input, so it does not depend on the C encoder). manifest.json lists the cases, the
questions, and the smallest top-1/top-2 logit gap met by any greedy step (how far from a tie they are).
"""

import argparse
import json
import os
import sys

import numpy as np
import sentencepiece
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import onellm_ref as ref  # noqa: E402
from dump_goldens import DEFAULT_TOKENIZER, MULTI_QUESTION, QUESTIONS, make_input  # noqa: E402

STRIDE = 16
MAX_TOKENS = 16
STEPS = 3
MODES = ("official", "correct")


def top2_gap(logits: torch.Tensor) -> float:
    top = torch.topk(logits, 2).values
    return float(top[0] - top[1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("outdir")
    ap.add_argument("--tokenizer", default=DEFAULT_TOKENIZER)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    model = ref.OneLLM.from_path(args.checkpoint)
    sp = sentencepiece.SentencePieceProcessor(model_file=args.tokenizer)
    os.makedirs(args.outdir, exist_ok=True)

    def save(name, array):
        np.save(os.path.join(args.outdir, name + ".npy"), array)

    gen = torch.Generator().manual_seed(args.seed)
    blocks = {}
    for m in ref.MODALITIES:
        blocks[m] = model.encode(m, make_input(model, m, gen)).block.float()
        save(f"{m}.block", blocks[m].numpy().astype(np.float32))

    cases = [("text", [])] + [(m, [m]) for m in ref.MODALITIES] + [("video+audio", ["video", "audio"])]
    min_gap = float("inf")
    questions = {}
    for case, mods in cases:
        questions[case] = QUESTIONS.get(case, MULTI_QUESTION)
        ids = ref.prompt_ids(sp, questions[case])
        case_blocks = [blocks[m] for m in mods]
        save(f"{case}.prompt_ids", np.array(ids, dtype=np.int32))
        save(f"{case}.logits", model.prefill(ids, case_blocks)[0][::STRIDE].numpy().astype(np.float32))
        for mode in MODES:
            step_logits = []
            tokens = model.generate(ids, case_blocks, MAX_TOKENS, mode, sp, step_logits)
            save(f"{case}.greedy.{mode}", np.array(tokens, dtype=np.int32))
            min_gap = min([min_gap] + [top2_gap(x) for x in step_logits])
            steps = [x[::STRIDE].numpy() for x in step_logits[1:STEPS + 1]]
            save(f"{case}.steps.{mode}", np.array(steps, dtype=np.float32))

    manifest = {
        "stride": STRIDE,
        "max_tokens": MAX_TOKENS,
        "steps": STEPS,
        "cases": {case: mods for case, mods in cases},
        "questions": questions,
        "min_top2_gap": min_gap,
    }
    with open(os.path.join(args.outdir, "manifest.json"), "w") as fp:
        json.dump(manifest, fp, indent=1)
    print(f"wrote {len(cases)} cases to {args.outdir}; smallest top-2 logit gap {min_gap:.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
