/* The modality tokenizer elements: caps, windows and timestamps, outputs equal to the engine's, model sharing
 * and errors. */
#include <gst/gst.h>
#include <gst/check/gstharness.h>
#include <gst/app/gstappsink.h>
#include <glib/gstdio.h>
#include <unistd.h>
#include <math.h>
#include <string.h>
#include "onellm.h"

static const char *tiny_path;
/* An element holding the plugin's copy of the model between tests, so that each pipeline does not load it
 * again (the process cache keeps a model while anything uses it). */
static GstHarness *keeper;
static OlDevice *device;
static OlModel *model;
static OlEncoder *encoder;

static void
engine_init (void)
{
  g_autoptr (GError) error = NULL;
  if (encoder)
    return;
  device = ol_device_new (NULL, &error);
  g_assert_no_error (error);
  model = ol_model_new (device, tiny_path, &error);
  g_assert_no_error (error);
  encoder = ol_encoder_new (model, &error);
  g_assert_no_error (error);
}

static const OlModalityInfo *
modality_info (OlModality m)
{
  engine_init ();
  return &ol_model_get_info (model)->modality[m];
}

static gsize
input_size (OlModality m)
{
  const OlModalityInfo *mi = modality_info (m);
  gsize n = 1;
  for (guint d = 0; d < mi->n_input_dims; d++)
    n *= mi->input_shape[d];
  return n;
}

