/* onellm-cli encode: one input through preprocessing and the encoder to the LLM input block, as .npy. */
#include "cli.h"

#include <gst/app/gstappsink.h>
#include <gst/audio/audio.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

/* ---- decoding media files through GStreamer ---- */

typedef struct {
  GstElement *pipeline;
  GstAppSink *sink;
} Decoder;

static void
decoder_clear (Decoder *d)
{
  if (d->pipeline) {
    gst_element_set_state (d->pipeline, GST_STATE_NULL);
    gst_object_unref (d->sink);
    gst_object_unref (d->pipeline);
  }
  memset (d, 0, sizeof (*d));
}

/* filesrc ! decodebin ! convert ! appsink with the given caps (packed RGB video or F32 interleaved audio). */
static gboolean
decoder_open (Decoder *d, const char *path, gboolean video, GError **error)
{
  memset (d, 0, sizeof (*d));
  if (!g_file_test (path, G_FILE_TEST_IS_REGULAR)) {
    g_set_error (error, OL_ERROR, OL_ERROR_IO, "%s: no such file", path);
    return FALSE;
  }
  const char *desc = video
    ? "filesrc name=src ! decodebin ! videoconvert ! video/x-raw,format=RGB ! appsink name=sink sync=false"
    : "filesrc name=src ! decodebin ! audioconvert ! audio/x-raw,format=F32LE,layout=interleaved "
      "! appsink name=sink sync=false";
  GError *perr = NULL;
  d->pipeline = gst_parse_launch (desc, &perr);
  if (d->pipeline == NULL) {
    g_set_error (error, OL_ERROR, OL_ERROR_UNSUPPORTED, "cannot build a decoding pipeline: %s", perr->message);
    g_error_free (perr);
    return FALSE;
  }
  g_clear_error (&perr);
  GstElement *src = gst_bin_get_by_name (GST_BIN (d->pipeline), "src");
  g_object_set (src, "location", path, NULL);
  gst_object_unref (src);
  d->sink = GST_APP_SINK (gst_bin_get_by_name (GST_BIN (d->pipeline), "sink"));
  if (gst_element_set_state (d->pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    g_set_error (error, OL_ERROR, OL_ERROR_IO, "%s: cannot start decoding", path);
    decoder_clear (d);
    return FALSE;
  }
  return TRUE;
}

/* The next decoded sample, or NULL at the end of the stream or on an error (then *error is set). A failed
 * pipeline never reaches end-of-stream, so the bus is checked while waiting. */
static GstSample *
decoder_pull (Decoder *d, const char *path, GError **error)
{
  g_autoptr (GstBus) bus = gst_element_get_bus (d->pipeline);
  for (;;) {
    GstSample *s = gst_app_sink_try_pull_sample (d->sink, 50 * GST_MSECOND);
    if (s != NULL)
      return s;
    GstMessage *msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
    if (msg != NULL) {
      GError *gerr = NULL;
      gst_message_parse_error (msg, &gerr, NULL);
      g_set_error (error, OL_ERROR, OL_ERROR_IO, "%s: cannot decode: %s", path, gerr->message);
      g_error_free (gerr);
      gst_message_unref (msg);
      return NULL;
    }
    if (gst_app_sink_is_eos (d->sink))
      return NULL;
  }
}

/* Calls fn for every decoded frame as a packed RGB image; counts them and reports the frame rate. */
typedef gboolean (*FrameFn) (const OlImage *image, gint64 index, gpointer data, GError **error);

static gboolean
decode_frames (const char *path, FrameFn fn, gpointer data, gint64 *n_frames, double *fps, GError **error)
{
  Decoder d;
  if (!decoder_open (&d, path, TRUE, error))
    return FALSE;
  gint64 n = 0;
  gboolean ok = TRUE;
  GstSample *s;
  while (ok && (s = decoder_pull (&d, path, error)) != NULL) {
    GstVideoInfo info;
    GstVideoFrame frame;
    if (!gst_video_info_from_caps (&info, gst_sample_get_caps (s)) ||
        !gst_video_frame_map (&frame, &info, gst_sample_get_buffer (s), GST_MAP_READ)) {
      g_set_error (error, OL_ERROR, OL_ERROR_IO, "%s: unreadable video frame", path);
      ok = FALSE;
    } else {
      if (fps != NULL)
        *fps = info.fps_d > 0 ? (double) info.fps_n / info.fps_d : 0;
      OlImage image = {
        .data = GST_VIDEO_FRAME_PLANE_DATA (&frame, 0),
        .width = GST_VIDEO_FRAME_WIDTH (&frame),
        .height = GST_VIDEO_FRAME_HEIGHT (&frame),
        .stride = GST_VIDEO_FRAME_PLANE_STRIDE (&frame, 0),
        .format = OL_PIXEL_RGB,
      };
      ok = fn == NULL || fn (&image, n, data, error);
      gst_video_frame_unmap (&frame);
      n++;
    }
    gst_sample_unref (s);
  }
  decoder_clear (&d);
  if (ok && error != NULL && *error != NULL)
    ok = FALSE;
  if (ok && n == 0) {
    g_set_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT, "%s: no video frames", path);
    ok = FALSE;
  }
  if (n_frames != NULL)
    *n_frames = n;
  return ok;
}

