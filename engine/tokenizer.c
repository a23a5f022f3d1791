/* SentencePiece BPE: the vocabulary (tokenizer.model or GGUF arrays), encode, decode, streaming decode. */
#include "tokenizer.h"

#include <string.h>

/* U+2581 LOWER ONE EIGHTH BLOCK: sentencepiece's visible space. */
#define SPACE_SYMBOL "\xe2\x96\x81"
#define SPACE_SYMBOL_LEN 3
#define REPLACEMENT_CHAR "\xef\xbf\xbd"
#define DEFAULT_UNK_SURFACE " \xe2\x81\x87 "

/* Keeps the hash table and the int32 ids of every index representable. */
#define MAX_VOCAB (1u << 28)

struct _OlTokenizer {
  gsize n;
  char *strings;          /* every piece, each followed by a NUL */
  gsize *offset;          /* piece i is strings + offset[i], length[i] bytes */
  gsize *length;
  float *score;
  guint8 *type;
  guint32 *slot;          /* open addressing, piece -> id + 1; 0 is an empty slot */
  guint32 slot_mask;
  gsize max_user_len;     /* longest USER_DEFINED piece, 0 if there is none */
  gint32 unk, bos, eos;
  gboolean byte_fallback;
  gint32 byte_id[256];
  gboolean add_dummy_prefix;
  gboolean remove_extra_whitespaces;
  char *unk_surface;
  gsize unk_surface_len;
};

struct _OlDetokenizer {
  const OlTokenizer *tok;
  guint8 pending[4];      /* byte pieces that may still become one UTF-8 character */
  guint n_pending;
  gboolean is_bos_ws;
  gboolean bos_ws_seen;
  gsize emitted;
};

/* One raw vocabulary entry while loading. */
typedef struct {
  const char *piece;
  gsize len;
  float score;
  gint64 type;
} VocabEntry;

/* Settings that come from the model file (or their sentencepiece defaults). */
typedef struct {
  gboolean byte_fallback;
  gboolean add_dummy_prefix;
  gboolean remove_extra_whitespaces;
  const char *unk_surface;
  gsize unk_surface_len;
  const char *bos_piece, *eos_piece;
  gsize bos_piece_len, eos_piece_len;
} VocabSpec;

/* sentencepiece's DecodeUTF8 validity: the length of the valid character starting at s (1 to 4), or 0.
 * *incomplete (may be NULL) tells whether s is a proper prefix of a possibly valid character, which
 * more bytes could complete. */
static guint
utf8_char_len (const guint8 *s, gsize avail, gboolean *incomplete)
{
  if (incomplete != NULL)
    *incomplete = FALSE;
  guint8 c = s[0];
  guint need;
  guint32 cp, min;
  if (c < 0x80)
    return 1;
  if ((c & 0xe0) == 0xc0) {
    need = 2;
    cp = c & 0x1f;
    min = 0x80;
  } else if ((c & 0xf0) == 0xe0) {
    need = 3;
    cp = c & 0x0f;
    min = 0x800;
  } else if ((c & 0xf8) == 0xf0) {
    need = 4;
    cp = c & 0x07;
    min = 0x10000;
  } else {
    return 0;
  }
  gsize have = MIN (avail, need);
  for (gsize i = 1; i < have; i++) {
    if ((s[i] & 0xc0) != 0x80)
      return 0;
    cp = (cp << 6) | (s[i] & 0x3f);
  }
  if (have < need) {
    if (incomplete != NULL)
      *incomplete = TRUE;
    return 0;
  }
  if (cp < min || (cp >= 0xd800 && cp < 0xe000) || cp > 0x10ffff)
    return 0;
  return need;
}

/* ---- piece table ---- */

static guint32
hash_bytes (const char *s, gsize len)
{
  guint32 h = 2166136261u;
  for (gsize i = 0; i < len; i++)
    h = (h ^ (guint8) s[i]) * 16777619u;
  return h;
}

static gint32
lookup (const OlTokenizer *tok, const char *s, gsize len)
{
  for (guint32 h = hash_bytes (s, len) & tok->slot_mask; tok->slot[h] != 0; h = (h + 1) & tok->slot_mask) {
    guint32 id = tok->slot[h] - 1;
    if (tok->length[id] == len && memcmp (tok->strings + tok->offset[id], s, len) == 0)
      return (gint32) id;
  }
  return -1;
}

/* The piece's byte if it is spelled "<0xXX>" exactly as sentencepiece's ByteToPiece writes it, else -1. */
static int
piece_to_byte (const char *s, gsize len)
{
  static const char hex[] = "0123456789ABCDEF";
  if (len != 6 || memcmp (s, "<0x", 3) != 0 || s[5] != '>')
    return -1;
  const char *hi = s[3] ? strchr (hex, s[3]) : NULL, *lo = s[4] ? strchr (hex, s[4]) : NULL;
  if (hi == NULL || lo == NULL)
    return -1;
  return (int) ((hi - hex) * 16 + (lo - hex));
}

static gboolean
mergeable (guint8 type)
{
  return type == OL_PIECE_NORMAL || type == OL_PIECE_USER_DEFINED || type == OL_PIECE_UNUSED;
}

