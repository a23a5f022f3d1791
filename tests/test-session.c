/* Language path on the tiny model against the PyTorch goldens (tests/data/session), and session behaviour. */
#include "support/ref.h"

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#define STRIDE 16        /* the goldens keep every 16th logit */
#define MAX_TOKENS 16
#define STEPS 3
/* F32 weights, F32 cache: the engine and the reference differ only in summation order (worst seen on
 * lavapipe: 1e-5, logits of magnitude ~3). */
#define TOL_F32 1e-4f
/* F16 cache: K and V rounded to 11 significant bits (worst seen: 4e-3). */
#define TOL_F16 1e-2f
/* Cache rows of the test sessions: the longest case (video+audio) needs 130; attention reads the whole
 * cache tensor in decode steps, so a small one keeps the test fast. */
#define TEST_CTX 256

static const char *tiny_path;
static OlModel *model;

static const char *const cases[][3] = {
  { "text" }, { "image", "image" }, { "video", "video" }, { "audio", "audio" }, { "point", "point" },
  { "rgbd", "rgbd" }, { "rgbn", "rgbn" }, { "fmri", "fmri" }, { "imu", "imu" },
  { "video+audio", "video", "audio" },
};

static OlModel *
tiny_model (void)
{
  if (model == NULL) {
    g_autoptr (GError) error = NULL;
    model = ol_model_new (ref_device (), tiny_path, &error);
    g_assert_no_error (error);
  }
  return model;
}

static float *
golden (const char *name, gsize *n)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path = g_strdup_printf ("%s/%s.npy", SESSION_DATA, name);
  guint n_dims;
  gint64 shape[OL_NPY_MAX_DIMS];
  float *data = ol_npy_read (path, &n_dims, shape, &error);
  g_assert_no_error (error);
  gsize count = 1;
  for (guint i = 0; i < n_dims; i++)
    count *= shape[i];
  if (n)
    *n = count;
  return data;
}

static gint32 *
golden_ids (const char *name, gsize *n)
{
  g_autofree float *f = golden (name, n);
  gint32 *ids = g_new (gint32, *n + 1);
  for (gsize i = 0; i < *n; i++)
    ids[i] = (gint32) f[i];
  return ids;
}

static OlSession *
new_session (OlPositionMode mode, OlType kv_type, guint n_ctx)
{
  g_autoptr (GError) error = NULL;
  OlSessionParams p;
  ol_session_params_init (&p);
  p.position_mode = mode;
  p.kv_type = kv_type;
  p.n_ctx = n_ctx ? n_ctx : TEST_CTX;
  OlSession *s = ol_session_new (tiny_model (), &p, &error);
  g_assert_no_error (error);
  return s;
}

static gint32
argmax (const float *x, gsize n)
{
  gsize best = 0;
  for (gsize i = 1; i < n; i++)
    if (x[i] > x[best])
      best = i;
  return best;
}

static void
assert_logits (const char *what, const float *logits, const float *want, float tol)
{
  gsize n = ol_model_get_info (tiny_model ())->n_vocab / STRIDE;
  g_autofree float *got = g_new (float, n);
  for (gsize i = 0; i < n; i++)
    got[i] = logits[i * STRIDE];
  ref_assert_close (what, got, want, n, NULL, tol);
}

/* What one case gives: prefill logits, greedy ids, logits of the first decode steps. */
typedef struct {
  float *prefill;
  GArray *tokens;
  float *steps[STEPS];
} Run;

static void
run_clear (Run *r)
{
  g_free (r->prefill);
  g_array_unref (r->tokens);
  for (guint i = 0; i < STEPS; i++)
    g_free (r->steps[i]);
}

/* The case's prompt with its blocks after BOS, then greedy decoding with the reference's stop rules
 * (EOS, the separator in the decoded text, MAX_TOKENS). */
