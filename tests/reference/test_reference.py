# Self-test of the PyTorch OneLLM reference: internal consistency and the spec's stated properties.
"""Usage: /usr/bin/python3 tests/reference/test_reference.py CHECKPOINT [unittest options]

CHECKPOINT is any official-format OneLLM checkpoint (file or folder, with params.json), e.g. the tiny one
made by tests/models/make_checkpoint.py. Also reads the LLaMA-2 tokenizer (ONELLM_TOKENIZER or
../shared/data/llama2-tokenizer.model beside the repository).
"""

import os
import sys
import time
import unittest

import numpy as np
import sentencepiece
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import onellm_ref as ref  # noqa: E402
from dump_goldens import DEFAULT_TOKENIZER, make_input  # noqa: E402

CHECKPOINT = None
TOKENIZER = os.environ.get("ONELLM_TOKENIZER", DEFAULT_TOKENIZER)
IMAGE_QUESTION = "Provide a one-sentence caption for the provided image."
SPEC_PROMPT_IDS = [int(t) for t in """
1 319 13563 1546 263 12758 5199 322 385 23116 21082 20255 29889 450 20255 4076 8444 29892 13173 29892 322
1248 568 6089 304 278 5199 29915 29879 5155 29889 13 13 2277 29937 29950 7889 29901 9133 680 263 697
29899 18616 663 5777 683 363 278 4944 1967 29889 13 2277 29937 7900 22137 29901""".split()]


def kernel_fps(points: np.ndarray, m: int) -> list:
    """Literal scalar transcription of the pointnet2 furthest_point_sampling_kernel (one block)."""
    n = len(points)
    threads = ref.fps_threads(n)
    temp = [np.float32(ref.FPS_INITIAL_DISTANCE)] * n
    out, old = [0], 0
    for _ in range(1, m):
        dists, dists_i = [], []
        x1, y1, z1 = points[old]
        for tid in range(threads):
            best, besti = np.float32(-1), 0
            for k in range(tid, n, threads):
                x2, y2, z2 = points[k]
                d = (x2 - x1) * (x2 - x1) + (y2 - y1) * (y2 - y1) + (z2 - z1) * (z2 - z1)
                d2 = min(d, temp[k])
                temp[k] = d2
                besti = k if d2 > best else besti
                best = d2 if d2 > best else best
            dists.append(best)
            dists_i.append(besti)
        stride = threads // 2
        while stride >= 1:
            for tid in range(stride):
                v1, v2 = dists[tid], dists[tid + stride]
                i1, i2 = dists_i[tid], dists_i[tid + stride]
                dists[tid] = max(v1, v2)
                dists_i[tid] = i2 if v2 > v1 else i1
            stride //= 2
        old = dists_i[0]
        out.append(old)
    return out


class PointSearch(unittest.TestCase):
    """FPS and kNN on their own (no checkpoint involved)."""

    def test_fps_matches_cuda_kernel_transcription(self):
        gen = torch.Generator().manual_seed(1)
        for n, m in ((300, 40), (1100, 24), (64, 64)):
            colours = torch.randint(0, 4, (n, 3), generator=gen).float() / 3     # many equal colours
            got = ref.furthest_point_sample(colours, m).tolist()
            self.assertEqual(got, kernel_fps(colours.numpy().astype(np.float32), m), f"n={n}")

    def test_fps_tie_goes_to_the_reduction_tree_winner(self):
        # 4 points, 4 threads: points 1 and 2 tie at distance 1; the tree compares slots (0,2), (1,3) first,
        # so slot 0 holds point 2 when it meets slot 1 and keeps it on the tie.
        p = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0.5, 0, 0]])
        self.assertEqual(ref.furthest_point_sample(p, 2).tolist(), [0, 2])

    def test_fps_exhausted_distances_repeat_index_zero(self):
        p = torch.tensor([[0.0, 0, 0], [1, 1, 1], [0, 0, 0], [1, 1, 1]])
        self.assertEqual(ref.furthest_point_sample(p, 5).tolist(), [0, 1, 0, 0, 0])

    def test_knn_is_exact_distance_then_index_order(self):
        gen = torch.Generator().manual_seed(2)
        support = torch.randint(0, 17, (500, 3), generator=gen).float() / 16   # exact in float32
        query = support[torch.randint(0, 500, (40,), generator=gen)]
        got = ref.knn_indices(support, query, 32)
        for q in range(len(query)):
            d = ((support.double() - query[q].double()) ** 2).sum(dim=1).numpy()
            want = np.lexsort((np.arange(len(d)), d))[:32]
            self.assertEqual(got[q].tolist(), want.tolist(), f"query {q}")