/* Builds the tokenizer and checks the vocabulary the way sentencepiece's ModelInterface does. */
static OlTokenizer *
tokenizer_build (const VocabEntry *v, gsize n, const VocabSpec *spec, const char *origin, GError **error)
{
  if (n == 0) {
    g_set_error (error, OL_ERROR, OL_ERROR_CORRUPT_FILE, "%s: the vocabulary is empty", origin);
    return NULL;
  }
  if (n > MAX_VOCAB) {
    g_set_error (error, OL_ERROR, OL_ERROR_CORRUPT_FILE, "%s: %" G_GSIZE_FORMAT " pieces is more than the "
                 "%u a vocabulary may have", origin, n, MAX_VOCAB);
    return NULL;
  }
  gsize total = 0;
  for (gsize i = 0; i < n; i++) {
    if (v[i].len == 0) {
      g_set_error (error, OL_ERROR, OL_ERROR_CORRUPT_FILE,
                   "%s: piece %" G_GSIZE_FORMAT " is empty", origin, i);
      return NULL;
    }
    if (v[i].type < OL_PIECE_NORMAL || v[i].type > OL_PIECE_BYTE) {
      g_set_error (error, OL_ERROR, OL_ERROR_CORRUPT_FILE,
                   "%s: piece %" G_GSIZE_FORMAT " has the invalid type %"
                   G_GINT64_FORMAT, origin, i, v[i].type);
      return NULL;
    }
    total += v[i].len + 1;
  }

  OlTokenizer *tok = g_new0 (OlTokenizer, 1);
  tok->n = n;
  tok->strings = g_malloc (total);
  tok->offset = g_new (gsize, n);
  tok->length = g_new (gsize, n);
  tok->score = g_new (float, n);
  tok->type = g_new (guint8, n);
  guint32 slots = 16;
  while (slots < 2 * n)
    slots *= 2;
  tok->slot = g_new0 (guint32, slots);
  tok->slot_mask = slots - 1;
  tok->unk = tok->bos = tok->eos = -1;
  tok->byte_fallback = spec->byte_fallback;
  for (int b = 0; b < 256; b++)
    tok->byte_id[b] = -1;
  tok->add_dummy_prefix = spec->add_dummy_prefix;
  tok->remove_extra_whitespaces = spec->remove_extra_whitespaces;
  tok->unk_surface = g_malloc (spec->unk_surface_len + 1);
  memcpy (tok->unk_surface, spec->unk_surface, spec->unk_surface_len);
  tok->unk_surface[spec->unk_surface_len] = 0;
  tok->unk_surface_len = spec->unk_surface_len;

  gsize at = 0;
  for (gsize i = 0; i < n; i++) {
    memcpy (tok->strings + at, v[i].piece, v[i].len);
    tok->strings[at + v[i].len] = 0;
    tok->offset[i] = at;
    tok->length[i] = v[i].len;
    tok->score[i] = v[i].score;
    tok->type[i] = (guint8) v[i].type;
    at += v[i].len + 1;

    if (lookup (tok, v[i].piece, v[i].len) >= 0) {
      g_set_error (error, OL_ERROR, OL_ERROR_CORRUPT_FILE, "%s: piece %" G_GSIZE_FORMAT " repeats piece %d",
                   origin, i, lookup (tok, v[i].piece, v[i].len));
      goto fail;
    }
    guint32 h = hash_bytes (v[i].piece, v[i].len) & tok->slot_mask;
    while (tok->slot[h] != 0)
      h = (h + 1) & tok->slot_mask;
    tok->slot[h] = (guint32) i + 1;

    if (v[i].type == OL_PIECE_USER_DEFINED)
      tok->max_user_len = MAX (tok->max_user_len, v[i].len);
    if (v[i].type == OL_PIECE_UNKNOWN) {
      if (tok->unk >= 0) {
        g_set_error (error, OL_ERROR, OL_ERROR_CORRUPT_FILE,
                     "%s: pieces %d and %" G_GSIZE_FORMAT " are both the "
                     "unknown piece", origin, tok->unk, i);
        goto fail;
      }
      tok->unk = (gint32) i;
    }
    if (v[i].type == OL_PIECE_BYTE) {
      int b = piece_to_byte (v[i].piece, v[i].len);
      if (!spec->byte_fallback) {
        g_set_error (error, OL_ERROR, OL_ERROR_CORRUPT_FILE,
                     "%s: piece %" G_GSIZE_FORMAT " is a byte piece but "
                     "byte fallback is off", origin, i);
        goto fail;
      }
      if (b < 0) {
        g_set_error (error, OL_ERROR, OL_ERROR_CORRUPT_FILE,
                     "%s: byte piece %" G_GSIZE_FORMAT " is not spelled "
                     "<0xXX>", origin, i);
        goto fail;
      }
      tok->byte_id[b] = (gint32) i;
    }
  }
  if (tok->unk < 0) {
    g_set_error (error, OL_ERROR, OL_ERROR_CORRUPT_FILE, "%s: the vocabulary has no unknown piece", origin);
    goto fail;
  }
  if (spec->byte_fallback) {
    for (int b = 0; b < 256; b++) {
      if (tok->byte_id[b] < 0) {
        g_set_error (error, OL_ERROR, OL_ERROR_CORRUPT_FILE,
                     "%s: byte fallback is on but the byte piece <0x%02X> "
                     "is missing", origin, b);
        goto fail;
      }
    }
  }
  /* sentencepiece's bos_id()/eos_id(): the named piece, if it is a control piece. */
  gint32 id = lookup (tok, spec->bos_piece, spec->bos_piece_len);
  tok->bos = id >= 0 && tok->type[id] == OL_PIECE_CONTROL ? id : -1;
  id = lookup (tok, spec->eos_piece, spec->eos_piece_len);
  tok->eos = id >= 0 && tok->type[id] == OL_PIECE_CONTROL ? id : -1;
  return tok;

fail:
  ol_tokenizer_free (tok);
  return NULL;
}