/* The buffer holds exactly the engine's tokens of the model input tensor `input`. */
static void
assert_tokens (GstBuffer *buffer, OlModality m, const float *input)
{
  g_autoptr (GError) error = NULL;
  gsize n = ol_encoder_tokens_size (encoder, m);
  g_autofree float *want = g_new (float, n);
  g_assert_true (ol_encoder_tokenize (encoder, m, input, want, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (gst_buffer_get_size (buffer), ==, n * sizeof (float));
  g_assert_cmpint (gst_buffer_memcmp (buffer, 0, want, n * sizeof (float)), ==, 0);
}

static GstHarness *
harness (const char *element, const char *props)
{
  g_autofree char *desc = g_strdup_printf ("%s model=\"%s\" %s", element, tiny_path, props ? props : "");
  return gst_harness_new_parse (desc);
}

/* Output caps are those of the model's modality. */
static void
assert_src_caps (GstHarness *h, OlModality m)
{
  const OlModalityInfo *mi = modality_info (m);
  g_autoptr (GstCaps) caps = gst_pad_get_current_caps (h->sinkpad);
  g_autoptr (GstCaps) want =
      gst_caps_new_simple ("application/x-onellm-tokens", "modality", G_TYPE_STRING, ol_modality_name (m),
                           "frames", G_TYPE_INT, (int) mi->frames, "tokens", G_TYPE_INT, (int) mi->tokens,
                           "width", G_TYPE_INT, (int) ol_model_get_info (model)->clip_dim, NULL);
  g_assert_nonnull (caps);
  g_assert_true (gst_caps_is_equal (caps, want));
}

static gboolean
accepts (GstHarness *h, const char *caps_string)
{
  g_autoptr (GstCaps) caps = gst_caps_from_string (caps_string);
  return gst_pad_peer_query_accept_caps (h->srcpad, caps);
}

static void
assert_times (GstBuffer *b, GstClockTime pts, GstClockTime duration)
{
  g_assert_cmpuint (GST_BUFFER_PTS (b), ==, pts);
  g_assert_cmpuint (GST_BUFFER_DURATION (b), ==, duration);
}

/* A w×h RGB frame whose pattern depends on seed. */
static GstBuffer *
rgb_frame (int w, int h, int seed, GstClockTime pts, GstClockTime duration)
{
  GstBuffer *b = gst_buffer_new_allocate (NULL, (gsize) w * h * 3, NULL);
  GstMapInfo map;
  gst_buffer_map (b, &map, GST_MAP_WRITE);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int c = 0; c < 3; c++)
        map.data[(y * w + x) * 3 + c] = (guint8) (x * (c + 1) + y * 3 + seed * 37 + c * 50);
  gst_buffer_unmap (b, &map);
  GST_BUFFER_PTS (b) = pts;
  GST_BUFFER_DURATION (b) = duration;
  return b;
}

static OlImage
image_of (GstBuffer *b, GstMapInfo *map, int w, int h, OlPixelFormat format, int bpp)
{
  gst_buffer_map (b, map, GST_MAP_READ);
  return (OlImage) { map->data, w, h, w * bpp, format };
}

static void
test_image (void)
{
  GstHarness *h = harness ("onellmimagetok", "interval=1000000000");
  g_assert_true (accepts (h, "video/x-raw, format=RGB, width=64, height=48, framerate=10/1"));
  g_assert_true (accepts (h, "video/x-raw, format=GRAY8, width=64, height=48, framerate=10/1"));
  g_assert_true (accepts (h, "video/x-raw, format=I420, width=64, height=48, framerate=10/1"));
  g_assert_false (accepts (h, "video/x-raw, format=v210, width=64, height=48, framerate=10/1"));
  g_assert_false (accepts (h, "audio/x-raw, format=S16LE, rate=16000, channels=1"));
  gst_harness_set_src_caps_str (h, "video/x-raw, format=RGB, width=100, height=60, framerate=10/1");

  /* 10 fps for 2.5 s: frames at 0, 1 and 2 s go out */
  GstBuffer *first = NULL;
  for (int i = 0; i < 25; i++) {
    GstBuffer *b = rgb_frame (100, 60, i, i * GST_SECOND / 10, GST_SECOND / 10);
    if (i == 0)
      first = gst_buffer_ref (b);
    g_assert_cmpint (gst_harness_push (h, b), ==, GST_FLOW_OK);
  }
  g_assert_cmpuint (gst_harness_buffers_received (h), ==, 3);
  assert_src_caps (h, OL_MODALITY_IMAGE);
  g_autofree float *input = g_new (float, input_size (OL_MODALITY_IMAGE));
  GstMapInfo map;
  OlImage image = image_of (first, &map, 100, 60, OL_PIXEL_RGB, 3);
  g_assert_true (ol_preprocess_image (&image, 224, input, NULL));
  gst_buffer_unmap (first, &map);
  gst_buffer_unref (first);
  for (int i = 0; i < 3; i++) {
    GstBuffer *out = gst_harness_pull (h);
    assert_times (out, i * GST_SECOND, GST_SECOND);
    if (i == 0)
      assert_tokens (out, OL_MODALITY_IMAGE, input);
    gst_buffer_unref (out);
  }
  gst_harness_teardown (h);
}

/* YUV input is converted as videoconvert converts it, and only for the frames that are tokenized. */
static void
test_image_yuv (void)
{
  const char *caps = "video/x-raw, format=I420, width=96, height=60, framerate=10/1";
  GstBuffer *yuv = gst_buffer_new_allocate (NULL, 96 * 60 * 3 / 2, NULL);
  GstMapInfo map;
  gst_buffer_map (yuv, &map, GST_MAP_WRITE);
  for (gsize i = 0; i < map.size; i++)
    map.data[i] = (guint8) (i < 96 * 60 ? 16 + (i * 7 + i / 96 * 3) % 220 : 64 + (i * 13) % 128);
  gst_buffer_unmap (yuv, &map);
  GST_BUFFER_PTS (yuv) = 0;

  GstHarness *convert = gst_harness_new ("videoconvert");
  gst_harness_set_caps_str (convert, caps, "video/x-raw, format=RGB, width=96, height=60, framerate=10/1");
  GstBuffer *rgb = gst_harness_push_and_pull (convert, gst_buffer_ref (yuv));
  g_autofree float *input = g_new (float, input_size (OL_MODALITY_IMAGE));
  OlImage image = image_of (rgb, &map, 96, 60, OL_PIXEL_RGB, 3);
  g_assert_true (ol_preprocess_image (&image, 224, input, NULL));
  gst_buffer_unmap (rgb, &map);
  gst_buffer_unref (rgb);
  gst_harness_teardown (convert);

  GstHarness *h = harness ("onellmimagetok", NULL);
  gst_harness_set_src_caps_str (h, caps);
  GstBuffer *out = gst_harness_push_and_pull (h, yuv);
  assert_tokens (out, OL_MODALITY_IMAGE, input);
  gst_buffer_unref (out);
  gst_harness_teardown (h);
}

static void
test_video (void)
{
  GstHarness *h = harness ("onellmvideotok", "window=1000000000 interval=500000000");
  g_assert_true (accepts (h, "video/x-raw, format=BGRx, width=64, height=48, framerate=30/1"));
  g_assert_false (accepts (h, "video/x-raw, format=GBR, width=64, height=48, framerate=30/1"));
  gst_harness_set_src_caps_str (h, "video/x-raw, format=RGB, width=80, height=64, framerate=20/1");

  /* video tokenization is the slowest on lavapipe (15 frames): three windows in all */
  GPtrArray *frames = g_ptr_array_new_with_free_func ((GDestroyNotify) gst_buffer_unref);
  for (int i = 0; i <= 30; i++) {
    GstBuffer *b = rgb_frame (80, 64, i, i * GST_SECOND / 20, GST_SECOND / 20);
    g_ptr_array_add (frames, gst_buffer_ref (b));
    g_assert_cmpint (gst_harness_push (h, b), ==, GST_FLOW_OK);
  }
  /* the frames at 1 s and 1.5 s complete the windows at 0 and 0.5 s (they overlap) */
  g_assert_cmpuint (gst_harness_buffers_received (h), ==, 2);
  assert_src_caps (h, OL_MODALITY_VIDEO);

  /* the window at 0.5 s: frames 10..29 */
  const OlModalityInfo *mi = modality_info (OL_MODALITY_VIDEO);
  int samples = (int) mi->input_shape[0] / 3;
  gint64 idx[samples];
  gsize per_frame = 3 * 3 * 224 * 224;
  g_autofree float *input = g_new (float, input_size (OL_MODALITY_VIDEO));
  g_assert_true (ol_video_window_frames (20, samples, idx, NULL));
  for (int i = 0; i < samples; i++) {
    GstBuffer *b = g_ptr_array_index (frames, 10 + idx[i]);
    GstMapInfo map;
    OlImage image = image_of (b, &map, 80, 64, OL_PIXEL_RGB, 3);
    g_assert_true (ol_preprocess_video_frame (&image, 224, 3, input + i * per_frame, NULL));
    gst_buffer_unmap (b, &map);
  }
  for (int i = 0; i < 2; i++) {
    GstBuffer *out = gst_harness_pull (h);
    assert_times (out, i * GST_SECOND / 2, GST_SECOND);
    if (i == 1)
      assert_tokens (out, OL_MODALITY_VIDEO, input);
    gst_buffer_unref (out);
  }
  g_ptr_array_unref (frames);

  /* a flush forgets the window in progress (the frames from 1 s on); after it, windows start at the new
   * frames, and EOS sends the shorter last one */
  gst_harness_push_event (h, gst_event_new_flush_start ());
  gst_harness_push_event (h, gst_event_new_flush_stop (TRUE));
  gst_harness_set_src_caps_str (h, "video/x-raw, format=RGB, width=80, height=64, framerate=20/1");
  GstSegment segment;
  gst_segment_init (&segment, GST_FORMAT_TIME);
  gst_harness_push_event (h, gst_event_new_segment (&segment));
  for (int i = 0; i < 10; i++)
    gst_harness_push (h, rgb_frame (80, 64, i, 7 * GST_SECOND + i * GST_SECOND / 20, GST_SECOND / 20));
  g_assert_cmpuint (gst_harness_buffers_received (h), ==, 2);
  gst_harness_push_event (h, gst_event_new_eos ());
  GstBuffer *out = gst_harness_pull (h);
  assert_times (out, 7 * GST_SECOND, GST_SECOND / 2);
  gst_buffer_unref (out);
  gst_harness_teardown (h);
}

/* n frames of interleaved S16 audio of a chirp. */
static GstBuffer *
audio_buffer (gint16 *all, gint64 first, int n, int channels, int rate)
{
  GstBuffer *b = gst_buffer_new_memdup (all + first * channels, (gsize) n * channels * 2);
  GST_BUFFER_PTS (b) = gst_util_uint64_scale_int (first, GST_SECOND, rate);
  GST_BUFFER_DURATION (b) = gst_util_uint64_scale_int (n, GST_SECOND, rate);
  return b;
}

static void
test_audio (void)
{
  GstHarness *h = harness ("onellmaudiotok", "window=2000000000 interval=1000000000");
  const int rate = 22050, channels = 2, n = rate * 9 / 2;
  g_assert_true (accepts (h, "audio/x-raw, format=F32LE, layout=interleaved, rate=44100, channels=1"));
  g_assert_false (accepts (h, "audio/x-raw, format=U8, layout=interleaved, rate=44100, channels=1"));
  g_assert_false (accepts (h, "audio/x-raw, format=S16LE, layout=non-interleaved, rate=44100, channels=2"));
  gst_harness_set_src_caps_str (h, "audio/x-raw, format=S16LE, layout=interleaved, rate=22050, channels=2");

  g_autofree gint16 *pcm = g_new (gint16, (gsize) n * channels);
  for (int i = 0; i < n; i++)
    for (int c = 0; c < channels; c++)
      pcm[i * channels + c] = (gint16) (8000 * sin (i * (0.01 + i * 1e-6) + c));
  for (int i = 0; i < n; i += 1000)
    g_assert_cmpint (gst_harness_push (h, audio_buffer (pcm, i, MIN (1000, n - i), channels, rate)), ==,
                     GST_FLOW_OK);
  /* 4.5 s: windows at 0, 1 and 2 s; at EOS the last 1.5 s from 3 s */
  g_assert_cmpuint (gst_harness_buffers_received (h), ==, 3);
  gst_harness_push_event (h, gst_event_new_eos ());
  g_assert_cmpuint (gst_harness_buffers_received (h), ==, 4);
  assert_src_caps (h, OL_MODALITY_AUDIO);

  const OlModalityInfo *mi = modality_info (OL_MODALITY_AUDIO);
  g_autofree float *input = g_new (float, input_size (OL_MODALITY_AUDIO));
  g_assert_true (ol_preprocess_audio (pcm + rate * channels, OL_SAMPLE_S16, channels, 2 * rate, rate,
                                      (int) mi->input_shape[1], (int) mi->input_shape[2], input, NULL));
  for (int i = 0; i < 4; i++) {
    GstBuffer *out = gst_harness_pull (h);
    assert_times (out, i * GST_SECOND, i < 3 ? 2 * GST_SECOND : 3 * GST_SECOND / 2);
    if (i == 1)
      assert_tokens (out, OL_MODALITY_AUDIO, input);
    gst_buffer_unref (out);
  }
  gst_harness_teardown (h);
}

static void
test_imu (void)
{
  GstHarness *h = harness ("onellmimutok", NULL);
  const int rate = 100, n = 5 * rate;
  g_assert_true (accepts (h, "application/x-onellm-imu, channels=6, rate=50"));
  g_assert_true (accepts (h, "audio/x-raw, format=F32LE, layout=interleaved, channels=6, rate=100"));
  g_assert_false (accepts (h, "application/x-onellm-imu, channels=3, rate=50"));
  g_assert_false (accepts (h, "audio/x-raw, format=S16LE, layout=interleaved, channels=6, rate=100"));
  gst_harness_set_src_caps_str (h, "application/x-onellm-imu, channels=6, rate=100");

  g_autofree float *samples = g_new (float, n * 6);
  for (int i = 0; i < n * 6; i++)
    samples[i] = (float) sin (i * 0.37) * (1 + i % 6);
  for (int i = 0; i < n; i += 50) {
    GstBuffer *b = gst_buffer_new_memdup (samples + i * 6, 50 * 6 * sizeof (float));
    GST_BUFFER_PTS (b) = i * GST_SECOND / rate;
    g_assert_cmpint (gst_harness_push (h, b), ==, GST_FLOW_OK);
  }
  g_assert_cmpuint (gst_harness_buffers_received (h), ==, 2);
  gst_harness_push_event (h, gst_event_new_eos ());
  g_assert_cmpuint (gst_harness_buffers_received (h), ==, 3);
  assert_src_caps (h, OL_MODALITY_IMU);

  /* the window at 2 s, channel-major */
  const OlModalityInfo *mi = modality_info (OL_MODALITY_IMU);
  g_autofree float *signal = g_new (float, 6 * 2 * rate);
  g_autofree float *input = g_new (float, input_size (OL_MODALITY_IMU));
  for (int i = 0; i < 2 * rate; i++)
    for (int c = 0; c < 6; c++)
      signal[c * 2 * rate + i] = samples[(2 * rate + i) * 6 + c];
  g_assert_true (ol_preprocess_imu (signal, 6, 2 * rate, rate, (int) mi->input_shape[1], input, NULL));
  for (int i = 0; i < 3; i++) {
    GstBuffer *out = gst_harness_pull (h);
    assert_times (out, 2 * i * GST_SECOND, i < 2 ? 2 * GST_SECOND : GST_SECOND);
    if (i == 1)
      assert_tokens (out, OL_MODALITY_IMU, input);
    gst_buffer_unref (out);
  }
  gst_harness_teardown (h);
}

static gpointer
push_photos (gpointer data)
{
  GstHarness *rgb = data;
  for (int i = 0; i < 3; i++)
    g_assert_cmpint (gst_harness_push (rgb, rgb_frame (92, 60, i, i * GST_SECOND, GST_SECOND)), ==,
                     GST_FLOW_OK);
  return NULL;
}

static gpointer
push_map (gpointer data)
{
  GstHarness *h = data;
  GstBuffer *b = gst_buffer_new_allocate (NULL, 72 * 50, NULL);
  gst_buffer_memset (b, 0, 128, 72 * 50);
  GST_BUFFER_PTS (b) = 10 * GST_SECOND;
  return GINT_TO_POINTER (gst_harness_push (h, b));
}

static void
test_depth (void)
{
  /* map only: the rgb pad is not linked */
  GstElement *e = gst_element_factory_make ("onellmdepthtok", NULL);
  g_object_set (e, "model", tiny_path, NULL);
  GstHarness *h = gst_harness_new_with_element (e, "map", "src");
  gst_object_unref (e);
  g_assert_true (accepts (h, "video/x-raw, format=GRAY16_LE, width=64, height=48, framerate=1/1"));
  g_assert_false (accepts (h, "video/x-raw, format=v210, width=64, height=48, framerate=1/1"));
  gst_harness_set_src_caps_str (h, "video/x-raw, format=GRAY16_LE, width=72, height=50, framerate=1/1");
  GstBuffer *map16 = gst_buffer_new_allocate (NULL, 72 * 50 * 2, NULL);
  guint8 map8[72 * 50];
  GstMapInfo m;
  gst_buffer_map (map16, &m, GST_MAP_WRITE);
  for (int i = 0; i < 72 * 50; i++) {
    guint16 v = (guint16) (i * 997);
    m.data[2 * i] = v & 0xff;
    m.data[2 * i + 1] = v >> 8;
    map8[i] = v >> 8;
  }
  gst_buffer_unmap (map16, &m);
  GST_BUFFER_PTS (map16) = 0;
  g_assert_cmpint (gst_harness_push (h, map16), ==, GST_FLOW_OK);
  GstBuffer *out = gst_harness_pull (h);
  g_autofree float *input = g_new (float, input_size (OL_MODALITY_DEPTH));
  OlImage map_image = { map8, 72, 50, 72, OL_PIXEL_GRAY8 };
  g_assert_true (ol_preprocess_image_pair (NULL, &map_image, 224, input, NULL));
  assert_tokens (out, OL_MODALITY_DEPTH, input);
  assert_src_caps (h, OL_MODALITY_DEPTH);
  gst_buffer_unref (out);
  gst_harness_teardown (h);

  /* with the photo: the map at 1 s pairs with the RGB frame at 1 s, not the one at 0 or 2 s */
  e = gst_element_factory_make ("onellmdepthtok", NULL);
  g_object_set (e, "model", tiny_path, "interval", (guint64) 0, NULL);
  h = gst_harness_new_with_element (e, "map", "src");
  gst_object_unref (e);
  GstHarness *rgb = gst_harness_new_with_element (h->element, "rgb", NULL);
  gst_harness_set_src_caps_str (h, "video/x-raw, format=GRAY8, width=72, height=50, framerate=1/1");
  gst_harness_set_src_caps_str (rgb, "video/x-raw, format=RGB, width=92, height=60, framerate=1/1");
  /* the rgb pad holds one frame ahead and waits for the map: its stream runs in a thread of its own */
  GstBuffer *photo = rgb_frame (92, 60, 1, GST_SECOND, GST_SECOND);
  GThread *t = g_thread_new ("rgb", push_photos, rgb);
  GstBuffer *map_buf = gst_buffer_new_memdup (map8, sizeof (map8));
  GST_BUFFER_PTS (map_buf) = GST_SECOND;
  g_assert_cmpint (gst_harness_push (h, map_buf), ==, GST_FLOW_OK);
  out = gst_harness_pull (h);
  GstMapInfo pm;
  OlImage photo_image = image_of (photo, &pm, 92, 60, OL_PIXEL_RGB, 3);
  g_assert_true (ol_preprocess_image_pair (&photo_image, &map_image, 224, input, NULL));
  gst_buffer_unmap (photo, &pm);
  assert_tokens (out, OL_MODALITY_DEPTH, input);
  assert_times (out, GST_SECOND, GST_CLOCK_TIME_NONE);
  gst_buffer_unref (out);
  gst_buffer_unref (photo);
  g_thread_join (t);

  /* a map waiting for its photo while the element stops: the wait ends, nothing deadlocks */
  t = g_thread_new ("map", push_map, h);
  g_usleep (G_USEC_PER_SEC / 10);
  gst_element_set_state (h->element, GST_STATE_NULL);
  g_assert_cmpint (GPOINTER_TO_INT (g_thread_join (t)), ==, GST_FLOW_FLUSHING);
  gst_harness_teardown (rgb);
  gst_harness_teardown (h);
}

/* Runs "filesrc location=path ! element" to EOS and returns what came out. */
static GList *
run_file (const char *element, const char *path)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *desc =
      g_strdup_printf ("filesrc location=\"%s\" ! %s model=\"%s\" ! appsink name=out sync=false", path,
                       element, tiny_path);
  GstElement *pipeline = gst_parse_launch (desc, &error);
  g_assert_no_error (error);
  GstElement *sink = gst_bin_get_by_name (GST_BIN (pipeline), "out");
  g_assert_cmpint (gst_element_set_state (pipeline, GST_STATE_PLAYING), !=, GST_STATE_CHANGE_FAILURE);
  GList *buffers = NULL;
  GstSample *sample;
  while ((sample = gst_app_sink_pull_sample (GST_APP_SINK (sink)))) {
    buffers = g_list_append (buffers, gst_buffer_ref (gst_sample_get_buffer (sample)));
    gst_sample_unref (sample);
  }
  g_autoptr (GstBus) bus = gst_element_get_bus (pipeline);
  g_autoptr (GstMessage) msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  if (msg) {
    g_autoptr (GError) err = NULL;
    gst_message_parse_error (msg, &err, NULL);
    g_error ("%s: %s", element, err->message);
  }
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (sink);
  gst_object_unref (pipeline);
  return buffers;
}

