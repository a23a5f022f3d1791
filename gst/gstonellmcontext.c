/* Sharing of loaded models between elements: GstContext "onellm.model" and a process-wide cache by path. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstonellmcontext.h"

GST_DEBUG_CATEGORY_STATIC (gst_onellm_context_debug);
#define GST_CAT_DEFAULT gst_onellm_context_debug

struct _GstOnellmModel {
  gint refcount;
  char *path;
  OlModel *model;
};

/* The cache maps canonical paths to live models without holding a reference: the entry goes when the
 * last reference does. Every drop to zero happens under cache_lock, and lookups take their reference
 * under it, so a lookup never revives a model being freed. All models share one device, opened with the
 * first model and closed with the last. Loading happens under the lock too, so two elements asking for
 * the same file at once load it once. */
static GMutex cache_lock;
static GHashTable *cache;
static OlDevice *shared_device;

G_DEFINE_BOXED_TYPE (GstOnellmModel, gst_onellm_model, gst_onellm_model_ref, gst_onellm_model_unref)

static void
debug_init (void)
{
  static gsize done = 0;
  if (g_once_init_enter (&done)) {
    GST_DEBUG_CATEGORY_INIT (gst_onellm_context_debug, "onellmcontext", 0, "OneLLM model sharing");
    g_once_init_leave (&done, 1);
  }
}

GstOnellmModel *
gst_onellm_model_ref (GstOnellmModel *model)
{
  g_return_val_if_fail (model != NULL, NULL);
  g_atomic_int_inc (&model->refcount);
  return model;
}

void
gst_onellm_model_unref (GstOnellmModel *model)
{
  g_return_if_fail (model != NULL);
  g_mutex_lock (&cache_lock);
  if (!g_atomic_int_dec_and_test (&model->refcount)) {
    g_mutex_unlock (&cache_lock);
    return;
  }
  GST_INFO ("releasing model %s", model->path);
  g_hash_table_remove (cache, model->path);
  ol_model_free (model->model);
  g_free (model->path);
  g_free (model);
  if (g_hash_table_size (cache) == 0) {
    g_clear_pointer (&cache, g_hash_table_unref);
    g_clear_pointer (&shared_device, ol_device_free);
  }
  g_mutex_unlock (&cache_lock);
}

OlModel *
gst_onellm_model_get_model (GstOnellmModel *model)
{
  g_return_val_if_fail (model != NULL, NULL);
  return model->model;
}

OlDevice *
gst_onellm_model_get_device (GstOnellmModel *model)
{
  g_return_val_if_fail (model != NULL, NULL);
  return ol_model_get_device (model->model);
}

const char *
gst_onellm_model_get_path (GstOnellmModel *model)
{
  g_return_val_if_fail (model != NULL, NULL);
  return model->path;
}

/* The model of a context if it is "onellm.model" and holds the file at path (NULL: any), with a reference. */
static GstOnellmModel *
model_from_context (GstContext *context, const char *path)
{
  GstOnellmModel *model = NULL;
  if (g_strcmp0 (gst_context_get_context_type (context), GST_ONELLM_MODEL_CONTEXT_TYPE) != 0)
    return NULL;
  const GstStructure *s = gst_context_get_structure (context);
  if (!gst_structure_get (s, "model", GST_TYPE_ONELLM_MODEL, &model, NULL) || model == NULL)
    return NULL;
  if (path != NULL && g_strcmp0 (path, model->path) != 0)
    g_clear_pointer (&model, gst_onellm_model_unref);
  return model;
}

static GstContext *
context_new (GstOnellmModel *model)
{
  GstContext *context = gst_context_new (GST_ONELLM_MODEL_CONTEXT_TYPE, FALSE);
  gst_structure_set (gst_context_writable_structure (context), "model", GST_TYPE_ONELLM_MODEL, model,
                     "path", G_TYPE_STRING, model->path, NULL);
  return context;
}

/* Replaces *slot with model (a new reference) under the element's object lock. */
static void
store (GstElement *element, GstOnellmModel **slot, GstOnellmModel *model)
{
  GstOnellmModel *old;
  GST_OBJECT_LOCK (element);
  old = *slot;
  *slot = model ? gst_onellm_model_ref (model) : NULL;
  GST_OBJECT_UNLOCK (element);
  if (old)
    gst_onellm_model_unref (old);
}

