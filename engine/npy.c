/* NumPy .npy reader (numeric little-endian arrays to F32) and F32 writer; the header parser checks bounds. */
#include "npy.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "types.h"

static const char magic[6] = { '\x93', 'N', 'U', 'M', 'P', 'Y' };

typedef struct {
  const char *p, *end;
} Cursor;

static void
skip_space (Cursor *c)
{
  while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
    c->p++;
}

static gboolean
accept (Cursor *c, char ch)
{
  skip_space (c);
  if (c->p < c->end && *c->p == ch) {
    c->p++;
    return TRUE;
  }
  return FALSE;
}

/* A Python string literal ('...' or "...") without escapes, which numpy never writes in a header. */
static gboolean
parse_string (Cursor *c, char *out, gsize out_size)
{
  skip_space (c);
  if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
    return FALSE;
  char quote = *c->p++;
  gsize n = 0;
  while (c->p < c->end && *c->p != quote) {
    if (*c->p == '\\' || n + 1 >= out_size)
      return FALSE;
    out[n++] = *c->p++;
  }
  if (c->p >= c->end)
    return FALSE;
  c->p++;
  out[n] = '\0';
  return TRUE;
}

static gboolean
parse_word (Cursor *c, const char *word)
{
  skip_space (c);
  gsize n = strlen (word);
  if ((gsize) (c->end - c->p) < n || memcmp (c->p, word, n) != 0)
    return FALSE;
  c->p += n;
  return TRUE;
}

static gboolean
parse_shape (Cursor *c, guint *n_dims, gint64 *shape)
{
  if (!accept (c, '('))
    return FALSE;
  *n_dims = 0;
  for (;;) {
    if (accept (c, ')'))
      return TRUE;
    skip_space (c);
    if (c->p >= c->end || !g_ascii_isdigit (*c->p) || *n_dims >= OL_NPY_MAX_DIMS)
      return FALSE;
    gint64 v = 0;
    while (c->p < c->end && g_ascii_isdigit (*c->p)) {
      if (v > (G_MAXINT64 - 9) / 10)
        return FALSE;
      v = v * 10 + (*c->p++ - '0');
    }
    if (c->p < c->end && *c->p == 'L')   /* Python 2 long literals */
      c->p++;
    shape[(*n_dims)++] = v;
    if (!accept (c, ',')) {
      if (!accept (c, ')'))
        return FALSE;
      return TRUE;
    }
  }
}

typedef enum { KIND_FLOAT, KIND_INT, KIND_UINT, KIND_BOOL } Kind;

static gboolean
parse_descr (const char *descr, Kind *kind, guint *item, GError **error)
{
  if (strlen (descr) < 3) {
    g_set_error (error, OL_ERROR, OL_ERROR_CORRUPT_FILE, "npy: bad dtype descriptor '%s'", descr);
    return FALSE;
  }
  char order = descr[0];
  char k = descr[1];
  char *rest = NULL;
  guint64 size = g_ascii_strtoull (descr + 2, &rest, 10);
  if (*rest != '\0' || (order != '<' && order != '|' && order != '>' && order != '=')) {
    g_set_error (error, OL_ERROR, OL_ERROR_CORRUPT_FILE, "npy: bad dtype descriptor '%s'", descr);
    return FALSE;
  }
  if (order == '>' && size > 1) {
    g_set_error (error, OL_ERROR, OL_ERROR_UNSUPPORTED,
                 "npy: big-endian arrays ('%s') are not supported", descr);
    return FALSE;
  }
  gboolean ok;
  switch (k) {
  case 'f':
    *kind = KIND_FLOAT;
    ok = size == 2 || size == 4 || size == 8;
    break;
  case 'i':
    *kind = KIND_INT;
    ok = size == 1 || size == 2 || size == 4 || size == 8;
    break;
  case 'u':
    *kind = KIND_UINT;
    ok = size == 1 || size == 2 || size == 4 || size == 8;
    break;
  case 'b':
    *kind = KIND_BOOL;
    ok = size == 1;
    break;
  default:
    ok = FALSE;
  }
  if (!ok) {
    g_set_error (error, OL_ERROR, OL_ERROR_UNSUPPORTED, "npy: element type '%s' is not supported "
                 "(numeric f2/f4/f8, i1-i8, u1-u8, b1 only)", descr);
    return FALSE;
  }
  *item = (guint) size;
  return TRUE;
}