typedef struct {
  int size;
  float *out;          /* first image's transform */
} FirstImage;

static gboolean
keep_first (const OlImage *image, gint64 index, gpointer data, GError **error)
{
  FirstImage *f = data;
  if (index > 0)
    return TRUE;
  return ol_preprocess_image (image, f->size, f->out, error);
}

/* The photo or map for depth/normal: the first frame as packed RGB bytes. */
typedef struct {
  guint8 *pixels;
  OlImage image;
} HeldImage;

static gboolean
hold_first (const OlImage *image, gint64 index, gpointer data, GError **error)
{
  HeldImage *h = data;
  if (index > 0)
    return TRUE;
  gsize row = (gsize) image->width * 3;
  h->pixels = g_malloc (row * image->height);
  for (int y = 0; y < image->height; y++)
    memcpy (h->pixels + y * row, image->data + (gsize) y * image->stride, row);
  h->image = (OlImage) { h->pixels, image->width, image->height, (int) row, OL_PIXEL_RGB };
  return TRUE;
}

typedef struct {
  const gint64 *indices;
  int n_clips, crops, size;
  float *out;
} ClipFrames;

static gboolean
keep_clip_frames (const OlImage *image, gint64 index, gpointer data, GError **error)
{
  ClipFrames *c = data;
  gsize per_frame = (gsize) c->crops * 3 * c->size * c->size;
  for (int i = 0; i < c->n_clips; i++)
    if (c->indices[i] == index && !ol_preprocess_video_frame (image, c->size, c->crops, c->out + i * per_frame, error))
      return FALSE;
  return TRUE;
}

static gboolean
load_video (const char *path, const OlModalityInfo *mi, int size, float *out, GError **error)
{
  /* The model's frames are clips × 3 spatial crops (15 = 5 × 3 for the released model). */
  int crops = mi->frames % 3 == 0 ? 3 : 1;
  int n_clips = mi->frames / crops;
  gint64 n_frames;
  double fps = 0;
  if (!decode_frames (path, NULL, NULL, &n_frames, &fps, error))
    return FALSE;
  g_autofree gint64 *indices = g_new (gint64, n_clips);
  if (!ol_video_clip_frames (n_frames, fps, n_clips, indices, error))
    return FALSE;
  ClipFrames c = { indices, n_clips, crops, size, out };
  return decode_frames (path, keep_clip_frames, &c, NULL, NULL, error);
}

static gboolean
load_audio (const char *path, const OlModalityInfo *mi, float *out, GError **error)
{
  Decoder d;
  if (!decoder_open (&d, path, FALSE, error))
    return FALSE;
  g_autoptr (GByteArray) bytes = g_byte_array_new ();
  int channels = 0, rate = 0;
  gboolean ok = TRUE;
  GstSample *s;
  while (ok && (s = decoder_pull (&d, path, error)) != NULL) {
    GstAudioInfo info;
    GstMapInfo map;
    if (!gst_audio_info_from_caps (&info, gst_sample_get_caps (s)) ||
        (channels != 0 && (info.channels != channels || info.rate != rate)) ||
        !gst_buffer_map (gst_sample_get_buffer (s), &map, GST_MAP_READ)) {
      g_set_error (error, OL_ERROR, OL_ERROR_UNSUPPORTED, "%s: unreadable or changing audio format", path);
      ok = FALSE;
    } else {
      channels = info.channels;
      rate = info.rate;
      g_byte_array_append (bytes, map.data, map.size);
      gst_buffer_unmap (gst_sample_get_buffer (s), &map);
    }
    gst_sample_unref (s);
  }
  decoder_clear (&d);
  if (!ok || (error != NULL && *error != NULL))
    return FALSE;
  if (channels == 0) {
    g_set_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT, "%s: no audio", path);
    return FALSE;
  }
  gint64 n = bytes->len / (sizeof (float) * channels);
  return ol_preprocess_audio (bytes->data, OL_SAMPLE_F32, channels, n, rate, mi->input_shape[1], mi->input_shape[2],
                              out, error);
}

