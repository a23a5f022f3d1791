/* onellmencoder: modality tokens → the LLM input block of each window (CLIP + UPM on the Vulkan device). */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <gst/base/gstbasetransform.h>
#include "gstonellmelements.h"
#include "gstonellmcontext.h"
#include "gstonellmgenerator.h"

GST_DEBUG_CATEGORY_STATIC (gst_onellm_encoder_debug);
#define GST_CAT_DEFAULT gst_onellm_encoder_debug

#define GST_TYPE_ONELLM_ENCODER (gst_onellm_encoder_get_type ())
G_DECLARE_FINAL_TYPE (GstOnellmEncoder, gst_onellm_encoder, GST, ONELLM_ENCODER, GstBaseTransform)

struct _GstOnellmEncoder {
  GstBaseTransform parent;
  char *model_path;
  GstOnellmModel *model;        /* under the object lock: the context helpers read and replace it */
  OlEncoder *encoder;
  OlModality modality;
};

enum {
  PROP_0,
  PROP_MODEL,
};

G_DEFINE_TYPE_WITH_CODE (GstOnellmEncoder, gst_onellm_encoder, GST_TYPE_BASE_TRANSFORM,
    GST_DEBUG_CATEGORY_INIT (gst_onellm_encoder_debug, "onellmencoder", 0, "OneLLM encoder"))
GST_ELEMENT_REGISTER_DEFINE (onellmencoder, "onellmencoder", GST_RANK_NONE, GST_TYPE_ONELLM_ENCODER)

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink", GST_PAD_SINK, GST_PAD_ALWAYS,
    GST_STATIC_CAPS ("application/x-onellm-tokens, modality = (string) " GST_ONELLM_MODALITY_NAMES ", "
                     "frames = (int) [ 1, MAX ], tokens = (int) [ 1, MAX ], width = (int) [ 1, MAX ]"));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src", GST_PAD_SRC, GST_PAD_ALWAYS,
    GST_STATIC_CAPS (GST_ONELLM_EMBEDDINGS_CAPS));