void
ol_tokenizer_free (OlTokenizer *tok)
{
  if (tok == NULL)
    return;
  g_free (tok->strings);
  g_free (tok->offset);
  g_free (tok->length);
  g_free (tok->score);
  g_free (tok->type);
  g_free (tok->slot);
  g_free (tok->unk_surface);
  g_free (tok);
}

static void
spec_init_defaults (VocabSpec *spec)
{
  spec->byte_fallback = FALSE;
  spec->add_dummy_prefix = TRUE;
  spec->remove_extra_whitespaces = TRUE;
  spec->unk_surface = DEFAULT_UNK_SURFACE;
  spec->unk_surface_len = strlen (DEFAULT_UNK_SURFACE);
  spec->bos_piece = "<s>";
  spec->bos_piece_len = 3;
  spec->eos_piece = "</s>";
  spec->eos_piece_len = 4;
}

OlTokenizer *
ol_tokenizer_new_from_vocab (const char *const *pieces, const float *scores, const gint32 *types, gsize n,
                             GError **error)
{
  g_return_val_if_fail (n == 0 || (pieces != NULL && scores != NULL && types != NULL), NULL);
  VocabSpec spec;
  spec_init_defaults (&spec);
  spec.remove_extra_whitespaces = FALSE;
  g_autofree VocabEntry *v = g_new (VocabEntry, MAX (n, 1));
  for (gsize i = 0; i < n; i++) {
    v[i].piece = pieces[i] != NULL ? pieces[i] : "";
    v[i].len = strlen (v[i].piece);
    v[i].score = scores[i];
    v[i].type = types[i];
    if (types[i] == OL_PIECE_BYTE)
      spec.byte_fallback = TRUE;
  }
  return tokenizer_build (v, n, &spec, "tokenizer vocabulary", error);
}

/* ---- tokenizer.model: a small protobuf reader, every length checked against the bytes left ---- */

typedef struct {
  const guint8 *start;   /* of the file, for offsets in messages */
  const guint8 *p, *end;
  const char *path;
} Pb;

enum { WIRE_VARINT = 0, WIRE_FIXED64 = 1, WIRE_LEN = 2, WIRE_FIXED32 = 5 };

static gboolean
pb_fail (const Pb *pb, GError **error, const char *what)
{
  g_set_error (error, OL_ERROR, OL_ERROR_CORRUPT_FILE, "%s: not a valid SentencePiece model: %s at byte %td",
               pb->path, what, pb->p - pb->start);
  return FALSE;
}

static gboolean
pb_varint (Pb *pb, guint64 *v, GError **error)
{
  *v = 0;
  for (guint shift = 0; shift < 64; shift += 7) {
    if (pb->p >= pb->end)
      return pb_fail (pb, error, "truncated varint");
    guint8 b = *pb->p++;
    *v |= (guint64) (b & 0x7f) << shift;
    if (!(b & 0x80))
      return TRUE;
  }
  return pb_fail (pb, error, "varint longer than 10 bytes");
}

static gboolean
pb_key (Pb *pb, guint64 *field, guint *wire, GError **error)
{
  guint64 key;
  if (!pb_varint (pb, &key, error))
    return FALSE;
  *field = key >> 3;
  *wire = key & 7;
  if (*field == 0 || *field > 0x1fffffff)
    return pb_fail (pb, error, "invalid field number");
  return TRUE;
}

/* A length-delimited field: *sub reads its bytes. */
static gboolean
pb_sub (Pb *pb, Pb *sub, GError **error)
{
  guint64 len;
  if (!pb_varint (pb, &len, error))
    return FALSE;
  if (len > (guint64) (pb->end - pb->p))
    return pb_fail (pb, error, "field longer than its message");
  *sub = *pb;
  sub->end = pb->p + len;
  pb->p += len;
  return TRUE;
}

static gboolean
pb_skip (Pb *pb, guint wire, GError **error)
{
  guint64 v;
  Pb sub;
  switch (wire) {
  case WIRE_VARINT:
    return pb_varint (pb, &v, error);
  case WIRE_LEN:
    return pb_sub (pb, &sub, error);
  case WIRE_FIXED64:
  case WIRE_FIXED32: {
    gsize size = wire == WIRE_FIXED64 ? 8 : 4;
    if ((gsize) (pb->end - pb->p) < size)
      return pb_fail (pb, error, "truncated fixed-size field");
    pb->p += size;
    return TRUE;
  }
  default:
    return pb_fail (pb, error, "unsupported wire type");
  }
}

static gboolean
pb_expect (Pb *pb, guint wire, guint want, GError **error)
{
  return wire == want || pb_fail (pb, error, "field of an unexpected wire type");
}

static gboolean
pb_bool (Pb *pb, guint wire, gboolean *b, GError **error)
{
  guint64 v;
  if (!pb_expect (pb, wire, WIRE_VARINT, error) || !pb_varint (pb, &v, error))
    return FALSE;
  *b = v != 0;
  return TRUE;
}