/* ---- the command ---- */

/* CPU time of the process, all threads: on a CPU Vulkan driver (lavapipe) the device's work is in it, and
 * unlike wall time it does not grow when other processes share the cores. */
static double
cpu_seconds (void)
{
  struct rusage u;
  getrusage (RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

/* The model-input tensor of the modality from a media file (image, video, audio, depth, normal) or a .npy
 * (point [N, 6], imu [6, T], fmri [V] or [R, V]). */
static gboolean
load_raw (OlModel *model, OlModality m, const CliInput *inp, float *out, GError **error)
{
  const OlModelInfo *in = ol_model_get_info (model);
  const OlModalityInfo *mi = &in->modality[m];
  int size = in->image_size;
  switch (m) {
    case OL_MODALITY_IMAGE: {
      FirstImage f = { size, out };
      return decode_frames (inp->path, keep_first, &f, NULL, NULL, error);
    }
    case OL_MODALITY_VIDEO:
      return load_video (inp->path, mi, size, out, error);
    case OL_MODALITY_DEPTH:
    case OL_MODALITY_NORMAL: {
      HeldImage map = { 0 }, rgb = { 0 };
      gboolean ok = decode_frames (inp->path, hold_first, &map, NULL, NULL, error) &&
                    (inp->rgb_path == NULL || decode_frames (inp->rgb_path, hold_first, &rgb, NULL, NULL, error)) &&
                    ol_preprocess_image_pair (inp->rgb_path ? &rgb.image : NULL, &map.image, size, out, error);
      g_free (map.pixels);
      g_free (rgb.pixels);
      return ok;
    }
    case OL_MODALITY_AUDIO:
      return load_audio (inp->path, mi, out, error);
    default:
      break;
  }
  guint n_dims;
  gint64 shape[OL_NPY_MAX_DIMS];
  g_autofree float *x = ol_npy_read (inp->path, &n_dims, shape, error);
  if (x == NULL)
    return FALSE;
  if (m == OL_MODALITY_POINT) {
    if (n_dims != 2 || shape[1] != 6) {
      g_set_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT, "%s: a point cloud is [N, 6] (xyz, rgb)", inp->path);
      return FALSE;
    }
    OlPointParams params;
    ol_point_params_init (&params);
    params.n_points = mi->input_shape[0];
    params.n_groups = mi->tokens;
    params.group_size = mi->group_size;
    g_autofree gint32 *fps = g_new (gint32, params.n_groups);
    g_autofree gint32 *knn = g_new (gint32, (gsize) params.n_groups * params.group_size);
    return ol_point_prepare (x, shape[0], &params, out, fps, knn, error);
  }
  if (m == OL_MODALITY_IMU) {
    if (n_dims != 2) {
      g_set_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT, "%s: an IMU signal is [6, T]", inp->path);
      return FALSE;
    }
    return ol_preprocess_imu (x, shape[0], shape[1], inp->imu_rate, mi->input_shape[1], out, error);
  }
  if (n_dims != 1 && n_dims != 2) {
    g_set_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT, "%s: fMRI data is [voxels] or [repetitions, voxels]",
                 inp->path);
    return FALSE;
  }
  return ol_preprocess_fmri (x, n_dims == 2 ? shape[0] : 1, shape[n_dims - 1], mi->input_shape[1], out, error);
}

float *
cli_load_input (OlModel *model, OlModality m, const CliInput *in, guint *n_dims, gint64 *shape, GError **error)
{
  if (in->preprocessed)
    return ol_npy_read (in->path, n_dims, shape, error);
  const OlModalityInfo *mi = &ol_model_get_info (model)->modality[m];
  gsize n = 1;
  *n_dims = mi->n_input_dims;
  for (guint d = 0; d < *n_dims; d++)
    n *= shape[d] = mi->input_shape[d];
  if (m <= OL_MODALITY_AUDIO || m == OL_MODALITY_DEPTH || m == OL_MODALITY_NORMAL)
    gst_init (NULL, NULL);
  float *input = g_new (float, n);
  if (!load_raw (model, m, in, input, error))
    g_clear_pointer (&input, g_free);
  return input;
}

