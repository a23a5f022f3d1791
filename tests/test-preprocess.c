/* Preprocessing of every modality and .npy I/O against the reference's goldens; errors of bad input. */
#include "support/ref.h"

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

static float *
load (const char *name, guint *nd, gint64 *shape)
{
  g_autofree char *file = g_strconcat (name, ".npy", NULL);
  g_autofree char *path = g_build_filename (PREPROCESS_DATA, file, NULL);
  g_autoptr (GError) error = NULL;
  guint n_dims;
  gint64 dims[OL_NPY_MAX_DIMS];
  float *x = ol_npy_read (path, nd ? nd : &n_dims, shape ? shape : dims, &error);
  g_assert_no_error (error);
  return x;
}

/* ref_assert_close, logging the largest difference so that the accuracy shows in the test log */
static void
assert_close (const char *what, const float *got, const float *want, gsize n, float tol)
{
  float err = 0;
  for (gsize i = 0; i < n; i++)
    err = MAX (err, fabsf (got[i] - want[i]));
  g_test_message ("%s: max |diff| %.3g over %" G_GSIZE_FORMAT " values", what, err, n);
  ref_assert_close (what, got, want, n, NULL, tol);
}

static double
now (void)
{
  return g_get_monotonic_time () / 1e6;
}

/* ---------------------------------------------------------------- npy */

static GBytes *
npy_bytes (guint version, const char *dict, const void *data, gsize size)
{
  GByteArray *b = g_byte_array_new ();
  gsize prefix = version == 1 ? 10 : 12;
  gsize len = strlen (dict);
  guint8 head[12] = { 0x93, 'N', 'U', 'M', 'P', 'Y', (guint8) version, 0 };
  for (gsize i = 0; i < prefix - 8; i++)
    head[8 + i] = (guint8) (len >> (8 * i));
  g_byte_array_append (b, head, prefix);
  g_byte_array_append (b, (const guint8 *) dict, len);
  g_byte_array_append (b, data, size);
  return g_byte_array_free_to_bytes (b);
}

static float *
parse (GBytes *bytes, guint *nd, gint64 *shape, GError **error)
{
  gsize size;
  const guint8 *p = g_bytes_get_data (bytes, &size);
  return ol_npy_parse (p, size, nd, shape, error);
}

