/* Base class of onellmdepthtok and onellmnormaltok: a map stream paired with an optional RGB stream. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstonellmmaptok.h"

#define GST_CAT_DEFAULT (GST_ONELLM_MAP_TOK_GET_CLASS (self)->debug)

/* The map pad drives. Each map frame that is due (one per interval) is paired with the RGB frame of the
 * latest timestamp not after its own: the map's thread waits until the rgb pad has delivered a frame past
 * it (or EOS), and the rgb pad holds at most one frame ahead, waiting for the map to catch up. An unlinked
 * rgb pad means map-only input, where the engine fills both slots with the map (docs/modalities.md). */
typedef struct {
  GstPad *map_pad, *rgb_pad;
  GstVideoInfo map_info, rgb_info;
  GstClockTime next;
  GMutex lock;
  GCond cond;
  GstBuffer *rgb_current, *rgb_next;
  gboolean rgb_eos, flushing;
  GstOnellmFrameScratch map_scratch, rgb_scratch;
  float *input;
} GstOnellmMapTokPrivate;

G_DEFINE_ABSTRACT_TYPE_WITH_CODE (GstOnellmMapTok, gst_onellm_map_tok, GST_TYPE_ONELLM_TOKENIZER,
    G_ADD_PRIVATE (GstOnellmMapTok))

#define PRIV(self)                                                                                           \
  ((GstOnellmMapTokPrivate *)gst_onellm_map_tok_get_instance_private (GST_ONELLM_MAP_TOK (self)))

static void
clear_rgb (GstOnellmMapTokPrivate *priv)
{
  gst_clear_buffer (&priv->rgb_current);
  gst_clear_buffer (&priv->rgb_next);
}

static gboolean
gst_onellm_map_tok_set_caps (GstOnellmTokenizer *tok, GstPad *pad, GstCaps *caps)
{
  GstOnellmMapTokPrivate *priv = PRIV (tok);
  GstVideoInfo info;
  if (!gst_video_info_from_caps (&info, caps))
    return FALSE;
  g_mutex_lock (&priv->lock);
  if (pad == priv->map_pad) {
    priv->map_info = info;
  } else {
    clear_rgb (priv);
    priv->rgb_info = info;
  }
  g_mutex_unlock (&priv->lock);
  return TRUE;
}

static GstFlowReturn
rgb_chain (GstPad *pad, GstObject *parent, GstBuffer *buffer)
{
  GstOnellmMapTokPrivate *priv = PRIV (parent);
  g_mutex_lock (&priv->lock);
  while (priv->rgb_next && !priv->flushing)
    g_cond_wait (&priv->cond, &priv->lock);
  if (priv->flushing) {
    g_mutex_unlock (&priv->lock);
    gst_buffer_unref (buffer);
    return GST_FLOW_FLUSHING;
  }
  priv->rgb_next = buffer;
  g_cond_broadcast (&priv->cond);
  g_mutex_unlock (&priv->lock);
  return GST_FLOW_OK;
}

static gboolean
rgb_event (GstPad *pad, GstObject *parent, GstEvent *event)
{
  GstOnellmMapTokPrivate *priv = PRIV (parent);
  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_CAPS: {
      GstCaps *caps;
      gst_event_parse_caps (event, &caps);
      gboolean ok = gst_onellm_map_tok_set_caps (GST_ONELLM_TOKENIZER (parent), pad, caps);
      gst_event_unref (event);
      return ok;
    }
    case GST_EVENT_STREAM_START:
    case GST_EVENT_EOS:
    case GST_EVENT_FLUSH_START:
    case GST_EVENT_FLUSH_STOP:
      g_mutex_lock (&priv->lock);
      if (GST_EVENT_TYPE (event) == GST_EVENT_FLUSH_START) {
        priv->flushing = TRUE;
      } else if (GST_EVENT_TYPE (event) == GST_EVENT_FLUSH_STOP) {
        priv->flushing = FALSE;
        priv->rgb_eos = FALSE;
        clear_rgb (priv);
      } else {
        priv->rgb_eos = GST_EVENT_TYPE (event) == GST_EVENT_EOS;
      }
      g_cond_broadcast (&priv->cond);
      g_mutex_unlock (&priv->lock);
      break;
    default:
      break;
  }
  /* the RGB stream's own events do not leave the element: the map stream is the output's */
  gst_event_unref (event);
  return TRUE;
}

