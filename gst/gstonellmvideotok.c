/* onellmvideotok: video frames → OneLLM video tokens of sliding windows of frames. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstonellmelements.h"
#include "gstonellmtokenizer.h"

GST_DEBUG_CATEGORY_STATIC (gst_onellm_video_tok_debug);
#define GST_CAT_DEFAULT gst_onellm_video_tok_debug

#define GST_TYPE_ONELLM_VIDEO_TOK (gst_onellm_video_tok_get_type ())
G_DECLARE_FINAL_TYPE (GstOnellmVideoTok, gst_onellm_video_tok, GST, ONELLM_VIDEO_TOK, GstOnellmTokenizer)

/* The window [start, start + window) collects the frames whose timestamps fall in it; when a frame at or
 * past its end arrives (or EOS), T frames spread evenly over the collected ones are preprocessed (3 crops
 * each when the model's frame count allows, as the official pipeline does) and the window moves on by
 * the interval. Frames from a buffer pool are copied, so a live source's pool never runs dry. */
struct _GstOnellmVideoTok {
  GstOnellmTokenizer parent;
  GstVideoInfo info;
  GPtrArray *frames;          /* GstBuffer, in the current window, timestamps ascending */
  GstClockTime start;         /* of the current window; GST_CLOCK_TIME_NONE before the first frame */
  GstClockTime emitted_end;   /* end of the last window that went out */
  GstClockTime next_pts;      /* for frames without timestamps */
  GstOnellmFrameScratch scratch;
  float *input;
};

G_DEFINE_TYPE (GstOnellmVideoTok, gst_onellm_video_tok, GST_TYPE_ONELLM_TOKENIZER)
GST_ELEMENT_REGISTER_DEFINE (onellmvideotok, "onellmvideotok", GST_RANK_NONE, GST_TYPE_ONELLM_VIDEO_TOK)

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink", GST_PAD_SINK, GST_PAD_ALWAYS,
    GST_STATIC_CAPS (GST_VIDEO_CAPS_MAKE (GST_ONELLM_VIDEO_FORMATS)));

static gboolean
gst_onellm_video_tok_set_caps (GstOnellmTokenizer *tok, GstPad *pad, GstCaps *caps)
{
  GstOnellmVideoTok *self = GST_ONELLM_VIDEO_TOK (tok);
  return gst_video_info_from_caps (&self->info, caps);
}

static GstFlowReturn
emit (GstOnellmVideoTok *self, GstClockTime end)
{
  GstOnellmTokenizer *tok = GST_ONELLM_TOKENIZER (self);
  g_autoptr (GError) error = NULL;
  const OlModelInfo *info = gst_onellm_tokenizer_get_model_info (tok);
  const OlModalityInfo *mi = gst_onellm_tokenizer_get_modality_info (tok);
  int crops = mi->input_shape[0] % 3 == 0 ? 3 : 1, samples = (int) mi->input_shape[0] / crops;
  gsize per_frame = (gsize) crops * 3 * info->image_size * info->image_size;
  gint64 indices[samples];

  if (self->input == NULL)
    self->input = g_new (float, gst_onellm_tokenizer_input_size (tok));
  if (!ol_video_window_frames (self->frames->len, samples, indices, &error))
    return gst_onellm_tokenizer_input_error (tok, error);
  for (int i = 0; i < samples; i++) {
    GstVideoFrame frame;
    OlImage image;
    if (!gst_video_frame_map (&frame, &self->info, g_ptr_array_index (self->frames, indices[i]),
                              GST_MAP_READ)) {
      GST_ELEMENT_ERROR (self, STREAM, FORMAT, ("Could not map a video frame"), (NULL));
      return GST_FLOW_ERROR;
    }
    gst_onellm_video_frame_to_image (&frame, &self->scratch, &image);
    float *out = self->input + i * per_frame;
    gboolean ok = ol_preprocess_video_frame (&image, (int) info->image_size, crops, out, &error);
    gst_video_frame_unmap (&frame);
    if (!ok)
      return gst_onellm_tokenizer_input_error (tok, error);
  }
  self->emitted_end = end;
  return gst_onellm_tokenizer_push_window (tok, self->input, self->start, end - self->start);
}

/* Moves the window on by the interval and drops the frames before its new start. */
static void
advance (GstOnellmVideoTok *self, GstClockTime interval)
{
  self->start += interval;
  guint keep = 0;
  while (keep < self->frames->len && GST_BUFFER_PTS (g_ptr_array_index (self->frames, keep)) < self->start)
    keep++;
  g_ptr_array_remove_range (self->frames, 0, keep);
}