static void
run_case (OlSession *s, const char *const *c, Run *r)
{
  g_autoptr (GError) error = NULL;
  const OlModelInfo *in = ol_model_get_info (tiny_model ());
  OlTokenizer *tok = ol_model_get_tokenizer (tiny_model ());
  g_autofree char *ids_name = g_strdup_printf ("%s.prompt_ids", c[0]);
  gsize n_ids;
  g_autofree gint32 *ids = golden_ids (ids_name, &n_ids);
  float *blocks[2] = { NULL, NULL };
  OlPromptPart parts[4] = { { .ids = ids, .n_ids = 1 } };
  guint n_parts = 1;
  for (guint b = 0; b < 2 && c[b + 1]; b++) {
    g_autofree char *name = g_strdup_printf ("%s.block", c[b + 1]);
    gsize n;
    blocks[b] = golden (name, &n);
    g_assert_cmpuint (n, ==, (in->n_resample + 2) * in->dim);
    parts[n_parts++] = (OlPromptPart) { .embeddings = blocks[b], .n_rows = in->n_resample + 2 };
  }
  parts[n_parts++] = (OlPromptPart) { .ids = ids + 1, .n_ids = n_ids - 1 };

  memset (r, 0, sizeof *r);
  r->prefill = g_new (float, in->n_vocab);
  r->tokens = g_array_new (FALSE, FALSE, sizeof (gint32));
  ol_session_reset (s);
  g_assert_true (ol_session_prefill (s, parts, n_parts, r->prefill, &error));
  g_assert_no_error (error);
  g_autofree float *logits = g_memdup2 (r->prefill, in->n_vocab * sizeof (float));
  while (r->tokens->len < MAX_TOKENS) {
    gint32 t = argmax (logits, in->n_vocab);
    if (t == ol_tokenizer_eos (tok))
      break;
    g_array_append_val (r->tokens, t);
    g_autofree char *text = ol_tokenizer_decode (tok, (gint32 *) r->tokens->data, r->tokens->len, NULL);
    if (strstr (text, "###") || r->tokens->len == MAX_TOKENS)
      break;
    g_assert_true (ol_session_decode (s, t, logits, &error));
    g_assert_no_error (error);
    if (r->tokens->len <= STEPS)
      r->steps[r->tokens->len - 1] = g_memdup2 (logits, in->n_vocab * sizeof (float));
  }
  g_free (blocks[0]);
  g_free (blocks[1]);
}

static void
check_case (const char *const *c, OlPositionMode mode, OlType kv_type, float tol, gboolean exact_tokens)
{
  const char *mode_name = mode == OL_POSITION_OFFICIAL ? "official" : "correct";
  OlSession *s = new_session (mode, kv_type, 0);
  Run r;
  run_case (s, c, &r);

  g_autofree char *logits_name = g_strdup_printf ("%s.logits", c[0]);
  g_autofree float *want_logits = golden (logits_name, NULL);
  g_autofree char *what = g_strdup_printf ("%s prefill logits", c[0]);
  assert_logits (what, r.prefill, want_logits, tol);

  g_autofree char *steps_name = g_strdup_printf ("%s.steps.%s", c[0], mode_name);
  gsize n_steps;
  g_autofree float *want_steps = golden (steps_name, &n_steps);
  gsize per_step = ol_model_get_info (tiny_model ())->n_vocab / STRIDE;
  for (guint i = 0; i < n_steps / per_step; i++) {
    g_autofree char *step_what = g_strdup_printf ("%s %s decode step %u logits", c[0], mode_name, i + 1);
    g_assert_nonnull (r.steps[i]);
    assert_logits (step_what, r.steps[i], want_steps + i * per_step, tol);
  }

  if (exact_tokens) {
    g_autofree char *greedy_name = g_strdup_printf ("%s.greedy.%s", c[0], mode_name);
    gsize n;
    g_autofree gint32 *want = golden_ids (greedy_name, &n);
    g_assert_cmpuint (r.tokens->len, ==, n);
    for (gsize i = 0; i < n; i++)
      g_assert_cmpint (g_array_index (r.tokens, gint32, i), ==, want[i]);
  }
  run_clear (&r);
  ol_session_free (s);
}

static void
test_goldens (gconstpointer data)
{
  OlPositionMode mode = GPOINTER_TO_INT (data);
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    check_case (cases[i], mode, OL_TYPE_F32, TOL_F32, TRUE);
}

/* The F16 cache moves the logits by up to TOL_F16; greedy ids are not compared (the goldens' smallest
 * top-2 gap, manifest.json, is 2e-3). */
static void
test_f16_cache (void)
{
  check_case (cases[0], OL_POSITION_CORRECT, OL_TYPE_F16, TOL_F16, FALSE);
  check_case (cases[1], OL_POSITION_OFFICIAL, OL_TYPE_F16, TOL_F16, FALSE);
}

typedef struct {
  GString *streamed;
  guint n_calls;
} Collect;