/* Elements may sit at any alignment (the header length is the file's), so they are copied out. */
static float
convert_one (const guint8 *p, Kind kind, guint item)
{
  guint64 u = 0;
  for (guint i = 0; i < item; i++)
    u |= (guint64) p[i] << (8 * i);
  switch (kind) {
  case KIND_FLOAT:
    if (item == 2)
      return ol_fp16_to_fp32 ((guint16) u);
    if (item == 4) {
      guint32 b = (guint32) u;
      float f;
      memcpy (&f, &b, 4);
      return f;
    } else {
      double d;
      memcpy (&d, &u, 8);
      return (float) d;
    }
  case KIND_INT:
    if (item < 8) {
      guint shift = 64 - 8 * item;    /* sign-extend */
      return (float) ((gint64) (u << shift) >> shift);
    }
    return (float) (gint64) u;
  case KIND_UINT:
    return (float) u;
  case KIND_BOOL:
    return u != 0;
  }
  return 0;
}

float *
ol_npy_parse (const guint8 *bytes, gsize size, guint *n_dims, gint64 shape[OL_NPY_MAX_DIMS], GError **error)
{
  g_return_val_if_fail (bytes != NULL || size == 0, NULL);
  g_return_val_if_fail (n_dims != NULL && shape != NULL, NULL);

  if (size < 10 || memcmp (bytes, magic, sizeof magic) != 0) {
    g_set_error (error, OL_ERROR, OL_ERROR_CORRUPT_FILE, "npy: not a .npy file (bad magic)");
    return NULL;
  }
  guint major = bytes[6];
  gsize header_len, header_start;
  if (major == 1) {
    header_len = bytes[8] | (gsize) bytes[9] << 8;
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (size < 12) {
      g_set_error (error, OL_ERROR, OL_ERROR_CORRUPT_FILE, "npy: truncated header");
      return NULL;
    }
    header_len = bytes[8] | (gsize) bytes[9] << 8 | (gsize) bytes[10] << 16 | (gsize) bytes[11] << 24;
    header_start = 12;
  } else {
    g_set_error (error, OL_ERROR, OL_ERROR_UNSUPPORTED, "npy: format version %u is not supported", major);
    return NULL;
  }
  if (header_len > size - header_start) {
    g_set_error (error, OL_ERROR, OL_ERROR_CORRUPT_FILE, "npy: header runs past the end of the file");
    return NULL;
  }

  Cursor c = { (const char *) bytes + header_start, (const char *) bytes + header_start + header_len };
  char descr[32] = "";
  gboolean have_descr = FALSE, have_order = FALSE, have_shape = FALSE, fortran = FALSE;
  guint nd = 0;
  gint64 dims[OL_NPY_MAX_DIMS];
  if (!accept (&c, '{'))
    goto bad_header;
  while (!accept (&c, '}')) {
    char key[32];
    if (!parse_string (&c, key, sizeof key) || !accept (&c, ':'))
      goto bad_header;
    if (strcmp (key, "descr") == 0) {
      if (!parse_string (&c, descr, sizeof descr))
        goto bad_header;
      have_descr = TRUE;
    } else if (strcmp (key, "fortran_order") == 0) {
      if (parse_word (&c, "True"))
        fortran = TRUE;
      else if (!parse_word (&c, "False"))
        goto bad_header;
      have_order = TRUE;
    } else if (strcmp (key, "shape") == 0) {
      if (!parse_shape (&c, &nd, dims))
        goto bad_header;
      have_shape = TRUE;
    } else {
      goto bad_header;
    }
    if (!accept (&c, ',')) {
      if (!accept (&c, '}'))
        goto bad_header;
      break;
    }
  }
  if (!have_descr || !have_order || !have_shape)
    goto bad_header;

  Kind kind;
  guint item;
  if (!parse_descr (descr, &kind, &item, error))
    return NULL;

  guint64 count = 1;
  for (guint i = 0; i < nd; i++) {
    if (dims[i] != 0 && count > G_MAXUINT64 / (guint64) dims[i]) {
      g_set_error (error, OL_ERROR, OL_ERROR_CORRUPT_FILE, "npy: shape overflows");
      return NULL;
    }
    count *= (guint64) dims[i];
  }
  gsize data_start = header_start + header_len;
  if (count > (size - data_start) / item || count * item != size - data_start) {
    g_set_error (error, OL_ERROR, OL_ERROR_CORRUPT_FILE,
                 "npy: %" G_GUINT64_FORMAT " elements of %u bytes do not match the %" G_GSIZE_FORMAT
                 " data bytes in the file", count, item, size - data_start);
    return NULL;
  }

  float *out = g_try_new (float, MAX (count, 1));
  if (!out) {
    g_set_error (error, OL_ERROR, OL_ERROR_OUT_OF_MEMORY, "npy: cannot allocate %" G_GUINT64_FORMAT " floats",
                 count);
    return NULL;
  }
  const guint8 *src = bytes + data_start;
  if (!fortran || nd < 2) {
    for (guint64 i = 0; i < count; i++)
      out[i] = convert_one (src + i * item, kind, item);
  } else {
    /* Fortran order: the first index varies fastest in the file; walk the file and scatter to C order. */
    gint64 idx[OL_NPY_MAX_DIMS] = { 0 };
    guint64 cstride[OL_NPY_MAX_DIMS];
    cstride[nd - 1] = 1;
    for (guint d = nd - 1; d > 0; d--)
      cstride[d - 1] = cstride[d] * (guint64) dims[d];
    for (guint64 i = 0; i < count; i++) {
      guint64 o = 0;
      for (guint d = 0; d < nd; d++)
        o += (guint64) idx[d] * cstride[d];
      out[o] = convert_one (src + i * item, kind, item);
      for (guint d = 0; d < nd && ++idx[d] == dims[d]; d++)
        idx[d] = 0;
    }
  }
  *n_dims = nd;
  memcpy (shape, dims, nd * sizeof (gint64));
  return out;

bad_header:
  g_set_error (error, OL_ERROR, OL_ERROR_CORRUPT_FILE, "npy: malformed header dictionary");
  return NULL;
}

