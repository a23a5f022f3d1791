/* libFuzzer target: the GGUF reader must reject or accept any bytes cleanly, and what it accepts must be
 * safe to read in full through every accessor. */
#include "gguf.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static volatile guint8 sink;

static void
touch (const void *p, gsize n)
{
  const guint8 *b = p;
  for (gsize i = 0; i < n; i++)
    sink ^= b[i];
}

static void
walk_value (const OlGgufValue *v, int depth)
{
  touch (v->data, v->size);
  if (v->type != OL_GGUF_TYPE_ARRAY || depth > OL_GGUF_MAX_ARRAY_DEPTH)
    return;
  OlGgufValue item;
  for (guint64 i = 0; i < MIN (v->n, 4); i++) {
    if (!ol_gguf_value_array_item (v, i, &item))
      __builtin_trap ();   /* the reader validated the array: every item must be reachable */
    walk_value (&item, depth + 1);
  }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  GBytes *bytes = g_bytes_new_static (data, size);
  GError *error = NULL;
  OlGguf *g = ol_gguf_open_bytes (bytes, &error);
  g_bytes_unref (bytes);
  if (g == NULL) {
    if (error == NULL || error->domain != OL_ERROR
        || (error->code != OL_ERROR_CORRUPT_FILE && error->code != OL_ERROR_UNSUPPORTED))
      __builtin_trap ();
    g_error_free (error);
    return 0;
  }

  for (gsize i = 0; i < ol_gguf_n_keys (g); i++) {
    const char *key = ol_gguf_key (g, i);
    OlGgufValue v;
    if (!ol_gguf_get_value (g, key, &v, NULL))
      __builtin_trap ();
    walk_value (&v, 0);
    guint32 u32;
    gint32 i32;
    guint64 u64;
    float f32;
    gboolean b;
    const char *s;
    const char *const *sv;
    float *fa;
    gint32 *ia;
    gsize n;
    /* exactly the getter matching the type succeeds */
    int ok = ol_gguf_get_u32 (g, key, &u32, NULL) + ol_gguf_get_i32 (g, key, &i32, NULL)
      + ol_gguf_get_u64 (g, key, &u64, NULL) + ol_gguf_get_f32 (g, key, &f32, NULL)
      + ol_gguf_get_bool (g, key, &b, NULL);
    if (ol_gguf_get_string (g, key, &s, NULL)) {
      touch (s, strlen (s));
      ok++;
    }
    if (ol_gguf_get_string_array (g, key, &sv, &n, NULL)) {
      for (gsize j = 0; j < n; j++)
        touch (sv[j], strlen (sv[j]));
      ok++;
    }
    if (ol_gguf_get_f32_array (g, key, &fa, &n, NULL)) {
      touch (fa, n * sizeof *fa);
      g_free (fa);
      ok++;
    }
    if (ol_gguf_get_i32_array (g, key, &ia, &n, NULL)) {
      touch (ia, n * sizeof *ia);
      g_free (ia);
      ok++;
    }
    if (ok > 1)
      __builtin_trap ();
  }

  for (gsize i = 0; i < ol_gguf_n_tensors (g); i++) {
    const OlGgufTensor *t = ol_gguf_tensor (g, i);
    if (ol_gguf_find_tensor (g, t->name) != t)
      __builtin_trap ();
    const guint8 *p = t->data;
    if (t->n_bytes > 0 && (p < data || p + t->n_bytes > data + size))
      __builtin_trap ();
    if (ol_gguf_tensor_n_elements (t) < 0)
      __builtin_trap ();
    touch (t->data, t->n_bytes);
  }
  ol_gguf_free (g);
  return 0;
}