/* The RGB frame to pair with the map at pts, with a reference (NULL: none, map-only); waits if wait. */
static GstFlowReturn
take_rgb (GstOnellmMapTok *self, GstClockTime pts, gboolean wait, GstBuffer **rgb)
{
  GstOnellmMapTokPrivate *priv = PRIV (self);
  GstFlowReturn ret = GST_FLOW_OK;
  *rgb = NULL;
  if (!gst_pad_is_linked (priv->rgb_pad))
    return GST_FLOW_OK;
  g_mutex_lock (&priv->lock);
  for (;;) {
    if (priv->flushing) {
      ret = GST_FLOW_FLUSHING;
      break;
    }
    if (priv->rgb_next &&
        (pts == GST_CLOCK_TIME_NONE || GST_BUFFER_PTS (priv->rgb_next) == GST_CLOCK_TIME_NONE ||
         GST_BUFFER_PTS (priv->rgb_next) <= pts)) {
      gst_buffer_replace (&priv->rgb_current, NULL);
      priv->rgb_current = priv->rgb_next;
      priv->rgb_next = NULL;
      g_cond_broadcast (&priv->cond);
      /* an untimed stream pairs frame by frame */
      if (pts == GST_CLOCK_TIME_NONE)
        break;
      continue;
    }
    if (!wait || priv->rgb_next || priv->rgb_eos)
      break;
    g_cond_wait (&priv->cond, &priv->lock);
  }
  if (ret == GST_FLOW_OK && priv->rgb_current)
    *rgb = gst_buffer_ref (priv->rgb_current);
  g_mutex_unlock (&priv->lock);
  return ret;
}

static GstFlowReturn
gst_onellm_map_tok_handle_buffer (GstOnellmTokenizer *tok, GstPad *pad, GstBuffer *buffer)
{
  GstOnellmMapTok *self = GST_ONELLM_MAP_TOK (tok);
  GstOnellmMapTokPrivate *priv = PRIV (self);
  g_autoptr (GError) error = NULL;
  GstClockTime pts = GST_BUFFER_PTS (buffer), duration;
  GstVideoFrame map_frame, rgb_frame;
  GstBuffer *rgb = NULL;
  OlImage map_image, rgb_image;
  GstFlowReturn ret;

  gboolean due = gst_onellm_tokenizer_frame_due (tok, buffer, &priv->next, &duration);
  ret = take_rgb (self, pts, due, &rgb);
  if (!due || ret != GST_FLOW_OK) {
    gst_clear_buffer (&rgb);
    gst_buffer_unref (buffer);
    return ret;
  }
  if (!gst_video_frame_map (&map_frame, &priv->map_info, buffer, GST_MAP_READ)) {
    gst_clear_buffer (&rgb);
    gst_buffer_unref (buffer);
    GST_ELEMENT_ERROR (self, STREAM, FORMAT, ("Could not map a map frame"), (NULL));
    return GST_FLOW_ERROR;
  }
  if (rgb && !gst_video_frame_map (&rgb_frame, &priv->rgb_info, rgb, GST_MAP_READ)) {
    gst_video_frame_unmap (&map_frame);
    gst_clear_buffer (&rgb);
    gst_buffer_unref (buffer);
    GST_ELEMENT_ERROR (self, STREAM, FORMAT, ("Could not map an RGB frame"), (NULL));
    return GST_FLOW_ERROR;
  }
  GST_LOG_OBJECT (self, "map at %" GST_TIME_FORMAT " with %s", GST_TIME_ARGS (pts),
                  rgb ? "its photo" : "no photo");
  if (priv->input == NULL)
    priv->input = g_new (float, gst_onellm_tokenizer_input_size (tok));
  gst_onellm_video_frame_to_image (&map_frame, &priv->map_scratch, &map_image);
  if (rgb)
    gst_onellm_video_frame_to_image (&rgb_frame, &priv->rgb_scratch, &rgb_image);
  gboolean ok = ol_preprocess_image_pair (rgb ? &rgb_image : NULL, &map_image,
                                          (int) gst_onellm_tokenizer_get_model_info (tok)->image_size,
                                          priv->input, &error);
  gst_video_frame_unmap (&map_frame);
  if (rgb) {
    gst_video_frame_unmap (&rgb_frame);
    gst_buffer_unref (rgb);
  }
  gst_buffer_unref (buffer);
  if (!ok)
    return gst_onellm_tokenizer_input_error (tok, error);
  return gst_onellm_tokenizer_push_window (tok, priv->input, pts, duration);
}

static void
gst_onellm_map_tok_unlock (GstOnellmTokenizer *tok)
{
  GstOnellmMapTokPrivate *priv = PRIV (tok);
  g_mutex_lock (&priv->lock);
  priv->flushing = TRUE;
  g_cond_broadcast (&priv->cond);
  g_mutex_unlock (&priv->lock);
}

static void
gst_onellm_map_tok_reset (GstOnellmTokenizer *tok)
{
  GstOnellmMapTokPrivate *priv = PRIV (tok);
  priv->next = GST_CLOCK_TIME_NONE;
  g_clear_pointer (&priv->input, g_free);
  g_mutex_lock (&priv->lock);
  priv->flushing = FALSE;
  g_mutex_unlock (&priv->lock);
}