static gboolean
collect (const char *text, gint32 token, gpointer user_data)
{
  Collect *c = user_data;
  g_assert_true (g_utf8_validate (text, -1, NULL));
  g_string_append (c->streamed, text);
  c->n_calls += token >= 0;
  return TRUE;
}

static OlGenerateParams
greedy (guint max_tokens)
{
  OlGenerateParams p;
  ol_generate_params_init (&p);
  p.temperature = 0;
  p.max_tokens = max_tokens;
  return p;
}

/* ol_session_chat builds the prompt from the question with the template and gives the golden ids;
 * the streamed pieces are the answer text. */
static void
test_chat_goldens (void)
{
  const OlModelInfo *in = ol_model_get_info (tiny_model ());
  static const struct { const char *c, *question, *modality; OlPositionMode mode; } chats[] = {
    { "text", "Name three colours.", NULL, OL_POSITION_OFFICIAL },
    { "image", "Provide a one-sentence caption for the provided image.", "image", OL_POSITION_OFFICIAL },
    { "image", "Provide a one-sentence caption for the provided image.", "image", OL_POSITION_CORRECT },
  };
  for (guint i = 0; i < G_N_ELEMENTS (chats); i++) {
    g_autoptr (GError) error = NULL;
    OlSession *s = new_session (chats[i].mode, OL_TYPE_F32, 0);
    g_autofree float *block = NULL;
    if (chats[i].modality) {
      g_autofree char *name = g_strdup_printf ("%s.block", chats[i].modality);
      block = golden (name, NULL);
    }
    const float *blocks[] = { block };
    OlGenerateParams p = greedy (MAX_TOKENS);
    OlGenerateResult res = { 0 };
    Collect c = { g_string_new (NULL), 0 };
    g_assert_true (ol_session_chat (s, chats[i].question, blocks, block ? 1 : 0, &p, collect, &c, NULL, &res,
                                    &error));
    g_assert_no_error (error);

      const char *mode = chats[i].mode == OL_POSITION_OFFICIAL ? "official" : "correct";
    g_autofree char *greedy_name = g_strdup_printf ("%s.greedy.%s", chats[i].c, mode);
    gsize n, n_ids;
    g_autofree gint32 *want = golden_ids (greedy_name, &n);
    g_autofree char *ids_name = g_strdup_printf ("%s.prompt_ids", chats[i].c);
    g_free (golden_ids (ids_name, &n_ids));
    g_assert_cmpuint (res.n_prompt_tokens, ==, n_ids + (block ? in->n_resample + 2 : 0));
    g_assert_cmpuint (res.n_prefill_rows, ==, res.n_prompt_tokens);
    g_assert_cmpuint (res.tokens->len, ==, n);
    for (gsize j = 0; j < n; j++)
      g_assert_cmpint (g_array_index (res.tokens, gint32, j), ==, want[j]);
    g_assert_cmpuint (c.n_calls, ==, n);
    g_assert_cmpstr (c.streamed->str, ==, res.text);
    g_autofree char *decoded = ol_tokenizer_decode (ol_model_get_tokenizer (tiny_model ()), want, n, NULL);
    g_autofree char *answer = ol_prompt_answer (decoded, -1, NULL);
    g_assert_cmpstr (res.text, ==, answer);
    g_string_free (c.streamed, TRUE);
    ol_generate_result_clear (&res);
    ol_session_free (s);
  }
}

/* A second turn prefills only what the cache lacks and generates what a one-shot run of the whole
 * conversation generates. */
