/* onellmpointtok: point clouds (N×6 float32 buffers, or whole .npy/.ply files) → OneLLM point tokens. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdlib.h>
#include <string.h>
#include "gstonellmelements.h"
#include "gstonellmtokenizer.h"

GST_DEBUG_CATEGORY_STATIC (gst_onellm_point_tok_debug);
#define GST_CAT_DEFAULT gst_onellm_point_tok_debug

#define GST_TYPE_ONELLM_POINT_TOK (gst_onellm_point_tok_get_type ())
G_DECLARE_FINAL_TYPE (GstOnellmPointTok, gst_onellm_point_tok, GST, ONELLM_POINT_TOK, GstOnellmTokenizer)

/* With application/x-onellm-points caps every buffer is one cloud. With file caps, or no caps at all
 * (filesrc), the bytes up to EOS are one file, parsed by its content: "\x93NUMPY" or "ply". */
struct _GstOnellmPointTok {
  GstOnellmTokenizer parent;
  gboolean raw;
  GstOnellmFile file;
  float *input;
};

G_DEFINE_TYPE (GstOnellmPointTok, gst_onellm_point_tok, GST_TYPE_ONELLM_TOKENIZER)
GST_ELEMENT_REGISTER_DEFINE (onellmpointtok, "onellmpointtok", GST_RANK_NONE, GST_TYPE_ONELLM_POINT_TOK)

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink", GST_PAD_SINK, GST_PAD_ALWAYS,
    GST_STATIC_CAPS ("application/x-onellm-points, channels = (int) 6; application/x-npy; application/x-ply; "
                     "application/octet-stream"));

static gboolean
gst_onellm_point_tok_set_caps (GstOnellmTokenizer *tok, GstPad *pad, GstCaps *caps)
{
  GstOnellmPointTok *self = GST_ONELLM_POINT_TOK (tok);
  self->raw = gst_structure_has_name (gst_caps_get_structure (caps, 0), "application/x-onellm-points");
  return TRUE;
}

typedef enum { PLY_CHAR, PLY_UCHAR, PLY_SHORT, PLY_USHORT, PLY_INT, PLY_UINT, PLY_FLOAT, PLY_DOUBLE } PlyType;

static const struct { const char *names[2]; int size; double scale; } ply_types[] = {
  [PLY_CHAR] = { { "char", "int8" }, 1, 127 },
  [PLY_UCHAR] = { { "uchar", "uint8" }, 1, 255 },
  [PLY_SHORT] = { { "short", "int16" }, 2, 32767 },
  [PLY_USHORT] = { { "ushort", "uint16" }, 2, 65535 },
  [PLY_INT] = { { "int", "int32" }, 4, 2147483647.0 },
  [PLY_UINT] = { { "uint", "uint32" }, 4, 4294967295.0 },
  [PLY_FLOAT] = { { "float", "float32" }, 4, 1 },
  [PLY_DOUBLE] = { { "double", "float64" }, 8, 1 },
};

static double
ply_read (const guint8 *p, PlyType type)
{
  union { gint8 i8; guint8 u8; gint16 i16; guint16 u16; gint32 i32; guint32 u32; float f; double d; } v;
  memcpy (&v, p, ply_types[type].size);
  switch (type) {
    case PLY_CHAR: return v.i8;
    case PLY_UCHAR: return v.u8;
    case PLY_SHORT: return GINT16_FROM_LE (v.i16);
    case PLY_USHORT: return GUINT16_FROM_LE (v.u16);
    case PLY_INT: return GINT32_FROM_LE (v.i32);
    case PLY_UINT: return GUINT32_FROM_LE (v.u32);
    case PLY_FLOAT: {
      guint32 u = GUINT32_FROM_LE (v.u32);
      memcpy (&v.f, &u, 4);
      return v.f;
    }
    default: {
      guint64 u;
      memcpy (&u, p, 8);
      u = GUINT64_FROM_LE (u);
      memcpy (&v.d, &u, 8);
      return v.d;
    }
  }
}

#define PLY_ERROR(...)                                                                                       \
  (g_set_error (error, OL_ERROR, OL_ERROR_CORRUPT_FILE, "point: PLY: " __VA_ARGS__), NULL)

/* A PLY file's vertices as [n, 6] xyz rgb floats: ascii or binary_little_endian, the vertex element first,
 * with x, y, z and red, green, blue (integer colours scaled to [0, 1] by their type's maximum). */