static void
test_npy_roundtrip (void)
{
  g_autofree char *dir = g_dir_make_tmp ("onellm-npy-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "x.npy", NULL);
  float x[24];
  for (int i = 0; i < 24; i++)
    x[i] = i * 0.5f - 3;
  const gint64 shapes[][3] = { { 2, 3, 4 }, { 24 } };
  const guint dims[] = { 3, 1 };
  for (int c = 0; c < 2; c++) {
    g_autoptr (GError) error = NULL;
    g_assert_true (ol_npy_write (path, x, dims[c], shapes[c], &error));
    g_assert_no_error (error);
    guint nd;
    gint64 shape[OL_NPY_MAX_DIMS];
    g_autofree float *y = ol_npy_read (path, &nd, shape, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (nd, ==, dims[c]);
    for (guint d = 0; d < nd; d++)
      g_assert_cmpint (shape[d], ==, shapes[c][d]);
    g_assert_cmpmem (x, sizeof x, y, sizeof x);
    /* numpy aligns the data to 64 bytes */
    g_autofree char *contents = NULL;
    gsize len;
    g_assert_true (g_file_get_contents (path, &contents, &len, NULL));
    g_assert_cmpuint ((len - sizeof x) % 64, ==, 0);
  }
  g_remove (path);
  g_rmdir (dir);

  g_autoptr (GError) error = NULL;
  guint nd;
  gint64 shape[OL_NPY_MAX_DIMS];
  g_assert_null (ol_npy_read ("/nonexistent/x.npy", &nd, shape, &error));
  g_assert_error (error, OL_ERROR, OL_ERROR_IO);
}

static void
test_npy_types (void)
{
  guint nd;
  gint64 shape[OL_NPY_MAX_DIMS];
  /* every version, element type and Fortran order, parsed to the same 2x3 values */
  const float want[6] = { 1, -2, 3, 4, 5, -6 };
  const double f8[6] = { 1, -2, 3, 4, 5, -6 };
  const guint16 f2[6] = { 0x3c00, 0xc000, 0x4200, 0x4400, 0x4500, 0xc600 };
  const gint8 i1[6] = { 1, -2, 3, 4, 5, -6 };
  const gint16 i2[6] = { 1, -2, 3, 4, 5, -6 };
  const gint64 i8[6] = { 1, -2, 3, 4, 5, -6 };
  const double f8_fortran[6] = { 1, 4, -2, 5, 3, -6 };
  struct {
    guint version;
    const char *descr, *order;
    const void *data;
    gsize size;
  } cases[] = {
    { 1, "<f8", "False", f8, sizeof f8 }, { 2, "<f2", "False", f2, sizeof f2 },
    { 3, "|i1", "False", i1, sizeof i1 }, { 1, "<i2", "False", i2, sizeof i2 },
    { 1, "<i8", "False", i8, sizeof i8 }, { 1, "<f8", "True", f8_fortran, sizeof f8_fortran },
  };
  for (gsize c = 0; c < G_N_ELEMENTS (cases); c++) {
    g_autofree char *dict = g_strdup_printf ("{'descr': '%s', 'fortran_order': %s, 'shape': (2, 3), }\n",
                                             cases[c].descr, cases[c].order);
    g_autoptr (GBytes) b = npy_bytes (cases[c].version, dict, cases[c].data, cases[c].size);
    g_autoptr (GError) error = NULL;
    g_autofree float *y = parse (b, &nd, shape, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (nd, ==, 2);
    g_assert_cmpint (shape[0], ==, 2);
    g_assert_cmpint (shape[1], ==, 3);
    g_assert_cmpmem (y, sizeof want, want, sizeof want);
  }
  const guint8 u1[3] = { 0, 128, 255 }, b1[3] = { 0, 1, 1 };
  g_autoptr (GBytes) bu = npy_bytes (1, "{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }", u1, 3);
  g_autofree float *yu = parse (bu, &nd, shape, NULL);
  g_assert_true (yu && nd == 1 && shape[0] == 3 && yu[0] == 0 && yu[1] == 128 && yu[2] == 255);
  const char *dict_b1 = "{\"descr\": \"|b1\", \"shape\": (3,), \"fortran_order\": False}";
  g_autoptr (GBytes) bb = npy_bytes (1, dict_b1, b1, 3);
  g_autofree float *yb = parse (bb, &nd, shape, NULL);
  g_assert_true (yb && yb[0] == 0 && yb[1] == 1 && yb[2] == 1);
  g_autoptr (GBytes) bs = npy_bytes (1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", want, 4);
  g_autofree float *ys = parse (bs, &nd, shape, NULL);
  g_assert_true (ys && nd == 0 && ys[0] == 1);
}

static void
test_npy_corrupt (void)
{
  const float data[4] = { 0 };
  struct {
    const char *dict;
    gsize size;
    int code;
  } cases[] = {
    { "{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }", 16, OL_ERROR_CORRUPT_FILE },
    { "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", 16, OL_ERROR_CORRUPT_FILE },
    { "{'descr': '<f4', 'fortran_order': False, 'shape': (4, }", 16, OL_ERROR_CORRUPT_FILE },
    { "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (4,), }", 16, OL_ERROR_CORRUPT_FILE },
    { "{'descr': '<f4', 'shape': (4,), }", 16, OL_ERROR_CORRUPT_FILE },
    { "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999, 99999999999), }", 16,
      OL_ERROR_CORRUPT_FILE },
    { "{'descr': '>f4', 'fortran_order': False, 'shape': (4,), }", 16, OL_ERROR_UNSUPPORTED },
    { "{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", 16, OL_ERROR_UNSUPPORTED },
    { "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", 16, OL_ERROR_CORRUPT_FILE },
    { "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), 'extra': 1}", 16, OL_ERROR_CORRUPT_FILE },
  };
  guint nd;
  gint64 shape[OL_NPY_MAX_DIMS];
  for (gsize c = 0; c < G_N_ELEMENTS (cases); c++) {
    g_autoptr (GBytes) b = npy_bytes (1, cases[c].dict, data, cases[c].size);
    g_autoptr (GError) error = NULL;
    g_assert_null (parse (b, &nd, shape, &error));
    g_assert_error (error, OL_ERROR, cases[c].code);
  }
  /* magic, truncated header, header length past the end, unknown version */
  const guint8 bad[][12] = { { 'x', 'N', 'U', 'M', 'P', 'Y', 1, 0, 0, 0 },
                             { 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 200, 0 },
                             { 0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0, 0, 0, 0, 1 },
                             { 0x93, 'N', 'U', 'M', 'P', 'Y', 9, 0, 0, 0 } };
  for (gsize c = 0; c < G_N_ELEMENTS (bad); c++) {
    g_autoptr (GError) error = NULL;
    g_assert_null (ol_npy_parse (bad[c], 12, &nd, shape, &error));
    g_assert_nonnull (error);
  }
  g_autoptr (GError) error = NULL;
  g_assert_null (ol_npy_parse (bad[1], 5, &nd, shape, &error));
  g_assert_error (error, OL_ERROR, OL_ERROR_CORRUPT_FILE);
}

/* ---------------------------------------------------------------- images */

/* The expected tensor of a golden uint8 crop: ToTensor + Normalize in float32. */
static float *
normalized (const float *crop, int size)
{
  gsize plane = (gsize) size * size;
  float *out = g_new (float, 3 * plane);
  const float mean[3] = { 0.48145466f, 0.4578275f, 0.40821073f };
  const float std[3] = { 0.26862954f, 0.26130258f, 0.27577711f };
  for (gsize i = 0; i < plane; i++)
    for (int c = 0; c < 3; c++)
      out[c * plane + i] = (crop[i * 3 + c] / 255.0f - mean[c]) / std[c];
  return out;
}

/* Repacks [h, w, channels] golden pixels into a format with a padded stride. */
static guint8 *
pack (const float *px, int w, int h, int channels, OlPixelFormat format, OlImage *img)
{
  int bpp = ol_pixel_format_bytes (format);
  int stride = w * bpp + 7;
  guint8 *data = g_malloc0 ((gsize) stride * h);
  int r = 0, g = 1, b = 2;
  switch (format) {
  case OL_PIXEL_BGR: case OL_PIXEL_BGRA: case OL_PIXEL_BGRX:
    r = 2, b = 0;
    break;
  case OL_PIXEL_ARGB: case OL_PIXEL_XRGB:
    r = 1, g = 2, b = 3;
    break;
  case OL_PIXEL_ABGR: case OL_PIXEL_XBGR:
    r = 3, g = 2, b = 1;
    break;
  default:
    break;
  }
  for (int y = 0; y < h; y++) {
    for (int x = 0; x < w; x++) {
      const float *s = px + ((gsize) y * w + x) * channels;
      guint8 *d = data + (gsize) y * stride + (gsize) x * bpp;
      if (format == OL_PIXEL_GRAY8) {
        d[0] = (guint8) s[0];
        continue;
      }
      for (int k = 0; k < bpp; k++)
        d[k] = 0x5a;   /* alpha / padding: must be ignored */
      d[r] = (guint8) s[0];
      d[g] = (guint8) s[channels > 1 ? 1 : 0];
      d[b] = (guint8) s[channels > 1 ? 2 : 0];
    }
  }
  *img = (OlImage) { data, w, h, stride, format };
  return data;
}

static void
check_image (const char *name, gboolean gray)
{
  guint nd;
  gint64 shape[OL_NPY_MAX_DIMS];
  g_autofree char *in_name = g_strdup_printf ("image_%s_in", name);
  g_autofree char *crop_name = g_strdup_printf ("image_%s_crop", name);
  g_autofree float *px = load (in_name, &nd, shape);
  g_autofree float *crop = load (crop_name, NULL, NULL);
  g_autofree float *want = normalized (crop, OL_IMAGE_SIZE);
  int h = (int) shape[0], w = (int) shape[1];
  const OlPixelFormat rgb_formats[] = { OL_PIXEL_RGB, OL_PIXEL_BGRX, OL_PIXEL_RGBA,
                                        OL_PIXEL_XBGR, OL_PIXEL_BGR,  OL_PIXEL_ARGB };
  const OlPixelFormat gray_formats[] = { OL_PIXEL_GRAY8, OL_PIXEL_RGBX };
  gsize n_formats = gray ? G_N_ELEMENTS (gray_formats) : G_N_ELEMENTS (rgb_formats);
  g_autofree float *out = g_new (float, 3 * OL_IMAGE_SIZE * OL_IMAGE_SIZE);
  for (gsize f = 0; f < n_formats; f++) {
    OlImage img;
    g_autofree guint8 *data = pack (px, w, h, gray ? 1 : 3, gray ? gray_formats[f] : rgb_formats[f], &img);
    g_autoptr (GError) error = NULL;
    double t0 = now ();
    g_assert_true (ol_preprocess_image (&img, OL_IMAGE_SIZE, out, &error));
    g_assert_no_error (error);
    if (f == 0)
      g_test_message ("image %s %dx%d: %.1f ms", name, w, h, (now () - t0) * 1e3);
    /* Pillow's fixed-point resize reproduced exactly: no tolerance */
    g_autofree char *what = g_strdup_printf ("image %s format %d", name, (int) img.format);
    assert_close (what, out, want, 3 * OL_IMAGE_SIZE * OL_IMAGE_SIZE, 0);
  }
}

static void
test_image (void)
{
  check_image ("landscape", FALSE);
  check_image ("portrait", FALSE);
  check_image ("small", FALSE);
  check_image ("wide_gray", TRUE);
}

static void
test_image_pair (void)
{
  guint nd;
  gint64 s_rgb[OL_NPY_MAX_DIMS], s_map[OL_NPY_MAX_DIMS];
  g_autofree float *rgb_px = load ("image_landscape_in", &nd, s_rgb);
  g_autofree float *map_px = load ("depth_in", &nd, s_map);
  g_autofree float *rgb_crop = load ("image_landscape_crop", NULL, NULL);
  g_autofree float *map_crop = load ("depth_crop", NULL, NULL);
  g_autofree float *want_rgb = normalized (rgb_crop, OL_IMAGE_SIZE);
  g_autofree float *want_map = normalized (map_crop, OL_IMAGE_SIZE);
  OlImage rgb, map;
  g_autofree guint8 *d1 = pack (rgb_px, (int) s_rgb[1], (int) s_rgb[0], 3, OL_PIXEL_RGB, &rgb);
  g_autofree guint8 *d2 = pack (map_px, (int) s_map[1], (int) s_map[0], 1, OL_PIXEL_GRAY8, &map);
  gsize plane3 = 3 * OL_IMAGE_SIZE * OL_IMAGE_SIZE;
  g_autofree float *out = g_new (float, 2 * plane3);
  g_autoptr (GError) error = NULL;
  g_assert_true (ol_preprocess_image_pair (&rgb, &map, OL_IMAGE_SIZE, out, &error));
  g_assert_no_error (error);
  assert_close ("depth pair: RGB slot", out, want_rgb, plane3, 0);
  assert_close ("depth pair: map slot", out + plane3, want_map, plane3, 0);

  /* a map alone fills both slots with its own image transform */
  g_autofree float *alone = g_new (float, plane3);
  g_assert_true (ol_preprocess_image (&map, OL_IMAGE_SIZE, alone, NULL));
  g_assert_true (ol_preprocess_image_pair (NULL, &map, OL_IMAGE_SIZE, out, &error));
  assert_close ("map only: slot 0", out, alone, plane3, 0);
  assert_close ("map only: slot 1", out + plane3, alone, plane3, 0);
}

static void
test_image_errors (void)
{
  guint8 px[12] = { 0 };
  float out[3 * 4 * 4];
  struct {
    OlImage img;
    int size;
  } cases[] = {
    { { px, 0, 2, 6, OL_PIXEL_RGB }, 4 },  { { px, 2, 2, 5, OL_PIXEL_RGB }, 4 },
    { { NULL, 2, 2, 6, OL_PIXEL_RGB }, 4 }, { { px, 2, 2, 6, (OlPixelFormat) 99 }, 4 },
    { { px, 2, 2, 6, OL_PIXEL_RGB }, 0 },  { { px, 40000, 1, 120000, OL_PIXEL_RGB }, 4 },
  };
  for (gsize c = 0; c < G_N_ELEMENTS (cases); c++) {
    g_autoptr (GError) error = NULL;
    g_assert_false (ol_preprocess_image (&cases[c].img, cases[c].size, out, &error));
    g_assert_nonnull (error);
    g_assert_true (g_str_has_prefix (error->message, "image"));
  }
  OlPixelFormat f;
  g_assert_true (ol_pixel_format_from_name ("BGRx", &f) && f == OL_PIXEL_BGRX);
  g_assert_true (ol_pixel_format_from_name ("GRAY8", &f) && f == OL_PIXEL_GRAY8);
  g_assert_false (ol_pixel_format_from_name ("I420", &f));
  /* a 1x1 image upscales to a uniform crop */
  OlImage one = { px, 1, 1, 3, OL_PIXEL_RGB };
  g_autoptr (GError) error = NULL;
  g_assert_true (ol_preprocess_image (&one, 4, out, &error));
  g_assert_cmpfloat (out[0], ==, (0 / 255.0f - 0.48145466f) / 0.26862954f);
}

/* ---------------------------------------------------------------- video */

static void
test_video_indices (void)
{
  gint64 cs[OL_NPY_MAX_DIMS], ws[OL_NPY_MAX_DIMS];
  guint nd;
  g_autofree float *cases = load ("video_clip_cases", &nd, cs);
  g_autofree float *want = load ("video_clip_frames", NULL, NULL);
  for (gint64 c = 0; c < cs[0]; c++) {
    gint64 idx[OL_VIDEO_CLIPS];
    g_autoptr (GError) error = NULL;
    double fps = (double) cases[c * 3 + 1] / cases[c * 3 + 2];
    g_assert_true (ol_video_clip_frames ((gint64) cases[c * 3], fps, OL_VIDEO_CLIPS, idx, &error));
    g_assert_no_error (error);
    for (int i = 0; i < OL_VIDEO_CLIPS; i++)
      g_assert_cmpint (idx[i], ==, (gint64) want[c * OL_VIDEO_CLIPS + i]);
  }
  g_autofree float *wc = load ("video_window_cases", &nd, ws);
  g_autofree float *wi = load ("video_window_frames", NULL, NULL);
  gsize k = 0;
  for (gint64 c = 0; c < ws[0]; c++) {
    int t = (int) wc[c * 2 + 1];
    gint64 idx[16];
    g_assert_true (ol_video_window_frames ((gint64) wc[c * 2], t, idx, NULL));
    for (int i = 0; i < t; i++)
      g_assert_cmpint (idx[i], ==, (gint64) wi[k++]);
  }
  gint64 idx[5];
  g_autoptr (GError) error = NULL;
  g_assert_false (ol_video_clip_frames (0, 30, 5, idx, &error));
  g_assert_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (ol_video_clip_frames (100, NAN, 5, idx, &error));
  g_assert_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (ol_video_window_frames (10, 0, idx, &error));
  g_assert_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT);
}

static void
check_video_frame (const char *name)
{
  guint nd;
  gint64 shape[OL_NPY_MAX_DIMS];
  g_autofree char *in_name = g_strdup_printf ("video_%s_in", name);
  g_autofree char *out_name = g_strdup_printf ("video_%s_out_sub4", name);
  g_autofree float *px = load (in_name, &nd, shape);
  g_autofree float *want = load (out_name, NULL, NULL);
  OlImage img;
  g_autofree guint8 *data = pack (px, (int) shape[1], (int) shape[0], 3, OL_PIXEL_BGRA, &img);
  const int s = OL_IMAGE_SIZE, sub = (s + 3) / 4;
  gsize plane3 = 3 * (gsize) s * s;
  g_autofree float *out = g_new (float, 3 * plane3);
  g_autoptr (GError) error = NULL;
  g_assert_true (ol_preprocess_video_frame (&img, s, 3, out, &error));
  g_assert_no_error (error);
  g_autofree float *got = g_new (float, 9 * sub * sub);
  for (int k = 0; k < 9; k++)
    for (int y = 0; y < sub; y++)
      for (int x = 0; x < sub; x++)
        got[((gsize) k * sub + y) * sub + x] = out[((gsize) k * s + y * 4) * s + x * 4];
  /* float32 bilinear in the same order as the reference: at most an ulp or two apart */
  g_autofree char *what = g_strdup_printf ("video frame %s (every 4th row and column)", name);
  assert_close (what, got, want, 9 * (gsize) sub * sub, 1e-6f);

  /* one crop = the centre one of three */
  g_autofree float *centre = g_new (float, plane3);
  g_assert_true (ol_preprocess_video_frame (&img, s, 1, centre, &error));
  g_assert_cmpmem (centre, plane3 * sizeof (float), out + plane3, plane3 * sizeof (float));
  g_assert_false (ol_preprocess_video_frame (&img, s, 2, centre, &error));
  g_assert_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT);
}

static void
test_video_frames (void)
{
  check_video_frame ("land");
  check_video_frame ("port");
}

/* ---------------------------------------------------------------- audio */

static void
check_audio (const char *name, OlSampleFormat format, int channels, int rate)
{
  guint nd;
  gint64 shape[OL_NPY_MAX_DIMS], lshape[OL_NPY_MAX_DIMS];
  g_autofree char *in_name = g_strdup_printf ("audio_%s_in", name);
  g_autofree char *lm_name = g_strdup_printf ("audio_%s_logmel", name);
  g_autofree float *x = load (in_name, &nd, shape);
  g_autofree float *logmel = load (lm_name, &nd, lshape);
  gint64 n = shape[0];
  gsize total = (gsize) n * channels;
  g_autofree gint16 *s16 = g_new (gint16, total);
  for (gsize i = 0; i < total; i++)
    s16[i] = (gint16) x[i];
  const void *samples = format == OL_SAMPLE_S16 ? (const void *) s16 : (const void *) x;
  const int mels = OL_AUDIO_MEL_BINS, frames = OL_AUDIO_FRAMES;
  g_autofree float *out = g_new (float, (gsize) mels * frames);
  g_autoptr (GError) error = NULL;
  double t0 = now ();
  g_assert_true (ol_preprocess_audio (samples, format, channels, n, rate, mels, frames, out, &error));
  g_assert_no_error (error);
  g_test_message ("audio %s (%.2f s): %.1f ms", name, (double) n / rate, (now () - t0) * 1e3);
  gint64 used = lshape[0];
  g_autofree float *got = g_new (float, (gsize) used * mels);
  for (gint64 t = 0; t < used; t++)
    for (int m = 0; m < mels; m++)
      got[t * mels + m] = out[(gsize) m * frames + t] * 9.1379948f - 4.2677393f;
  g_autofree char *what = g_strdup_printf ("audio %s log-mel", name);
  assert_close (what, got, logmel, (gsize) used * mels, 1e-4f);
  const float pad = 4.2677393f / 9.1379948f;
  for (int m = 0; m < mels; m++)
    for (gint64 t = used; t < frames; t++)
      g_assert_cmpfloat (out[(gsize) m * frames + t], ==, pad);
}

static void
test_audio (void)
{
  check_audio ("44k_stereo", OL_SAMPLE_S16, 2, 44100);
  check_audio ("16k_mono", OL_SAMPLE_F32, 1, 16000);
}

/* Longer than 1024 frames: the first 1024 are kept. The signal has an 80-sample period, so the whole clip
 * and its first 1024 frames (164080 samples) have the same mean and the same frames. */
static void
test_audio_truncate (void)
{
  const gint64 head = 400 + 1023 * 160, n = head + 8000;
  g_autofree float *x = g_new (float, n);
  for (gint64 i = 0; i < n; i++)
    x[i] = (float) (0.3 * sin (2 * M_PI * (i % 80) / 80.0) + 0.1 * ((i % 80) < 7) + 0.05);
  const gsize sz = (gsize) OL_AUDIO_MEL_BINS * OL_AUDIO_FRAMES;
  g_autofree float *a = g_new (float, sz), *b = g_new (float, sz);
  g_assert_true (ol_preprocess_audio (x, OL_SAMPLE_F32, 1, n, 16000, OL_AUDIO_MEL_BINS, OL_AUDIO_FRAMES, a,
                                      NULL));
  g_assert_true (ol_preprocess_audio (x, OL_SAMPLE_F32, 1, head, 16000, OL_AUDIO_MEL_BINS, OL_AUDIO_FRAMES, b,
                                      NULL));
  assert_close ("audio truncated to 1024 frames", a, b, sz, 1e-6f);
}

/* Samples past full scale are heard at full scale: ticks whose first sample holds garbage (as audiotestsrc's
 * ticks leave it) give the frames of the same ticks starting at +-1, which differ from ticks starting at 0 (so
 * the comparison does see that sample). */
static void
test_audio_clip (void)
{
  const gint64 n = 16000;
  g_autofree float *x = g_new (float, n), *y = g_new (float, n);
  for (gint64 i = 0; i < n; i++)
    x[i] = y[i] = i % 4000 < 800 ? (float) (0.4 * sin (2 * M_PI * 660 * i / 16000.0)) : 0.0f;
  const gsize sz = (gsize) OL_AUDIO_MEL_BINS * OL_AUDIO_FRAMES;
  g_autofree float *a = g_new (float, sz), *b = g_new (float, sz);
  for (int k = 0; k < 4; k++) {
    x[k * 4000] = k % 2 ? -1.7e38f : 12.5f;
    y[k * 4000] = k % 2 ? -1.0f : 1.0f;
  }
  g_assert_true (ol_preprocess_audio (x, OL_SAMPLE_F32, 1, n, 16000, OL_AUDIO_MEL_BINS, OL_AUDIO_FRAMES, a,
                                      NULL));
  g_assert_true (ol_preprocess_audio (y, OL_SAMPLE_F32, 1, n, 16000, OL_AUDIO_MEL_BINS, OL_AUDIO_FRAMES, b,
                                      NULL));
  g_assert_cmpmem (a, sz * sizeof (float), b, sz * sizeof (float));
  for (int k = 0; k < 4; k++)
    y[k * 4000] = 0.0f;
  g_assert_true (ol_preprocess_audio (y, OL_SAMPLE_F32, 1, n, 16000, OL_AUDIO_MEL_BINS, OL_AUDIO_FRAMES, b,
                                      NULL));
  g_assert_cmpfloat (fabsf (a[0] - b[0]), >, 1e-3f);
}

static void
test_audio_errors (void)
{
  float x[2000] = { 0 };
  float out[128 * 4];
  g_autoptr (GError) error = NULL;
  /* 399 samples at 16 kHz: not one frame */
  g_assert_false (ol_preprocess_audio (x, OL_SAMPLE_F32, 1, 399, 16000, 128, 4, out, &error));
  g_assert_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "too short"));
  g_clear_error (&error);
  g_assert_false (ol_preprocess_audio (x, OL_SAMPLE_F32, 1, 0, 16000, 128, 4, out, &error));
  g_assert_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  /* at 44.1 kHz, 1100 samples resample to 400 (enough), 1099 to 399 */
  g_assert_cmpint (ol_resample_length (1100, 44100, 16000), ==, 400);
  g_assert_cmpint (ol_resample_length (1099, 44100, 16000), ==, 399);
  g_assert_true (ol_preprocess_audio (x, OL_SAMPLE_F32, 1, 1100, 44100, 128, 4, out, &error));
  g_assert_no_error (error);
  g_assert_false (ol_preprocess_audio (x, OL_SAMPLE_F32, 1, 1099, 44100, 128, 4, out, &error));
  g_assert_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  x[700] = NAN;
  g_assert_false (ol_preprocess_audio (x, OL_SAMPLE_F32, 2, 1000, 16000, 128, 4, out, &error));
  g_assert_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "NaN"));
  g_clear_error (&error);
  x[700] = INFINITY;
  g_assert_false (ol_preprocess_audio (x, OL_SAMPLE_F32, 1, 1000, 16000, 128, 4, out, &error));
  g_assert_nonnull (strstr (error->message, "infinite"));
  g_clear_error (&error);
  g_assert_false (ol_preprocess_audio (x, OL_SAMPLE_F32, 0, 1000, 16000, 128, 4, out, &error));
  g_assert_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT);
}

