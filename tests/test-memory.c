/* The suballocator: many allocations, alignment, reuse, exhaustion, and host/device copies. */
#include "support/ref.h"

#include <string.h>

static void
test_many (void)
{
  OlDevice *dev = ref_device ();
  GRand *rng = g_rand_new_with_seed (7);
  OlBuffer *bufs[500] = { 0 };
  OlMemoryStats before;
  ol_device_get_memory_stats (dev, OL_MEMORY_DEVICE, &before);
  for (int round = 0; round < 4000; round++) {
    int i = g_rand_int_range (rng, 0, G_N_ELEMENTS (bufs));
    if (bufs[i]) {
      guint32 tag;
      g_autoptr (GError) error = NULL;
      g_assert_true (ol_buffer_read (bufs[i], 0, &tag, 4, &error));
      g_assert_cmpuint (tag, ==, (guint32) i * 2654435761u);
      ol_buffer_free (bufs[i]);
      bufs[i] = NULL;
    } else {
      g_autoptr (GError) error = NULL;
      guint64 size = g_rand_int_range (rng, 4, 1 << g_rand_int_range (rng, 3, 21));
      bufs[i] = ol_buffer_new (dev, size, g_rand_boolean (rng) ? OL_MEMORY_DEVICE : OL_MEMORY_HOST, &error);
      g_assert_no_error (error);
      g_assert_cmpuint (ol_buffer_get_size (bufs[i]), ==, size);
      guint32 tag = (guint32) i * 2654435761u;
      g_assert_true (ol_buffer_write (bufs[i], 0, &tag, 4, &error));
    }
  }
  OlMemoryStats mid;
  ol_device_get_memory_stats (dev, OL_MEMORY_DEVICE, &mid);
  g_assert_cmpuint (mid.n_blocks, <=, 2);   /* small buffers share blocks */
  for (guint i = 0; i < G_N_ELEMENTS (bufs); i++)
    ol_buffer_free (bufs[i]);
  OlMemoryStats after;
  ol_device_get_memory_stats (dev, OL_MEMORY_DEVICE, &after);
  g_assert_cmpuint (after.n_buffers, ==, before.n_buffers);
  g_assert_cmpuint (after.buffer_bytes, ==, before.buffer_bytes);
  g_rand_free (rng);
}

/* Distinct buffers never overlap: fill each with its own pattern and check them all afterwards. */
static void
test_no_overlap_and_alignment (void)
{
  OlDevice *dev = ref_device ();
  enum { N = 64 };
  OlBuffer *bufs[N];
  for (int i = 0; i < N; i++) {
    g_autoptr (GError) error = NULL;
    guint64 size = 1 + i * 997;
    bufs[i] = ol_buffer_new (dev, size, OL_MEMORY_DEVICE, &error);
    g_assert_no_error (error);
    g_autofree guint8 *data = g_malloc (size);
    memset (data, i, size);
    g_assert_true (ol_buffer_write (bufs[i], 0, data, size, &error));
  }
  for (int i = 0; i < N; i++) {
    g_autoptr (GError) error = NULL;
    guint64 size = 1 + i * 997;
    g_autofree guint8 *data = g_malloc (size);
    g_assert_true (ol_buffer_read (bufs[i], 0, data, size, &error));
    for (guint64 j = 0; j < size; j++)
      g_assert_cmpuint (data[j], ==, (guint) i);
    /* Mapped blocks are at least 64-byte aligned (minMemoryMapAlignment) and buffers start at
     * multiples of OL_BUFFER_ALIGNMENT inside them. */
    void *p = ol_buffer_map (bufs[i]);
    if (p != NULL)
      g_assert_cmpuint (GPOINTER_TO_SIZE (p) % 64, ==, 0);
    ol_buffer_free (bufs[i]);
  }
}

