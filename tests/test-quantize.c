/* onellm-quantize: which tensors get which type, bytes equal to the reference quantizers, round-trip error
 * within each format's bound, the fMRI matrix's rows zero-padded to whole blocks, metadata copied, and clean
 * failures. $ONELLM_QUANTIZE names the program. */
#include "support/ref.h"

#include <glib/gstdio.h>
#include <math.h>
#include <sys/wait.h>
#include <string.h>

typedef struct {
  const char *name;
  OlType src;
  guint n_dims;
  gint64 ne[4];
  /* expected type for f16, q8_0, q4_0 */
  OlType want[3];
} Spec;

#define F32 OL_TYPE_F32
#define F16 OL_TYPE_F16
#define BF16 OL_TYPE_BF16
#define Q8 OL_TYPE_Q8_0
#define Q4 OL_TYPE_Q4_0

static const Spec specs[] = {
  { "token_embd.weight", F32, 2, { 64, 40 }, { F16, Q8, Q4 } },
  { "output.weight", F32, 2, { 64, 40 }, { F16, Q8, Q8 } },
  { "output_norm.weight", F32, 1, { 64 }, { F32, F32, F32 } },
  { "blk.0.attn_q.weight", F32, 2, { 64, 64 }, { F16, Q8, Q4 } },
  { "blk.0.attn_norm.weight", F32, 1, { 64 }, { F32, F32, F32 } },
  { "blk.0.ffn_gate.weight", BF16, 2, { 64, 96 }, { F16, Q8, Q4 } },
  { "upm.expert.0.blk.0.ffn_down.weight", F32, 2, { 96, 64 }, { F16, Q8, Q4 } },
  { "clip.blk.0.attn_qkv.weight", F32, 2, { 64, 192 }, { F16, Q8, Q4 } },
  { "clip.blk.0.attn_qkv.bias", F32, 1, { 192 }, { F32, F32, F32 } },
  { "clip.blk.0.ffn_up.weight", F32, 2, { 64, 256 }, { F16, Q8, Q4 } },
  { "clip.patch_embd.weight", F32, 4, { 14, 14, 3, 64 }, { F16, F16, F16 } },
  { "clip.pos_embd", F32, 2, { 64, 257 }, { F16, F16, F16 } },
  { "mod.image.resample_tokens", F32, 2, { 64, 30 }, { F16, F16, F16 } },
  { "mod.image.router.fc1.weight", F32, 2, { 64, 256 }, { F16, F16, F16 } },
  { "mod.image.proj2.weight", F16, 2, { 64, 128 }, { F16, Q8, Q4 } },
  { "mod.image.start_tag", F16, 1, { 128 }, { F16, F16, F16 } },
  { "mod.fmri.linear.weight", F32, 2, { 100, 16 }, { F16, Q8, Q4 } },     /* rows padded to 128 */
  { "blk.1.ffn_down.weight", F32, 2, { 100, 16 }, { F16, F16, F16 } },    /* rows not whole blocks */
  { "mod.audio.pos_embd", BF16, 2, { 64, 20 }, { BF16, BF16, BF16 } },
  { "test.ids", OL_TYPE_I32, 1, { 10 }, { OL_TYPE_I32, OL_TYPE_I32, OL_TYPE_I32 } },
};

static const char *const targets[] = { "f16", "q8_0", "q4_0" };

static char *workdir;

static gint64
n_elements (const Spec *s)
{
  gint64 n = 1;
  for (guint d = 0; d < s->n_dims; d++)
    n *= s->ne[d];
  return n;
}

/* Values of the tensor as F32 (already rounded to the source type), with a few outliers per row so
 * that block scales vary. */
static float *
values (const Spec *s, guint seed)
{
  gint64 n = n_elements (s);
  float *x = g_new (float, n);
  g_autoptr (GRand) rng = g_rand_new_with_seed (seed);
  ref_fill_uniform (rng, x, n, -1.0f, 1.0f);
  for (gint64 i = 0; i < n; i += 37)
    x[i] *= 8.0f;
  return x;
}

