/* onellmimagetok: video frames → OneLLM image tokens, one frame per interval. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstonellmelements.h"
#include "gstonellmtokenizer.h"

GST_DEBUG_CATEGORY_STATIC (gst_onellm_image_tok_debug);
#define GST_CAT_DEFAULT gst_onellm_image_tok_debug

#define GST_TYPE_ONELLM_IMAGE_TOK (gst_onellm_image_tok_get_type ())
G_DECLARE_FINAL_TYPE (GstOnellmImageTok, gst_onellm_image_tok, GST, ONELLM_IMAGE_TOK, GstOnellmTokenizer)

struct _GstOnellmImageTok {
  GstOnellmTokenizer parent;
  GstVideoInfo info;
  GstClockTime next;
  GstOnellmFrameScratch scratch;
  float *input;
};

G_DEFINE_TYPE (GstOnellmImageTok, gst_onellm_image_tok, GST_TYPE_ONELLM_TOKENIZER)
GST_ELEMENT_REGISTER_DEFINE (onellmimagetok, "onellmimagetok", GST_RANK_NONE, GST_TYPE_ONELLM_IMAGE_TOK)

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink", GST_PAD_SINK, GST_PAD_ALWAYS,
    GST_STATIC_CAPS (GST_VIDEO_CAPS_MAKE (GST_ONELLM_VIDEO_FORMATS)));

static gboolean
gst_onellm_image_tok_set_caps (GstOnellmTokenizer *tok, GstPad *pad, GstCaps *caps)
{
  GstOnellmImageTok *self = GST_ONELLM_IMAGE_TOK (tok);
  return gst_video_info_from_caps (&self->info, caps);
}

static GstFlowReturn
gst_onellm_image_tok_handle_buffer (GstOnellmTokenizer *tok, GstPad *pad, GstBuffer *buffer)
{
  GstOnellmImageTok *self = GST_ONELLM_IMAGE_TOK (tok);
  g_autoptr (GError) error = NULL;
  GstClockTime pts = GST_BUFFER_PTS (buffer), duration;
  GstVideoFrame frame;
  GstFlowReturn ret;
  OlImage image;

  if (!gst_onellm_tokenizer_frame_due (tok, buffer, &self->next, &duration)) {
    gst_buffer_unref (buffer);
    return GST_FLOW_OK;
  }
  if (!gst_video_frame_map (&frame, &self->info, buffer, GST_MAP_READ)) {
    gst_buffer_unref (buffer);
    GST_ELEMENT_ERROR (self, STREAM, FORMAT, ("Could not map a video frame"), (NULL));
    return GST_FLOW_ERROR;
  }
  const OlModelInfo *info = gst_onellm_tokenizer_get_model_info (tok);
  if (self->input == NULL)
    self->input = g_new (float, gst_onellm_tokenizer_input_size (tok));
  gst_onellm_video_frame_to_image (&frame, &self->scratch, &image);
  gboolean ok = ol_preprocess_image (&image, (int) info->image_size, self->input, &error);
  gst_video_frame_unmap (&frame);
  gst_buffer_unref (buffer);
  if (!ok)
    return gst_onellm_tokenizer_input_error (tok, error);
  ret = gst_onellm_tokenizer_push_window (tok, self->input, pts, duration);
  return ret;
}

static void
gst_onellm_image_tok_reset (GstOnellmTokenizer *tok)
{
  GstOnellmImageTok *self = GST_ONELLM_IMAGE_TOK (tok);
  self->next = GST_CLOCK_TIME_NONE;
  g_clear_pointer (&self->input, g_free);
}

static void
gst_onellm_image_tok_finalize (GObject *object)
{
  GstOnellmImageTok *self = GST_ONELLM_IMAGE_TOK (object);
  gst_onellm_frame_scratch_clear (&self->scratch);
  g_free (self->input);
  G_OBJECT_CLASS (gst_onellm_image_tok_parent_class)->finalize (object);
}

static void
gst_onellm_image_tok_init (GstOnellmImageTok *self)
{
  gst_video_info_init (&self->info);
  gst_onellm_frame_scratch_init (&self->scratch);
  self->next = GST_CLOCK_TIME_NONE;
}

static void
gst_onellm_image_tok_class_init (GstOnellmImageTokClass *klass)
{
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstOnellmTokenizerClass *tok_class = GST_ONELLM_TOKENIZER_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = gst_onellm_image_tok_finalize;
  gst_onellm_tokenizer_class_set_modality (tok_class, OL_MODALITY_IMAGE);
  tok_class->set_caps = gst_onellm_image_tok_set_caps;
  tok_class->handle_buffer = gst_onellm_image_tok_handle_buffer;
  tok_class->reset = gst_onellm_image_tok_reset;
  gst_onellm_tokenizer_class_install_window_properties (tok_class, GST_CLOCK_TIME_NONE, GST_CLOCK_TIME_NONE,
                                                        GST_SECOND);
  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_set_static_metadata (element_class, "OneLLM image tokenizer", "Filter/Video",
      "Turns video frames into OneLLM image tokens (CLIP patch embeddings) for onellmencoder, one frame per "
      "interval", "gst-onellm");
  GST_DEBUG_CATEGORY_INIT (gst_onellm_image_tok_debug, "onellmimagetok", 0, "OneLLM image tokenizer");
}