static char *
temp_file (const char *suffix, const void *data, gsize size)
{
  g_autofree char *name = g_strdup_printf ("onellm-gst-XXXXXX%s", suffix);
  char *path = NULL;
  int fd = g_file_open_tmp (name, &path, NULL);
  g_assert_cmpint (fd, >=, 0);
  close (fd);
  if (data)
    g_assert_true (g_file_set_contents (path, data, size, NULL));
  return path;
}

static void
prepare_points (const float *points, gint64 n, float *input)
{
  const OlModalityInfo *mi = modality_info (OL_MODALITY_POINT);
  OlPointParams params;
  ol_point_params_init (&params);
  params.n_points = (int) mi->input_shape[0];
  params.n_groups = (int) mi->tokens;
  params.group_size = (int) mi->group_size;
  g_autofree gint32 *fps = g_new (gint32, params.n_groups);
  g_autofree gint32 *knn = g_new (gint32, (gsize) params.n_groups * params.group_size);
  g_assert_true (ol_point_prepare (points, n, &params, input, fps, knn, NULL));
}

static void
test_point (void)
{
  /* 1500 points with 8-bit colours, written as .npy, ASCII .ply and binary .ply */
  const int n = 1500;
  g_autofree float *points = g_new (float, n * 6);
  GString *ascii =
      g_string_new ("ply\nformat ascii 1.0\ncomment test\nelement vertex 1500\nproperty float x\n"
                    "property float y\nproperty float z\nproperty uchar red\nproperty uchar green\n"
                    "property uchar blue\nproperty uchar alpha\nend_header\n");
  GString *binary =
      g_string_new ("ply\r\nformat binary_little_endian 1.0\r\nelement vertex 1500\r\n"
                    "property double x\r\nproperty float y\r\nproperty float z\r\nproperty uchar red\r\n"
                    "property uchar green\r\nproperty uchar blue\r\nelement face 0\r\n"
                    "property list uchar int vertex_indices\r\nend_header\r\n");
  for (int i = 0; i < n; i++) {
    float xyz[3] = { (float) sin (i * 0.1), (float) cos (i * 0.07), (float) (i % 37) / 8 };
    guint8 rgb[3] = { (guint8) (i * 7), (guint8) (i % 5 * 60), (guint8) (i / 6) };
    g_string_append_printf (ascii, "%.9g %.9g %.9g %u %u %u 255\n", xyz[0], xyz[1], xyz[2], rgb[0], rgb[1],
                            rgb[2]);
    double x = xyz[0];
    g_string_append_len (binary, (const char *) &x, 8);
    g_string_append_len (binary, (const char *) &xyz[1], 8);
    g_string_append_len (binary, (const char *) rgb, 3);
    for (int c = 0; c < 3; c++) {
      points[i * 6 + c] = xyz[c];
      points[i * 6 + 3 + c] = (float) (rgb[c] / 255.0);
    }
  }
  g_autofree char *npy = temp_file (".npy", NULL, 0);
  g_assert_true (ol_npy_write (npy, points, 2, (gint64[]) { n, 6 }, NULL));
  g_autofree char *ply_a = temp_file (".ply", ascii->str, ascii->len);
  g_autofree char *ply_b = temp_file (".ply", binary->str, binary->len);
  g_string_free (ascii, TRUE);
  g_string_free (binary, TRUE);

  g_autofree float *input = g_new (float, input_size (OL_MODALITY_POINT));
  prepare_points (points, n, input);
  const char *files[] = { npy, ply_a, ply_b };
  for (guint f = 0; f < G_N_ELEMENTS (files); f++) {
    GList *out = run_file ("onellmpointtok", files[f]);
    g_assert_cmpuint (g_list_length (out), ==, 1);
    assert_tokens (out->data, OL_MODALITY_POINT, input);
    g_list_free_full (out, (GDestroyNotify) gst_buffer_unref);
    g_unlink (files[f]);
  }

  /* raw clouds: one per buffer, with its timestamps */
  GstHarness *h = harness ("onellmpointtok", NULL);
  g_assert_true (accepts (h, "application/x-onellm-points, channels=6"));
  g_assert_false (accepts (h, "application/x-onellm-points, channels=3"));
  gst_harness_set_src_caps_str (h, "application/x-onellm-points, channels=6");
  GstBuffer *b = gst_buffer_new_memdup (points, (gsize) n * 6 * sizeof (float));
  GST_BUFFER_PTS (b) = 3 * GST_SECOND;
  GST_BUFFER_DURATION (b) = GST_SECOND;
  g_assert_cmpint (gst_harness_push (h, b), ==, GST_FLOW_OK);
  GstBuffer *o = gst_harness_pull (h);
  assert_times (o, 3 * GST_SECOND, GST_SECOND);
  assert_tokens (o, OL_MODALITY_POINT, input);
  assert_src_caps (h, OL_MODALITY_POINT);
  gst_buffer_unref (o);
  /* too few points for the groups: an element error, not a crash */
  g_assert_cmpint (gst_harness_push (h, gst_buffer_new_memdup (points, 10 * 6 * sizeof (float))), ==,
                   GST_FLOW_ERROR);
  gst_harness_teardown (h);
}