static GstOnellmModel *
load (GstElement *element, const char *path, GError **error)
{
  GstOnellmModel *model;
  g_mutex_lock (&cache_lock);
  if (cache == NULL)
    cache = g_hash_table_new (g_str_hash, g_str_equal);
  model = g_hash_table_lookup (cache, path);
  if (model) {
    GST_DEBUG_OBJECT (element, "model %s found in the process cache", path);
    gst_onellm_model_ref (model);
    g_mutex_unlock (&cache_lock);
    return model;
  }
  if (shared_device == NULL)
    shared_device = ol_device_new (NULL, error);
  OlModel *m = shared_device ? ol_model_new (shared_device, path, error) : NULL;
  if (m == NULL) {
    if (g_hash_table_size (cache) == 0) {
      g_clear_pointer (&cache, g_hash_table_unref);
      g_clear_pointer (&shared_device, ol_device_free);
    }
    g_mutex_unlock (&cache_lock);
    return NULL;
  }
  GST_INFO_OBJECT (element, "loaded model %s on %s", path, ol_device_get_caps (shared_device)->name);
  model = g_new0 (GstOnellmModel, 1);
  model->refcount = 1;
  model->path = g_strdup (path);
  model->model = m;
  g_hash_table_insert (cache, model->path, model);
  g_mutex_unlock (&cache_lock);
  return model;
}

/* Asks the peers of the element's pads in direction, as GstVulkan's context helpers do. */
static gboolean
query_pads (GstElement *element, GstPadDirection direction, GstQuery *query)
{
  GstIterator *it = direction == GST_PAD_SRC ? gst_element_iterate_src_pads (element)
                                             : gst_element_iterate_sink_pads (element);
  GValue item = G_VALUE_INIT;
  gboolean found = FALSE, done = FALSE;
  while (!done && !found) {
    switch (gst_iterator_next (it, &item)) {
      case GST_ITERATOR_OK:
        found = gst_pad_peer_query (g_value_get_object (&item), query);
        g_value_reset (&item);
        break;
      case GST_ITERATOR_RESYNC:
        gst_iterator_resync (it);
        break;
      default:
        done = TRUE;
        break;
    }
  }
  g_value_unset (&item);
  gst_iterator_free (it);
  return found;
}

static GstOnellmModel *
peek (GstElement *element, GstOnellmModel **slot, const char *path)
{
  GstOnellmModel *model = NULL;
  GST_OBJECT_LOCK (element);
  if (*slot && g_strcmp0 ((*slot)->path, path) == 0)
    model = gst_onellm_model_ref (*slot);
  GST_OBJECT_UNLOCK (element);
  return model;
}

/* gst_onellm_model_acquire with the path already read and the error returned. */
static gboolean
acquire (GstElement *element, const char *path, GstOnellmModel **model, GError **error)
{
  g_autofree char *given = path && *path ? g_strdup (path) : ol_model_default_path ();
  g_autofree char *canonical = g_canonicalize_filename (given, NULL);
  g_autoptr (GstOnellmModel) found = peek (element, model, canonical);
  if (found)
    return TRUE;
  /* a context for another file that arrived earlier must not stand in the way of the right one */
  store (element, model, NULL);

  GstQuery *query = gst_query_new_context (GST_ONELLM_MODEL_CONTEXT_TYPE);
  if (query_pads (element, GST_PAD_SRC, query) || query_pads (element, GST_PAD_SINK, query)) {
    GstContext *context = NULL;
    gst_query_parse_context (query, &context);
    found = context ? model_from_context (context, canonical) : NULL;
    if (found) {
      GST_DEBUG_OBJECT (element, "model %s found by a context query", canonical);
      store (element, model, found);
      gst_element_set_context (element, context);
    }
  }
  gst_query_unref (query);
  if (found)
    return TRUE;

  /* the bin or the application may answer synchronously with set_context */
  GST_DEBUG_OBJECT (element, "posting need-context for %s", canonical);
  gst_element_post_message (element, gst_message_new_need_context (GST_OBJECT (element),
                                                                   GST_ONELLM_MODEL_CONTEXT_TYPE));
  found = peek (element, model, canonical);
  if (found)
    return TRUE;

  found = load (element, canonical, error);
  if (found == NULL)
    return FALSE;
  store (element, model, found);
  GstContext *context = context_new (found);
  gst_element_set_context (element, context);
  gst_element_post_message (element, gst_message_new_have_context (GST_OBJECT (element), context));
  return TRUE;
}

