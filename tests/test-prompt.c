/* Prompt: the conversation template's strings and ids (model spec §6.2), and the answer / stop logic. */
#include "onellm.h"

#include <string.h>

#define LLAMA_MODEL OL_SHARED_DATA "/llama2-tokenizer.model"

#define SYSTEM                                                                                              \
  "A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, " \
  "detailed, and polite answers to the human's questions."

static void
test_single_turn (void)
{
  g_assert_cmpstr (ol_prompt_default_system (), ==, SYSTEM);
  const OlPromptTurn turn = { "Provide a one-sentence caption for the provided image.", NULL };
  g_autofree char *prompt = ol_prompt_build (NULL, &turn, 1);
  g_assert_cmpstr (prompt, ==, SYSTEM "\n\n###Human: Provide a one-sentence caption for the provided image."
                                     "\n###Assistant:");

  /* the spec's tokenisation check: 58 ids with BOS */
  static const gint32 want[] = {
    1, 319, 13563, 1546, 263, 12758, 5199, 322, 385, 23116, 21082, 20255, 29889, 450, 20255, 4076, 8444,
    29892, 13173, 29892, 322, 1248, 568, 6089, 304, 278, 5199, 29915, 29879, 5155, 29889, 13, 13, 2277, 29937,
    29950, 7889, 29901, 9133, 680, 263, 697, 29899, 18616, 663, 5777, 683, 363, 278, 4944, 1967, 29889, 13,
    2277, 29937, 7900, 22137, 29901,
  };
  g_autoptr (GError) error = NULL;
  OlTokenizer *tok = ol_tokenizer_new_from_file (LLAMA_MODEL, &error);
  g_assert_no_error (error);
  gsize n;
  g_autofree gint32 *ids = ol_tokenizer_encode (tok, prompt, -1, TRUE, FALSE, &n);
  g_assert_cmpmem (ids, n * sizeof (gint32), want, sizeof want);
  ol_tokenizer_free (tok);

  /* an empty answer is the turn to be answered, like NULL */
  const OlPromptTurn empty = { "What is this?", "" };
  g_autofree char *p2 = ol_prompt_build (NULL, &empty, 1);
  g_assert_cmpstr (p2, ==, SYSTEM "\n\n###Human: What is this?\n###Assistant:");
}

static void
test_multi_turn (void)
{
  const OlPromptTurn turns[] = {
    { "Describe the scene.", "A man rides a bike." },
    { "What colour is the bike?", "Red." },
    { "Why?", NULL },
  };
  g_autofree char *prompt = ol_prompt_build (NULL, turns, G_N_ELEMENTS (turns));
  g_assert_cmpstr (prompt, ==,
                   SYSTEM "\n\n###Human: Describe the scene.\n###Assistant: A man rides a bike.\n"
                          "###Human: What colour is the bike?\n###Assistant: Red.\n"
                          "###Human: Why?\n###Assistant:");
  g_autofree char *custom = ol_prompt_build ("Be brief.", turns, 1);
  g_assert_cmpstr (custom, ==,
                   "Be brief.\n\n###Human: Describe the scene.\n###Assistant: A man rides a bike.\n###");
  g_autofree char *none = ol_prompt_build (NULL, NULL, 0);
  g_assert_cmpstr (none, ==, SYSTEM "\n\n###");
}

/* OneLLM's post-processing is text.split('###')[0].strip(). */
static void
test_answer (void)
{
  const struct {
    const char *generated;
    gssize len;
    const char *answer;
    gboolean stop;
  } cases[] = {
    { " A cat on a mat.\n###Human: and?", -1, "A cat on a mat.", TRUE },
    { " A cat on a mat.\n##", -1, "A cat on a mat.\n##", FALSE },   /* no separator yet */
    { "###", -1, "", TRUE },
    { "", -1, "", FALSE },
    { " \t\n ", -1, "", FALSE },
    { "a ### b ### c", -1, "a", TRUE },
    { "\xe3\x80\x80\xc2\xa0wide\xe2\x80\x83\x0b", -1, "wide", FALSE },   /* U+3000, U+00A0, U+2003, VT */
    /* U+200B is no whitespace to Python */
    { "\xe2\x80\x8bzero width\xe2\x80\x8b", -1, "\xe2\x80\x8bzero width\xe2\x80\x8b", FALSE },
    { " \xff bad \xc3", -1, "\xff bad \xc3", FALSE },   /* malformed bytes are kept */
    { " kept ###", 6, "kept", FALSE },                   /* only len bytes count */
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    gboolean stop = !cases[i].stop;
    g_autofree char *answer = ol_prompt_answer (cases[i].generated, cases[i].len, &stop);
    g_assert_cmpstr (answer, ==, cases[i].answer);
    g_assert_cmpint (stop, ==, cases[i].stop);
  }
  g_autofree char *no_stop = ol_prompt_answer ("y ###", -1, NULL);
  g_assert_cmpstr (no_stop, ==, "y");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/prompt/single-turn", test_single_turn);
  g_test_add_func ("/prompt/multi-turn", test_multi_turn);
  g_test_add_func ("/prompt/answer", test_answer);
  return g_test_run ();
}
