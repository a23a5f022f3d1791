/* The modality tokenizer elements: caps, windows and timestamps, outputs equal to the engine's, model sharing
 * and errors. */
#include <gst/gst.h>
#include <gst/check/gstharness.h>
#include <gst/app/gstappsink.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>
#include "onellm.h"

static const char *tiny_path;
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
  g_autoptr (GstCaps) want = gst_caps_new_simple ("application/x-onellm-tokens",
      "modality", G_TYPE_STRING, ol_modality_name (m), "frames", G_TYPE_INT, (int) mi->frames,
      "tokens", G_TYPE_INT, (int) mi->tokens, "width", G_TYPE_INT, (int) ol_model_get_info (model)->clip_dim, NULL);
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
  g_assert_false (accepts (h, "video/x-raw, format=I420, width=64, height=48, framerate=10/1"));
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

static void
test_video (void)
{
  GstHarness *h = harness ("onellmvideotok", "window=1000000000 interval=500000000");
  g_assert_true (accepts (h, "video/x-raw, format=BGRx, width=64, height=48, framerate=30/1"));
  g_assert_false (accepts (h, "video/x-raw, format=NV12, width=64, height=48, framerate=30/1"));
  gst_harness_set_src_caps_str (h, "video/x-raw, format=RGB, width=80, height=64, framerate=20/1");

  GPtrArray *frames = g_ptr_array_new_with_free_func ((GDestroyNotify) gst_buffer_unref);
  for (int i = 0; i < 50; i++) {
    GstBuffer *b = rgb_frame (80, 64, i, i * GST_SECOND / 20, GST_SECOND / 20);
    g_ptr_array_add (frames, gst_buffer_ref (b));
    g_assert_cmpint (gst_harness_push (h, b), ==, GST_FLOW_OK);
  }
  /* 2.5 s: windows at 0, 0.5 and 1 s are complete, the one at 1.5 s waits for EOS */
  g_assert_cmpuint (gst_harness_buffers_received (h), ==, 3);
  gst_harness_push_event (h, gst_event_new_eos ());
  g_assert_cmpuint (gst_harness_buffers_received (h), ==, 4);
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
  for (int i = 0; i < 4; i++) {
    GstBuffer *out = gst_harness_pull (h);
    assert_times (out, i * GST_SECOND / 2, GST_SECOND);
    if (i == 1)
      assert_tokens (out, OL_MODALITY_VIDEO, input);
    gst_buffer_unref (out);
  }
  g_ptr_array_unref (frames);
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
    g_assert_cmpint (gst_harness_push (h, audio_buffer (pcm, i, MIN (1000, n - i), channels, rate)), ==, GST_FLOW_OK);
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
    g_assert_cmpint (gst_harness_push (rgb, rgb_frame (92, 60, i, i * GST_SECOND, GST_SECOND)), ==, GST_FLOW_OK);
  return NULL;
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
  g_assert_false (accepts (h, "video/x-raw, format=I420, width=64, height=48, framerate=1/1"));
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
  gst_harness_teardown (rgb);
  gst_harness_teardown (h);
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
  g_test_add_func ("/gst/video", test_video);
  g_test_add_func ("/gst/audio", test_audio);
  g_test_add_func ("/gst/imu", test_imu);
  g_test_add_func ("/gst/depth", test_depth);
  int ret = g_test_run ();
  g_clear_pointer (&encoder, ol_encoder_free);
  g_clear_pointer (&model, ol_model_free);
  g_clear_pointer (&device, ol_device_free);
  return ret;
}
