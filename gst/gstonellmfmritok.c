/* onellmfmritok: fMRI voxel vectors (raw float32 buffers or a whole .npy file) → OneLLM fMRI tokens. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>
#include "gstonellmelements.h"
#include "gstonellmtokenizer.h"

GST_DEBUG_CATEGORY_STATIC (gst_onellm_fmri_tok_debug);
#define GST_CAT_DEFAULT gst_onellm_fmri_tok_debug

#define GST_TYPE_ONELLM_FMRI_TOK (gst_onellm_fmri_tok_get_type ())
G_DECLARE_FINAL_TYPE (GstOnellmFmriTok, gst_onellm_fmri_tok, GST, ONELLM_FMRI_TOK, GstOnellmTokenizer)

/* With application/x-onellm-fmri caps every buffer holds R ≥ 1 repetitions of one stimulus, R × voxels
 * float32, averaged. With file caps, or none (filesrc), the bytes up to EOS are a .npy of [voxels] or
 * [R, voxels]. */
struct _GstOnellmFmriTok {
  GstOnellmTokenizer parent;
  int voxels;                 /* of the caps; 0: file mode */
  GstOnellmFile file;
  float *input;
};

G_DEFINE_TYPE (GstOnellmFmriTok, gst_onellm_fmri_tok, GST_TYPE_ONELLM_TOKENIZER)
GST_ELEMENT_REGISTER_DEFINE (onellmfmritok, "onellmfmritok", GST_RANK_NONE, GST_TYPE_ONELLM_FMRI_TOK)

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink", GST_PAD_SINK, GST_PAD_ALWAYS,
    GST_STATIC_CAPS ("application/x-onellm-fmri, voxels = (int) [ 1, MAX ]; application/x-npy; "
                     "application/octet-stream"));

static gboolean
gst_onellm_fmri_tok_set_caps (GstOnellmTokenizer *tok, GstPad *pad, GstCaps *caps)
{
  GstOnellmFmriTok *self = GST_ONELLM_FMRI_TOK (tok);
  const GstStructure *s = gst_caps_get_structure (caps, 0);
  self->voxels = 0;
  if (!gst_structure_has_name (s, "application/x-onellm-fmri"))
    return TRUE;
  guint want = gst_onellm_tokenizer_get_modality_info (tok)->input_shape[1];
  if (!gst_structure_get_int (s, "voxels", &self->voxels) || (guint) self->voxels != want) {
    GST_ELEMENT_ERROR (self, STREAM, FORMAT,
                       ("fMRI vectors of %d voxels, the model takes %u", self->voxels, want), (NULL));
    return FALSE;
  }
  return TRUE;
}

static GstFlowReturn
tokenize (GstOnellmFmriTok *self, const float *data, gint64 n_reps, gint64 n_voxels, GstClockTime pts,
          GstClockTime duration)
{
  GstOnellmTokenizer *tok = GST_ONELLM_TOKENIZER (self);
  g_autoptr (GError) error = NULL;
  if (self->input == NULL)
    self->input = g_new (float, gst_onellm_tokenizer_input_size (tok));
  if (!ol_preprocess_fmri (data, n_reps, n_voxels,
                           gst_onellm_tokenizer_get_modality_info (tok)->input_shape[1], self->input, &error))
    return gst_onellm_tokenizer_input_error (tok, error);
  return gst_onellm_tokenizer_push_window (tok, self->input, pts, duration);
}