static float *
parse_ply (const guint8 *data, gsize size, gint64 *n_points, GError **error)
{
  const char *end_header = g_strstr_len ((const char *) data, MIN (size, 65536), "end_header");
  if (end_header == NULL)
    return PLY_ERROR ("no end_header in the first 64 KiB");
  const guint8 *body = memchr (end_header, '\n', size - ((const guint8 *) end_header - data));
  if (body == NULL)
    return PLY_ERROR ("header not terminated");
  body++;
  g_autofree char *header = g_strndup ((const char *) data, (const char *) body - (const char *) data);
  g_auto (GStrv) lines = g_strsplit_set (header, "\r\n", -1);
  gboolean ascii = FALSE, in_vertex = FALSE, seen_element = FALSE;
  gint64 n = -1;
  int n_props = 0, offset = 0, col[6] = { -1, -1, -1, -1, -1, -1 };
  PlyType types[64];
  int prop_offset[64];
  static const char *wanted[6] = { "x", "y", "z", "red", "green", "blue" };
  for (int l = 0; lines[l]; l++) {
    g_auto (GStrv) w = g_strsplit (g_strstrip (lines[l]), " ", -1);
    if (w[0] == NULL || w[0][0] == '\0')
      continue;
    if (g_str_equal (w[0], "format")) {
      if (w[1] && g_str_equal (w[1], "ascii"))
        ascii = TRUE;
      else if (!w[1] || !g_str_equal (w[1], "binary_little_endian"))
        return PLY_ERROR ("format %s not supported (ascii or binary_little_endian)", w[1] ? w[1] : "");
    } else if (g_str_equal (w[0], "element")) {
      in_vertex = w[1] && g_str_equal (w[1], "vertex") && !seen_element;
      if (in_vertex)
        n = w[2] ? g_ascii_strtoll (w[2], NULL, 10) : -1;
      seen_element = TRUE;
    } else if (g_str_equal (w[0], "property") && in_vertex) {
      if (w[1] && g_str_equal (w[1], "list"))
        return PLY_ERROR ("list properties in the vertex element are not supported");
      int t = -1;
      for (int k = 0; k < (int) G_N_ELEMENTS (ply_types) && w[1] && t < 0; k++)
        if (g_str_equal (w[1], ply_types[k].names[0]) || g_str_equal (w[1], ply_types[k].names[1]))
          t = k;
      if (t < 0 || w[2] == NULL || n_props == (int) G_N_ELEMENTS (types))
        return PLY_ERROR ("bad vertex property '%s'", lines[l]);
      for (int c = 0; c < 6; c++)
        if (g_str_equal (w[2], wanted[c]))
          col[c] = n_props;
      prop_offset[n_props] = offset;
      types[n_props++] = t;
      offset += ply_types[t].size;
    }
  }
  if (n < 0)
    return PLY_ERROR ("no vertex element (it must come first)");
  for (int c = 0; c < 6; c++)
    if (col[c] < 0)
      return PLY_ERROR ("the vertices have no '%s' property (x y z red green blue needed)", wanted[c]);
  gsize left = size - (gsize) (body - data);
  if (!ascii && (gsize) n > left / MAX (offset, 1))
    return PLY_ERROR ("%" G_GINT64_FORMAT " vertices of %d bytes do not fit in %" G_GSIZE_FORMAT " bytes", n,
                      offset, left);
  if (ascii && (gsize) n > left / 2)
    return PLY_ERROR ("%" G_GINT64_FORMAT " vertices do not fit in %" G_GSIZE_FORMAT " bytes", n, left);
  float *points = g_new (float, MAX (n, 1) * 6);
  g_autofree char *text = ascii ? g_strndup ((const char *) body, left) : NULL;
  char *cursor = text;
  for (gint64 i = 0; i < n; i++) {
    double values[64];
    for (int p = 0; p < n_props; p++) {
      if (ascii) {
        char *next;
        values[p] = g_ascii_strtod (cursor, &next);
        if (next == cursor) {
          g_free (points);
          return PLY_ERROR ("vertex %" G_GINT64_FORMAT ": expected %d numbers", i, n_props);
        }
        cursor = next;
      } else {
        values[p] = ply_read (body + (gsize) i * offset + prop_offset[p], types[p]);
      }
    }
    for (int c = 0; c < 6; c++)
      points[i * 6 + c] = (float) (c < 3 ? values[col[c]] : values[col[c]] / ply_types[types[col[c]]].scale);
  }
  *n_points = n;
  return points;
}

/* A whole .npy or .ply file as [n, 6] floats. */
static float *
parse_file (const guint8 *data, gsize size, gint64 *n_points, GError **error)
{
  if (size >= 6 && memcmp (data, "\x93NUMPY", 6) == 0) {
    guint n_dims;
    gint64 shape[OL_NPY_MAX_DIMS];
    float *points = ol_npy_parse (data, size, &n_dims, shape, error);
    if (points && (n_dims != 2 || shape[1] != 6)) {
      g_free (points);
      g_set_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT,
                   "point: the .npy array must be [N, 6] (xyz rgb)");
      return NULL;
    }
    if (points)
      *n_points = shape[0];
    return points;
  }
  if (size >= 3 && memcmp (data, "ply", 3) == 0)
    return parse_ply (data, size, n_points, error);
  g_set_error (error, OL_ERROR, OL_ERROR_CORRUPT_FILE, "point: the input is neither a .npy nor a .ply file");
  return NULL;
}

