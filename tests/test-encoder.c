/* Encoder path against the PyTorch reference's goldens on the tiny model, every modality, and its input errors. */
#include "support/ref.h"

#include <math.h>
#include <string.h>

/* Tolerances (F32 weights): an element may differ from the reference by REL times its own magnitude plus
 * REL times the RMS of its row; a row sum by REL times the bound sqrt(W · Σx²) on Σ|x|, a row's Σx² by
 * 2·REL relative. Float32 with other summation orders stays far inside this on the tiny model. */
#define REL 1e-4f

static const char *tiny_path;
static OlModel *model;
static OlEncoder *enc;

/* The goldens' input generator (make_encoder_goldens.py lcg_uniform): top 24 bits of a 64-bit LCG. */
static void
lcg_uniform (guint64 seed, float *out, gsize n)
{
  guint64 s = seed;
  for (gsize i = 0; i < n; i++) {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    out[i] = (float) ((double) (s >> 40) / (double) (1 << 24));
  }
}

/* Uniform [-2, 2); points: xyz in [-1, 1), colours k/15 for k < 16. Seed = modality index + 1. */
static float *
make_input (OlModality m, gsize *n_out)
{
  const OlModalityInfo *mi = &ol_model_get_info (model)->modality[m];
  gsize n = 1;
  for (guint d = 0; d < mi->n_input_dims; d++)
    n *= mi->input_shape[d];
  float *x = g_new (float, n);
  lcg_uniform (m + 1, x, n);
  for (gsize i = 0; i < n; i++) {
    if (m != OL_MODALITY_POINT)
      x[i] = (x[i] - 0.5f) * 4.0f;
    else if (i % 6 < 3)
      x[i] = (x[i] - 0.5f) * 2.0f;
    else
      x[i] = floorf (x[i] * 16.0f) / 15.0f;
  }
  *n_out = n;
  return x;
}

