/* Base class of onellmdepthtok and onellmnormaltok: a map stream paired with an optional RGB stream. */
#pragma once

#include "gstonellmtokenizer.h"

G_BEGIN_DECLS

#define GST_TYPE_ONELLM_MAP_TOK (gst_onellm_map_tok_get_type ())
G_DECLARE_DERIVABLE_TYPE (GstOnellmMapTok, gst_onellm_map_tok, GST, ONELLM_MAP_TOK, GstOnellmTokenizer)

struct _GstOnellmMapTokClass {
  GstOnellmTokenizerClass parent_class;
  GstDebugCategory *debug;    /* the element's own category */
};

/* Sets a subclass's pad templates ("map" with its formats, "rgb"), metadata (static strings) and
 * properties. */
void gst_onellm_map_tok_class_setup (GstOnellmMapTokClass *klass, OlModality modality,
                                     const char *map_formats, GstDebugCategory *debug, const char *longname,
                                     const char *description);

G_END_DECLS
