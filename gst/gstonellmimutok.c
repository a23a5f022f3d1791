/* onellmimutok: 6-axis IMU samples → OneLLM IMU tokens of 2-second windows (resampled to 200 Hz). */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstonellmelements.h"
#include "gstonellmtokenizer.h"

GST_DEBUG_CATEGORY_STATIC (gst_onellm_imu_tok_debug);
#define GST_CAT_DEFAULT gst_onellm_imu_tok_debug

#define GST_TYPE_ONELLM_IMU_TOK (gst_onellm_imu_tok_get_type ())
G_DECLARE_FINAL_TYPE (GstOnellmImuTok, gst_onellm_imu_tok, GST, ONELLM_IMU_TOK, GstOnellmTokenizer)

struct _GstOnellmImuTok {
  GstOnellmTokenizer parent;
  GstOnellmSamples samples;
  float *signal, *input;
};

G_DEFINE_TYPE (GstOnellmImuTok, gst_onellm_imu_tok, GST_TYPE_ONELLM_TOKENIZER)
GST_ELEMENT_REGISTER_DEFINE (onellmimutok, "onellmimutok", GST_RANK_NONE, GST_TYPE_ONELLM_IMU_TOK)

/* Interleaved float32 frames of accelerometer xyz then gyroscope xyz, in physical units; audio caps
 * serve as a carrier for sources that only speak audio. */
static GstStaticPadTemplate sink_template =
    GST_STATIC_PAD_TEMPLATE ("sink", GST_PAD_SINK, GST_PAD_ALWAYS,
                             GST_STATIC_CAPS (
                                 "application/x-onellm-imu, channels = (int) 6, rate = (int) [ 1, MAX ]; "
                                 "audio/x-raw, format = (string) F32LE, layout = (string) interleaved, "
                                 "channels = (int) 6, "
                                 "rate = (int) [ 1, MAX ]"));

static gboolean
gst_onellm_imu_tok_set_caps (GstOnellmTokenizer *tok, GstPad *pad, GstCaps *caps)
{
  GstOnellmImuTok *self = GST_ONELLM_IMU_TOK (tok);
  int rate;
  if (!gst_structure_get_int (gst_caps_get_structure (caps, 0), "rate", &rate))
    return FALSE;
  gst_onellm_samples_set_format (&self->samples, OL_IMU_CHANNELS * sizeof (float), rate);
  return TRUE;
}

/* At most the model's input length at 200 Hz (400 samples: 2 s); shorter windows are zero-padded. */
static GstClockTime
window (GstOnellmImuTok *self)
{
  GstOnellmTokenizer *tok = GST_ONELLM_TOKENIZER (self);
  const OlModalityInfo *mi = gst_onellm_tokenizer_get_modality_info (tok);
  return MIN (gst_onellm_tokenizer_get_window (tok),
              gst_util_uint64_scale_int (mi->input_shape[1], GST_SECOND, OL_IMU_RATE));
}

static GstFlowReturn
emit (GstOnellmImuTok *self, guint64 n)
{
  GstOnellmTokenizer *tok = GST_ONELLM_TOKENIZER (self);
  const OlModalityInfo *mi = gst_onellm_tokenizer_get_modality_info (tok);
  const float *frames = (const float *) self->samples.data->data;
  g_autoptr (GError) error = NULL;
  if (self->input == NULL)
    self->input = g_new (float, gst_onellm_tokenizer_input_size (tok));
  /* channel-major, as the engine and imu2clip take it */
  self->signal = g_renew (float, self->signal, OL_IMU_CHANNELS * n);
  for (guint64 i = 0; i < n; i++)
    for (int c = 0; c < OL_IMU_CHANNELS; c++)
      self->signal[c * n + i] = frames[i * OL_IMU_CHANNELS + c];
  if (!ol_preprocess_imu (self->signal, OL_IMU_CHANNELS, (gint64) n, self->samples.rate,
                          (int) mi->input_shape[1], self->input, &error))
    return gst_onellm_tokenizer_input_error (tok, error);
  return gst_onellm_tokenizer_push_window (tok, self->input, self->samples.start,
                                           gst_util_uint64_scale_round (n, GST_SECOND, self->samples.rate));
}