static GstFlowReturn
gst_onellm_fmri_tok_handle_buffer (GstOnellmTokenizer *tok, GstPad *pad, GstBuffer *buffer)
{
  GstOnellmFmriTok *self = GST_ONELLM_FMRI_TOK (tok);
  GstFlowReturn ret = GST_FLOW_OK;
  GstMapInfo map;
  if (self->voxels == 0) {
    gst_onellm_file_push (&self->file, buffer);
    return GST_FLOW_OK;
  }
  if (!gst_buffer_map (buffer, &map, GST_MAP_READ)) {
    gst_buffer_unref (buffer);
    GST_ELEMENT_ERROR (self, STREAM, FAILED, ("Could not map a buffer"), (NULL));
    return GST_FLOW_ERROR;
  }
  gsize row = (gsize) self->voxels * sizeof (float);
  if (map.size == 0 || map.size % row != 0) {
    GST_ELEMENT_ERROR (self, STREAM, FORMAT,
                       ("An fMRI buffer of %" G_GSIZE_FORMAT " bytes is not a whole number of %d-voxel "
                        "float32 vectors", map.size, self->voxels),
                       (NULL));
    ret = GST_FLOW_ERROR;
  } else {
    float *data = g_memdup2 (map.data, map.size);
    ret = tokenize (self, data, (gint64) (map.size / row), self->voxels, GST_BUFFER_PTS (buffer),
                    GST_BUFFER_DURATION (buffer));
    g_free (data);
  }
  gst_buffer_unmap (buffer, &map);
  gst_buffer_unref (buffer);
  return ret;
}

static GstFlowReturn
gst_onellm_fmri_tok_drain (GstOnellmTokenizer *tok)
{
  GstOnellmFmriTok *self = GST_ONELLM_FMRI_TOK (tok);
  g_autoptr (GError) error = NULL;
  guint n_dims;
  gint64 shape[OL_NPY_MAX_DIMS];
  if (self->voxels > 0 || self->file.bytes->len == 0)
    return GST_FLOW_OK;
  GByteArray *bytes = self->file.bytes;
  g_autofree float *data = ol_npy_parse (bytes->data, bytes->len, &n_dims, shape, &error);
  GstClockTime pts = self->file.pts;
  gst_onellm_file_clear (&self->file);
  if (data == NULL)
    return gst_onellm_tokenizer_input_error (tok, error);
  if (n_dims != 1 && n_dims != 2) {
    g_set_error (&error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT, "fmri: the .npy array must be [voxels] or "
                 "[repetitions, voxels], not %u-dimensional", n_dims);
    return gst_onellm_tokenizer_input_error (tok, error);
  }
  return tokenize (self, data, n_dims == 1 ? 1 : shape[0], shape[n_dims - 1], pts, GST_CLOCK_TIME_NONE);
}

static void
gst_onellm_fmri_tok_reset (GstOnellmTokenizer *tok)
{
  GstOnellmFmriTok *self = GST_ONELLM_FMRI_TOK (tok);
  gst_onellm_file_clear (&self->file);
  g_clear_pointer (&self->input, g_free);
}

static void
gst_onellm_fmri_tok_finalize (GObject *object)
{
  GstOnellmFmriTok *self = GST_ONELLM_FMRI_TOK (object);
  gst_onellm_file_free (&self->file);
  g_free (self->input);
  G_OBJECT_CLASS (gst_onellm_fmri_tok_parent_class)->finalize (object);
}

static void
gst_onellm_fmri_tok_init (GstOnellmFmriTok *self)
{
  gst_onellm_file_init (&self->file);
}

static void
gst_onellm_fmri_tok_class_init (GstOnellmFmriTokClass *klass)
{
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstOnellmTokenizerClass *tok_class = GST_ONELLM_TOKENIZER_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = gst_onellm_fmri_tok_finalize;
  gst_onellm_tokenizer_class_set_modality (tok_class, OL_MODALITY_FMRI);
  tok_class->set_caps = gst_onellm_fmri_tok_set_caps;
  tok_class->handle_buffer = gst_onellm_fmri_tok_handle_buffer;
  tok_class->drain = gst_onellm_fmri_tok_drain;
  tok_class->reset = gst_onellm_fmri_tok_reset;
  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_set_static_metadata (element_class, "OneLLM fMRI tokenizer", "Filter/Converter",
      "Turns fMRI voxel vectors (15724 float32 values per repetition, averaged; or a whole .npy file) into "
      "OneLLM fMRI tokens for onellmencoder", "gst-onellm");
  GST_DEBUG_CATEGORY_INIT (gst_onellm_fmri_tok_debug, "onellmfmritok", 0, "OneLLM fMRI tokenizer");
}