class Prompt(unittest.TestCase):
    def test_image_caption_prompt_is_the_spec_58_ids(self):
        sp = sentencepiece.SentencePieceProcessor(model_file=TOKENIZER)
        self.assertEqual(ref.prompt_ids(sp, IMAGE_QUESTION), SPEC_PROMPT_IDS)


class Model(unittest.TestCase):
    """Properties of a loaded checkpoint (fp32 unless stated)."""

    @classmethod
    def setUpClass(cls):
        cls.state, cls.params = ref.load_checkpoint(CHECKPOINT)
        cls.model = ref.OneLLM(cls.state, cls.params)
        cls.sp = sentencepiece.SentencePieceProcessor(model_file=TOKENIZER)
        cls.ids = ref.prompt_ids(cls.sp, IMAGE_QUESTION)
        gen = torch.Generator().manual_seed(3)
        cls.inputs = {m: make_input(cls.model, m, gen) for m in ref.MODALITIES}
        cls.encoded = {}

    def enc(self, modality):
        if modality not in self.encoded:
            self.encoded[modality] = self.model.encode(modality, self.inputs[modality])
        return self.encoded[modality]

    def assertClose(self, a, b, tol=1e-4, msg=None):
        err = (a.float() - b.float()).abs().max().item() / max(b.float().abs().max().item(), 1e-30)
        self.assertLessEqual(err, tol, msg)

    def test_strict_key_check_names_the_problem(self):
        name = "llma.routers.imu.fc2.bias"
        broken = {k: v for k, v in self.state.items() if k != name}
        with self.assertRaisesRegex(ValueError, r"missing: .*routers\.imu\.fc2\.bias"):
            ref.OneLLM(broken, self.params)
        broken = dict(self.state, **{"llma.bogus.weight": torch.zeros(1)})
        with self.assertRaisesRegex(ValueError, r"unexpected: .*bogus"):
            ref.OneLLM(broken, self.params)
        broken = dict(self.state, **{"llma.norm.weight": torch.zeros(3)})
        with self.assertRaisesRegex(ValueError, r"wrong shape: .*norm\.weight"):
            ref.OneLLM(broken, self.params)

    def test_every_modality_runs_with_the_spec_shapes(self):
        cfg = self.model.cfg
        rows = {"image": 257, "video": 257, "rgbd": 257, "rgbn": 257, "audio": 1213,
                "point": cfg.point_groups + 1, "imu": 392, "fmri": cfg.fmri_tokens + 1}
        started = time.time()
        for m in ref.MODALITIES:
            e = self.enc(m)
            self.assertEqual(tuple(e.clip_mean.shape), (rows[m], cfg.clip_width), m)
            self.assertEqual(tuple(e.block.shape), (cfg.modality_tokens + 2, cfg.llm_dim), m)
            self.assertTrue(torch.isfinite(e.block).all(), m)
            self.assertClose(e.routing.sum(dim=1), torch.ones(cfg.modality_tokens), 1e-6, m)
        self.assertLess(time.time() - started, 60)

    def test_routing_ignores_the_input(self):
        for m in ("image", "imu"):
            other = make_input(self.model, m, torch.Generator().manual_seed(4))
            for x in (self.inputs[m], other):
                seq = self.model.upm_sequence(m, self.model.encode(m, x).clip_mean)
                rows = self.model.routing_weights(m, seq)[:self.model.cfg.modality_tokens]
                # equal up to the summation order BLAS picks for a different number of rows
                self.assertClose(rows, self.model.constant_routing(m), 1e-6, m)

    def test_upm_sees_the_clip_tokens_but_not_their_order(self):
        # No RoPE and no mask in the experts: the 30 kept rows attend to every CLIP token, in any order.
        clip = self.enc("imu").clip_mean
        perm = torch.randperm(clip.shape[0], generator=torch.Generator().manual_seed(5))
        self.assertClose(self.model.upm("imu", clip[perm]), self.enc("imu").upm, 1e-5)
        self.assertFalse(torch.allclose(self.model.upm("imu", clip.flip(1)), self.enc("imu").upm))

    def test_routing_is_the_normalised_sigmoid_of_the_router_mlp(self):
        w = {k[len(ref.KEY_PREFIX):]: v.double() for k, v in self.state.items()}
        for m in ("image", "fmri"):
            h = torch.nn.functional.linear(w[f"resample_tokens.{m}"][0], w[f"routers.{m}.fc1.weight"],
                                           w[f"routers.{m}.fc1.bias"])
            s = torch.nn.functional.linear(torch.nn.functional.gelu(h), w[f"routers.{m}.fc2.weight"],
                                           w[f"routers.{m}.fc2.bias"]).sigmoid()
            self.assertClose(self.model.constant_routing(m), s / s.sum(dim=1, keepdim=True), 1e-5, m)

    def test_video_is_the_token_wise_mean_of_its_frames(self):
        frame = self.inputs["image"]
        same = self.model.encode("video", frame.expand(3, *frame.shape))
        self.assertClose(same.clip_mean, self.enc("image").clip_mean, 1e-5)
        video = self.inputs["video"]
        shuffled = self.model.encode("video", video.flip(0))
        self.assertClose(shuffled.clip_mean, self.enc("video").clip_mean, 1e-5)

    def test_point_indices_can_be_given(self):
        e = self.enc("point")
        again = self.model.encode("point", self.inputs["point"], e.point_fps, e.point_knn)
        self.assertTrue(torch.equal(again.tokens, e.tokens))
        self.assertEqual(len(set(e.point_fps.tolist())), len(e.point_fps))

    def check_cache_against_recompute(self, blocks, mode, prompt):
        """Each decoded step's logits equal a fresh prefill of `prompt` + the tokens fed so far."""
        steps = []
        tokens = self.model.generate(self.ids, blocks, 6, mode, step_logits=steps)
        self.assertEqual(len(tokens), 6)
        for j in range(1, len(tokens)):
            fresh = self.model.prefill(prompt + tokens[:j], blocks)[0]
            self.assertClose(steps[j], fresh, 1e-4, f"{mode} step {j}")
        return tokens, steps

    def test_correct_mode_cache_equals_full_recomputation(self):
        for blocks in ([], [self.enc("image").block], [self.enc("video").block, self.enc("audio").block]):
            self.check_cache_against_recompute(blocks, "correct", self.ids)

    def test_official_mode_decodes_without_the_last_two_prompt_tokens_per_block(self):
        # Spec §6.4: decode rows start 2 rows early per block, so from step 1 on the model sees the prompt
        # minus its last 2 tokens per block (they are overwritten) followed by the generated tokens.
        for blocks in ([self.enc("image").block], [self.enc("video").block, self.enc("audio").block]):
            shortened = self.ids[:-2 * len(blocks)]
            official, o_steps = self.check_cache_against_recompute(blocks, "official", shortened)
            correct, c_steps = self.check_cache_against_recompute(blocks, "correct", self.ids)
            self.assertTrue(torch.equal(o_steps[0], c_steps[0]))
            self.assertEqual(official[0], correct[0])
            self.assertFalse(torch.allclose(o_steps[1], c_steps[1]))

    def test_text_only_is_the_same_in_both_modes(self):
        official = self.model.generate(self.ids, [], 6, "official")
        self.assertEqual(official, self.model.generate(self.ids, [], 6, "correct"))

    def test_bad_inputs_are_rejected(self):
        with self.assertRaisesRegex(ValueError, "imu: input shape"):
            self.model.encode("imu", torch.zeros(6, 399))
        with self.assertRaisesRegex(ValueError, "NaN"):
            self.model.encode("fmri", torch.full(self.model.expected_input_shape("fmri"), float("nan")))
        small = ref.OneLLM(self.state, self.params, max_seq_len=64)
        with self.assertRaisesRegex(ValueError, "context overflow"):
            small.prefill(self.ids, [self.enc("image").block])

    def test_fp16_emulation_stays_close_to_fp32(self):
        half = ref.OneLLM(self.state, self.params, fp16=True)
        for m in ("image", "audio"):
            e = half.encode(m, self.inputs[m])
            self.assertEqual(e.routing.dtype, torch.float16)
            self.assertEqual(e.upm.dtype, torch.float32)            # clip_proj2's LayerNorm returns float32
            self.assertClose(e.block, self.enc(m).block, 2e-2, m)
        logits16 = half.prefill(self.ids, [half.encode("image", self.inputs["image"]).block])[0]
        self.assertClose(logits16, self.model.prefill(self.ids, [self.enc("image").block])[0], 5e-2)


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        sys.exit(__doc__)
    CHECKPOINT = sys.argv.pop(1)
    unittest.main()