static GstFlowReturn
gst_onellm_imu_tok_handle_buffer (GstOnellmTokenizer *tok, GstPad *pad, GstBuffer *buffer)
{
  GstOnellmImuTok *self = GST_ONELLM_IMU_TOK (tok);
  GstFlowReturn ret = GST_FLOW_OK;

  gst_onellm_samples_push (&self->samples, buffer);
  gst_buffer_unref (buffer);
  guint64 w = gst_onellm_samples_window_frames (&self->samples, window (self));
  guint64 step = gst_onellm_samples_window_frames (&self->samples, gst_onellm_tokenizer_get_interval (tok));
  while (ret == GST_FLOW_OK && self->samples.n_frames >= w) {
    ret = emit (self, w);
    gst_onellm_samples_window_done (&self->samples, w, step);
  }
  return ret;
}

static GstFlowReturn
gst_onellm_imu_tok_drain (GstOnellmTokenizer *tok)
{
  GstOnellmImuTok *self = GST_ONELLM_IMU_TOK (tok);
  GstOnellmSamples *s = &self->samples;
  /* a shorter last window, zero-padded by the engine, if it holds samples no window had */
  if (s->n_frames <= s->covered)
    return GST_FLOW_OK;
  GstFlowReturn ret = emit (self, s->n_frames);
  gst_onellm_samples_clear (s);
  return ret;
}

static void
gst_onellm_imu_tok_reset (GstOnellmTokenizer *tok)
{
  GstOnellmImuTok *self = GST_ONELLM_IMU_TOK (tok);
  gst_onellm_samples_clear (&self->samples);
  g_clear_pointer (&self->input, g_free);
}

static void
gst_onellm_imu_tok_finalize (GObject *object)
{
  GstOnellmImuTok *self = GST_ONELLM_IMU_TOK (object);
  gst_onellm_samples_free (&self->samples);
  g_free (self->signal);
  g_free (self->input);
  G_OBJECT_CLASS (gst_onellm_imu_tok_parent_class)->finalize (object);
}

static void
gst_onellm_imu_tok_init (GstOnellmImuTok *self)
{
  gst_onellm_samples_init (&self->samples);
}

static void
gst_onellm_imu_tok_class_init (GstOnellmImuTokClass *klass)
{
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstOnellmTokenizerClass *tok_class = GST_ONELLM_TOKENIZER_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = gst_onellm_imu_tok_finalize;
  gst_onellm_tokenizer_class_set_modality (tok_class, OL_MODALITY_IMU);
  tok_class->set_caps = gst_onellm_imu_tok_set_caps;
  tok_class->handle_buffer = gst_onellm_imu_tok_handle_buffer;
  tok_class->drain = gst_onellm_imu_tok_drain;
  tok_class->reset = gst_onellm_imu_tok_reset;
  /* the model takes 400 samples at 200 Hz: 2 s; longer windows are cut to them */
  gst_onellm_tokenizer_class_install_window_properties (tok_class, 2 * GST_SECOND, 2 * GST_SECOND,
                                                        2 * GST_SECOND);
  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_set_static_metadata (element_class, "OneLLM IMU tokenizer", "Filter/Sensor",
                                         "Turns 2-second windows of 6-axis IMU samples (accelerometer, "
                                         "gyroscope; any rate, resampled to 200 Hz) "
                                         "into OneLLM IMU tokens for onellmencoder",
                                         "gst-onellm");
  GST_DEBUG_CATEGORY_INIT (gst_onellm_imu_tok_debug, "onellmimutok", 0, "OneLLM IMU tokenizer");
}