static void
test_fmri (void)
{
  const OlModalityInfo *mi = modality_info (OL_MODALITY_FMRI);
  const int v = (int) mi->input_shape[1];
  g_autofree float *data = g_new (float, 2 * v);
  for (int i = 0; i < 2 * v; i++)
    data[i] = (float) sin (i * 0.013);
  g_autofree float *input = g_new (float, input_size (OL_MODALITY_FMRI));
  g_assert_true (ol_preprocess_fmri (data, 2, v, v, input, NULL));

  g_autofree char *npy = temp_file (".npy", NULL, 0);
  g_assert_true (ol_npy_write (npy, data, 2, (gint64[]) { 2, v }, NULL));
  GList *out = run_file ("onellmfmritok", npy);
  g_assert_cmpuint (g_list_length (out), ==, 1);
  assert_tokens (out->data, OL_MODALITY_FMRI, input);
  g_list_free_full (out, (GDestroyNotify) gst_buffer_unref);
  g_unlink (npy);

  GstHarness *h = harness ("onellmfmritok", NULL);
  g_autofree char *caps = g_strdup_printf ("application/x-onellm-fmri, voxels=%d", v);
  gst_harness_set_src_caps_str (h, caps);
  g_assert_cmpint (gst_harness_push (h, gst_buffer_new_memdup (data, 2 * v * sizeof (float))), ==,
                   GST_FLOW_OK);
  GstBuffer *o = gst_harness_pull (h);
  assert_tokens (o, OL_MODALITY_FMRI, input);
  assert_src_caps (h, OL_MODALITY_FMRI);
  gst_buffer_unref (o);
  /* another voxel count than the model's: the caps are refused */
  g_autoptr (GstCaps) wrong =
      gst_caps_new_simple ("application/x-onellm-fmri", "voxels", G_TYPE_INT, v - 1, NULL);
  gst_harness_set_src_caps (h, gst_caps_ref (wrong));
  g_assert_cmpint (gst_harness_push (h, gst_buffer_new_memdup (data, (v - 1) * sizeof (float))), ==,
                   GST_FLOW_NOT_NEGOTIATED);
  gst_harness_teardown (h);
}

