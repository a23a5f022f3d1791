#!/usr/bin/python3
"""A small SentencePiece BPE model trained like LLaMA's tokenizer.model, for tests that must not depend on
the real one: byte fallback, split digits, identity normalisation, no whitespace collapsing, a dummy
prefix, <unk> 0, <s> 1, </s> 2 and no padding id. Training is deterministic and takes milliseconds.

As a module: `train_tokenizer(path, vocab_size)`. As a program: `make_tokenizer.py OUT.model [--vocab-size N]`.
"""

import argparse
import io
import itertools

SENTENCES = [
    "A chat between a curious human and an artificial intelligence assistant.",
    "The assistant gives helpful, detailed, and polite answers to the human's questions.",
    "Provide a one-sentence caption for the provided image.",
    "Provide a one-sentence caption for the provided audio.",
    "Provide a one-sentence caption for the provided fMRI data.",
    "What is this?",
    "Describe the scene.",
    "Answer the question using a single word or phrase.",
]
SUBJECTS = ["a dog", "two people", "the red car", "a small cat", "an old man", "children", "a bird", "the train"]
VERBS = ["is running across", "are standing near", "waits beside", "sits on", "jumps over", "walks along"]
PLACES = ["the beach", "a busy street", "the green field", "a wooden table", "the river", "snowy mountains"]


def corpus():
    lines = list(SENTENCES)
    for s, v, p in itertools.product(SUBJECTS, VERBS, PLACES):
        lines.append(f"{s[0].upper()}{s[1:]} {v} {p}.")
    lines += [f"In {1900 + i} there were {i * 37} of them." for i in range(40)]
    return lines


def train_tokenizer(path, vocab_size=512):
    """Trains the model and writes it to path; returns the serialized model."""
    import sentencepiece as spm
    out = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus()), model_writer=out, model_type="bpe", vocab_size=vocab_size,
        byte_fallback=True, split_digits=True, character_coverage=1.0, normalization_rule_name="identity",
        remove_extra_whitespaces=False, add_dummy_prefix=True, allow_whitespace_only_pieces=True,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, hard_vocab_limit=True, num_threads=1, minloglevel=2)
    with open(path, "wb") as f:
        f.write(out.getvalue())
    return out.getvalue()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--vocab-size", type=int, default=512)
    args = ap.parse_args(argv)
    train_tokenizer(args.out, args.vocab_size)


if __name__ == "__main__":
    main()