static char *
write_model (const char *name, OlType quantize_to)
{
  g_autoptr (OlGgufWriter) w = ol_gguf_writer_new ();
  ol_gguf_writer_set_alignment (w, 64);
  ol_gguf_writer_set_string (w, "general.architecture", "onellm");
  ol_gguf_writer_set_u32 (w, "general.file_type", 0);
  const char *mods[] = { "image", "audio" };
  ol_gguf_writer_set_string_array (w, "onellm.modalities", mods, 2);
  const float mean[3] = { 0.5f, 0.25f, 0.125f };
  ol_gguf_writer_set_array (w, "onellm.image_mean", OL_GGUF_TYPE_FLOAT32, mean, 3);
  g_autoptr (GPtrArray) buffers = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GError) error = NULL;
  for (guint i = 0; i < G_N_ELEMENTS (specs); i++) {
    const Spec *s = &specs[i];
    g_autofree float *x = values (s, i);
    gint64 n = n_elements (s);
    OlType type = s->src;
    if (quantize_to != F32 && s->want[2] == Q4 && s->ne[0] % OL_QK == 0)   /* an already-quantized model */
      type = quantize_to;
    guint64 row;
    g_assert_true (ol_type_row_bytes (type, s->ne[0], &row, &error));
    guint8 *data = g_malloc (row * (n / s->ne[0]));
    if (type == OL_TYPE_I32) {
      for (gint64 j = 0; j < n; j++)
        ((gint32 *) data)[j] = (gint32) j - 3;
    } else {
      ol_type_quantize (type, x, data, n);
    }
    g_ptr_array_add (buffers, data);
    g_assert_true (ol_gguf_writer_add_tensor (w, s->name, type, s->n_dims, s->ne, data, &error));
  }
  char *path = g_build_filename (workdir, name, NULL);
  g_assert_true (ol_gguf_writer_write (w, path, &error));
  return path;
}

static int
run_quantize (const char *in, const char *out, const char *type, char **err)
{
  const char *exe = g_getenv ("ONELLM_QUANTIZE");
  g_assert_nonnull (exe);
  const char *argv[] = { exe, in, out, type, NULL };
  int status;
  g_autoptr (GError) error = NULL;
  g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL, err,
                               &status, &error));
  return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

/* Largest error dequantize(quantize(x)) may have for a block whose largest magnitude is amax:
 * half a step, plus the step error from storing the scale as fp16; Q4_0 can be a whole step off at
 * the end of the range opposite to the block's extreme value (q is clamped at 15). */
static float
bound (OlType type, float x, float amax)
{
  switch (type) {
    case F16: return fabsf (x) * 0x1p-11f + 0x1p-25f;
    case Q8: return amax / 127.0f * (0.5f + 127.0f * 0x1p-11f) + amax * 1e-6f;
    case Q4: return amax / 8.0f * (1.0f + 8.0f * 0x1p-11f) + amax * 1e-6f;
    default: return 0.0f;
  }
}