float *
ol_npy_read (const char *path, guint *n_dims, gint64 shape[OL_NPY_MAX_DIMS], GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  g_autoptr (GMappedFile) file = NULL;
  g_autoptr (GError) local = NULL;
  file = g_mapped_file_new (path, FALSE, &local);
  if (!file) {
    g_set_error (error, OL_ERROR, OL_ERROR_IO, "%s", local->message);
    return NULL;
  }
  const guint8 *bytes = (const guint8 *) g_mapped_file_get_contents (file);
  float *out = ol_npy_parse (bytes, g_mapped_file_get_length (file), n_dims, shape, &local);
  if (!out)
    g_set_error (error, OL_ERROR, local->code, "%s: %s", path, local->message);
  return out;
}

gboolean
ol_npy_write (const char *path, const float *data, guint n_dims, const gint64 *shape, GError **error)
{
  g_return_val_if_fail (path != NULL && n_dims <= OL_NPY_MAX_DIMS, FALSE);
  g_return_val_if_fail (n_dims == 0 || shape != NULL, FALSE);

  GString *dict = g_string_new ("{'descr': '<f4', 'fortran_order': False, 'shape': (");
  guint64 count = 1;
  for (guint i = 0; i < n_dims; i++) {
    g_return_val_if_fail (shape[i] >= 0, FALSE);
    const char *sep = n_dims == 1 || i + 1 < n_dims ? ", " : "";
    g_string_append_printf (dict, "%" G_GINT64_FORMAT "%s", shape[i], sep);
    count *= (guint64) shape[i];
  }
  if (n_dims == 1)
    g_string_truncate (dict, dict->len - 1);
  g_string_append (dict, "), }");
  g_return_val_if_fail (count == 0 || data != NULL, FALSE);

  /* numpy pads the header with spaces and a newline so that the data starts at a multiple of 64 bytes */
  guint version = dict->len + 1 + 10 > 65535 ? 2 : 1;
  gsize prefix = version == 1 ? 10 : 12;
  while ((prefix + dict->len + 1) % 64 != 0)
    g_string_append_c (dict, ' ');
  g_string_append_c (dict, '\n');

  guint8 head[12];
  memcpy (head, magic, sizeof magic);
  head[6] = (guint8) version;
  head[7] = 0;
  for (gsize i = 0; i < prefix - 8; i++)
    head[8 + i] = (guint8) (dict->len >> (8 * i));

  FILE *f = fopen (path, "wb");
  if (!f) {
    g_set_error (error, OL_ERROR, OL_ERROR_IO, "cannot write %s: %s", path, g_strerror (errno));
    g_string_free (dict, TRUE);
    return FALSE;
  }
  gboolean ok = fwrite (head, 1, prefix, f) == prefix && fwrite (dict->str, 1, dict->len, f) == dict->len;
#if G_BYTE_ORDER == G_LITTLE_ENDIAN
  ok = ok && fwrite (data, 4, count, f) == count;
#else
  for (guint64 i = 0; ok && i < count; i++) {
    guint32 bits;
    memcpy (&bits, &data[i], 4);
    bits = GUINT32_SWAP_LE_BE (bits);
    ok = fwrite (&bits, 4, 1, f) == 1;
  }
#endif
  ok = (fclose (f) == 0) && ok;
  g_string_free (dict, TRUE);
  if (!ok)
    g_set_error (error, OL_ERROR, OL_ERROR_IO, "cannot write %s: %s", path, g_strerror (errno));
  return ok;
}
