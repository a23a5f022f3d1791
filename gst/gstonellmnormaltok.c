/* onellmnormaltok: surface normal maps (with their RGB photos when linked) → OneLLM normal tokens. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstonellmelements.h"
#include "gstonellmmaptok.h"

GST_DEBUG_CATEGORY_STATIC (gst_onellm_normal_tok_debug);

#define GST_TYPE_ONELLM_NORMAL_TOK (gst_onellm_normal_tok_get_type ())
G_DECLARE_FINAL_TYPE (GstOnellmNormalTok, gst_onellm_normal_tok, GST, ONELLM_NORMAL_TOK, GstOnellmMapTok)

struct _GstOnellmNormalTok {
  GstOnellmMapTok parent;
};

G_DEFINE_TYPE (GstOnellmNormalTok, gst_onellm_normal_tok, GST_TYPE_ONELLM_MAP_TOK)
GST_ELEMENT_REGISTER_DEFINE (onellmnormaltok, "onellmnormaltok", GST_RANK_NONE, GST_TYPE_ONELLM_NORMAL_TOK)

static void
gst_onellm_normal_tok_init (GstOnellmNormalTok *self)
{
}

static void
gst_onellm_normal_tok_class_init (GstOnellmNormalTokClass *klass)
{
  GST_DEBUG_CATEGORY_INIT (gst_onellm_normal_tok_debug, "onellmnormaltok", 0, "OneLLM normal tokenizer");
  gst_onellm_map_tok_class_setup (
      GST_ONELLM_MAP_TOK_CLASS (klass), OL_MODALITY_NORMAL, GST_ONELLM_VIDEO_FORMATS,
      gst_onellm_normal_tok_debug, "OneLLM normal tokenizer",
      "Turns surface normal maps (xyz as RGB), with their RGB photos on the optional "
      "rgb pad, into OneLLM normal tokens for onellmencoder, one map per interval");
}
