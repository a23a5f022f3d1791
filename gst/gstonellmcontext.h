/* One loaded OneLLM model and its Vulkan device, shared by the plugin's elements through a GstContext. */
#pragma once

#include <gst/gst.h>
#include "onellm.h"

G_BEGIN_DECLS

/* The context type elements query, need and post. Its structure holds the model as the field "model"
 * (GST_TYPE_ONELLM_MODEL) and its resolved file name as "path" (string). */
#define GST_ONELLM_MODEL_CONTEXT_TYPE "onellm.model"

#define GST_TYPE_ONELLM_MODEL (gst_onellm_model_get_type ())
GType gst_onellm_model_get_type (void);

/* A model file loaded on a Vulkan device. Reference counted (atomically: any thread may ref and unref);
 * the model and the device stay valid while a reference is held. */
typedef struct _GstOnellmModel GstOnellmModel;

GstOnellmModel *gst_onellm_model_ref (GstOnellmModel *model);
void gst_onellm_model_unref (GstOnellmModel *model);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (GstOnellmModel, gst_onellm_model_unref)

OlModel *gst_onellm_model_get_model (GstOnellmModel *model);
OlDevice *gst_onellm_model_get_device (GstOnellmModel *model);
/* The canonical (absolute) file name the model was loaded from. */
const char *gst_onellm_model_get_path (GstOnellmModel *model);

/* Makes *model the model of the file named by *path, the element's `model` property (read under the object
 * lock of element; NULL or empty: the default model), for element. In order:
 * the model already in *model if it is that file; one found by a context query downstream then upstream;
 * one the application or a bin sets in answer to a NEED_CONTEXT message; one already loaded in this
 * process (the cache, so two pipelines with the same model load it once); else the file is loaded on the
 * default Vulkan device and element posts a HAVE_CONTEXT message so that the rest of the pipeline finds
 * it. The element keeps the reference in *model until gst_onellm_model_release. A failure (missing or
 * corrupt file, no Vulkan device) is posted as an element error of element and returns FALSE. Call from a
 * state change (READY→PAUSED), not with the object lock held. */
gboolean gst_onellm_model_acquire (GstElement *element, char *const *path, GstOnellmModel **model);

/* Takes the model out of *model under the object lock of element and drops the element's reference. */
void gst_onellm_model_release (GstElement *element, GstOnellmModel **model);

/* For the element's GstElementClass.set_context: keeps the model of an "onellm.model" context in *model
 * if it holds none (taking the object lock of element); gst_onellm_model_acquire then uses it if it is the
 * file the element wants. A model already held is kept, so a context for another model, which a bin passes
 * to all its children, never replaces one in use. Returns whether the element should keep the context
 * (chain up to GstElement's set_context): FALSE for an "onellm.model" context of a model it does not use.
 * Other context types are not looked at and give TRUE. */
gboolean gst_onellm_model_set_context (GstElement *element, GstContext *context, GstOnellmModel **model);

/* For the element's pad query functions: answers a GST_QUERY_CONTEXT for "onellm.model" with model (read
 * under the object lock of element). Returns TRUE if the query was answered. */
gboolean gst_onellm_model_handle_context_query (GstElement *element, GstQuery *query, GstOnellmModel **model);

/* Posts error (from the engine) as a GStreamer error message of element,
 * with a domain and code that match the OL_ERROR code and what as the context ("loading the model"). */
void gst_onellm_model_post_error (GstElement *element, const char *what, const GError *error);

G_END_DECLS