static GstFlowReturn
gst_onellm_video_tok_handle_buffer (GstOnellmTokenizer *tok, GstPad *pad, GstBuffer *buffer)
{
  GstOnellmVideoTok *self = GST_ONELLM_VIDEO_TOK (tok);
  GstClockTime window = gst_onellm_tokenizer_get_window (tok),
               interval = gst_onellm_tokenizer_get_interval (tok);
  GstFlowReturn ret = GST_FLOW_OK;

  if (GST_BUFFER_PTS (buffer) == GST_CLOCK_TIME_NONE) {
    /* untimed frames are placed at the frame rate (25 fps if the caps do not say) */
    buffer = gst_buffer_make_writable (buffer);
    GST_BUFFER_PTS (buffer) = self->next_pts;
  }
  GstClockTime pts = GST_BUFFER_PTS (buffer);
  self->next_pts =
      pts + (self->info.fps_n > 0 ? gst_util_uint64_scale_int (GST_SECOND, self->info.fps_d, self->info.fps_n)
                                  : GST_SECOND / 25);
  if (self->start == GST_CLOCK_TIME_NONE)
    self->start = pts;
  while (ret == GST_FLOW_OK && pts >= self->start + window) {
    if (self->frames->len > 0)
      ret = emit (self, self->start + window);
    advance (self, interval);
    /* a jump in the stream: restart at the frame rather than stepping through empty windows */
    if (self->frames->len == 0 && pts >= self->start + window)
      self->start = pts;
  }
  if (ret != GST_FLOW_OK || pts < self->start) {
    gst_buffer_unref (buffer);
    return ret;
  }
  /* a window holds a second of frames or more: a camera's few pool buffers must go back at once */
  if (buffer->pool) {
    GstBuffer *copy = gst_buffer_copy_deep (buffer);
    gst_buffer_unref (buffer);
    buffer = copy;
  }
  g_ptr_array_add (self->frames, buffer);
  return GST_FLOW_OK;
}

static GstFlowReturn
gst_onellm_video_tok_drain (GstOnellmTokenizer *tok)
{
  GstOnellmVideoTok *self = GST_ONELLM_VIDEO_TOK (tok);
  GstBuffer *last;
  if (self->frames->len == 0)
    return GST_FLOW_OK;
  /* the rest goes out as a shorter window if it holds frames no window had */
  last = g_ptr_array_index (self->frames, self->frames->len - 1);
  if (self->emitted_end != GST_CLOCK_TIME_NONE && GST_BUFFER_PTS (last) < self->emitted_end)
    return GST_FLOW_OK;
  GstClockTime end =
      GST_BUFFER_PTS (last) + (GST_BUFFER_DURATION_IS_VALID (last) ? GST_BUFFER_DURATION (last) : 0);
  end = MIN (end, self->start + gst_onellm_tokenizer_get_window (tok));
  return emit (self, MAX (end, self->start));
}

static void
gst_onellm_video_tok_reset (GstOnellmTokenizer *tok)
{
  GstOnellmVideoTok *self = GST_ONELLM_VIDEO_TOK (tok);
  g_ptr_array_set_size (self->frames, 0);
  self->start = self->emitted_end = GST_CLOCK_TIME_NONE;
  self->next_pts = 0;
  g_clear_pointer (&self->input, g_free);
}

static void
gst_onellm_video_tok_finalize (GObject *object)
{
  GstOnellmVideoTok *self = GST_ONELLM_VIDEO_TOK (object);
  g_ptr_array_unref (self->frames);
  gst_onellm_frame_scratch_clear (&self->scratch);
  g_free (self->input);
  G_OBJECT_CLASS (gst_onellm_video_tok_parent_class)->finalize (object);
}

static void
gst_onellm_video_tok_init (GstOnellmVideoTok *self)
{
  gst_video_info_init (&self->info);
  gst_onellm_frame_scratch_init (&self->scratch);
  self->frames = g_ptr_array_new_with_free_func ((GDestroyNotify) gst_buffer_unref);
  self->start = self->emitted_end = GST_CLOCK_TIME_NONE;
}

static void
gst_onellm_video_tok_class_init (GstOnellmVideoTokClass *klass)
{
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstOnellmTokenizerClass *tok_class = GST_ONELLM_TOKENIZER_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = gst_onellm_video_tok_finalize;
  gst_onellm_tokenizer_class_set_modality (tok_class, OL_MODALITY_VIDEO);
  tok_class->set_caps = gst_onellm_video_tok_set_caps;
  tok_class->handle_buffer = gst_onellm_video_tok_handle_buffer;
  tok_class->drain = gst_onellm_video_tok_drain;
  tok_class->reset = gst_onellm_video_tok_reset;
  gst_onellm_tokenizer_class_install_window_properties (tok_class, GST_SECOND, GST_CLOCK_TIME_NONE,
                                                        GST_SECOND);
  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_set_static_metadata (element_class, "OneLLM video tokenizer", "Filter/Video",
      "Turns windows of video frames into OneLLM video tokens for onellmencoder: the model's frame count "
      "(5 × 3 crops) sampled evenly from each window", "gst-onellm");
  GST_DEBUG_CATEGORY_INIT (gst_onellm_video_tok_debug, "onellmvideotok", 0, "OneLLM video tokenizer");
}
