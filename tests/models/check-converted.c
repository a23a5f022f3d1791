/* Checks a converted GGUF with the C reader against a manifest of what it must hold (written by
 * test_convert.py from the checkpoint): every tensor's name, type, shape and SHA-256 of its data, no
 * other tensors, and metadata values.
 *
 * Manifest lines, tab-separated (strings escaped as by g_strescape):
 *   tensor NAME TYPE NE0,NE1,... SHA256      u32 KEY VALUE       f32 KEY VALUE      bool KEY 0|1
 *   str KEY VALUE      strarr KEY COUNT      stritem KEY INDEX VALUE
 *   f32item KEY INDEX VALUE                  i32item KEY INDEX VALUE
 */
#include "onellm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

static void G_GNUC_PRINTF (1, 2)
mismatch (const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  if (failures++ < 50)
    fprintf (stderr, "MISMATCH: %s\n", msg);
}

static void
check_tensor (const OlGguf *g, char **f, GHashTable *seen)
{
  const OlGgufTensor *t = ol_gguf_find_tensor (g, f[1]);
  if (t == NULL) {
    mismatch ("tensor %s is missing", f[1]);
    return;
  }
  g_hash_table_add (seen, (gpointer) t->name);
  OlType type;
  if (!ol_type_from_name (f[2], &type) || t->type != type)
    mismatch ("tensor %s has type %s, expected %s", f[1], ol_type_name (t->type), f[2]);
  g_auto (GStrv) ne = g_strsplit (f[3], ",", -1);
  gboolean same = g_strv_length (ne) == t->n_dims;
  for (guint d = 0; same && d < t->n_dims; d++)
    same = g_ascii_strtoll (ne[d], NULL, 10) == t->ne[d];
  if (!same)
    mismatch ("tensor %s has shape [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
              ", %" G_GINT64_FORMAT "] (%u dims), expected [%s]", f[1], t->ne[0], t->ne[1], t->ne[2], t->ne[3],
              t->n_dims, f[3]);
  g_autofree char *sum = g_compute_checksum_for_data (G_CHECKSUM_SHA256, t->data, t->n_bytes);
  if (strcmp (sum, f[4]) != 0)
    mismatch ("tensor %s: data differs from the checkpoint's", f[1]);
}

static void
check_key (const OlGguf *g, char **f, guint n)
{
  g_autoptr (GError) error = NULL;
  const char *kind = f[0], *key = f[1];
  if (strcmp (kind, "u32") == 0) {
    guint32 v;
    if (!ol_gguf_get_u32 (g, key, &v, &error) || v != g_ascii_strtoull (f[2], NULL, 10))
      mismatch ("%s: %s, expected %s", key, error ? error->message : "different value", f[2]);
  } else if (strcmp (kind, "f32") == 0) {
    float v;
    if (!ol_gguf_get_f32 (g, key, &v, &error) || v != (float) g_ascii_strtod (f[2], NULL))
      mismatch ("%s: %s, expected %s", key, error ? error->message : "different value", f[2]);
  } else if (strcmp (kind, "bool") == 0) {
    gboolean v;
    if (!ol_gguf_get_bool (g, key, &v, &error) || v != (atoi (f[2]) != 0))
      mismatch ("%s: %s, expected %s", key, error ? error->message : "different value", f[2]);
  } else if (strcmp (kind, "str") == 0) {
    const char *v;
    g_autofree char *want = g_strcompress (n > 2 ? f[2] : "");
    if (!ol_gguf_get_string (g, key, &v, &error) || strcmp (v, want) != 0)
      mismatch ("%s: %s, expected \"%s\"", key, error ? error->message : "different value", want);
  } else if (strcmp (kind, "strarr") == 0 || strcmp (kind, "stritem") == 0) {
    const char *const *v;
    gsize len;
    if (!ol_gguf_get_string_array (g, key, &v, &len, &error)) {
      mismatch ("%s", error->message);
      return;
    }
    guint64 i = g_ascii_strtoull (f[2], NULL, 10);
    if (kind[3] == 'a') {
      if (len != i)
        mismatch ("%s has %" G_GSIZE_FORMAT " strings, expected %" G_GUINT64_FORMAT, key, len, i);
      return;
    }
    g_autofree char *want = g_strcompress (n > 3 ? f[3] : "");
    if (i >= len || strcmp (v[i], want) != 0)
      mismatch ("%s[%" G_GUINT64_FORMAT "] is \"%s\", expected \"%s\"", key, i, i < len ? v[i] : "(none)", want);
  } else if (strcmp (kind, "f32item") == 0) {
    g_autofree float *v = NULL;
    gsize len;
    guint64 i = g_ascii_strtoull (f[2], NULL, 10);
    if (!ol_gguf_get_f32_array (g, key, &v, &len, &error) || i >= len || v[i] != (float) g_ascii_strtod (f[3], NULL))
      mismatch ("%s[%" G_GUINT64_FORMAT "]: %s, expected %s", key, i, error ? error->message : "different", f[3]);
  } else if (strcmp (kind, "i32item") == 0) {
    g_autofree gint32 *v = NULL;
    gsize len;
    guint64 i = g_ascii_strtoull (f[2], NULL, 10);
    if (!ol_gguf_get_i32_array (g, key, &v, &len, &error) || i >= len || v[i] != atoi (f[3]))
      mismatch ("%s[%" G_GUINT64_FORMAT "]: %s, expected %s", key, i, error ? error->message : "different", f[3]);
  } else {
    mismatch ("manifest: unknown line kind '%s'", kind);
  }
}

int
main (int argc, char **argv)
{
  if (argc != 3) {
    fprintf (stderr, "usage: check-converted MODEL.gguf MANIFEST\n");
    return 2;
  }
  g_autoptr (GError) error = NULL;
  g_autoptr (OlGguf) g = ol_gguf_open (argv[1], &error);
  if (g == NULL) {
    fprintf (stderr, "check-converted: %s\n", error->message);
    return 1;
  }
  g_autofree char *text = NULL;
  if (!g_file_get_contents (argv[2], &text, NULL, &error)) {
    fprintf (stderr, "check-converted: %s\n", error->message);
    return 1;
  }
  g_autoptr (GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  guint n_tensors = 0, n_keys = 0;
  for (guint l = 0; lines[l] != NULL; l++) {
    if (*lines[l] == '\0')
      continue;
    g_auto (GStrv) f = g_strsplit (lines[l], "\t", -1);
    guint n = g_strv_length (f);
    if (strcmp (f[0], "tensor") == 0 && n == 5) {
      check_tensor (g, f, seen);
      n_tensors++;
    } else if (n >= 3) {
      check_key (g, f, n);
      n_keys++;
    } else {
      mismatch ("manifest line %u is malformed", l + 1);
    }
  }
  for (gsize i = 0; i < ol_gguf_n_tensors (g); i++)
    if (!g_hash_table_contains (seen, ol_gguf_tensor (g, i)->name))
      mismatch ("tensor %s is not expected", ol_gguf_tensor (g, i)->name);
  printf ("%s: %u tensors and %u metadata values checked, %d mismatches\n", argv[1], n_tensors, n_keys, failures);
  return failures == 0 ? 0 : 1;
}