/* The model of an element's "onellm.model" context (a GstOnellmModel pointer, compared only). */
static gpointer
context_model (GstElement *e)
{
  GstContext *context = gst_element_get_context (e, "onellm.model");
  g_assert_nonnull (context);
  const GValue *v = gst_structure_get_value (gst_context_get_structure (context), "model");
  gpointer model_ptr = g_value_get_boxed (v);
  gst_context_unref (context);
  return model_ptr;
}

static GstElement *
pipeline_with (const char *desc_fmt, GstElement **a, GstElement **b)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *desc = g_strdup_printf (desc_fmt, tiny_path, tiny_path);
  GstElement *p = gst_parse_launch (desc, &error);
  g_assert_no_error (error);
  *a = gst_bin_get_by_name (GST_BIN (p), "a");
  *b = gst_bin_get_by_name (GST_BIN (p), "b");
  g_assert_cmpint (gst_element_set_state (p, GST_STATE_PAUSED), !=, GST_STATE_CHANGE_FAILURE);
  g_assert_cmpint (gst_element_get_state (p, NULL, NULL, GST_CLOCK_TIME_NONE), ==, GST_STATE_CHANGE_SUCCESS);
  return p;
}

static void
test_context (void)
{
  GstElement *a, *b, *c, *d;
  /* in one pipeline: the second element gets the first one's model through the context */
  GstElement *p1 =
      pipeline_with ("videotestsrc num-buffers=1 ! videoconvert ! onellmimagetok name=a model=\"%s\" ! "
                     "fakesink audiotestsrc num-buffers=1 ! onellmaudiotok name=b model=\"%s\" ! fakesink",
                     &a, &b);
  gpointer shared = context_model (a);
  g_assert_true (context_model (b) == shared);
  /* elements answer the context query (what onellmencoder asks its upstream) with their model */
  GstQuery *query = gst_query_new_context ("onellm.model");
  GstPad *pad = gst_element_get_static_pad (a, "src");
  g_assert_true (gst_pad_query (pad, query));
  GstContext *answer = NULL;
  gst_query_parse_context (query, &answer);
  const GstStructure *st = gst_context_get_structure (answer);
  g_assert_true (g_value_get_boxed (gst_structure_get_value (st, "model")) == shared);
  gst_object_unref (pad);
  gst_query_unref (query);
  /* another pipeline: the process cache */
  GstElement *p2 =
      pipeline_with ("videotestsrc num-buffers=1 ! videoconvert ! onellmvideotok name=a model=\"%s\" ! "
                     "fakesink videotestsrc num-buffers=1 ! videoconvert ! onellmnormaltok name=b "
                     "model=\"%s\" ! fakesink",
                     &c, &d);
  g_assert_true (context_model (c) == shared);
  g_assert_true (context_model (d) == shared);
  GstElement *elements[] = { a, b, c, d, p1, p2 };
  gst_element_set_state (p1, GST_STATE_NULL);
  gst_element_set_state (p2, GST_STATE_NULL);
  for (guint i = 0; i < G_N_ELEMENTS (elements); i++)
    gst_object_unref (elements[i]);

  /* two models in one pipeline (another file name is another model): each element keeps its own even though
   * the bin passes every context to every child, and both run to the end */
  g_autofree char *other = temp_file (".gguf", NULL, 0);
  g_unlink (other);
  g_assert_cmpint (symlink (tiny_path, other), ==, 0);
  g_autoptr (GError) error = NULL;
  g_autofree char *desc =
      g_strdup_printf ("videotestsrc num-buffers=2 ! videoconvert ! onellmimagetok name=a "
                       "model=\"%s\" interval=0 ! fakesink audiotestsrc num-buffers=2 ! "
                       "onellmaudiotok name=b model=\"%s\" ! fakesink",
                       tiny_path, other);
  GstElement *p3 = gst_parse_launch (desc, &error);
  g_assert_no_error (error);
  a = gst_bin_get_by_name (GST_BIN (p3), "a");
  b = gst_bin_get_by_name (GST_BIN (p3), "b");
  gst_element_set_state (p3, GST_STATE_PLAYING);
  g_autoptr (GstBus) bus = gst_element_get_bus (p3);
  g_autoptr (GstMessage) msg =
      gst_bus_timed_pop_filtered (bus, GST_CLOCK_TIME_NONE, GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  g_assert_cmpint (GST_MESSAGE_TYPE (msg), ==, GST_MESSAGE_EOS);
  g_assert_true (context_model (a) != context_model (b));
  gst_element_set_state (p3, GST_STATE_NULL);
  gst_object_unref (a);
  gst_object_unref (b);
  gst_object_unref (p3);
  g_unlink (other);
}

/* Starting element with model gives an error message naming want. */
static void
expect_start_error (const char *element, const char *model_path, const char *want)
{
  GstElement *e = gst_element_factory_make (element, NULL);
  GstElement *pipeline = gst_pipeline_new (NULL);
  gst_bin_add (GST_BIN (pipeline), e);
  g_object_set (e, "model", model_path, NULL);
  g_assert_cmpint (gst_element_set_state (pipeline, GST_STATE_PAUSED), ==, GST_STATE_CHANGE_FAILURE);
  g_autoptr (GstBus) bus = gst_element_get_bus (pipeline);
  g_autoptr (GstMessage) msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  g_assert_nonnull (msg);
  g_autoptr (GError) err = NULL;
  gst_message_parse_error (msg, &err, NULL);
  if (strstr (err->message, want) == NULL)
    g_error ("'%s' does not say '%s'", err->message, want);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (pipeline);
}

/* The tiny model with only the image modality declared. */
static char *
image_only_model (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (OlGguf) src = ol_gguf_open (tiny_path, &error);
  g_assert_no_error (error);
  g_autoptr (OlGgufWriter) w = ol_gguf_writer_new ();
  for (gsize i = 0; i < ol_gguf_n_keys (src); i++) {
    OlGgufValue v;
    const char *k = ol_gguf_key (src, i);
    g_assert_true (ol_gguf_get_value (src, k, &v, NULL));
    if (strcmp (k, "onellm.modalities") == 0)
      ol_gguf_writer_set_string_array (w, k, (const char *const[]) { "image" }, 1);
    else
      ol_gguf_writer_set_value (w, k, &v);
  }
  for (gsize i = 0; i < ol_gguf_n_tensors (src); i++) {
    const OlGgufTensor *t = ol_gguf_tensor (src, i);
    g_assert_true (ol_gguf_writer_add_tensor (w, t->name, t->type, t->n_dims, t->ne, t->data, &error));
  }
  char *path = temp_file (".gguf", NULL, 0);
  g_assert_true (ol_gguf_writer_write (w, path, &error));
  g_assert_no_error (error);
  return path;
}

static void
test_errors (void)
{
  /* the device error needs the plugin to open its device afresh: no model may be loaded */
  g_clear_pointer (&keeper, gst_harness_teardown);
  expect_start_error ("onellmimagetok", "/nonexistent/model.gguf", "/nonexistent/model.gguf");
  g_autofree char *corrupt = temp_file (".gguf", "GGUF", 4);
  expect_start_error ("onellmaudiotok", corrupt, "Could not load the OneLLM model");
  g_unlink (corrupt);
  g_autofree char *image_only = image_only_model ();
  expect_start_error ("onellmpointtok", image_only, "has no point modality");
  g_unlink (image_only);
  /* no Vulkan device (the plugin opens its device with the first model it loads) */
  g_setenv ("ONELLM_VK_DEVICE", "no-such-device", TRUE);
  expect_start_error ("onellmimutok", tiny_path, "no Vulkan device matches 'no-such-device'");
  g_unsetenv ("ONELLM_VK_DEVICE");
}

int
main (int argc, char **argv)
{
  gst_init (&argc, &argv);
  g_test_init (&argc, &argv, NULL);
  tiny_path = g_getenv ("ONELLM_TINY_MODEL");
  if (tiny_path == NULL) {
    g_printerr ("ONELLM_TINY_MODEL is not set\n");
    return 1;
  }
  g_test_add_func ("/gst/image", test_image);
  g_test_add_func ("/gst/image-yuv", test_image_yuv);
  g_test_add_func ("/gst/video", test_video);
  g_test_add_func ("/gst/audio", test_audio);
  g_test_add_func ("/gst/imu", test_imu);
  g_test_add_func ("/gst/depth", test_depth);
  g_test_add_func ("/gst/point", test_point);
  g_test_add_func ("/gst/fmri", test_fmri);
  g_test_add_func ("/gst/context", test_context);
  g_test_add_func ("/gst/errors", test_errors);
  keeper = harness ("onellmimutok", NULL);
  int ret = g_test_run ();
  g_clear_pointer (&keeper, gst_harness_teardown);
  g_clear_pointer (&encoder, ol_encoder_free);
  g_clear_pointer (&model, ol_model_free);
  g_clear_pointer (&device, ol_device_free);
  return ret;
}