static gboolean
pb_string (Pb *pb, guint wire, const char **s, gsize *len, GError **error)
{
  Pb sub;
  if (!pb_expect (pb, wire, WIRE_LEN, error) || !pb_sub (pb, &sub, error))
    return FALSE;
  *s = (const char *) sub.p;
  *len = sub.end - sub.p;
  return TRUE;
}

/* ModelProto.SentencePiece {piece = 1, score = 2, type = 3}. */
static gboolean
parse_piece (Pb *pb, VocabEntry *e, GError **error)
{
  e->piece = "";
  e->len = 0;
  e->score = 0;
  e->type = OL_PIECE_NORMAL;
  while (pb->p < pb->end) {
    guint64 field, v;
    guint wire;
    if (!pb_key (pb, &field, &wire, error))
      return FALSE;
    if (field == 1) {
      if (!pb_string (pb, wire, &e->piece, &e->len, error))
        return FALSE;
    } else if (field == 2) {
      guint32 bits;
      if (!pb_expect (pb, wire, WIRE_FIXED32, error))
        return FALSE;
      if (pb->end - pb->p < 4)
        return pb_fail (pb, error, "truncated score");
      bits = (guint32) pb->p[0] | (guint32) pb->p[1] << 8 | (guint32) pb->p[2] << 16 |
             (guint32) pb->p[3] << 24;
      memcpy (&e->score, &bits, 4);
      pb->p += 4;
    } else if (field == 3) {
      if (!pb_expect (pb, wire, WIRE_VARINT, error) || !pb_varint (pb, &v, error))
        return FALSE;
      e->type = v > G_MAXINT32 ? -1 : (gint64) v;
    } else if (!pb_skip (pb, wire, error)) {
      return FALSE;
    }
  }
  return TRUE;
}

/* TrainerSpec: the fields that change encoding or decoding. */
static gboolean
parse_trainer_spec (Pb *pb, VocabSpec *spec, guint64 *model_type, gboolean *ws_suffix, GError **error)
{
  while (pb->p < pb->end) {
    guint64 field;
    guint wire;
    gboolean ok;
    if (!pb_key (pb, &field, &wire, error))
      return FALSE;
    switch (field) {
    case 3:
      ok = pb_expect (pb, wire, WIRE_VARINT, error) && pb_varint (pb, model_type, error);
      break;
    case 24:
      ok = pb_bool (pb, wire, ws_suffix, error);
      break;
    case 35:
      ok = pb_bool (pb, wire, &spec->byte_fallback, error);
      break;
    case 44:
      ok = pb_string (pb, wire, &spec->unk_surface, &spec->unk_surface_len, error);
      break;
    case 46:
      ok = pb_string (pb, wire, &spec->bos_piece, &spec->bos_piece_len, error);
      break;
    case 47:
      ok = pb_string (pb, wire, &spec->eos_piece, &spec->eos_piece_len, error);
      break;
    default:
      ok = pb_skip (pb, wire, error);
    }
    if (!ok)
      return FALSE;
  }
  return TRUE;
}

/* NormalizerSpec: a non-empty precompiled_charsmap means a normalization other than identity. */
static gboolean
parse_normalizer_spec (Pb *pb, VocabSpec *spec, gboolean *has_rules, gboolean *escape_ws, GError **error)
{
  while (pb->p < pb->end) {
    guint64 field;
    guint wire;
    gboolean ok;
    const char *s;
    gsize len = 0;
    if (!pb_key (pb, &field, &wire, error))
      return FALSE;
    switch (field) {
    case 2:
      ok = pb_string (pb, wire, &s, &len, error);
      *has_rules = *has_rules || len > 0;
      break;
    case 3:
      ok = pb_bool (pb, wire, &spec->add_dummy_prefix, error);
      break;
    case 4:
      ok = pb_bool (pb, wire, &spec->remove_extra_whitespaces, error);
      break;
    case 5:
      ok = pb_bool (pb, wire, escape_ws, error);
      break;
    default:
      ok = pb_skip (pb, wire, error);
    }
    if (!ok)
      return FALSE;
  }
  return TRUE;
}