/* ---------------------------------------------------------------- point cloud */

static void
test_point_golden (void)
{
  guint nd;
  gint64 shape[OL_NPY_MAX_DIMS];
  g_autofree float *pc = load ("point_in", &nd, shape);
  g_autofree float *norm = load ("point_norm", NULL, NULL);
  g_autofree float *fps = load ("point_fps", NULL, NULL);
  g_autofree float *knn = load ("point_knn", NULL, NULL);
  OlPointParams p;
  ol_point_params_init (&p);
  g_autofree float *out = g_new (float, (gsize) p.n_points * 6);
  g_autofree gint32 *fi = g_new (gint32, p.n_groups);
  g_autofree gint32 *ki = g_new (gint32, (gsize) p.n_groups * p.group_size);
  g_autoptr (GError) error = NULL;
  double t0 = now ();
  g_assert_true (ol_point_prepare (pc, shape[0], &p, out, fi, ki, &error));
  g_assert_no_error (error);
  g_test_message ("point: 8192 points, FPS 1024 + kNN 32 on the CPU: %.1f ms", (now () - t0) * 1e3);
  assert_close ("point: normalised points", out, norm, (gsize) p.n_points * 6, 1e-6f);
  for (int j = 0; j < p.n_groups; j++)
    g_assert_cmpint (fi[j], ==, (gint32) fps[j]);
  for (gsize j = 0; j < (gsize) p.n_groups * p.group_size; j++)
    g_assert_cmpint (ki[j], ==, (gint32) knn[j]);

  /* a tiny tokenizer on five colours: the kernel's 512-thread block, and index 0 once no distance is left */
  g_autofree float *few = load ("point_few_in", &nd, shape);
  g_autofree float *few_fps = load ("point_few_fps", NULL, NULL);
  g_autofree float *few_knn = load ("point_few_knn", NULL, NULL);
  OlPointParams q = { 600, 128, 8, FALSE };
  g_assert_true (ol_point_prepare (few, shape[0], &q, out, fi, ki, &error));
  for (int j = 0; j < q.n_groups; j++)
    g_assert_cmpint (fi[j], ==, (gint32) few_fps[j]);
  for (gsize j = 0; j < (gsize) q.n_groups * q.group_size; j++)
    g_assert_cmpint (ki[j], ==, (gint32) few_knn[j]);
  g_assert_cmpint (fi[q.n_groups - 1], ==, 0);
}

