/* Accuracy of the shipped default model on held-out test-source configurations, through the full pipeline. */
/* Every case of CASES.tsv (tests/models/make_heldout_pipelines.py: held-out configurations of
 * tools/train/heldout.json, none seen in training, and the README's main job) runs as "<source> ! onellm<m>tok !
 * onellmencoder ! onellmcaptionsink" with greedy decoding; every caption must contain the case's keyword, the
 * key attribute (pattern or colour, wave, motion, shape, category). Per-modality accuracy of the held-out cases
 * is printed; the test fails when any modality is below 90 % or a required case (the main job) is wrong. The
 * elements have no model property set: they find the default model (ol_model_default_path, the build tree's
 * copy). Usage: test-default-model CASES.tsv */
#include <gst/gst.h>
#include <gst/app/gstappsrc.h>
#include <gst/video/video.h>
#include <string.h>

#include "onellm.h"

#define MIN_ACCURACY 0.9
#define CASE_TIMEOUT (120 * GST_SECOND)
#define SINK "onellmencoder ! onellmcaptionsink temperature=0 max-tokens=24 leaky=false"

/* A float array of a .npy file as a buffer of native-endian float32 (interleaved: [C, T] → [T, C]). */
static GstBuffer *
float_buffer (const float *x, gsize rows, gsize cols, gboolean transpose, GstClockTime duration)
{
  GstBuffer *buf = gst_buffer_new_allocate (NULL, rows * cols * sizeof (float), NULL);
  GstMapInfo map;
  gst_buffer_map (buf, &map, GST_MAP_WRITE);
  float *out = (float *) map.data;
  for (gsize r = 0; r < rows; r++)
    for (gsize c = 0; c < cols; c++)
      out[r * cols + c] = transpose ? x[c * rows + r] : x[r * cols + c];
  gst_buffer_unmap (buf, &map);
  GST_BUFFER_PTS (buf) = 0;
  GST_BUFFER_DURATION (buf) = duration;
  return buf;
}

/* One uint8 RGB image ([H, W, 3] values as floats) as a one-second video frame with GStreamer's strides. */
static GstBuffer *
rgb_frame (const float *x, const GstVideoInfo *info)
{
  GstBuffer *buf = gst_buffer_new_allocate (NULL, GST_VIDEO_INFO_SIZE (info), NULL);
  GstMapInfo map;
  gst_buffer_map (buf, &map, GST_MAP_WRITE);
  guint w = GST_VIDEO_INFO_WIDTH (info), h = GST_VIDEO_INFO_HEIGHT (info);
  for (guint y = 0; y < h; y++)
    for (guint i = 0; i < 3 * w; i++)
      map.data[y * GST_VIDEO_INFO_PLANE_STRIDE (info, 0) + i] = (guint8) x[(gsize) y * 3 * w + i];
  gst_buffer_unmap (buf, &map);
  GST_BUFFER_PTS (buf) = 0;
  GST_BUFFER_DURATION (buf) = GST_SECOND;
  return buf;
}

static void
push (GstElement *pipeline, const char *name, GstCaps *caps, GstBuffer *buf)
{
  GstElement *src = gst_bin_get_by_name (GST_BIN (pipeline), name);
  if (src == NULL) {
    gst_buffer_unref (buf);
    return;
  }
  if (caps)
    gst_app_src_set_caps (GST_APP_SRC (src), caps);
  gst_app_src_push_buffer (GST_APP_SRC (src), buf);
  gst_app_src_end_of_stream (GST_APP_SRC (src));
  gst_object_unref (src);
}

/* Feeds a case's .npy input to its appsrc elements: IMU [6, T] to "src" (whose caps give the rate), a
 * depth/normal scene [2, H, W, 3] (photo, map) to "map" and, when the pipeline has it, "rgb". */
static gboolean
feed (GstElement *pipeline, OlModality m, const char *path, GError **error)
{
  guint n_dims;
  gint64 shape[OL_NPY_MAX_DIMS];
  g_autofree float *x = ol_npy_read (path, &n_dims, shape, error);
  if (x == NULL)
    return FALSE;
  if (m == OL_MODALITY_IMU && n_dims == 2 && shape[0] == 6) {
    GstElement *src = gst_bin_get_by_name (GST_BIN (pipeline), "src");
    g_autoptr (GstCaps) caps = gst_app_src_get_caps (GST_APP_SRC (src));
    gst_object_unref (src);
    int rate = 0;
    if (caps == NULL || !gst_structure_get_int (gst_caps_get_structure (caps, 0), "rate", &rate) || rate <= 0) {
      g_set_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT, "%s: the IMU appsrc has no rate", path);
      return FALSE;
    }
    push (pipeline, "src", NULL, float_buffer (x, shape[1], 6, TRUE, gst_util_uint64_scale (shape[1], GST_SECOND, rate)));
    return TRUE;
  }
  if ((m == OL_MODALITY_DEPTH || m == OL_MODALITY_NORMAL) && n_dims == 4 && shape[0] == 2 && shape[3] == 3) {
    GstVideoInfo info;
    gst_video_info_set_format (&info, GST_VIDEO_FORMAT_RGB, shape[2], shape[1]);
    GST_VIDEO_INFO_FPS_N (&info) = 1;
    g_autoptr (GstCaps) caps = gst_video_info_to_caps (&info);
    push (pipeline, "map", caps, rgb_frame (x + shape[1] * shape[2] * 3, &info));
    push (pipeline, "rgb", caps, rgb_frame (x, &info));
    return TRUE;
  }
  g_set_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT, "%s: unexpected shape for %s", path, ol_modality_name (m));
  return FALSE;
}