static OlTokenizer *
parse_model (const guint8 *data, gsize size, const char *path, GError **error)
{
  Pb pb = { data, data, data + size, path };
  VocabSpec spec;
  spec_init_defaults (&spec);
  guint64 model_type = 1;   /* UNIGRAM, the proto default */
  gboolean ws_suffix = FALSE, has_rules = FALSE, escape_ws = TRUE, denorm_rules = FALSE, denorm_escape = TRUE;
  VocabSpec denorm;
  spec_init_defaults (&denorm);
  g_autoptr (GArray) pieces = g_array_new (FALSE, FALSE, sizeof (VocabEntry));

  while (pb.p < pb.end) {
    guint64 field;
    guint wire;
    Pb sub;
    if (!pb_key (&pb, &field, &wire, error))
      return NULL;
    if (field != 1 && field != 2 && field != 3 && field != 5) {
      if (!pb_skip (&pb, wire, error))
        return NULL;
      continue;
    }
    if (!pb_expect (&pb, wire, WIRE_LEN, error) || !pb_sub (&pb, &sub, error))
      return NULL;
    gboolean ok = TRUE;
    if (field == 1) {
      VocabEntry e;
      ok = parse_piece (&sub, &e, error);
      g_array_append_val (pieces, e);
    } else if (field == 2) {
      ok = parse_trainer_spec (&sub, &spec, &model_type, &ws_suffix, error);
    } else if (field == 3) {
      ok = parse_normalizer_spec (&sub, &spec, &has_rules, &escape_ws, error);
    } else {
      /* denormalizer_spec: only its rules matter, they would rewrite decoded text */
      ok = parse_normalizer_spec (&sub, &denorm, &denorm_rules, &denorm_escape, error);
    }
    if (!ok)
      return NULL;
  }

  if (pieces->len == 0) {
    g_set_error (error, OL_ERROR, OL_ERROR_CORRUPT_FILE,
                 "%s: not a valid SentencePiece model: no pieces", path);
    return NULL;
  }
  if (model_type != 2) {
    g_set_error (error, OL_ERROR, OL_ERROR_UNSUPPORTED,
                 "%s: the SentencePiece model type is %s; only BPE models "
                 "are supported", path, model_type == 1 ? "unigram" : model_type == 3 ? "word" :
                 model_type == 4 ? "char" : "unknown");
    return NULL;
  }
  if (has_rules || denorm_rules) {
    g_set_error (error, OL_ERROR, OL_ERROR_UNSUPPORTED, "%s: the model has normalization rules; only the "
                 "identity normalizer is supported", path);
    return NULL;
  }
  if (!escape_ws || ws_suffix) {
    g_set_error (error, OL_ERROR, OL_ERROR_UNSUPPORTED, "%s: unescaped or suffix whitespace is not supported",
                 path);
    return NULL;
  }
  return tokenizer_build ((const VocabEntry *) pieces->data, pieces->len, &spec, path, error);
}

OlTokenizer *
ol_tokenizer_new_from_data (const guint8 *data, gsize size, const char *name, GError **error)
{
  g_return_val_if_fail ((data != NULL || size == 0) && name != NULL, NULL);
  return parse_model (data, size, name, error);
}

OlTokenizer *
ol_tokenizer_new_from_file (const char *path, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  g_autoptr (GError) err = NULL;
  GMappedFile *mf = g_mapped_file_new (path, FALSE, &err);
  if (mf == NULL) {
    g_set_error (error, OL_ERROR, OL_ERROR_IO, "%s", err->message);
    return NULL;
  }
  OlTokenizer *tok = parse_model ((const guint8 *) g_mapped_file_get_contents (mf),
                                  g_mapped_file_get_length (mf), path, error);
  g_mapped_file_unref (mf);
  return tok;
}

gboolean
ol_tokenizer_set_special_ids (OlTokenizer *tok, gint32 bos, gint32 eos, GError **error)
{
  g_return_val_if_fail (tok != NULL, FALSE);
  if (bos < -1 || bos >= (gint64) tok->n || eos < -1 || eos >= (gint64) tok->n) {
    g_set_error (error, OL_ERROR, OL_ERROR_CORRUPT_FILE,
                 "BOS id %d or EOS id %d is outside the vocabulary of %"
                 G_GSIZE_FORMAT " pieces", bos, eos, tok->n);
    return FALSE;
  }
  tok->bos = bos;
  tok->eos = eos;
  return TRUE;
}

void
ol_tokenizer_set_normalizer (OlTokenizer *tok, gboolean add_dummy_prefix, gboolean remove_extra_whitespaces)
{
  g_return_if_fail (tok != NULL);
  tok->add_dummy_prefix = add_dummy_prefix;
  tok->remove_extra_whitespaces = remove_extra_whitespaces;
}

/* ---- encode ---- */

/* Length of the longest user-defined piece at s, 0 if none. */
static gsize
match_user_defined (const OlTokenizer *tok, const char *s, gsize avail)
{
  for (gsize len = MIN (avail, tok->max_user_len); len > 0; len--) {
    gint32 id = lookup (tok, s, len);
    if (id >= 0 && tok->type[id] == OL_PIECE_USER_DEFINED)
      return len;
  }
  return 0;
}

/* sentencepiece's NormalizePrefix for the identity normalizer: a user-defined piece, a UTF-8 character,
 * or one malformed byte read as U+FFFD. Returns the bytes consumed. */
static gsize
next_unit (const OlTokenizer *tok, const char *s, gsize avail, const char **unit, gsize *unit_len)
{
  gsize n = match_user_defined (tok, s, avail);
  if (n == 0)
    n = utf8_char_len ((const guint8 *) s, avail, NULL);
  if (n == 0) {
    *unit = REPLACEMENT_CHAR;
    *unit_len = 3;
    return 1;
  }
  *unit = s;
  *unit_len = n;
  return n;
}

static void
append_escaped (GString *out, const char *s, gsize len)
{
  for (gsize i = 0; i < len; i++) {
    if (s[i] == ' ')
      g_string_append_len (out, SPACE_SYMBOL, SPACE_SYMBOL_LEN);
    else
      g_string_append_c (out, s[i]);
  }
}