static void
test_point_counts (void)
{
  OlPointParams p = { 256, 64, 8, FALSE };
  const gint64 n_big = 1000, n_small = 100;
  g_autofree float *pc = g_new (float, n_big * 6);
  GRand *rng = g_rand_new_with_seed (7);
  for (gint64 i = 0; i < n_big * 6; i++)
    pc[i] = (float) g_rand_double_range (rng, -1, 1);
  g_rand_free (rng);
  g_autofree float *o1 = g_new (float, p.n_points * 6), *o2 = g_new (float, p.n_points * 6);
  g_autofree float *manual = g_new (float, p.n_points * 6);
  gint32 f1[64], f2[64], k1[64 * 8], k2[64 * 8];
  g_autoptr (GError) error = NULL;
  /* more points: every (n / n_points)-th; fewer: repeated cyclically */
  const gint64 counts[] = { n_big, n_small };
  for (int c = 0; c < 2; c++) {
    gint64 n = counts[c];
    for (int i = 0; i < p.n_points; i++) {
      gint64 src = n >= p.n_points ? (gint64) i * n / p.n_points : i % n;
      memcpy (manual + i * 6, pc + src * 6, 6 * sizeof (float));
    }
    g_assert_true (ol_point_prepare (pc, n, &p, o1, f1, k1, &error));
    g_assert_no_error (error);
    g_assert_true (ol_point_prepare (manual, p.n_points, &p, o2, f2, k2, &error));
    g_assert_cmpmem (o1, p.n_points * 6 * sizeof (float), o2, p.n_points * 6 * sizeof (float));
    g_assert_cmpmem (f1, sizeof f1, f2, sizeof f2);
    g_assert_cmpmem (k1, sizeof k1, k2, sizeof k2);
  }
  /* pc_norm: centred, largest norm 1, colours untouched */
  double mean[3] = { 0 }, rmax = 0;
  for (int i = 0; i < p.n_points; i++) {
    double r = 0;
    for (int c = 0; c < 3; c++) {
      mean[c] += o1[i * 6 + c];
      r += (double) o1[i * 6 + c] * o1[i * 6 + c];
    }
    rmax = MAX (rmax, sqrt (r));
  }
  for (int c = 0; c < 3; c++)
    g_assert_cmpfloat (fabs (mean[c] / p.n_points), <, 1e-6);
  g_assert_cmpfloat (fabs (rmax - 1), <, 1e-6);
  g_assert_cmpmem (o1 + 3, 3 * sizeof (float), manual + 3, 3 * sizeof (float));

  g_assert_false (ol_point_prepare (pc, 63, &p, o1, f1, k1, &error));
  g_assert_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "too few points"));
  g_clear_error (&error);
  pc[17] = NAN;
  g_assert_false (ol_point_prepare (pc, n_big, &p, o1, f1, k1, &error));
  g_assert_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "point"));
  g_clear_error (&error);
  pc[17] = 0.25f;
  OlPointParams bad = { 256, 300, 8, FALSE };
  g_assert_false (ol_point_prepare (pc, n_big, &bad, o1, f1, k1, &error));
  g_assert_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  /* half_input: every value the model sees is an fp16 value */
  p.half_input = TRUE;
  g_assert_true (ol_point_prepare (pc, n_big, &p, o1, f1, k1, &error));
  gboolean all_half = TRUE, any_changed = FALSE;
  for (int i = 0; i < p.n_points * 6; i++) {
    all_half &= ol_fp16_to_fp32 (ol_fp32_to_fp16 (o1[i])) == o1[i];
    any_changed |= i % 6 >= 3 && o1[i] != manual[i];
  }
  g_assert_true (all_half);
  g_assert_true (any_changed);
}