/* Plays a pipeline to EOS; returns the texts of its captions (NULL with error set on an error). */
static GStrv
captions (GstElement *pipeline, GError **error)
{
  GstBus *bus = gst_element_get_bus (pipeline);
  g_autoptr (GStrvBuilder) texts = g_strv_builder_new ();
  guint n = 0;
  gboolean done = FALSE;
  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  while (!done) {
    GstMessage *msg = gst_bus_timed_pop (bus, CASE_TIMEOUT);
    if (msg == NULL) {
      g_set_error (error, OL_ERROR, OL_ERROR_FAILED, "no EOS within %" GST_TIME_FORMAT, GST_TIME_ARGS (CASE_TIMEOUT));
      break;
    }
    const GstStructure *s = gst_message_get_structure (msg);
    if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_EOS) {
      done = TRUE;
    } else if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR) {
      gst_message_parse_error (msg, error, NULL);
      done = TRUE;
    } else if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ELEMENT && gst_structure_has_name (s, "onellm-caption")) {
      g_strv_builder_add (texts, gst_structure_get_string (s, "text"));
      n++;
    }
    gst_message_unref (msg);
  }
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (bus);
  if (error && *error)
    return NULL;
  if (n == 0) {
    g_set_error (error, OL_ERROR, OL_ERROR_FAILED, "EOS without a caption");
    return NULL;
  }
  return g_strv_builder_end (texts);
}

/* Runs one case line (id, modality, keyword, pipeline head, .npy or "-", required or heldout): TRUE when
 * every caption has the keyword; an error (a broken pipeline, not a wrong caption) is returned in error. */
static gboolean
run_case (char **f, OlModality m, GError **error)
{
  g_autofree char *desc = g_strdup_printf ("%s ! " SINK, f[3]);
  GstElement *pipeline = gst_parse_launch (desc, error);
  if (pipeline == NULL)
    return FALSE;
  g_auto (GStrv) texts = NULL;
  if (strcmp (f[4], "-") == 0 || feed (pipeline, m, f[4], error))
    texts = captions (pipeline, error);
  gst_object_unref (pipeline);
  if (texts == NULL)
    return FALSE;
  g_autofree char *keyword = g_utf8_strdown (f[2], -1);
  gboolean all = TRUE;
  for (guint i = 0; texts[i]; i++) {
    g_autofree char *lower = g_utf8_strdown (texts[i], -1);
    gboolean ok = strstr (lower, keyword) != NULL;
    g_print ("%-10s %s [%s] %s\n", f[0], ok ? "ok  " : "MISS", f[2], texts[i]);
    all = all && ok;
  }
  return all;
}

int
main (int argc, char **argv)
{
  gst_init (&argc, &argv);
  if (argc != 2) {
    g_printerr ("usage: %s CASES.tsv\n", argv[0]);
    return 2;
  }
  g_autofree char *contents = NULL;
  g_autoptr (GError) error = NULL;
  if (!g_file_get_contents (argv[1], &contents, NULL, &error)) {
    g_printerr ("%s\n", error->message);
    return 1;
  }
  g_autofree char *model = ol_model_default_path ();
  g_print ("model: %s\n", model);
  /* A paused sink keeps the model loaded, so every case's pipeline finds it in the process cache. */
  GstElement *holder = gst_parse_launch ("appsrc ! onellmcaptionsink", NULL);
  if (gst_element_set_state (holder, GST_STATE_PAUSED) == GST_STATE_CHANGE_FAILURE) {
    g_printerr ("the default model %s does not load\n", model);
    return 1;
  }

  guint right[OL_N_MODALITIES] = { 0 }, total[OL_N_MODALITIES] = { 0 };
  gint64 start = g_get_monotonic_time ();
  g_auto (GStrv) lines = g_strsplit (contents, "\n", -1);
  int status = 0;
  for (guint i = 0; lines[i] && *lines[i]; i++) {
    g_auto (GStrv) f = g_strsplit (lines[i], "\t", -1);
    OlModality m;
    gboolean heldout = g_strv_length (f) == 6 && strcmp (f[5], "heldout") == 0;
    if (g_strv_length (f) != 6 || !ol_modality_from_name (f[1], &m) || (!heldout && strcmp (f[5], "required") != 0)) {
      g_printerr ("%s:%u: malformed case\n", argv[1], i + 1);
      status = 1;
      break;
    }
    gboolean ok = run_case (f, m, &error);
    if (heldout) {
      right[m] += ok;
      total[m]++;
    } else if (!ok && !error) {
      g_print ("%s: a required case is wrong\n", f[0]);
      status = 1;
    }
    if (error) {
      g_printerr ("%s: %s\n", f[0], error->message);
      status = 1;
      break;
    }
  }
  g_print ("\n%.0f s\n", (g_get_monotonic_time () - start) / 1e6);
  guint n_cases = 0;
  for (OlModality m = 0; m < OL_N_MODALITIES; m++) {
    if (total[m] == 0)
      continue;
    n_cases += total[m];
    double accuracy = (double) right[m] / total[m];
    g_print ("%-6s %3u/%3u = %5.1f %%%s\n", ol_modality_name (m), right[m], total[m], 100 * accuracy,
             accuracy < MIN_ACCURACY ? "  below 90 %" : "");
    if (accuracy < MIN_ACCURACY)
      status = 1;
  }
  if (n_cases == 0) {
    g_printerr ("%s: no cases\n", argv[1]);
    status = 1;
  }
  gst_element_set_state (holder, GST_STATE_NULL);
  gst_object_unref (holder);
  return status;
}