static void
gst_onellm_encoder_set_property (GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
  GstOnellmEncoder *self = GST_ONELLM_ENCODER (object);
  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_MODEL:
      g_free (self->model_path);
      self->model_path = g_value_dup_string (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_onellm_encoder_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  GstOnellmEncoder *self = GST_ONELLM_ENCODER (object);
  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_MODEL:
      g_value_set_string (value, self->model_path);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static gboolean
gst_onellm_encoder_start (GstBaseTransform *trans)
{
  GstOnellmEncoder *self = GST_ONELLM_ENCODER (trans);
  g_autoptr (GError) error = NULL;

  if (!gst_onellm_model_acquire (GST_ELEMENT (self), &self->model_path, &self->model))
    return FALSE;
  OlModel *model = gst_onellm_model_get_model (self->model);
  if (!ol_model_get_info (model)->has_encoder) {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS, ("The model %s has no encoder (a plain LLaMA file)",
                       gst_onellm_model_get_path (self->model)), (NULL));
    return FALSE;
  }
  self->encoder = ol_encoder_new (model, &error);
  if (self->encoder == NULL) {
    gst_onellm_model_post_error (GST_ELEMENT (self), "Could not prepare the encoder", error);
    return FALSE;
  }
  return TRUE;
}

static gboolean
gst_onellm_encoder_stop (GstBaseTransform *trans)
{
  GstOnellmEncoder *self = GST_ONELLM_ENCODER (trans);
  g_clear_pointer (&self->encoder, ol_encoder_free);
  gst_onellm_model_release (GST_ELEMENT (self), &self->model);
  return TRUE;
}

/* The model's info while started, NULL otherwise (caps queries come in any state). */
static const OlModelInfo *
model_info (GstOnellmEncoder *self)
{
  const OlModelInfo *info = NULL;
  GST_OBJECT_LOCK (self);
  if (self->model && self->encoder)
    info = ol_model_get_info (gst_onellm_model_get_model (self->model));
  GST_OBJECT_UNLOCK (self);
  return info;
}

/* Tokens caps ↔ embeddings caps: the modality carries over; the sizes are the model's when it is loaded. */
static GstCaps *
gst_onellm_encoder_transform_caps (GstBaseTransform *trans, GstPadDirection direction, GstCaps *caps,
                                   GstCaps *filter)
{
  GstOnellmEncoder *self = GST_ONELLM_ENCODER (trans);
  const OlModelInfo *info = model_info (self);
  GstCaps *out = gst_caps_new_empty ();

  for (guint i = 0; i < gst_caps_get_size (caps); i++) {
    const GValue *modality = gst_structure_get_value (gst_caps_get_structure (caps, i), "modality");
    GstStructure *s;
    if (direction == GST_PAD_SINK) {
      s = gst_structure_new_empty ("application/x-onellm-embeddings");
      if (info)
        gst_structure_set (s, "tokens", G_TYPE_INT, (int) (2 + info->n_resample), "width", G_TYPE_INT,
                           (int) info->dim, NULL);
      else
        gst_structure_set (s, "tokens", GST_TYPE_INT_RANGE, 1, G_MAXINT, "width", GST_TYPE_INT_RANGE, 1, G_MAXINT,
                           NULL);
    } else {
      s = gst_structure_new ("application/x-onellm-tokens", "frames", GST_TYPE_INT_RANGE, 1, G_MAXINT,
                             "tokens", GST_TYPE_INT_RANGE, 1, G_MAXINT, "width", GST_TYPE_INT_RANGE, 1, G_MAXINT,
                             NULL);
    }
    if (modality)
      gst_structure_set_value (s, "modality", modality);
    out = gst_caps_merge_structure (out, s);
  }
  if (filter) {
    GstCaps *both = gst_caps_intersect_full (filter, out, GST_CAPS_INTERSECT_FIRST);
    gst_caps_unref (out);
    out = both;
  }
  GST_LOG_OBJECT (self, "%" GST_PTR_FORMAT " → %" GST_PTR_FORMAT, caps, out);
  return out;
}

static gboolean
gst_onellm_encoder_set_caps (GstBaseTransform *trans, GstCaps *incaps, GstCaps *outcaps)
{
  GstOnellmEncoder *self = GST_ONELLM_ENCODER (trans);
  OlModel *model = gst_onellm_model_get_model (self->model);
  const OlModelInfo *info = ol_model_get_info (model);
  GstStructure *s = gst_caps_get_structure (incaps, 0);
  const char *name = gst_structure_get_string (s, "modality");
  int frames = 0, tokens = 0, width = 0;
  OlModality m;

  if (name == NULL || !ol_modality_from_name (name, &m)) {
    GST_ELEMENT_ERROR (self, STREAM, FORMAT, ("Unknown modality in %" GST_PTR_FORMAT, incaps), (NULL));
    return FALSE;
  }
  if (!ol_model_has_modality (model, m)) {
    GST_ELEMENT_ERROR (self, STREAM, FORMAT, ("The model %s has no %s modality",
                       gst_onellm_model_get_path (self->model), name), (NULL));
    return FALSE;
  }
  gst_structure_get_int (s, "frames", &frames);
  gst_structure_get_int (s, "tokens", &tokens);
  gst_structure_get_int (s, "width", &width);
  const OlModalityInfo *mi = &info->modality[m];
  if (frames != (int) mi->frames || tokens != (int) mi->tokens || width != (int) info->clip_dim) {
    GST_ELEMENT_ERROR (self, STREAM, FORMAT, ("%s tokens of %d × %d × %d do not fit the model, which takes "
                       "%u × %u × %u", name, frames, tokens, width, mi->frames, mi->tokens, info->clip_dim),
                       ("caps %" GST_PTR_FORMAT, incaps));
    return FALSE;
  }
  self->modality = m;
  GST_DEBUG_OBJECT (self, "%s → %" GST_PTR_FORMAT, name, outcaps);
  return TRUE;
}

/* One window per buffer: the sizes follow from the caps. */
static gboolean
gst_onellm_encoder_get_unit_size (GstBaseTransform *trans, GstCaps *caps, gsize *size)
{
  GstStructure *s = gst_caps_get_structure (caps, 0);
  int frames = 1, tokens, width;
  if (!gst_structure_get_int (s, "tokens", &tokens) || !gst_structure_get_int (s, "width", &width))
    return FALSE;
  if (gst_structure_has_name (s, "application/x-onellm-tokens") && !gst_structure_get_int (s, "frames", &frames))
    return FALSE;
  *size = (gsize) frames * tokens * width * sizeof (float);
  return TRUE;
}

static GstFlowReturn
gst_onellm_encoder_transform (GstBaseTransform *trans, GstBuffer *inbuf, GstBuffer *outbuf)
{
  GstOnellmEncoder *self = GST_ONELLM_ENCODER (trans);
  g_autoptr (GError) error = NULL;
  GstMapInfo in, out;

  if (!gst_buffer_map (inbuf, &in, GST_MAP_READ))
    return GST_FLOW_ERROR;
  if (!gst_buffer_map (outbuf, &out, GST_MAP_WRITE)) {
    gst_buffer_unmap (inbuf, &in);
    return GST_FLOW_ERROR;
  }
  gboolean ok = ol_encoder_encode (self->encoder, self->modality, (const float *) in.data, (float *) out.data,
                                   &error);
  gst_buffer_unmap (outbuf, &out);
  gst_buffer_unmap (inbuf, &in);
  if (!ok) {
    gst_onellm_model_post_error (GST_ELEMENT (self), "Encoding failed", error);
    return GST_FLOW_ERROR;
  }
  GST_LOG_OBJECT (self, "window at %" GST_TIME_FORMAT " encoded", GST_TIME_ARGS (GST_BUFFER_PTS (inbuf)));
  return GST_FLOW_OK;
}

static gboolean
gst_onellm_encoder_query (GstBaseTransform *trans, GstPadDirection direction, GstQuery *query)
{
  GstOnellmEncoder *self = GST_ONELLM_ENCODER (trans);
  if (gst_onellm_model_handle_context_query (GST_ELEMENT (self), query, &self->model))
    return TRUE;
  return GST_BASE_TRANSFORM_CLASS (gst_onellm_encoder_parent_class)->query (trans, direction, query);
}

static void
gst_onellm_encoder_set_context (GstElement *element, GstContext *context)
{
  if (gst_onellm_model_set_context (element, context, &GST_ONELLM_ENCODER (element)->model))
    GST_ELEMENT_CLASS (gst_onellm_encoder_parent_class)->set_context (element, context);
}

static void
gst_onellm_encoder_finalize (GObject *object)
{
  GstOnellmEncoder *self = GST_ONELLM_ENCODER (object);
  g_free (self->model_path);
  if (self->model)
    gst_onellm_model_unref (self->model);
  G_OBJECT_CLASS (gst_onellm_encoder_parent_class)->finalize (object);
}

static void
gst_onellm_encoder_init (GstOnellmEncoder *self)
{
}

static void
gst_onellm_encoder_class_init (GstOnellmEncoderClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);

  gobject_class->set_property = gst_onellm_encoder_set_property;
  gobject_class->get_property = gst_onellm_encoder_get_property;
  gobject_class->finalize = gst_onellm_encoder_finalize;
  element_class->set_context = gst_onellm_encoder_set_context;
  trans_class->start = gst_onellm_encoder_start;
  trans_class->stop = gst_onellm_encoder_stop;
  trans_class->transform_caps = gst_onellm_encoder_transform_caps;
  trans_class->set_caps = gst_onellm_encoder_set_caps;
  trans_class->get_unit_size = gst_onellm_encoder_get_unit_size;
  trans_class->transform = gst_onellm_encoder_transform;
  trans_class->query = gst_onellm_encoder_query;

  g_object_class_install_property (gobject_class, PROP_MODEL,
      g_param_spec_string ("model", "Model", "OneLLM model file (GGUF); unset: $ONELLM_MODEL, else the "
                           "default model of the installation. Elements with the same file share one loaded copy",
                           NULL, G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY));
  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class, "OneLLM encoder", "Filter/Converter/Video/Audio",
      "Turns the modality tokens of a window into OneLLM's LLM input embeddings (CLIP encoder and Universal "
      "Projection Module on Vulkan compute): one buffer of (2 + resampled tokens) × LLM width float32 per window, "
      "timestamps kept",
      "gst-onellm");
}