/* sentencepiece's Normalizer::Normalize with an identity rule set. */
static GString *
normalize (const OlTokenizer *tok, const char *text, gsize len)
{
  GString *out = g_string_sized_new (len * 3 / 2 + SPACE_SYMBOL_LEN);
  const char *unit;
  gsize unit_len, pos = 0;
  if (tok->remove_extra_whitespaces) {
    while (pos < len) {
      gsize used = next_unit (tok, text + pos, len - pos, &unit, &unit_len);
      if (unit_len != 1 || unit[0] != ' ')
        break;
      pos += used;
    }
  }
  if (pos == len)
    return out;
  if (tok->add_dummy_prefix)
    g_string_append_len (out, SPACE_SYMBOL, SPACE_SYMBOL_LEN);
  gboolean is_prev_space = tok->remove_extra_whitespaces;
  while (pos < len) {
    pos += next_unit (tok, text + pos, len - pos, &unit, &unit_len);
    while (is_prev_space && unit_len > 0 && unit[0] == ' ') {
      unit++;
      unit_len--;
    }
    if (unit_len > 0) {
      append_escaped (out, unit, unit_len);
      is_prev_space = unit[unit_len - 1] == ' ';
    }
    if (!tok->remove_extra_whitespaces)
      is_prev_space = FALSE;
  }
  if (tok->remove_extra_whitespaces) {
    while (out->len >= SPACE_SYMBOL_LEN &&
           memcmp (out->str + out->len - SPACE_SYMBOL_LEN, SPACE_SYMBOL, SPACE_SYMBOL_LEN) == 0)
      g_string_truncate (out, out->len - SPACE_SYMBOL_LEN);
  }
  return out;
}

typedef struct {
  gsize start, len;
  gssize prev, next;     /* -1 at the ends */
  gboolean freeze;       /* user-defined pieces are never merged */
} Symbol;

typedef struct {
  float score;
  gssize left, right;
  gsize size;            /* bytes of the merged piece, to detect pairs that went stale */
} Pair;

typedef struct {
  const OlTokenizer *tok;
  const char *text;
  Symbol *sym;
  GArray *heap;          /* of Pair, best first */
  GHashTable *rev_merge; /* merged UNUSED piece -> length of its left part; made when first needed */
  GArray *ids;
  gboolean prev_unk;
} Bpe;

/* sentencepiece's agenda order: higher score first, then the leftmost pair. */
static gboolean
pair_before (const Pair *a, const Pair *b)
{
  return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static void
heap_push (GArray *heap, const Pair *p)
{
  g_array_append_val (heap, *p);
  Pair *v = (Pair *) heap->data;
  for (gsize i = heap->len - 1; i > 0;) {
    gsize parent = (i - 1) / 2;
    if (!pair_before (&v[i], &v[parent]))
      break;
    Pair t = v[i];
    v[i] = v[parent];
    v[parent] = t;
    i = parent;
  }
}

static Pair
heap_pop (GArray *heap)
{
  Pair *v = (Pair *) heap->data;
  Pair top = v[0];
  v[0] = v[heap->len - 1];
  g_array_set_size (heap, heap->len - 1);
  gsize n = heap->len;
  for (gsize i = 0;;) {
    gsize l = 2 * i + 1, r = l + 1, best = i;
    if (l < n && pair_before (&v[l], &v[best]))
      best = l;
    if (r < n && pair_before (&v[r], &v[best]))
      best = r;
    if (best == i)
      break;
    Pair t = v[i];
    v[i] = v[best];
    v[best] = t;
    i = best;
  }
  return top;
}

static void
maybe_add_pair (Bpe *bpe, gssize left, gssize right)
{
  if (left < 0 || right < 0 || bpe->sym[left].freeze || bpe->sym[right].freeze)
    return;
  const char *s = bpe->text + bpe->sym[left].start;
  gsize len = bpe->sym[left].len + bpe->sym[right].len;
  gint32 id = lookup (bpe->tok, s, len);
  if (id < 0 || !mergeable (bpe->tok->type[id]))
    return;
  Pair p = { bpe->tok->score[id], left, right, len };
  heap_push (bpe->heap, &p);
  /* sentencepiece records, by content, how an UNUSED piece was formed, to split it again at the end */
  if (bpe->tok->type[id] == OL_PIECE_UNUSED) {
    if (bpe->rev_merge == NULL)
      bpe->rev_merge = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
    g_hash_table_insert (bpe->rev_merge, g_strndup (s, len), GSIZE_TO_POINTER (bpe->sym[left].len));
  }
}

/* Appends the ids of a final piece as sentencepiece's PopulateSentencePieceText does: unknown pieces
 * become byte pieces with byte fallback, else runs of them become one unknown id. */
static void
emit_piece (Bpe *bpe, const char *s, gsize len, gint32 id)
{
  const OlTokenizer *tok = bpe->tok;
  gboolean unk = tok->type[id] == OL_PIECE_UNKNOWN;
  if (unk && tok->byte_fallback) {
    for (gsize i = 0; i < len; i++)
      g_array_append_val (bpe->ids, tok->byte_id[(guint8) s[i]]);
  } else if (!(unk && bpe->prev_unk)) {
    g_array_append_val (bpe->ids, id);
  }
  bpe->prev_unk = unk;
}

/* sentencepiece's resegment: UNUSED pieces are split back into the two pieces that formed them. The
 * right halves wait on a stack, made only for such pieces. */
static void
resegment (Bpe *bpe, gsize start, gsize len)
{
  GArray *stack = NULL;
  for (;;) {
    const char *piece = bpe->text + start;
    gint32 id = lookup (bpe->tok, piece, len);
    if (id < 0)
      id = bpe->tok->unk;
    gsize left = 0;
    if (bpe->tok->type[id] == OL_PIECE_UNUSED && bpe->rev_merge != NULL) {
      g_autofree char *key = g_strndup (piece, len);
      left = GPOINTER_TO_SIZE (g_hash_table_lookup (bpe->rev_merge, key));
    }
    if (left > 0) {
      if (stack == NULL)
        stack = g_array_new (FALSE, FALSE, sizeof (gsize));
      gsize right[2] = { start + left, len - left };
      g_array_append_vals (stack, right, 2);
      len = left;
      continue;
    }
    emit_piece (bpe, piece, len, id);
    if (stack == NULL || stack->len == 0)
      break;
    start = g_array_index (stack, gsize, stack->len - 2);
    len = g_array_index (stack, gsize, stack->len - 1);
    g_array_set_size (stack, stack->len - 2);
  }
  if (stack != NULL)
    g_array_unref (stack);
}

static void
bpe_encode (const OlTokenizer *tok, const char *text, gsize len, GArray *ids)
{
  Bpe bpe = { tok, text, g_new (Symbol, len), g_array_new (FALSE, FALSE, sizeof (Pair)), NULL, ids, FALSE };
  gssize n = 0;
  for (gsize pos = 0; pos < len; n++) {
    static const guint8 char_len[16] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4 };
    gsize mblen = match_user_defined (tok, text + pos, len - pos);
    bpe.sym[n].freeze = mblen > 0;
    if (mblen == 0)
      mblen = MIN (len - pos, char_len[(guint8) text[pos] >> 4]);
    bpe.sym[n].start = pos;
    bpe.sym[n].len = mblen;
    bpe.sym[n].prev = n - 1;
    pos += mblen;
    bpe.sym[n].next = pos < len ? n + 1 : -1;
  }
  for (gssize i = 1; i < n; i++)
    maybe_add_pair (&bpe, i - 1, i);

  while (bpe.heap->len > 0) {
    Pair top = heap_pop (bpe.heap);
    Symbol *l = &bpe.sym[top.left], *r = &bpe.sym[top.right];
    if (l->len == 0 || r->len == 0 || l->len + r->len != top.size)
      continue;
    l->len += r->len;
    l->next = r->next;
    if (r->next >= 0)
      bpe.sym[r->next].prev = top.left;
    r->len = 0;
    maybe_add_pair (&bpe, l->prev, top.left);
    maybe_add_pair (&bpe, top.left, l->next);
  }

  for (gssize i = n > 0 ? 0 : -1; i >= 0; i = bpe.sym[i].next)
    resegment (&bpe, bpe.sym[i].start, bpe.sym[i].len);

  g_free (bpe.sym);
  g_array_unref (bpe.heap);
  if (bpe.rev_merge != NULL)
    g_hash_table_unref (bpe.rev_merge);
}