static void
test_chat_turns (gconstpointer data)
{
  OlPositionMode mode = GPOINTER_TO_INT (data);
  g_autoptr (GError) error = NULL;
  const OlModelInfo *in = ol_model_get_info (tiny_model ());
  OlTokenizer *tok = ol_model_get_tokenizer (tiny_model ());
  g_autofree float *block = golden ("image.block", NULL);
  const float *blocks[] = { block };
  const char *q1 = "Provide a one-sentence caption for the provided image.", *q2 = "What colour is it?";
  OlGenerateParams p = greedy (8);

  OlSession *s = new_session (mode, OL_TYPE_F32, 0);
  OlGenerateResult r1 = { 0 }, r2 = { 0 };
  g_assert_true (ol_session_chat (s, q1, blocks, 1, &p, NULL, NULL, NULL, &r1, &error));
  g_assert_no_error (error);
  g_assert_true (ol_session_chat (s, q2, NULL, 0, &p, NULL, NULL, NULL, &r2, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (r2.n_prefill_rows, <, r2.n_prompt_tokens - r1.n_prompt_tokens + 8);
  g_assert_cmpuint (r2.n_prefill_rows, >, 0);

  OlPromptTurn turns[] = { { q1, r1.text }, { q2, NULL } };
  g_autofree char *prompt = ol_prompt_build (NULL, turns, 2);
  gsize n_ids;
  g_autofree gint32 *ids = ol_tokenizer_encode (tok, prompt, -1, TRUE, FALSE, &n_ids);
  OlPromptPart parts[] = {
    { .ids = ids, .n_ids = 1 }, { .embeddings = block, .n_rows = in->n_resample + 2 },
    { .ids = ids + 1, .n_ids = n_ids - 1 },
  };
  OlSession *one = new_session (mode, OL_TYPE_F32, 0);
  g_autofree float *logits = g_new (float, in->n_vocab);
  g_assert_true (ol_session_prefill (one, parts, G_N_ELEMENTS (parts), logits, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (r2.n_prompt_tokens, ==, n_ids + in->n_resample + 2);
  g_assert_cmpuint (ol_session_get_n_past (one), ==, ol_session_get_n_past (s) - (r2.tokens->len - 1));
  OlGenerateResult r3 = { 0 };
  g_assert_true (ol_session_generate (one, logits, &p, NULL, NULL, NULL, &r3, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (r3.tokens->len, ==, r2.tokens->len);
  g_assert_cmpmem (r3.tokens->data, r3.tokens->len * 4, r2.tokens->data, r2.tokens->len * 4);
  g_assert_cmpstr (r3.text, ==, r2.text);

  /* New blocks start the conversation again: everything is prefilled. */
  g_autofree float *other = golden ("audio.block", NULL);
  const float *other_blocks[] = { other };
  ol_generate_result_clear (&r3);
  g_assert_true (ol_session_chat (s, q1, other_blocks, 1, &p, NULL, NULL, NULL, &r3, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (r3.n_prefill_rows, ==, r3.n_prompt_tokens);

  ol_generate_result_clear (&r1);
  ol_generate_result_clear (&r2);
  ol_generate_result_clear (&r3);
  ol_session_free (one);
  ol_session_free (s);
}

typedef struct {
  GMutex lock;
  GCond cond;
  guint n_tokens;
  gboolean cancelled;
  GCancellable *cancellable;
  OlSession *s;
  OlGenerateResult result;
  GError *error;
  gboolean ok;
} Cancel;

/* After three tokens, waits until the main thread has cancelled, so the cancellation lands mid-run. */
static gboolean
cancel_callback (const char *text, gint32 token, gpointer user_data)
{
  (void) text;
  (void) token;
  Cancel *c = user_data;
  g_mutex_lock (&c->lock);
  if (++c->n_tokens == 3) {
    g_cond_broadcast (&c->cond);
    while (!c->cancelled)
      g_cond_wait (&c->cond, &c->lock);
  }
  g_mutex_unlock (&c->lock);
  return TRUE;
}

static gpointer
cancel_thread (gpointer data)
{
  Cancel *c = data;
  OlGenerateParams p = greedy (1000);
  p.stop_at_separator = FALSE;
  c->ok = ol_session_chat (c->s, "Name three colours.", NULL, 0, &p, cancel_callback, c, c->cancellable,
                           &c->result, &c->error);
  return NULL;
}

static void
test_cancel (void)
{
  Cancel c = { .cancellable = g_cancellable_new (), .s = new_session (OL_POSITION_CORRECT, OL_TYPE_F32, 0) };
  g_mutex_init (&c.lock);
  g_cond_init (&c.cond);
  GThread *t = g_thread_new ("generate", cancel_thread, &c);
  g_mutex_lock (&c.lock);
  while (c.n_tokens < 3)
    g_cond_wait (&c.cond, &c.lock);
  g_cancellable_cancel (c.cancellable);
  c.cancelled = TRUE;
  g_cond_broadcast (&c.cond);
  g_mutex_unlock (&c.lock);
  g_thread_join (t);
  g_assert_false (c.ok);
  g_assert_error (c.error, OL_ERROR, OL_ERROR_CANCELLED);
  g_assert_cmpuint (c.result.tokens->len, ==, 3);
  g_clear_error (&c.error);
  ol_generate_result_clear (&c.result);

  /* Cancelled before the start: no token. */
  g_assert_false (ol_session_chat (c.s, "Again.", NULL, 0, NULL, NULL, NULL, c.cancellable, &c.result,
                                   &c.error));
  g_assert_error (c.error, OL_ERROR, OL_ERROR_CANCELLED);
  g_assert_cmpuint (c.result.tokens->len, ==, 0);
  g_clear_error (&c.error);
  ol_generate_result_clear (&c.result);
  g_mutex_clear (&c.lock);
  g_cond_clear (&c.cond);
  g_object_unref (c.cancellable);
  ol_session_free (c.s);
}

static void
test_context_full (void)
{
  g_autoptr (GError) error = NULL;
  const OlModelInfo *in = ol_model_get_info (tiny_model ());
  gsize n_ids;
  g_autofree gint32 *ids = golden_ids ("text.prompt_ids", &n_ids);
  OlSession *s = ol_session_new (tiny_model (), NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (ol_session_get_n_ctx (s), ==, in->context_length);
  ol_session_free (s);

  const guint n_ctx = 40;
  s = new_session (OL_POSITION_CORRECT, OL_TYPE_F32, n_ctx);
  g_assert_cmpuint (ol_session_get_n_ctx (s), ==, n_ctx);
  g_assert_cmpuint (n_ids, >, n_ctx);
  OlPromptPart all = { .ids = ids, .n_ids = n_ids };
  g_assert_false (ol_session_prefill (s, &all, 1, NULL, &error));
  g_assert_error (error, OL_ERROR, OL_ERROR_CONTEXT_FULL);
  g_clear_error (&error);
  g_assert_cmpuint (ol_session_get_n_past (s), ==, 0);

  OlPromptPart some = { .ids = ids, .n_ids = n_ctx - 4 };
  g_autofree float *logits = g_new (float, in->n_vocab);
  g_assert_true (ol_session_prefill (s, &some, 1, logits, &error));
  for (guint i = 0; i < 4; i++)
    g_assert_true (ol_session_decode (s, ids[n_ctx - 4 + i], logits, &error));
  g_assert_no_error (error);
  g_assert_false (ol_session_decode (s, ids[n_ctx], logits, &error));
  g_assert_error (error, OL_ERROR, OL_ERROR_CONTEXT_FULL);
  g_clear_error (&error);
  g_assert_cmpuint (ol_session_get_n_past (s), ==, n_ctx);

  /* Bad prompts. */
  gint32 bad = in->n_vocab;
  OlPromptPart bad_id = { .ids = &bad, .n_ids = 1 };
  ol_session_reset (s);
  g_assert_false (ol_session_prefill (s, &bad_id, 1, NULL, &error));
  g_assert_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (ol_session_prefill (s, NULL, 0, NULL, &error));
  g_assert_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (ol_session_decode (s, -1, NULL, &error));
  g_assert_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  ol_session_free (s);

  /* Generation that runs out of positions stops with the error, keeping what it generated. */
  s = new_session (OL_POSITION_CORRECT, OL_TYPE_F32, n_ids + 8);
  OlGenerateParams p = greedy (100);
  p.stop_at_separator = FALSE;
  OlGenerateResult r = { 0 };
  g_assert_false (ol_session_chat (s, "Name three colours.", NULL, 0, &p, NULL, NULL, NULL, &r, &error));
  g_assert_error (error, OL_ERROR, OL_ERROR_CONTEXT_FULL);
  g_assert_cmpuint (r.n_prompt_tokens, ==, n_ids);
  g_assert_cmpuint (r.tokens->len, ==, 8 + 1);
  ol_generate_result_clear (&r);
  ol_session_free (s);
}

typedef struct {
  const char *const *c;
  Run run;
} Job;

static gpointer
job_thread (gpointer data)
{
  Job *j = data;
  OlSession *s = new_session (OL_POSITION_OFFICIAL, OL_TYPE_F32, 0);
  run_case (s, j->c, &j->run);
  ol_session_free (s);
  return NULL;
}

/* Two sessions of one model in two threads give exactly what each gives alone. */
static void
test_concurrent (void)
{
  tiny_model ();
  Job alone[2] = { { .c = cases[0] }, { .c = cases[1] } }, both[2] = { { .c = cases[0] }, { .c = cases[1] } };
  for (guint i = 0; i < 2; i++)
    job_thread (&alone[i]);
  GThread *t[2];
  for (guint i = 0; i < 2; i++)
    t[i] = g_thread_new ("session", job_thread, &both[i]);
  gsize n_vocab = ol_model_get_info (tiny_model ())->n_vocab;
  for (guint i = 0; i < 2; i++) {
    g_thread_join (t[i]);
    g_assert_cmpmem (both[i].run.prefill, n_vocab * 4, alone[i].run.prefill, n_vocab * 4);
    g_assert_cmpmem (both[i].run.tokens->data, both[i].run.tokens->len * 4, alone[i].run.tokens->data,
                     alone[i].run.tokens->len * 4);
    for (guint k = 0; k < STEPS; k++)
      g_assert_cmpmem (both[i].run.steps[k], n_vocab * 4, alone[i].run.steps[k], n_vocab * 4);
    run_clear (&alone[i].run);
    run_clear (&both[i].run);
  }
}

/* Sampling is reproducible for a seed and follows its parameters. */
static void
test_sampling (void)
{
  g_autoptr (GError) error = NULL;
  OlSession *s = new_session (OL_POSITION_OFFICIAL, OL_TYPE_F32, 0);
  OlGenerateParams p;
  ol_generate_params_init (&p);
  g_assert_cmpfloat (p.temperature, ==, 0.1f);
  g_assert_cmpfloat (p.top_p, ==, 0.75f);
  g_assert_cmpuint (p.max_tokens, ==, 128);
  p.temperature = 1.5f;
  p.top_p = 1.0f;
  p.max_tokens = 12;
  OlGenerateResult r[3] = { { 0 } };
  for (guint i = 0; i < 3; i++) {
    ol_session_reset (s);
    p.seed = i < 2 ? 7 : 8;
    g_assert_true (ol_session_chat (s, "Name three colours.", NULL, 0, &p, NULL, NULL, NULL, &r[i], &error));
    g_assert_no_error (error);
  }
  g_assert_cmpmem (r[0].tokens->data, r[0].tokens->len * 4, r[1].tokens->data, r[1].tokens->len * 4);
  g_assert_false (r[0].tokens->len == r[2].tokens->len &&
                  memcmp (r[0].tokens->data, r[2].tokens->data, r[0].tokens->len * 4) == 0);
  for (guint i = 0; i < 3; i++)
    ol_generate_result_clear (&r[i]);

  p.temperature = NAN;
  OlGenerateResult bad = { 0 };
  g_assert_false (ol_session_chat (s, "Hi.", NULL, 0, &p, NULL, NULL, NULL, &bad, &error));
  g_assert_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT);
  ol_generate_result_clear (&bad);
  ol_session_free (s);
}

/* The tiny model's language part as a plain LLaMA GGUF (architecture "llama", no template). */
static char *
write_plain_llama (void)
{
  g_autoptr (GError) error = NULL;
  const OlModelInfo *in = ol_model_get_info (tiny_model ());
  g_autoptr (OlGguf) src = ol_gguf_open (tiny_path, &error);
  g_assert_no_error (error);
  g_autoptr (OlGgufWriter) w = ol_gguf_writer_new ();
  ol_gguf_writer_set_string (w, "general.architecture", "llama");
  ol_gguf_writer_set_u32 (w, "llama.embedding_length", in->dim);
  ol_gguf_writer_set_u32 (w, "llama.block_count", in->n_layers);
  ol_gguf_writer_set_u32 (w, "llama.feed_forward_length", in->ffn_dim);
  ol_gguf_writer_set_u32 (w, "llama.attention.head_count", in->n_heads);
  ol_gguf_writer_set_u32 (w, "llama.context_length", in->context_length);
  ol_gguf_writer_set_f32 (w, "llama.attention.layer_norm_rms_epsilon", in->norm_eps);
  for (gsize i = 0; i < ol_gguf_n_keys (src); i++) {
    const char *key = ol_gguf_key (src, i);
    OlGgufValue value;
    if (g_str_has_prefix (key, "tokenizer.") && ol_gguf_get_value (src, key, &value, NULL))
      ol_gguf_writer_set_value (w, key, &value);
  }
  for (gsize i = 0; i < ol_gguf_n_tensors (src); i++) {
    const OlGgufTensor *t = ol_gguf_tensor (src, i);
    if (g_str_has_prefix (t->name, "blk.") || g_str_has_prefix (t->name, "output") ||
        strcmp (t->name, "token_embd.weight") == 0)
      g_assert_true (ol_gguf_writer_add_tensor (w, t->name, t->type, t->n_dims, t->ne, t->data, &error));
  }
  char *path = NULL;
  int fd = g_file_open_tmp ("test-session-XXXXXX.gguf", &path, &error);
  g_assert_no_error (error);
  close (fd);
  g_assert_true (ol_gguf_writer_write (w, path, &error));
  g_assert_no_error (error);
  return path;
}

/* A plain LLaMA file runs the same forward pass; without a template, chat continues the text. */
static void
test_plain_llama (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path = write_plain_llama ();
  OlModel *llama = ol_model_new (ref_device (), path, &error);
  g_assert_no_error (error);
  g_unlink (path);
  const OlModelInfo *in = ol_model_get_info (llama);
  g_assert_cmpstr (in->architecture, ==, "llama");
  g_assert_false (in->has_encoder);
  g_assert_null (in->prompt_template);

  gsize n_ids;
  g_autofree gint32 *ids = golden_ids ("text.prompt_ids", &n_ids);
  OlPromptPart part = { .ids = ids, .n_ids = n_ids };
  OlSessionParams sp;
  ol_session_params_init (&sp);
  sp.n_ctx = TEST_CTX;
  OlSession *s = ol_session_new (llama, &sp, &error);
  g_assert_no_error (error);
  g_autofree float *logits = g_new (float, in->n_vocab);
  g_assert_true (ol_session_prefill (s, &part, 1, logits, &error));
  g_autofree float *want = golden ("text.logits", NULL);
  assert_logits ("plain LLaMA text prefill logits", logits, want, TOL_F32);

  OlTokenizer *tok = ol_model_get_tokenizer (llama);
  gsize n_q1, n_q2;
  g_autofree gint32 *q1 = ol_tokenizer_encode (tok, "Once upon a time", -1, TRUE, FALSE, &n_q1);
  g_autofree gint32 *q2 = ol_tokenizer_encode (tok, "and then", -1, FALSE, FALSE, &n_q2);
  OlGenerateParams p = greedy (4);
  OlGenerateResult r1 = { 0 }, r2 = { 0 };
  ol_session_reset (s);
  g_assert_true (ol_session_chat (s, "Once upon a time", NULL, 0, &p, NULL, NULL, NULL, &r1, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (r1.n_prompt_tokens, ==, n_q1);
  g_assert_true (ol_session_chat (s, "and then", NULL, 0, &p, NULL, NULL, NULL, &r2, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (r2.n_prefill_rows, ==, 1 + n_q2);
  g_assert_cmpuint (r2.n_prompt_tokens, ==, n_q1 + r1.tokens->len + n_q2);

  float block[1] = { 0 };
  const float *blocks[] = { block };
  g_assert_false (ol_session_chat (s, "What is this?", blocks, 1, &p, NULL, NULL, NULL, &r2, &error));
  g_assert_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT);
  ol_generate_result_clear (&r1);
  ol_generate_result_clear (&r2);
  ol_session_free (s);
  ol_model_free (llama);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  tiny_path = g_getenv ("ONELLM_TINY_MODEL");
  if (tiny_path == NULL) {
    g_printerr ("ONELLM_TINY_MODEL is not set\n");
    return 1;
  }
  g_test_add_data_func ("/session/goldens/official", GINT_TO_POINTER (OL_POSITION_OFFICIAL), test_goldens);
  g_test_add_data_func ("/session/goldens/correct", GINT_TO_POINTER (OL_POSITION_CORRECT), test_goldens);
  g_test_add_func ("/session/f16-cache", test_f16_cache);
  g_test_add_func ("/session/chat-goldens", test_chat_goldens);
  g_test_add_data_func ("/session/chat-turns/official", GINT_TO_POINTER (OL_POSITION_OFFICIAL),
                        test_chat_turns);
  g_test_add_data_func ("/session/chat-turns/correct", GINT_TO_POINTER (OL_POSITION_CORRECT),
                        test_chat_turns);
  g_test_add_func ("/session/cancel", test_cancel);
  g_test_add_func ("/session/context-full", test_context_full);
  g_test_add_func ("/session/concurrent", test_concurrent);
  g_test_add_func ("/session/sampling", test_sampling);
  g_test_add_func ("/session/plain-llama", test_plain_llama);
  int ret = g_test_run ();
  g_clear_pointer (&model, ol_model_free);
  ref_device_release ();
  return ret;
}
