/* onellmaudiotok: audio samples → OneLLM audio (fbank) tokens of a sliding window. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <gst/audio/audio.h>
#include "gstonellmelements.h"
#include "gstonellmtokenizer.h"

GST_DEBUG_CATEGORY_STATIC (gst_onellm_audio_tok_debug);
#define GST_CAT_DEFAULT gst_onellm_audio_tok_debug

#define GST_TYPE_ONELLM_AUDIO_TOK (gst_onellm_audio_tok_get_type ())
G_DECLARE_FINAL_TYPE (GstOnellmAudioTok, gst_onellm_audio_tok, GST, ONELLM_AUDIO_TOK, GstOnellmTokenizer)

struct _GstOnellmAudioTok {
  GstOnellmTokenizer parent;
  GstAudioInfo info;
  GstOnellmSamples samples;
  float *input;
};

G_DEFINE_TYPE (GstOnellmAudioTok, gst_onellm_audio_tok, GST_TYPE_ONELLM_TOKENIZER)
GST_ELEMENT_REGISTER_DEFINE (onellmaudiotok, "onellmaudiotok", GST_RANK_NONE, GST_TYPE_ONELLM_AUDIO_TOK)

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink", GST_PAD_SINK, GST_PAD_ALWAYS,
    GST_STATIC_CAPS ("audio/x-raw, format = (string) { F32LE, S16LE }, layout = (string) interleaved, "
                     "rate = (int) [ 1, MAX ], channels = (int) [ 1, 64 ]"));

/* The fbank's 25 ms frames every 10 ms: the longest window the model's frame count can hold. */
static GstClockTime
max_window (GstOnellmAudioTok *self)
{
  const OlModalityInfo *mi = gst_onellm_tokenizer_get_modality_info (GST_ONELLM_TOKENIZER (self));
  return (mi->input_shape[2] - 1) * 10 * GST_MSECOND + 25 * GST_MSECOND;
}

static gboolean
gst_onellm_audio_tok_set_caps (GstOnellmTokenizer *tok, GstPad *pad, GstCaps *caps)
{
  GstOnellmAudioTok *self = GST_ONELLM_AUDIO_TOK (tok);
  if (!gst_audio_info_from_caps (&self->info, caps))
    return FALSE;
  gst_onellm_samples_set_format (&self->samples, GST_AUDIO_INFO_BPF (&self->info),
                                 GST_AUDIO_INFO_RATE (&self->info));
  return TRUE;
}

static GstFlowReturn
emit (GstOnellmAudioTok *self, guint64 n_frames)
{
  GstOnellmTokenizer *tok = GST_ONELLM_TOKENIZER (self);
  const OlModalityInfo *mi = gst_onellm_tokenizer_get_modality_info (tok);
  g_autoptr (GError) error = NULL;
  if (self->input == NULL)
    self->input = g_new (float, gst_onellm_tokenizer_input_size (tok));
  OlSampleFormat format =
      GST_AUDIO_INFO_FORMAT (&self->info) == GST_AUDIO_FORMAT_F32LE ? OL_SAMPLE_F32 : OL_SAMPLE_S16;
  if (!ol_preprocess_audio (self->samples.data->data, format, GST_AUDIO_INFO_CHANNELS (&self->info),
                            (gint64) n_frames, self->samples.rate, (int) mi->input_shape[1],
                            (int) mi->input_shape[2], self->input, &error))
    return gst_onellm_tokenizer_input_error (tok, error);
  return gst_onellm_tokenizer_push_window (tok, self->input, self->samples.start,
                                           gst_util_uint64_scale_round (n_frames, GST_SECOND,
                                                                        self->samples.rate));
}

static GstFlowReturn
gst_onellm_audio_tok_handle_buffer (GstOnellmTokenizer *tok, GstPad *pad, GstBuffer *buffer)
{
  GstOnellmAudioTok *self = GST_ONELLM_AUDIO_TOK (tok);
  GstClockTime window = MIN (gst_onellm_tokenizer_get_window (tok), max_window (self));
  GstFlowReturn ret = GST_FLOW_OK;

  gst_onellm_samples_push (&self->samples, buffer);
  gst_buffer_unref (buffer);
  guint64 w = gst_onellm_samples_window_frames (&self->samples, window);
  guint64 step = gst_onellm_samples_window_frames (&self->samples, gst_onellm_tokenizer_get_interval (tok));
  while (ret == GST_FLOW_OK && self->samples.n_frames >= w) {
    ret = emit (self, w);
    gst_onellm_samples_window_done (&self->samples, w, step);
  }
  return ret;
}

static GstFlowReturn
gst_onellm_audio_tok_drain (GstOnellmTokenizer *tok)
{
  GstOnellmAudioTok *self = GST_ONELLM_AUDIO_TOK (tok);
  GstOnellmSamples *s = &self->samples;
  /* a shorter last window if it holds samples no window had and one fbank frame (25 ms) */
  if (s->n_frames <= s->covered || s->n_frames * 40 < (guint64) s->rate)
    return GST_FLOW_OK;
  GstFlowReturn ret = emit (self, s->n_frames);
  gst_onellm_samples_clear (s);
  return ret;
}

static void
gst_onellm_audio_tok_reset (GstOnellmTokenizer *tok)
{
  GstOnellmAudioTok *self = GST_ONELLM_AUDIO_TOK (tok);
  gst_onellm_samples_clear (&self->samples);
  g_clear_pointer (&self->input, g_free);
}

static void
gst_onellm_audio_tok_finalize (GObject *object)
{
  GstOnellmAudioTok *self = GST_ONELLM_AUDIO_TOK (object);
  gst_onellm_samples_free (&self->samples);
  g_free (self->input);
  G_OBJECT_CLASS (gst_onellm_audio_tok_parent_class)->finalize (object);
}

static void
gst_onellm_audio_tok_init (GstOnellmAudioTok *self)
{
  gst_audio_info_init (&self->info);
  gst_onellm_samples_init (&self->samples);
}

static void
gst_onellm_audio_tok_class_init (GstOnellmAudioTokClass *klass)
{
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstOnellmTokenizerClass *tok_class = GST_ONELLM_TOKENIZER_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = gst_onellm_audio_tok_finalize;
  gst_onellm_tokenizer_class_set_modality (tok_class, OL_MODALITY_AUDIO);
  tok_class->set_caps = gst_onellm_audio_tok_set_caps;
  tok_class->handle_buffer = gst_onellm_audio_tok_handle_buffer;
  tok_class->drain = gst_onellm_audio_tok_drain;
  tok_class->reset = gst_onellm_audio_tok_reset;
  /* windows longer than the model's 1024 fbank frames (10.24 s) are cut to them */
  gst_onellm_tokenizer_class_install_window_properties (tok_class, 5 * GST_SECOND, 10240 * GST_MSECOND,
                                                        5 * GST_SECOND);
  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_set_static_metadata (element_class, "OneLLM audio tokenizer", "Filter/Audio",
      "Turns a sliding window of audio (any rate and channel count) into OneLLM audio tokens (Kaldi fbank "
      "at 16 kHz, patch embeddings) for onellmencoder", "gst-onellm");
  GST_DEBUG_CATEGORY_INIT (gst_onellm_audio_tok_debug, "onellmaudiotok", 0, "OneLLM audio tokenizer");
}