gboolean
gst_onellm_model_acquire (GstElement *element, char *const *path, GstOnellmModel **model)
{
  g_return_val_if_fail (GST_IS_ELEMENT (element), FALSE);
  g_return_val_if_fail (path != NULL && model != NULL, FALSE);
  debug_init ();
  g_autoptr (GError) error = NULL;
  GST_OBJECT_LOCK (element);
  g_autofree char *given = g_strdup (*path);
  GST_OBJECT_UNLOCK (element);
  if (acquire (element, given, model, &error))
    return TRUE;
  gst_onellm_model_post_error (element, "Could not load the OneLLM model", error);
  return FALSE;
}

void
gst_onellm_model_release (GstElement *element, GstOnellmModel **model)
{
  g_return_if_fail (GST_IS_ELEMENT (element) && model != NULL);
  GST_OBJECT_LOCK (element);
  GstOnellmModel *held = g_steal_pointer (model);
  GST_OBJECT_UNLOCK (element);
  if (held)
    gst_onellm_model_unref (held);
}

gboolean
gst_onellm_model_set_context (GstElement *element, GstContext *context, GstOnellmModel **model)
{
  g_return_val_if_fail (GST_IS_ELEMENT (element) && model != NULL, FALSE);
  g_autoptr (GstOnellmModel) given = model_from_context (context, NULL);
  gboolean ours;
  if (given == NULL)
    return g_strcmp0 (gst_context_get_context_type (context), GST_ONELLM_MODEL_CONTEXT_TYPE) != 0;
  /* a model in use stays: a bin hands every child the context of whichever element posted last */
  GST_OBJECT_LOCK (element);
  if (*model == NULL)
    *model = gst_onellm_model_ref (given);
  ours = *model == given;
  GST_OBJECT_UNLOCK (element);
  return ours;
}

gboolean
gst_onellm_model_handle_context_query (GstElement *element, GstQuery *query, GstOnellmModel **model)
{
  const char *type;
  g_return_val_if_fail (GST_IS_ELEMENT (element) && model != NULL, FALSE);
  if (GST_QUERY_TYPE (query) != GST_QUERY_CONTEXT || !gst_query_parse_context_type (query, &type) ||
      g_strcmp0 (type, GST_ONELLM_MODEL_CONTEXT_TYPE) != 0)
    return FALSE;
  GstOnellmModel *ours = NULL;
  GST_OBJECT_LOCK (element);
  if (*model)
    ours = gst_onellm_model_ref (*model);
  GST_OBJECT_UNLOCK (element);
  if (ours == NULL)
    return FALSE;
  GstContext *context = context_new (ours);
  gst_query_set_context (query, context);
  gst_context_unref (context);
  gst_onellm_model_unref (ours);
  return TRUE;
}

void
gst_onellm_model_post_error (GstElement *element, const char *what, const GError *error)
{
  GQuark domain = GST_RESOURCE_ERROR;
  gint code = GST_RESOURCE_ERROR_FAILED;
  if (error->domain == OL_ERROR) {
    switch (error->code) {
      case OL_ERROR_IO:
        code = GST_RESOURCE_ERROR_OPEN_READ;
        break;
      case OL_ERROR_CORRUPT_FILE:
      case OL_ERROR_UNSUPPORTED:
        code = GST_RESOURCE_ERROR_SETTINGS;
        break;
      case OL_ERROR_OUT_OF_MEMORY:
        code = GST_RESOURCE_ERROR_NO_SPACE_LEFT;
        break;
      case OL_ERROR_INVALID_ARGUMENT:
        domain = GST_STREAM_ERROR;
        code = GST_STREAM_ERROR_FORMAT;
        break;
      default:
        break;
    }
  }
  gst_element_message_full (element, GST_MESSAGE_ERROR, domain, code,
                            g_strdup_printf ("%s: %s", what, error->message),
                            g_strdup_printf ("%s error %d", g_quark_to_string (error->domain), error->code),
                            __FILE__, GST_FUNCTION, __LINE__);
}