int
cli_encode (int argc, char **argv)
{
  g_autofree char *model_path = NULL;
  const char *modality = NULL, *output = NULL;
  CliInput inp = { .imu_rate = OL_IMU_RATE };
  gboolean timing = FALSE;
  int repeat = 1;
  GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model_path,
      "OneLLM GGUF model (default: $ONELLM_MODEL, else the shipped default model)", "M" },
    { "modality", 0, 0, G_OPTION_ARG_STRING, &modality,
      "image, video, audio, point, depth, normal, imu or fmri", "MOD" },
    CLI_INPUT_OPTIONS (&inp),
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &output, "where the [2+R, dim] float32 block goes (.npy)", "OUT" },
    { "time", 0, 0, G_OPTION_ARG_NONE, &timing, "print preprocessing and encoder times on stderr", NULL },
    { "repeat", 0, 0, G_OPTION_ARG_INT, &repeat, "with --time: run the encoder N times (default 1)", "N" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- the LLM input block of one input");
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_autoptr (GError) error = NULL;
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    return cli_fail_error (g_steal_pointer (&error));
  if (argc != 1)
    return cli_fail ("encode takes no positional arguments (see --help)");
  if (modality == NULL || inp.path == NULL || output == NULL)
    return cli_fail ("encode needs --modality, --input and --output");
  if (model_path == NULL)
    model_path = ol_model_default_path ();
  OlModality m;
  if (!ol_modality_from_name (modality, &m))
    return cli_fail ("unknown modality '%s' (image, video, audio, point, depth, normal, imu, fmri)", modality);
  if (repeat < 1)
    return cli_fail ("--repeat must be at least 1");

  gint64 t0 = g_get_monotonic_time ();
  OlDevice *dev = ol_device_new (NULL, &error);
  if (dev == NULL)
    return cli_fail_error (g_steal_pointer (&error));
  OlModel *model = ol_model_new (dev, model_path, &error);
  if (model == NULL) {
    ol_device_free (dev);
    return cli_fail_error (g_steal_pointer (&error));
  }
  int status = 1;
  OlEncoder *enc = NULL;
  float *input = NULL, *block = NULL;
  if (!ol_model_has_modality (model, m)) {
    cli_fail ("%s: the model has no %s modality", model_path, ol_modality_name (m));
    goto out;
  }
  enc = ol_encoder_new (model, &error);
  if (enc == NULL)
    goto fail;
  gint64 t_load = g_get_monotonic_time ();

  gint64 shape[OL_NPY_MAX_DIMS];
  guint n_dims;
  input = cli_load_input (model, m, &inp, &n_dims, shape, &error);
  if (input == NULL)
    goto fail;
  gint64 t_pre = g_get_monotonic_time ();

  block = g_new (float, ol_encoder_embeddings_size (enc));
  gint64 t_first = 0;
  double cpu_first = 0, cpu_start = cpu_seconds ();
  for (int i = 0; i < repeat; i++) {
    if (!ol_encoder_run (enc, m, input, n_dims, shape, block, &error))
      goto fail;
    if (i == 0) {
      t_first = g_get_monotonic_time ();
      cpu_first = cpu_seconds ();
    }
  }
  gint64 t_end = g_get_monotonic_time ();
  double cpu_end = cpu_seconds ();
  gint64 out_shape[2] = { ol_model_get_info (model)->n_resample + 2, ol_model_get_info (model)->dim };
  if (!ol_npy_write (output, block, 2, out_shape, &error))
    goto fail;
  if (timing) {
    fprintf (stderr, "%s: load %.1f ms, preprocess %.1f ms, encode %.1f ms (CPU %.1f ms; first run, recording "
             "included)", ol_modality_name (m), (t_load - t0) / 1e3, (t_pre - t_load) / 1e3, (t_first - t_pre) / 1e3,
             (cpu_first - cpu_start) * 1e3);
    if (repeat > 1)
      fprintf (stderr, ", %.1f ms (CPU %.1f ms) per run after it (%d runs)", (t_end - t_first) / 1e3 / (repeat - 1),
               (cpu_end - cpu_first) * 1e3 / (repeat - 1), repeat - 1);
    fprintf (stderr, "\n");
  }
  status = 0;
  goto out;

fail:
  status = cli_fail_error (g_steal_pointer (&error));
out:
  g_free (input);
  g_free (block);
  ol_encoder_free (enc);
  ol_model_free (model);
  ol_device_free (dev);
  return status;
}
