/* Writes small valid GGUF files (every value type, every tensor type, custom alignment) into a folder:
 * the seed corpus of the reader's fuzz target. */
#include "onellm.h"

#include <stdio.h>

static gboolean
write_file (OlGgufWriter *w, const char *dir, const char *name)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autoptr (GError) error = NULL;
  if (!ol_gguf_writer_write (w, path, &error)) {
    fprintf (stderr, "gguf-corpus: %s\n", error->message);
    return FALSE;
  }
  return TRUE;
}

int
main (int argc, char **argv)
{
  if (argc != 2) {
    fprintf (stderr, "usage: gguf-corpus DIR\n");
    return 2;
  }
  const char *dir = argv[1];
  g_autoptr (GError) error = NULL;

  g_autoptr (OlGgufWriter) empty = ol_gguf_writer_new ();
  if (!write_file (empty, dir, "empty.gguf"))
    return 1;

  g_autoptr (OlGgufWriter) meta = ol_gguf_writer_new ();
  ol_gguf_writer_set_u8 (meta, "u8", 1);
  ol_gguf_writer_set_i8 (meta, "i8", -1);
  ol_gguf_writer_set_u16 (meta, "u16", 2);
  ol_gguf_writer_set_i16 (meta, "i16", -2);
  ol_gguf_writer_set_u32 (meta, "u32", 3);
  ol_gguf_writer_set_i32 (meta, "i32", -3);
  ol_gguf_writer_set_u64 (meta, "u64", 4);
  ol_gguf_writer_set_i64 (meta, "i64", -4);
  ol_gguf_writer_set_f32 (meta, "f32", 0.5f);
  ol_gguf_writer_set_f64 (meta, "f64", 0.25);
  ol_gguf_writer_set_bool (meta, "bool", TRUE);
  ol_gguf_writer_set_string (meta, "string", "text");
  const float f[2] = { 1, 2 };
  const gint32 i[2] = { 3, 4 };
  const char *words[] = { "a", "bc", "" };
  ol_gguf_writer_set_array (meta, "af32", OL_GGUF_TYPE_FLOAT32, f, 2);
  ol_gguf_writer_set_array (meta, "ai32", OL_GGUF_TYPE_INT32, i, 2);
  ol_gguf_writer_set_string_array (meta, "astr", words, 3);
  /* [[1], []] : an array of two u8 arrays */
  const guint8 nested[] = { 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
  OlGgufValue nv = { OL_GGUF_TYPE_ARRAY, OL_GGUF_TYPE_ARRAY, 2, nested, sizeof nested };
  ol_gguf_writer_set_value (meta, "nested", &nv);
  if (!write_file (meta, dir, "metadata.gguf"))
    return 1;

  g_autoptr (OlGgufWriter) tensors = ol_gguf_writer_new ();
  ol_gguf_writer_set_alignment (tensors, 64);
  ol_gguf_writer_set_string (tensors, "general.architecture", "onellm");
  static guint8 data[6][256];
  const OlType types[] = { OL_TYPE_F32, OL_TYPE_F16, OL_TYPE_BF16, OL_TYPE_Q8_0, OL_TYPE_Q4_0, OL_TYPE_I32 };
  for (guint k = 0; k < G_N_ELEMENTS (types); k++) {
    gint64 ne[4] = { 32, 2, 1, 1 };
    g_autofree char *name = g_strdup_printf ("blk.%u.%s", k, ol_type_name (types[k]));
    for (guint j = 0; j < sizeof data[k]; j++)
      data[k][j] = (guint8) (j + k);
    if (!ol_gguf_writer_add_tensor (tensors, name, types[k], 1 + k % 4, ne, data[k], &error)) {
      fprintf (stderr, "gguf-corpus: %s\n", error->message);
      return 1;
    }
  }
  if (!write_file (tensors, dir, "tensors.gguf"))
    return 1;
  return 0;
}