static void
check_target (guint k)
{
  g_autofree char *in = write_model ("in.gguf", F32);
  g_autofree char *out = g_build_filename (workdir, "out.gguf", NULL);
  g_autofree char *err = NULL;
  int status = run_quantize (in, out, targets[k], &err);
  if (status != 0)
    g_error ("onellm-quantize %s exited %d: %s", targets[k], status, err);

  g_autoptr (GError) error = NULL;
  g_autoptr (OlGguf) src = ol_gguf_open (in, &error);
  g_assert_no_error (error);
  g_autoptr (OlGguf) dst = ol_gguf_open (out, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (ol_gguf_alignment (dst), ==, 64);
  g_assert_cmpuint (ol_gguf_n_tensors (dst), ==, G_N_ELEMENTS (specs));

  for (guint i = 0; i < G_N_ELEMENTS (specs); i++) {
    const Spec *s = &specs[i];
    const OlGgufTensor *a = ol_gguf_find_tensor (src, s->name), *b = ol_gguf_find_tensor (dst, s->name);
    g_assert_nonnull (b);
    g_assert_cmpuint (b->n_dims, ==, s->n_dims);
    if (b->type != s->want[k])
      g_error ("%s: %s, expected %s when quantizing to %s", s->name, ol_type_name (b->type),
               ol_type_name (s->want[k]), targets[k]);
    /* only the fMRI matrix grows, and only when its type has blocks */
    gint64 ne0 = s->ne[0];
    if (strcmp (s->name, "mod.fmri.linear.weight") == 0 && ol_type_is_quantized (b->type))
      ne0 = (s->ne[0] + OL_QK - 1) / OL_QK * OL_QK;
    g_assert_cmpint (b->ne[0], ==, ne0);
    g_assert_cmpmem (b->ne + 1, sizeof b->ne - sizeof b->ne[0], a->ne + 1, sizeof a->ne - sizeof a->ne[0]);
    if (s->src == OL_TYPE_I32) {
      g_assert_cmpmem (b->data, b->n_bytes, a->data, a->n_bytes);
      continue;
    }
    /* the source rows, zero-padded to the written row length */
    gint64 rows = n_elements (s) / s->ne[0], n = rows * ne0;
    g_autofree float *x = g_new0 (float, n);
    g_autofree float *y = g_new (float, n);
    guint64 src_row;
    g_assert_true (ol_type_row_bytes (a->type, s->ne[0], &src_row, &error));
    for (gint64 r = 0; r < rows; r++)
      ol_type_dequantize (a->type, (const guint8 *) a->data + r * src_row, x + r * ne0, s->ne[0]);
    /* exactly the reference quantizer's bytes */
    g_autofree guint8 *want = g_malloc (b->n_bytes);
    ol_type_quantize (b->type, x, want, n);
    g_assert_cmpmem (b->data, b->n_bytes, want, b->n_bytes);
    /* and within the format's error bound */
    ol_type_dequantize (b->type, b->data, y, n);
    for (gint64 j = 0; j < n; j++) {
      if (j % ne0 >= s->ne[0])
        g_assert_cmpfloat (y[j], ==, 0.0f);
      float amax = 0.0f;
      for (gint64 q = j / OL_QK * OL_QK; q < MIN (n, j / OL_QK * OL_QK + OL_QK); q++)
        amax = MAX (amax, fabsf (x[q]));
      float err_j = fabsf (y[j] - x[j]);
      if (err_j > bound (b->type, x[j], amax))
        g_error ("%s[%" G_GINT64_FORMAT "]: %g -> %g (%s), error %g above the bound %g", s->name, j, x[j], y[j],
                 ol_type_name (b->type), err_j, bound (b->type, x[j], amax));
    }
  }

  /* metadata: all keys copied, file type set */
  for (gsize i = 0; i < ol_gguf_n_keys (src); i++) {
    const char *key = ol_gguf_key (src, i);
    OlGgufValue va, vb;
    g_assert_true (ol_gguf_get_value (src, key, &va, &error));
    g_assert_true (ol_gguf_get_value (dst, key, &vb, &error));
    g_assert_cmpint (va.type, ==, vb.type);
    if (strcmp (key, "general.file_type") != 0)
      g_assert_cmpmem (va.data, va.size, vb.data, vb.size);
  }
  guint32 ft;
  g_assert_true (ol_gguf_get_u32 (dst, "general.file_type", &ft, &error));
  g_assert_cmpuint (ft, ==, k == 0 ? 1 : k == 1 ? 7 : 2);
  g_assert_true (ol_gguf_has_key (dst, "general.quantization_version") == (k > 0));
  g_unlink (in);
  g_unlink (out);
}

static void
test_f16 (void)
{
  check_target (0);
}

static void
test_q8_0 (void)
{
  check_target (1);
}

static void
test_q4_0 (void)
{
  check_target (2);
}

static void
test_failures (void)
{
  g_autofree char *out = g_build_filename (workdir, "never.gguf", NULL);
  g_autofree char *err = NULL;
  g_assert_cmpint (run_quantize ("/nonexistent.gguf", out, "q8_0", &err), ==, 1);
  g_assert_true (g_str_has_prefix (err, "onellm-quantize: "));
  g_assert_nonnull (strstr (err, "/nonexistent.gguf"));
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (run_quantize ("/nonexistent.gguf", out, "q5_k", &err), ==, 2);
  g_clear_pointer (&err, g_free);

  /* a Q8_0 model does not become Q4_0 (that would quantize twice), but q8_0 again is a copy */
  g_autofree char *q8 = write_model ("q8.gguf", Q8);
  g_assert_cmpint (run_quantize (q8, out, "q4_0", &err), ==, 1);
  g_assert_nonnull (strstr (err, "is q8_0 already"));
  g_assert_false (g_file_test (out, G_FILE_TEST_EXISTS));
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (run_quantize (q8, out, "q8_0", &err), ==, 0);
  g_autoptr (GError) error = NULL;
  g_autoptr (OlGguf) g = ol_gguf_open (out, &error);
  g_assert_no_error (error);
  g_assert_cmpint (ol_gguf_find_tensor (g, "blk.0.attn_q.weight")->type, ==, Q8);
  g_unlink (q8);
  g_unlink (out);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  workdir = g_dir_make_tmp ("test-quantize-XXXXXX", NULL);
  g_test_add_func ("/quantize/f16", test_f16);
  g_test_add_func ("/quantize/q8_0", test_q8_0);
  g_test_add_func ("/quantize/q4_0", test_q4_0);
  g_test_add_func ("/quantize/failures", test_failures);
  int r = g_test_run ();
  g_rmdir (workdir);
  g_free (workdir);
  return r;
}
