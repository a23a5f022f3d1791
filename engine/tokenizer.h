/* SentencePiece BPE tokenizer (the LLaMA vocabulary): encode and decode as sentencepiece 0.1.97 does. */
#pragma once

#include <glib.h>
#include "error.h"
#include "gguf.h"

G_BEGIN_DECLS

typedef struct _OlTokenizer OlTokenizer;
typedef struct _OlDetokenizer OlDetokenizer;

/* Piece types: the values of sentencepiece's ModelProto.SentencePiece.Type, which GGUF's
 * tokenizer.ggml.token_type array uses too. */
typedef enum {
  OL_PIECE_NORMAL = 1,
  OL_PIECE_UNKNOWN = 2,
  OL_PIECE_CONTROL = 3,
  OL_PIECE_USER_DEFINED = 4,
  OL_PIECE_UNUSED = 5,
  OL_PIECE_BYTE = 6,
} OlPieceType;

/* Reads a sentencepiece `tokenizer.model` (a serialized ModelProto). Only BPE models with the identity
 * normalizer are supported (OL_ERROR_UNSUPPORTED otherwise); a malformed file gives
 * OL_ERROR_CORRUPT_FILE, an unreadable one OL_ERROR_IO. */
OL_API OlTokenizer *ol_tokenizer_new_from_file (const char *path, GError **error);
/* The same from the bytes of such a file (a model embedded elsewhere); name is used in error messages. */
OL_API OlTokenizer *ol_tokenizer_new_from_data (const guint8 *data, gsize size, const char *name,
                                                GError **error);

/* Builds a tokenizer from a vocabulary as GGUF stores it (tokenizer.ggml.tokens, .scores, .token_type):
 * n pieces with their merge scores and OlPieceType values. Byte fallback is on when the vocabulary has
 * byte pieces (then all 256 "<0xXX>" pieces must be there); BOS and EOS are the control pieces "<s>" and
 * "</s>" if present; the normalizer is LLaMA's (dummy prefix, extra whitespace kept). An invalid
 * vocabulary (empty or duplicate piece, bad type, no or several unknown pieces) gives
 * OL_ERROR_CORRUPT_FILE, since it always comes from a model file. */
OL_API OlTokenizer *ol_tokenizer_new_from_vocab (const char *const *pieces, const float *scores,
                                                 const gint32 *types, gsize n, GError **error);
/* The vocabulary of a GGUF model file (docs/model-format.md): tokenizer.ggml.tokens, .scores and
 * .token_type as for ol_tokenizer_new_from_vocab, then the optional .bos_token_id, .eos_token_id,
 * .unknown_token_id (u32; the unknown one must be the piece of type UNKNOWN), .add_space_prefix
 * (default true) and .remove_extra_whitespaces (default false). A .model other than "llama" gives
 * OL_ERROR_UNSUPPORTED; missing, mistyped or inconsistent keys OL_ERROR_CORRUPT_FILE. The result does
 * not refer to the file. */
OL_API OlTokenizer *ol_tokenizer_new_from_gguf (const OlGguf *gguf, GError **error);
OL_API void ol_tokenizer_free (OlTokenizer *tok);

/* Overrides for what a GGUF file states explicitly (tokenizer.ggml.bos_token_id, eos_token_id,
 * add_space_prefix, remove_extra_whitespaces). An id is -1 (none) or a valid id. */
OL_API gboolean ol_tokenizer_set_special_ids (OlTokenizer *tok, gint32 bos, gint32 eos, GError **error);
OL_API void ol_tokenizer_set_normalizer (OlTokenizer *tok, gboolean add_dummy_prefix,
                                         gboolean remove_extra_whitespaces);

/* Token ids of len bytes of text (len -1: NUL-terminated), as sentencepiece's encode, with BOS before
 * and EOS after when asked for and the tokenizer has them. Any bytes are accepted: malformed UTF-8
 * is read as U+FFFD per byte, like sentencepiece's normalizer. Returns a new array of *n_ids ids
 * (never NULL). */
OL_API gint32 *ol_tokenizer_encode (const OlTokenizer *tok, const char *text, gssize len, gboolean bos,
                                    gboolean eos, gsize *n_ids);

/* The text of n ids, as sentencepiece's decode: control pieces vanish, the unknown piece reads " ⁇ ",
 * runs of byte pieces are reassembled as UTF-8 (each byte that does not form a valid character becomes
 * U+FFFD), U+2581 becomes a space, and the dummy-prefix space of the first piece is dropped.
 * sentencepiece refuses ids outside [0, vocabulary size); here they read as the unknown piece.
 * Returns a new NUL-terminated string, always valid UTF-8; *len (may be NULL) gets its length, which
 * tells apart a decoded "<0x00>" byte from the terminator. */
OL_API char *ol_tokenizer_decode (const OlTokenizer *tok, const gint32 *ids, gsize n, gsize *len);

OL_API gsize ol_tokenizer_n_vocab (const OlTokenizer *tok);
OL_API gint32 ol_tokenizer_bos (const OlTokenizer *tok);   /* -1 if none */
OL_API gint32 ol_tokenizer_eos (const OlTokenizer *tok);   /* -1 if none */
OL_API gint32 ol_tokenizer_unk (const OlTokenizer *tok);
/* The piece of an id, NULL if out of range. */
OL_API const char *ol_tokenizer_piece (const OlTokenizer *tok, gint32 id);
/* The merge score of an id, 0 if out of range. */
OL_API float ol_tokenizer_piece_score (const OlTokenizer *tok, gint32 id);
/* The type of an id; OL_PIECE_UNKNOWN for ids out of range, which decode as the unknown piece. */
OL_API OlPieceType ol_tokenizer_piece_type (const OlTokenizer *tok, gint32 id);
/* The id of a piece, -1 if the vocabulary does not have it. */
OL_API gint32 ol_tokenizer_find_piece (const OlTokenizer *tok, const char *piece);

/* Streaming decode for generation: push ids one at a time and get the text each one completes. Text is
 * held back only while byte pieces may still form a UTF-8 character, so no half character is ever
 * returned. The pushes of a sequence followed by ol_detokenizer_flush return, concatenated, exactly
 * ol_tokenizer_decode of the whole sequence. The tokenizer must outlive the detokenizer. */
OL_API OlDetokenizer *ol_detokenizer_new (const OlTokenizer *tok);
OL_API void ol_detokenizer_free (OlDetokenizer *det);
/* Returns the new text (possibly empty; a new string, *len as for ol_tokenizer_decode). */
OL_API char *ol_detokenizer_push (OlDetokenizer *det, gint32 id, gsize *len);
/* Ends the sequence: returns what is still held back (incomplete UTF-8, as U+FFFD per byte) and
 * starts a new sequence, to which the dummy-prefix rule applies again. */
OL_API char *ol_detokenizer_flush (OlDetokenizer *det, gsize *len);

G_END_DECLS