static GstFlowReturn
tokenize (GstOnellmPointTok *self, const float *points, gint64 n, GstClockTime pts, GstClockTime duration)
{
  GstOnellmTokenizer *tok = GST_ONELLM_TOKENIZER (self);
  const OlModalityInfo *mi = gst_onellm_tokenizer_get_modality_info (tok);
  g_autoptr (GError) error = NULL;
  OlPointParams params;
  ol_point_params_init (&params);
  params.n_points = (int) mi->input_shape[0];
  params.n_groups = (int) mi->tokens;
  params.group_size = (int) mi->group_size;
  if (self->input == NULL)
    self->input = g_new (float, gst_onellm_tokenizer_input_size (tok));
  /* the encoder groups the prepared points itself: the indices computed here are not needed */
  g_autofree gint32 *fps = g_new (gint32, params.n_groups);
  g_autofree gint32 *knn = g_new (gint32, (gsize) params.n_groups * params.group_size);
  if (!ol_point_prepare (points, n, &params, self->input, fps, knn, &error))
    return gst_onellm_tokenizer_input_error (tok, error);
  return gst_onellm_tokenizer_push_window (tok, self->input, pts, duration);
}

static GstFlowReturn
gst_onellm_point_tok_handle_buffer (GstOnellmTokenizer *tok, GstPad *pad, GstBuffer *buffer)
{
  GstOnellmPointTok *self = GST_ONELLM_POINT_TOK (tok);
  GstFlowReturn ret = GST_FLOW_OK;
  GstMapInfo map;
  if (!self->raw) {
    gst_onellm_file_push (&self->file, buffer);
    return GST_FLOW_OK;
  }
  if (!gst_buffer_map (buffer, &map, GST_MAP_READ)) {
    gst_buffer_unref (buffer);
    GST_ELEMENT_ERROR (self, STREAM, FAILED, ("Could not map a buffer"), (NULL));
    return GST_FLOW_ERROR;
  }
  if (map.size % (6 * sizeof (float)) != 0) {
    GST_ELEMENT_ERROR (self, STREAM, FORMAT,
                       ("A point buffer of %" G_GSIZE_FORMAT " bytes is not N×6 float32", map.size), (NULL));
    ret = GST_FLOW_ERROR;
  } else {
    float *points = g_memdup2 (map.data, map.size);
    ret = tokenize (self, points, (gint64) (map.size / (6 * sizeof (float))), GST_BUFFER_PTS (buffer),
                    GST_BUFFER_DURATION (buffer));
    g_free (points);
  }
  gst_buffer_unmap (buffer, &map);
  gst_buffer_unref (buffer);
  return ret;
}

static GstFlowReturn
gst_onellm_point_tok_drain (GstOnellmTokenizer *tok)
{
  GstOnellmPointTok *self = GST_ONELLM_POINT_TOK (tok);
  g_autoptr (GError) error = NULL;
  gint64 n;
  if (self->raw || self->file.bytes->len == 0)
    return GST_FLOW_OK;
  g_autofree float *points = parse_file (self->file.bytes->data, self->file.bytes->len, &n, &error);
  GstClockTime pts = self->file.pts;
  gst_onellm_file_clear (&self->file);
  if (points == NULL)
    return gst_onellm_tokenizer_input_error (tok, error);
  return tokenize (self, points, n, pts, GST_CLOCK_TIME_NONE);
}

static void
gst_onellm_point_tok_reset (GstOnellmTokenizer *tok)
{
  GstOnellmPointTok *self = GST_ONELLM_POINT_TOK (tok);
  gst_onellm_file_clear (&self->file);
  g_clear_pointer (&self->input, g_free);
}

static void
gst_onellm_point_tok_finalize (GObject *object)
{
  GstOnellmPointTok *self = GST_ONELLM_POINT_TOK (object);
  gst_onellm_file_free (&self->file);
  g_free (self->input);
  G_OBJECT_CLASS (gst_onellm_point_tok_parent_class)->finalize (object);
}

static void
gst_onellm_point_tok_init (GstOnellmPointTok *self)
{
  gst_onellm_file_init (&self->file);
}

static void
gst_onellm_point_tok_class_init (GstOnellmPointTokClass *klass)
{
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstOnellmTokenizerClass *tok_class = GST_ONELLM_TOKENIZER_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = gst_onellm_point_tok_finalize;
  gst_onellm_tokenizer_class_set_modality (tok_class, OL_MODALITY_POINT);
  tok_class->set_caps = gst_onellm_point_tok_set_caps;
  tok_class->handle_buffer = gst_onellm_point_tok_handle_buffer;
  tok_class->drain = gst_onellm_point_tok_drain;
  tok_class->reset = gst_onellm_point_tok_reset;
  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_set_static_metadata (element_class, "OneLLM point cloud tokenizer", "Filter/Converter",
                                         "Turns point clouds (N×6 float32 xyz rgb buffers, or a whole .npy "
                                         "[N, 6] or .ply file, e.g. from filesrc) "
                                         "into OneLLM point tokens for onellmencoder",
                                         "gst-onellm");
  GST_DEBUG_CATEGORY_INIT (gst_onellm_point_tok_debug, "onellmpointtok", 0, "OneLLM point cloud tokenizer");
}
