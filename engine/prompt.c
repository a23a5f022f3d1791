/* OneLLM's conversation template (conv_v1_2) and its output post-processing. */
#include "prompt.h"

#include <string.h>

static const char default_system[] =
  "A chat between a curious human and an artificial intelligence assistant. "
  "The assistant gives helpful, detailed, and polite answers to the human's questions.";

const char *
ol_prompt_default_system (void)
{
  return default_system;
}

static void
append_message (GString *out, const char *role, const char *text)
{
  g_string_append (out, role);
  if (text != NULL && text[0] != 0)
    g_string_append_printf (out, ": %s\n" OL_PROMPT_SEPARATOR, text);
  else
    g_string_append_c (out, ':');
}

char *
ol_prompt_build (const char *system, const OlPromptTurn *turns, gsize n_turns)
{
  g_return_val_if_fail (turns != NULL || n_turns == 0, NULL);
  GString *out = g_string_new (system != NULL ? system : default_system);
  g_string_append (out, "\n\n" OL_PROMPT_SEPARATOR);
  for (gsize i = 0; i < n_turns; i++) {
    append_message (out, "Human", turns[i].question);
    append_message (out, "Assistant", turns[i].answer);
  }
  return g_string_free (out, FALSE);
}

/* Python's str.isspace(). */
static gboolean
py_isspace (gunichar c)
{
  return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f ||
         c == 0x3000;
}

char *
ol_prompt_answer (const char *generated, gssize len, gboolean *stop)
{
  g_return_val_if_fail (generated != NULL || len == 0, NULL);
  gsize n = len < 0 ? strlen (generated) : (gsize) len;
  const char *sep = memmem (generated, n, OL_PROMPT_SEPARATOR, strlen (OL_PROMPT_SEPARATOR));
  if (stop != NULL)
    *stop = sep != NULL;
  if (sep != NULL)
    n = sep - generated;
  gsize start = 0, end = 0, pos = 0;
  gboolean seen = FALSE;
  while (pos < n) {
    gunichar c = g_utf8_get_char_validated (generated + pos, n - pos);
    gsize clen = 1;
    if (c < (gunichar) -2)
      clen = g_utf8_next_char (generated + pos) - (generated + pos);
    /* a malformed byte is no whitespace */
    if (c >= (gunichar) -2 || !py_isspace (c)) {
      if (!seen)
        start = pos;
      seen = TRUE;
      end = pos + clen;
    }
    pos += clen;
  }
  return g_strndup (generated + start, end - start);
}