static void
test_large_dedicated (void)
{
  OlDevice *dev = ref_device ();
  g_autoptr (GError) error = NULL;
  OlMemoryStats before, during, after;
  ol_device_get_memory_stats (dev, OL_MEMORY_DEVICE, &before);
  OlBuffer *big = ol_buffer_new (dev, 300ull << 20, OL_MEMORY_DEVICE, &error);
  g_assert_no_error (error);
  ol_device_get_memory_stats (dev, OL_MEMORY_DEVICE, &during);
  g_assert_cmpuint (during.n_blocks, ==, before.n_blocks + 1);
  guint32 v = 0xdeadbeef, r = 0;
  g_assert_true (ol_buffer_write (big, (300ull << 20) - 4, &v, 4, &error));
  g_assert_true (ol_buffer_read (big, (300ull << 20) - 4, &r, 4, &error));
  g_assert_cmpuint (r, ==, v);
  ol_buffer_free (big);
  ol_device_get_memory_stats (dev, OL_MEMORY_DEVICE, &after);
  g_assert_cmpuint (after.block_bytes, ==, before.block_bytes);
}

static void
test_out_of_range_copy (void)
{
  OlDevice *dev = ref_device ();
  g_autoptr (GError) error = NULL;
  OlBuffer *b = ol_buffer_new (dev, 100, OL_MEMORY_DEVICE, &error);
  g_assert_no_error (error);
  guint8 data[8] = { 0 };
  g_assert_false (ol_buffer_write (b, 96, data, 8, &error));
  g_assert_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (ol_buffer_read (b, G_MAXUINT64 - 2, data, 8, &error));
  g_assert_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT);
  ol_buffer_free (b);
}

static void
test_exhaustion (void)
{
  g_autoptr (GError) error = NULL;
  OlDevice *dev = ol_device_new (NULL, &error);   /* a device of its own: the limit is per device */
  g_assert_no_error (error);
  ol_device_set_memory_limit (dev, 64ull << 20);
  GPtrArray *bufs = g_ptr_array_new_with_free_func ((GDestroyNotify) ol_buffer_free);
  for (;;) {
    OlBuffer *b = ol_buffer_new (dev, 5ull << 20, OL_MEMORY_DEVICE, &error);
    if (b == NULL)
      break;
    g_ptr_array_add (bufs, b);
    g_assert_cmpuint (bufs->len, <, 100);
  }
  g_assert_error (error, OL_ERROR, OL_ERROR_OUT_OF_MEMORY);
  g_assert_cmpuint (bufs->len, >=, 10);
  g_assert_cmpuint (ol_device_get_memory_used (dev), <=, 64ull << 20);
  g_clear_error (&error);
  /* freeing makes room again */
  g_ptr_array_set_size (bufs, 0);
  OlBuffer *b = ol_buffer_new (dev, 40ull << 20, OL_MEMORY_DEVICE, &error);
  g_assert_no_error (error);
  ol_buffer_free (b);
  g_ptr_array_free (bufs, TRUE);

  g_assert_null (ol_buffer_new (dev, 0, OL_MEMORY_DEVICE, &error));
  g_assert_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT);
  ol_device_free (dev);
}

static void
test_zero (void)
{
  OlDevice *dev = ref_device ();
  g_autoptr (GError) error = NULL;
  OlBuffer *b = ol_buffer_new (dev, 1000, OL_MEMORY_DEVICE, &error);
  guint8 ones[1000];
  memset (ones, 0xff, sizeof (ones));
  g_assert_true (ol_buffer_write (b, 0, ones, sizeof (ones), &error));
  g_assert_true (ol_buffer_zero (b, &error));
  g_assert_true (ol_buffer_read (b, 0, ones, sizeof (ones), &error));
  for (int i = 0; i < 1000; i++)
    g_assert_cmpuint (ones[i], ==, 0);
  ol_buffer_free (b);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/memory/many", test_many);
  g_test_add_func ("/memory/no-overlap-alignment", test_no_overlap_and_alignment);
  g_test_add_func ("/memory/large-dedicated", test_large_dedicated);
  g_test_add_func ("/memory/out-of-range-copy", test_out_of_range_copy);
  g_test_add_func ("/memory/exhaustion", test_exhaustion);
  g_test_add_func ("/memory/zero", test_zero);
  int r = g_test_run ();
  ref_device_release ();
  return r;
}