/* ---------------------------------------------------------------- IMU and fMRI */

static void
test_imu (void)
{
  const int rates[] = { 100, 250 };
  for (int r = 0; r < 2; r++) {
    guint nd;
    gint64 shape[OL_NPY_MAX_DIMS];
    g_autofree char *in_name = g_strdup_printf ("imu_%dhz_in", rates[r]);
    g_autofree char *out_name = g_strdup_printf ("imu_%dhz_out", rates[r]);
    g_autofree float *x = load (in_name, &nd, shape);
    g_autofree float *want = load (out_name, NULL, NULL);
    float out[6 * OL_IMU_SAMPLES];
    g_autoptr (GError) error = NULL;
    g_assert_true (ol_preprocess_imu (x, (int) shape[0], shape[1], rates[r], OL_IMU_SAMPLES, out, &error));
    g_assert_no_error (error);
    g_autofree char *what = g_strdup_printf ("imu %d Hz", rates[r]);
    assert_close (what, out, want, 6 * OL_IMU_SAMPLES, 1e-5f);
  }
  /* at 200 Hz: copied, zero-padded or cut */
  float x[6 * 500], out[6 * OL_IMU_SAMPLES];
  for (int i = 0; i < 6 * 500; i++)
    x[i] = i * 0.01f;
  g_assert_true (ol_preprocess_imu (x, 6, 300, 200, OL_IMU_SAMPLES, out, NULL));
  g_assert_cmpfloat (out[OL_IMU_SAMPLES + 5], ==, x[300 + 5]);
  g_assert_cmpfloat (out[OL_IMU_SAMPLES + 300], ==, 0);
  g_assert_true (ol_preprocess_imu (x, 6, 500, 200, OL_IMU_SAMPLES, out, NULL));
  g_assert_cmpfloat (out[5 * OL_IMU_SAMPLES + 399], ==, x[5 * 500 + 399]);
  g_autoptr (GError) error = NULL;
  g_assert_false (ol_preprocess_imu (x, 5, 300, 200, OL_IMU_SAMPLES, out, &error));
  g_assert_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "5 channels"));
  g_clear_error (&error);
  x[42] = INFINITY;
  g_assert_false (ol_preprocess_imu (x, 6, 300, 100, OL_IMU_SAMPLES, out, &error));
  g_assert_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT);
}

