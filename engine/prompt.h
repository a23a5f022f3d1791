/* The OneLLM prompt: the conversation template, and where a generated answer ends. */
#pragma once

#include <glib.h>
#include "error.h"

G_BEGIN_DECLS

/* The turn separator of OneLLM's template (conversation_lib's conv_v1_2, SINGLE style). */
#define OL_PROMPT_SEPARATOR "###"

/* The template's system text: "A chat between a curious human and an artificial intelligence
 * assistant. …". */
OL_API const char *ol_prompt_default_system (void);

typedef struct {
  const char *question;
  const char *answer;   /* NULL or "" in the turn to be answered */
} OlPromptTurn;

/* conversation_lib's get_prompt: system (NULL: the default) + "\n\n###", then for each message
 * "Role: text\n###", or "Role:" alone when the text is NULL or empty; the roles are "Human" and
 * "Assistant". One question q gives "…\n\n###Human: q\n###Assistant:"; a previous answer a gives
 * "…###Assistant: a\n###Human: …". */
OL_API char *ol_prompt_build (const char *system, const OlPromptTurn *turns, gsize n_turns);

/* The answer in len bytes of generated text (len -1: NUL-terminated), as OneLLM reports it: the text
 * before the first "###", stripped of whitespace as Python's str.strip() does. *stop (may be NULL) tells
 * whether the separator has appeared, i.e. the model began the next turn and generation must stop.
 * (OneLLM's generate runs on to EOS or the length limit and cuts afterwards; stopping at the separator
 * gives the same answer sooner.) */
OL_API char *ol_prompt_answer (const char *generated, gssize len, gboolean *stop);

G_END_DECLS