static float *
read_golden (const char *name, guint want_dims, gint64 *shape)
{
  g_autofree char *path = g_build_filename (ENCODER_DATA, name, NULL);
  g_autoptr (GError) error = NULL;
  guint n_dims;
  float *x = ol_npy_read (path, &n_dims, shape, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (n_dims, ==, want_dims);
  return x;
}

static float
row_rms (const float *x, gint64 n)
{
  double s = 0;
  for (gint64 i = 0; i < n; i++)
    s += (double) x[i] * x[i];
  return (float) sqrt (s / n);
}

/* Compares an engine matrix [rows, W] with the golden's sampled rows and per-row sums. */
static void
compare_matrix (const char *what, const char *mn, const char *stage, const float *got, gint64 rows, gint64 W)
{
  g_autofree char *rows_name = g_strdup_printf ("%s.%s.rows.npy", mn, stage);
  g_autofree char *stats_name = g_strdup_printf ("%s.%s.stats.npy", mn, stage);
  gint64 rshape[OL_NPY_MAX_DIMS], sshape[OL_NPY_MAX_DIMS];
  g_autofree float *sampled = read_golden (rows_name, 2, rshape);
  g_autofree float *stats = read_golden (stats_name, 2, sshape);
  g_assert_cmpint (sshape[0], ==, rows);
  g_assert_cmpint (rshape[1], ==, W);

  gint64 step = (rows + 15) / 16;
  g_autofree float *tol = g_new (float, W);
  for (gint64 r = 0; r < rshape[0]; r++) {
    const float *want = sampled + r * W;
    float rms = row_rms (want, W);
    for (gint64 c = 0; c < W; c++)
      tol[c] = REL * (fabsf (want[c]) + rms);
    g_autofree char *label = g_strdup_printf ("%s row %" G_GINT64_FORMAT, what, r * step);
    ref_assert_close (label, got + r * step * W, want, W, tol, 0);
  }
  for (gint64 r = 0; r < rows; r++) {
    double sum = 0, sq = 0;
    for (gint64 c = 0; c < W; c++) {
      sum += got[r * W + c];
      sq += (double) got[r * W + c] * got[r * W + c];
    }
    double want_sum = stats[2 * r], want_sq = stats[2 * r + 1];
    if (fabs (sum - want_sum) > REL * sqrt (W * want_sq) + 1e-6 || fabs (sq - want_sq) > 2 * REL * want_sq + 1e-6)
      g_error ("%s row %" G_GINT64_FORMAT ": sum %.7g, squares %.7g; reference %.7g, %.7g", what, r, sum, sq,
               want_sum, want_sq);
  }
}

/* Every stage of one modality against the goldens (named with the engine's modality names). */
static void
test_modality (gconstpointer data)
{
  OlModality m = GPOINTER_TO_INT (data);
  const OlModelInfo *in = ol_model_get_info (model);
  const OlModalityInfo *mi = &in->modality[m];
  const char *mn = ol_modality_name (m);
  g_autoptr (GError) error = NULL;
  gint64 W = in->clip_dim, R = in->n_resample, E = in->upm_experts, D = in->dim;

  gsize n;
  g_autofree float *input = make_input (m, &n);
  gint64 sshape[OL_NPY_MAX_DIMS];
  g_autofree float *sums = read_golden ("input-sums.npy", 1, sshape);
  double sum = 0;
  for (gsize i = 0; i < n; i++)
    sum += input[i];
  g_assert_cmpfloat_with_epsilon (sum, sums[m], 1e-6 * fabs (sums[m]) + 1e-3);

  gsize n_tokens = ol_encoder_tokens_size (enc, m);
  g_assert_cmpuint (n_tokens, ==, (gsize) W * mi->tokens * mi->frames);
  g_autofree float *tokens = g_new (float, n_tokens);
  g_assert_true (ol_encoder_tokenize (enc, m, input, tokens, &error));
  g_assert_no_error (error);
  g_autofree char *what = g_strdup_printf ("%s tokens", mn);
  compare_matrix (what, mn, "tokens", tokens, (gint64) mi->tokens * mi->frames, W);

  /* Tokenizer, CLIP and UPM in one submission. */
  gsize n_emb = ol_encoder_embeddings_size (enc);
  g_assert_cmpuint (n_emb, ==, (gsize) D * (R + 2));
  g_autofree float *block = g_new (float, n_emb);
  gint64 in_shape[4];
  for (guint d = 0; d < mi->n_input_dims; d++)
    in_shape[d] = mi->input_shape[d];
  g_assert_true (ol_encoder_run (enc, m, input, mi->n_input_dims, in_shape, block, &error));
  g_assert_no_error (error);

  g_autofree float *clip = g_new (float, W * (mi->tokens + 1));
  g_assert_true (ol_encoder_get_clip_output (enc, clip, &error));
  g_autofree char *cwhat = g_strdup_printf ("%s CLIP output", mn);
  compare_matrix (cwhat, mn, "clip", clip, mi->tokens + 1, W);

  gint64 shape[OL_NPY_MAX_DIMS];
  g_autofree char *rname = g_strdup_printf ("%s.routing.npy", mn);
  g_autofree float *routing = read_golden (rname, 2, shape);
  g_assert_cmpint (shape[0], ==, R);
  g_assert_cmpint (shape[1], ==, E);
  g_autofree char *rwhat = g_strdup_printf ("%s routing", mn);
  ref_assert_close (rwhat, ol_encoder_get_routing (enc, m), routing, R * E, NULL, 1e-6f);

  g_autofree char *bname = g_strdup_printf ("%s.block.npy", mn);
  g_autofree float *want = read_golden (bname, 2, shape);
  g_assert_cmpint (shape[0], ==, R + 2);
  g_assert_cmpint (shape[1], ==, D);
  g_autofree float *tol = g_new (float, n_emb);
  for (gint64 r = 0; r < R + 2; r++) {
    float rms = row_rms (want + r * D, D);
    for (gint64 c = 0; c < D; c++)
      tol[r * D + c] = REL * (fabsf (want[r * D + c]) + rms);
  }
  g_autofree char *bwhat = g_strdup_printf ("%s block", mn);
  ref_assert_close (bwhat, block, want, n_emb, tol, 0);

  /* Encoding the tokens read back computes the same; checked where it is cheap (the CI budget), the
   * recordings differing only in where the tokens come from. */
  if (m == OL_MODALITY_IMAGE || m == OL_MODALITY_FMRI || m == OL_MODALITY_IMU) {
    g_autofree float *block2 = g_new (float, n_emb);
    g_assert_true (ol_encoder_encode (enc, m, tokens, block2, &error));
    g_assert_no_error (error);
    g_autofree char *twhat = g_strdup_printf ("%s block from its tokens", mn);
    ref_assert_close (twhat, block2, block, n_emb, NULL, 1e-6f);
  }
}

static void
expect_error (GError **error, int code, const char *fragment)
{
  g_assert_error (*error, OL_ERROR, code);
  if (strstr ((*error)->message, fragment) == NULL)
    g_error ("error '%s' does not mention '%s'", (*error)->message, fragment);
  g_clear_error (error);
}

static void
test_errors (void)
{
  g_autoptr (GError) error = NULL;
  const OlModelInfo *in = ol_model_get_info (model);
  gsize n;
  g_autofree float *audio = make_input (OL_MODALITY_AUDIO, &n);
  g_autofree float *tokens = g_new (float, ol_encoder_tokens_size (enc, OL_MODALITY_AUDIO));
  g_autofree float *block = g_new (float, ol_encoder_embeddings_size (enc));

  audio[1234] = NAN;
  g_assert_false (ol_encoder_tokenize (enc, OL_MODALITY_AUDIO, audio, tokens, &error));
  expect_error (&error, OL_ERROR_INVALID_ARGUMENT, "audio input: element 1234 is NaN");
  audio[1234] = INFINITY;
  gint64 shape[3] = { 1, 128, 1024 };
  g_assert_false (ol_encoder_run (enc, OL_MODALITY_AUDIO, audio, 3, shape, block, &error));
  expect_error (&error, OL_ERROR_INVALID_ARGUMENT, "infinite");
  audio[1234] = 0;

  memset (tokens, 0, ol_encoder_tokens_size (enc, OL_MODALITY_AUDIO) * sizeof (float));
  tokens[7] = NAN;
  g_assert_false (ol_encoder_encode (enc, OL_MODALITY_AUDIO, tokens, block, &error));
  expect_error (&error, OL_ERROR_INVALID_ARGUMENT, "audio tokens: element 7");

  gint64 wrong[3] = { 1, 128, 1000 };
  g_assert_false (ol_encoder_run (enc, OL_MODALITY_AUDIO, audio, 3, wrong, block, &error));
  expect_error (&error, OL_ERROR_INVALID_ARGUMENT, "audio input has shape [1, 128, 1000], the model takes [1, 128, 1024]");
  gint64 imu5[2] = { 5, 400 };
  g_assert_false (ol_encoder_check_input_shape (enc, OL_MODALITY_IMU, 2, imu5, &error));
  expect_error (&error, OL_ERROR_INVALID_ARGUMENT, "imu input has shape [5, 400]");
  gint64 few_points[2] = { 100, 6 };
  g_assert_false (ol_encoder_check_input_shape (enc, OL_MODALITY_POINT, 2, few_points, &error));
  expect_error (&error, OL_ERROR_INVALID_ARGUMENT, "point input has shape [100, 6], the model takes [8192, 6]");
  gint64 voxels = in->modality[OL_MODALITY_FMRI].input_shape[1];
  gint64 fmri_short = voxels - 1, fmri_row[2] = { 1, voxels };
  g_assert_false (ol_encoder_check_input_shape (enc, OL_MODALITY_FMRI, 1, &fmri_short, &error));
  expect_error (&error, OL_ERROR_INVALID_ARGUMENT, "fmri input has shape [15723]");
  g_assert_true (ol_encoder_check_input_shape (enc, OL_MODALITY_FMRI, 1, &voxels, &error));
  g_assert_true (ol_encoder_check_input_shape (enc, OL_MODALITY_FMRI, 2, fmri_row, &error));
  g_assert_no_error (error);
  gint64 video14[4] = { 14, 3, 224, 224 };
  g_assert_false (ol_encoder_check_input_shape (enc, OL_MODALITY_VIDEO, 4, video14, &error));
  expect_error (&error, OL_ERROR_INVALID_ARGUMENT, "video input has shape [14, 3, 224, 224]");
}

/* A fresh encoder has no CLIP output to give yet, but its routing weights exist from creation. */
static void
test_fresh_encoder (void)
{
  g_autoptr (GError) error = NULL;
  OlEncoder *e = ol_encoder_new (model, &error);
  g_assert_no_error (error);
  g_autofree float *clip = g_new (float, 1);
  g_assert_false (ol_encoder_get_clip_output (e, clip, &error));
  expect_error (&error, OL_ERROR_INVALID_ARGUMENT, "no encode has run");
  g_assert_nonnull (ol_encoder_get_routing (e, OL_MODALITY_IMU));
  ol_encoder_free (e);
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
  g_autoptr (GError) error = NULL;
  model = ol_model_new (ref_device (), tiny_path, &error);
  g_assert_no_error (error);
  enc = ol_encoder_new (model, &error);
  g_assert_no_error (error);
  for (int m = 0; m < OL_N_MODALITIES; m++) {
    g_autofree char *path = g_strdup_printf ("/encoder/%s", ol_modality_name (m));
    g_test_add_data_func (path, GINT_TO_POINTER (m), test_modality);
  }
  g_test_add_func ("/encoder/errors", test_errors);
  g_test_add_func ("/encoder/fresh", test_fresh_encoder);
  int ret = g_test_run ();
  ol_encoder_free (enc);
  ol_model_free (model);
  ref_device_release ();
  return ret;
}