static void
test_fmri (void)
{
  const gint64 v = OL_FMRI_VOXELS;
  g_autofree float *x = g_new (float, 3 * v), *out = g_new (float, v);
  for (gint64 i = 0; i < 3 * v; i++)
    x[i] = (float) sin (i * 0.37) * 1.7f;
  g_autoptr (GError) error = NULL;
  g_assert_true (ol_preprocess_fmri (x, 3, v, OL_FMRI_VOXELS, out, &error));
  g_assert_no_error (error);
  for (gint64 i = 0; i < v; i++)
    g_assert_cmpfloat (fabs (out[i] - ((double) x[i] + x[v + i] + x[2 * v + i]) / 3), <, 1e-6);
  g_assert_true (ol_preprocess_fmri (x, 1, v, OL_FMRI_VOXELS, out, &error));
  g_assert_cmpmem (out, v * sizeof (float), x, v * sizeof (float));
  /* a tiny model's voxel count */
  g_assert_true (ol_preprocess_fmri (x, 2, 100, 100, out, &error));
  g_assert_false (ol_preprocess_fmri (x, 1, v - 1, OL_FMRI_VOXELS, out, &error));
  g_assert_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "15723 voxels"));
  g_clear_error (&error);
  x[v + 5] = NAN;
  g_assert_false (ol_preprocess_fmri (x, 3, v, OL_FMRI_VOXELS, out, &error));
  g_assert_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "fmri"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/npy/roundtrip", test_npy_roundtrip);
  g_test_add_func ("/npy/types", test_npy_types);
  g_test_add_func ("/npy/corrupt", test_npy_corrupt);
  g_test_add_func ("/preprocess/image", test_image);
  g_test_add_func ("/preprocess/image-pair", test_image_pair);
  g_test_add_func ("/preprocess/image-errors", test_image_errors);
  g_test_add_func ("/preprocess/video-indices", test_video_indices);
  g_test_add_func ("/preprocess/video-frames", test_video_frames);
  g_test_add_func ("/preprocess/audio", test_audio);
  g_test_add_func ("/preprocess/audio-truncate", test_audio_truncate);
  g_test_add_func ("/preprocess/audio-clip", test_audio_clip);
  g_test_add_func ("/preprocess/audio-errors", test_audio_errors);
  g_test_add_func ("/preprocess/point", test_point_golden);
  g_test_add_func ("/preprocess/point-counts", test_point_counts);
  g_test_add_func ("/preprocess/imu", test_imu);
  g_test_add_func ("/preprocess/fmri", test_fmri);
  return g_test_run ();
}