gint32 *
ol_tokenizer_encode (const OlTokenizer *tok, const char *text, gssize len, gboolean bos, gboolean eos,
                     gsize *n_ids)
{
  g_return_val_if_fail (tok != NULL && n_ids != NULL, NULL);
  g_return_val_if_fail (text != NULL || len == 0, NULL);
  gsize n = len < 0 ? strlen (text) : (gsize) len;
  GArray *ids = g_array_sized_new (FALSE, FALSE, sizeof (gint32), n / 3 + 2);
  if (bos && tok->bos >= 0)
    g_array_append_val (ids, tok->bos);
  if (n > 0) {
    GString *norm = normalize (tok, text, n);
    bpe_encode (tok, norm->str, norm->len, ids);
    g_string_free (norm, TRUE);
  }
  if (eos && tok->eos >= 0)
    g_array_append_val (ids, tok->eos);
  *n_ids = ids->len;
  return (gint32 *) g_array_free (ids, FALSE);
}

/* ---- decode ---- */

OlPieceType
ol_tokenizer_piece_type (const OlTokenizer *tok, gint32 id)
{
  g_return_val_if_fail (tok != NULL, OL_PIECE_UNKNOWN);
  return id >= 0 && (gsize) id < tok->n ? (OlPieceType) tok->type[id] : OL_PIECE_UNKNOWN;
}

static guint8
byte_of_piece (const OlTokenizer *tok, gint32 id)
{
  return (guint8) piece_to_byte (tok->strings + tok->offset[id], tok->length[id]);
}

/* sentencepiece's ProcessBytePieces: appends the characters that n bytes (from byte pieces) form, a
 * malformed byte as U+FFFD. Unless final, stops before a proper prefix of a character at the end, which
 * later bytes may complete. Returns the bytes consumed. */
static gsize
append_bytes (GString *out, const guint8 *b, gsize n, gboolean final)
{
  gsize pos = 0;
  while (pos < n) {
    gboolean incomplete;
    guint len = utf8_char_len (b + pos, n - pos, &incomplete);
    if (len > 0) {
      g_string_append_len (out, (const char *) b + pos, len);
      pos += len;
    } else if (incomplete && !final) {
      break;
    } else {
      g_string_append_len (out, REPLACEMENT_CHAR, 3);
      pos++;
    }
  }
  return pos;
}

/* sentencepiece's DecodeSentencePiece for a piece that is not a byte: returns whether it consumed the
 * dummy-prefix space. */