static GstStateChangeReturn
gst_onellm_map_tok_change_state (GstElement *element, GstStateChange transition)
{
  GstOnellmMapTokPrivate *priv = PRIV (element);
  GstStateChangeReturn ret =
      GST_ELEMENT_CLASS (gst_onellm_map_tok_parent_class)->change_state (element, transition);
  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY) {
    g_mutex_lock (&priv->lock);
    clear_rgb (priv);
    priv->rgb_eos = FALSE;
    g_mutex_unlock (&priv->lock);
  }
  return ret;
}

static void
gst_onellm_map_tok_finalize (GObject *object)
{
  GstOnellmMapTokPrivate *priv = PRIV (object);
  clear_rgb (priv);
  gst_onellm_frame_scratch_clear (&priv->map_scratch);
  gst_onellm_frame_scratch_clear (&priv->rgb_scratch);
  g_free (priv->input);
  g_mutex_clear (&priv->lock);
  g_cond_clear (&priv->cond);
  G_OBJECT_CLASS (gst_onellm_map_tok_parent_class)->finalize (object);
}

static void
gst_onellm_map_tok_init (GstOnellmMapTok *self)
{
  GstOnellmMapTokPrivate *priv = PRIV (self);
  g_mutex_init (&priv->lock);
  g_cond_init (&priv->cond);
  gst_video_info_init (&priv->map_info);
  gst_video_info_init (&priv->rgb_info);
  priv->next = GST_CLOCK_TIME_NONE;
  gst_onellm_frame_scratch_init (&priv->map_scratch);
  gst_onellm_frame_scratch_init (&priv->rgb_scratch);
}

static void
gst_onellm_map_tok_constructed (GObject *object)
{
  GstOnellmMapTokPrivate *priv = PRIV (object);
  GstOnellmTokenizer *self = GST_ONELLM_TOKENIZER (object);
  GstElementClass *klass = GST_ELEMENT_GET_CLASS (self);
  G_OBJECT_CLASS (gst_onellm_map_tok_parent_class)->constructed (object);
  priv->map_pad =
      gst_onellm_tokenizer_add_sink_pad (self, gst_element_class_get_pad_template (klass, "map"), "map");
  priv->rgb_pad =
      gst_onellm_tokenizer_add_sink_pad (self, gst_element_class_get_pad_template (klass, "rgb"), "rgb");
  gst_pad_set_chain_function (priv->rgb_pad, rgb_chain);
  gst_pad_set_event_function (priv->rgb_pad, rgb_event);
}

static void
gst_onellm_map_tok_class_init (GstOnellmMapTokClass *klass)
{
  GstOnellmTokenizerClass *tok_class = GST_ONELLM_TOKENIZER_CLASS (klass);
  G_OBJECT_CLASS (klass)->finalize = gst_onellm_map_tok_finalize;
  G_OBJECT_CLASS (klass)->constructed = gst_onellm_map_tok_constructed;
  GST_ELEMENT_CLASS (klass)->change_state = gst_onellm_map_tok_change_state;
  tok_class->set_caps = gst_onellm_map_tok_set_caps;
  tok_class->handle_buffer = gst_onellm_map_tok_handle_buffer;
  tok_class->reset = gst_onellm_map_tok_reset;
  tok_class->unlock = gst_onellm_map_tok_unlock;
  gst_type_mark_as_plugin_api (GST_TYPE_ONELLM_MAP_TOK, 0);
}

void
gst_onellm_map_tok_class_setup (GstOnellmMapTokClass *klass, OlModality modality, const char *map_formats,
                                GstDebugCategory *debug, const char *longname, const char *description)
{
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstOnellmTokenizerClass *tok_class = GST_ONELLM_TOKENIZER_CLASS (klass);
  g_autofree char *map_caps =
      g_strdup_printf ("video/x-raw, format = (string) %s, width = (int) [ 1, 32768 ], "
                       "height = (int) [ 1, 32768 ], framerate = (fraction) [ 0, MAX ]",
                       map_formats);
  GstCaps *caps = gst_caps_from_string (map_caps);
  gst_element_class_add_pad_template (element_class,
                                      gst_pad_template_new ("map", GST_PAD_SINK, GST_PAD_ALWAYS, caps));
  gst_caps_unref (caps);
  caps = gst_caps_from_string (GST_VIDEO_CAPS_MAKE (GST_ONELLM_VIDEO_FORMATS));
  gst_element_class_add_pad_template (element_class,
                                      gst_pad_template_new ("rgb", GST_PAD_SINK, GST_PAD_ALWAYS, caps));
  gst_caps_unref (caps);
  gst_onellm_tokenizer_class_set_modality (tok_class, modality);
  klass->debug = debug;
  gst_onellm_tokenizer_class_install_window_properties (tok_class, GST_CLOCK_TIME_NONE, GST_CLOCK_TIME_NONE,
                                                        GST_SECOND);
  gst_element_class_set_static_metadata (element_class, longname, "Filter/Video", description, "gst-onellm");
}
