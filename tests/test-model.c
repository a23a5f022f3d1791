/* Model loading: hyperparameters and modalities of the tiny test model, and clean errors for bad files. */
#include "support/ref.h"

#include <glib/gstdio.h>
#include <string.h>

static const char *tiny_path;

static void
test_tiny_info (void)
{
  g_autoptr (GError) error = NULL;
  OlModel *model = ol_model_new (ref_device (), tiny_path, &error);
  g_assert_no_error (error);
  const OlModelInfo *in = ol_model_get_info (model);
  g_assert_cmpstr (in->architecture, ==, "onellm");
  g_assert_cmpuint (in->n_vocab, ==, 32000);
  g_assert_cmpuint (in->dim, ==, 128);
  g_assert_cmpuint (in->n_layers, ==, 2);
  g_assert_cmpuint (in->n_heads, ==, 4);
  g_assert_cmpuint (in->head_dim, ==, 32);
  g_assert_true (in->has_encoder);
  g_assert_cmpuint (in->clip_dim, ==, 64);
  g_assert_cmpuint (in->clip_heads, ==, 2);
  g_assert_cmpuint (in->upm_experts, ==, 3);
  g_assert_cmpuint (in->n_resample, ==, 30);
  g_assert_nonnull (strstr (in->prompt_template, "{question}"));

  static const struct { OlModality m; guint frames, tokens, n_dims, shape[4]; } want[] = {
    { OL_MODALITY_IMAGE, 1, 256, 3, { 3, 224, 224 } },
    { OL_MODALITY_VIDEO, 15, 256, 4, { 15, 3, 224, 224 } },
    { OL_MODALITY_AUDIO, 1, 1212, 3, { 1, 128, 1024 } },
    { OL_MODALITY_POINT, 1, 1024, 2, { 8192, 6 } },
    { OL_MODALITY_DEPTH, 2, 256, 4, { 2, 3, 224, 224 } },
    { OL_MODALITY_NORMAL, 2, 256, 4, { 2, 3, 224, 224 } },
    { OL_MODALITY_FMRI, 1, 8, 2, { 1, 15724 } },
    { OL_MODALITY_IMU, 1, 391, 2, { 6, 400 } },
  };
  for (guint i = 0; i < G_N_ELEMENTS (want); i++) {
    const OlModalityInfo *mi = &in->modality[want[i].m];
    g_assert_true (ol_model_has_modality (model, want[i].m));
    g_assert_cmpuint (mi->frames, ==, want[i].frames);
    g_assert_cmpuint (mi->tokens, ==, want[i].tokens);
    g_assert_cmpuint (mi->n_input_dims, ==, want[i].n_dims);
    for (guint d = 0; d < want[i].n_dims; d++)
      g_assert_cmpuint (mi->input_shape[d], ==, want[i].shape[d]);
    g_assert_nonnull (mi->default_prompt);
  }
  g_assert_cmpuint (in->modality[OL_MODALITY_AUDIO].kernel[0], ==, 16);
  g_assert_cmpuint (in->modality[OL_MODALITY_AUDIO].stride, ==, 10);
  g_assert_cmpuint (in->modality[OL_MODALITY_POINT].group_size, ==, 32);

  /* vectors and embeddings are F32 on the device; matrices keep the file's type */
  g_assert_cmpint (ol_model_get_tensor (model, "clip.pos_embd")->type, ==, OL_TYPE_F32);
  g_assert_cmpint (ol_model_get_tensor (model, "blk.0.attn_q.weight")->ne[1], ==, 128);
  g_assert_null (ol_model_get_tensor (model, "no.such.tensor"));
  OlTokenizer *tok = ol_model_get_tokenizer (model);
  g_assert_cmpint (ol_tokenizer_bos (tok), ==, 1);
  ol_model_free (model);
}

static void
test_modality_names (void)
{
  OlModality m;
  g_assert_true (ol_modality_from_name ("rgbd", &m));
  g_assert_cmpint (m, ==, OL_MODALITY_DEPTH);
  g_assert_true (ol_modality_from_name ("normal", &m));
  g_assert_cmpint (m, ==, OL_MODALITY_NORMAL);
  g_assert_false (ol_modality_from_name ("smell", &m));
  for (int i = 0; i < OL_N_MODALITIES; i++) {
    g_assert_true (ol_modality_from_name (ol_modality_name (i), &m));
    g_assert_cmpint (m, ==, i);
  }
}

/* Copies the tiny model leaving out one tensor, or with one metadata key replaced. */
static char *
write_variant (const char *drop_tensor, const char *key, const char *string_value)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (OlGguf) src = ol_gguf_open (tiny_path, &error);
  g_assert_no_error (error);
  g_autoptr (OlGgufWriter) w = ol_gguf_writer_new ();
  for (gsize i = 0; i < ol_gguf_n_keys (src); i++) {
    OlGgufValue v;
    const char *k = ol_gguf_key (src, i);
    g_assert_true (ol_gguf_get_value (src, k, &v, NULL));
    if (key && strcmp (k, key) == 0)
      ol_gguf_writer_set_string (w, k, string_value);
    else
      ol_gguf_writer_set_value (w, k, &v);
  }
  for (gsize i = 0; i < ol_gguf_n_tensors (src); i++) {
    const OlGgufTensor *t = ol_gguf_tensor (src, i);
    if (drop_tensor && strcmp (t->name, drop_tensor) == 0)
      continue;
    g_assert_true (ol_gguf_writer_add_tensor (w, t->name, t->type, t->n_dims, t->ne, t->data, &error));
  }
  char *path = g_build_filename (g_get_tmp_dir (), "onellm-test-model-XXXXXX.gguf", NULL);
  int fd = g_mkstemp (path);
  g_assert_cmpint (fd, >=, 0);
  close (fd);
  g_assert_true (ol_gguf_writer_write (w, path, &error));
  g_assert_no_error (error);
  return path;
}

static void
expect_load_error (const char *path, int code, const char *fragment)
{
  g_autoptr (GError) error = NULL;
  OlModel *model = ol_model_new (ref_device (), path, &error);
  g_assert_null (model);
  g_assert_error (error, OL_ERROR, code);
  if (strstr (error->message, fragment) == NULL)
    g_error ("'%s' does not name '%s'", error->message, fragment);
}

static void
test_bad_files (void)
{
  expect_load_error ("/nonexistent/model.gguf", OL_ERROR_IO, "/nonexistent/model.gguf");

  g_autofree char *missing = write_variant ("blk.1.ffn_down.weight", NULL, NULL);
  expect_load_error (missing, OL_ERROR_CORRUPT_FILE, "blk.1.ffn_down.weight");
  g_unlink (missing);

  g_autofree char *no_pos = write_variant ("mod.imu.pos_embd", NULL, NULL);
  expect_load_error (no_pos, OL_ERROR_CORRUPT_FILE, "mod.imu.pos_embd");
  g_unlink (no_pos);

  g_autofree char *arch = write_variant (NULL, "general.architecture", "gpt2");
  expect_load_error (arch, OL_ERROR_UNSUPPORTED, "gpt2");
  g_unlink (arch);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  tiny_path = g_getenv ("ONELLM_TINY_MODEL");
  if (tiny_path == NULL) {
    g_printerr ("ONELLM_TINY_MODEL is not set\n");
    return 1;
  }
  g_test_add_func ("/model/tiny-info", test_tiny_info);
  g_test_add_func ("/model/modality-names", test_modality_names);
  g_test_add_func ("/model/bad-files", test_bad_files);
  int ret = g_test_run ();
  ref_device_release ();
  return ret;
}