static gboolean
append_piece (const OlTokenizer *tok, gint32 id, gboolean is_bos_ws, GString *out)
{
  OlPieceType type = ol_tokenizer_piece_type (tok, id);
  if (type == OL_PIECE_CONTROL)
    return FALSE;
  if (type == OL_PIECE_UNKNOWN) {
    g_string_append_len (out, tok->unk_surface, tok->unk_surface_len);
    return FALSE;
  }
  const char *s = tok->strings + tok->offset[id];
  gsize len = tok->length[id];
  gboolean consumed = FALSE;
  if (is_bos_ws && (tok->add_dummy_prefix || tok->remove_extra_whitespaces) && len >= SPACE_SYMBOL_LEN &&
      memcmp (s, SPACE_SYMBOL, SPACE_SYMBOL_LEN) == 0) {
    s += SPACE_SYMBOL_LEN;
    len -= SPACE_SYMBOL_LEN;
    /* with extra whitespace removed, every leading space symbol goes */
    consumed = !tok->remove_extra_whitespaces;
  }
  for (gsize i = 0; i < len;) {
    if (len - i >= SPACE_SYMBOL_LEN && memcmp (s + i, SPACE_SYMBOL, SPACE_SYMBOL_LEN) == 0) {
      g_string_append_c (out, ' ');
      i += SPACE_SYMBOL_LEN;
    } else {
      g_string_append_c (out, s[i++]);
    }
  }
  return consumed;
}

static char *
finish_text (GString *out, gsize *len)
{
  if (len != NULL)
    *len = out->len;
  return g_string_free (out, FALSE);
}

char *
ol_tokenizer_decode (const OlTokenizer *tok, const gint32 *ids, gsize n, gsize *len)
{
  g_return_val_if_fail (tok != NULL && (ids != NULL || n == 0), NULL);
  GString *out = g_string_new (NULL);
  g_autoptr (GByteArray) run = g_byte_array_new ();
  gboolean is_bos_ws = TRUE, bos_ws_seen = FALSE;
  for (gsize i = 0; i < n; i++) {
    if (ol_tokenizer_piece_type (tok, ids[i]) == OL_PIECE_BYTE) {
      guint8 b = byte_of_piece (tok, ids[i]);
      g_byte_array_append (run, &b, 1);
      continue;
    }
    append_bytes (out, run->data, run->len, TRUE);
    g_byte_array_set_size (run, 0);
    if (bos_ws_seen || out->len > 0)
      is_bos_ws = FALSE;
    bos_ws_seen = append_piece (tok, ids[i], is_bos_ws, out);
  }
  append_bytes (out, run->data, run->len, TRUE);
  return finish_text (out, len);
}

OlDetokenizer *
ol_detokenizer_new (const OlTokenizer *tok)
{
  g_return_val_if_fail (tok != NULL, NULL);
  OlDetokenizer *det = g_new0 (OlDetokenizer, 1);
  det->tok = tok;
  det->is_bos_ws = TRUE;
  return det;
}

void
ol_detokenizer_free (OlDetokenizer *det)
{
  g_free (det);
}

static void
drain_pending (OlDetokenizer *det, GString *out, gboolean final)
{
  gsize used = append_bytes (out, det->pending, det->n_pending, final);
  memmove (det->pending, det->pending + used, det->n_pending - used);
  det->n_pending -= used;
}

char *
ol_detokenizer_push (OlDetokenizer *det, gint32 id, gsize *len)
{
  g_return_val_if_fail (det != NULL, NULL);
  const OlTokenizer *tok = det->tok;
  GString *out = g_string_new (NULL);
  if (ol_tokenizer_piece_type (tok, id) == OL_PIECE_BYTE) {
    det->pending[det->n_pending++] = byte_of_piece (tok, id);
    drain_pending (det, out, FALSE);
  } else {
    drain_pending (det, out, TRUE);
    if (det->bos_ws_seen || det->emitted + out->len > 0)
      det->is_bos_ws = FALSE;
    det->bos_ws_seen = append_piece (tok, id, det->is_bos_ws, out);
  }
  det->emitted += out->len;
  return finish_text (out, len);
}

char *
ol_detokenizer_flush (OlDetokenizer *det, gsize *len)
{
  g_return_val_if_fail (det != NULL, NULL);
  GString *out = g_string_new (NULL);
  drain_pending (det, out, TRUE);
  det->is_bos_ws = TRUE;
  det->bos_ws_seen = FALSE;
  det->emitted = 0;
  return finish_text (out, len);
}

/* ---- accessors ---- */

gsize
ol_tokenizer_n_vocab (const OlTokenizer *tok)
{
  g_return_val_if_fail (tok != NULL, 0);
  return tok->n;
}

gint32
ol_tokenizer_bos (const OlTokenizer *tok)
{
  g_return_val_if_fail (tok != NULL, -1);
  return tok->bos;
}

gint32
ol_tokenizer_eos (const OlTokenizer *tok)
{
  g_return_val_if_fail (tok != NULL, -1);
  return tok->eos;
}

gint32
ol_tokenizer_unk (const OlTokenizer *tok)
{
  g_return_val_if_fail (tok != NULL, -1);
  return tok->unk;
}

const char *
ol_tokenizer_piece (const OlTokenizer *tok, gint32 id)
{
  g_return_val_if_fail (tok != NULL, NULL);
  return id >= 0 && (gsize) id < tok->n ? tok->strings + tok->offset[id] : NULL;
}

float
ol_tokenizer_piece_score (const OlTokenizer *tok, gint32 id)
{
  g_return_val_if_fail (tok != NULL, 0);
  return id >= 0 && (gsize) id < tok->n ? tok->score[id] : 0;
}

gint32
ol_tokenizer_find_piece (const OlTokenizer *tok, const char *piece)
{
  g_return_val_if_fail (tok != NULL && piece != NULL, -1);
  return lookup (tok, piece, strlen (piece));
}
