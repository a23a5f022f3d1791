/* Device creation, selection by index/name/environment, and the capability probe. */
#include "support/ref.h"

#include <string.h>

static void
test_default_device (void)
{
  OlDevice *dev = ref_device ();
  const OlDeviceCaps *c = ol_device_get_caps (dev);
  g_assert_cmpstr (c->name, !=, "");
  g_assert_cmpuint (c->subgroup_size, >=, 1);
  g_assert_cmpuint (c->max_workgroup_invocations, >=, 128);
  g_assert_cmpuint (c->max_shared_memory, >=, 16384);
  g_assert_cmpuint (c->max_storage_buffer_range, >=, 1 << 27);
  g_assert_cmpuint (c->min_storage_buffer_offset_alignment, <=, OL_BUFFER_ALIGNMENT);
  g_assert_cmpuint (c->device_memory, >, 0);
  g_autofree char *report = ol_device_describe (dev);
  g_assert_nonnull (strstr (report, c->name));
  g_assert_nonnull (strstr (report, "storage buffer range"));
  g_test_message ("%s", report);
}

static void
test_enumerate_and_select (void)
{
  g_autofree OlDeviceDesc *devs = NULL;
  guint n = 0;
  g_autoptr (GError) error = NULL;
  g_assert_true (ol_device_enumerate (&devs, &n, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (n, >=, 1);

  /* by index */
  char index[16];
  g_snprintf (index, sizeof (index), "%u", devs[0].index);
  OlDevice *dev = ol_device_new (index, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (ol_device_get_caps (dev)->name, ==, devs[0].name);
  ol_device_free (dev);

  /* by case-insensitive name substring */
  g_autofree char *part = g_ascii_strup (devs[0].name, MIN (strlen (devs[0].name), 4));
  dev = ol_device_new (part, &error);
  g_assert_no_error (error);
  ol_device_free (dev);
}

static void
test_no_match (void)
{
  g_autoptr (GError) error = NULL;
  OlDevice *dev = ol_device_new ("nonexistent", &error);
  g_assert_null (dev);
  g_assert_error (error, OL_ERROR, OL_ERROR_NO_DEVICE);
  g_assert_nonnull (strstr (error->message, "nonexistent"));
  g_clear_error (&error);

  dev = ol_device_new ("999", &error);
  g_assert_null (dev);
  g_assert_error (error, OL_ERROR, OL_ERROR_NO_DEVICE);
}

static void
test_environment (void)
{
  g_autoptr (GError) error = NULL;
  g_setenv ("ONELLM_VK_DEVICE", "nonexistent", TRUE);
  OlDevice *dev = ol_device_new (NULL, &error);
  g_unsetenv ("ONELLM_VK_DEVICE");
  g_assert_null (dev);
  g_assert_error (error, OL_ERROR, OL_ERROR_NO_DEVICE);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/device/default", test_default_device);
  g_test_add_func ("/device/enumerate-select", test_enumerate_and_select);
  g_test_add_func ("/device/no-match", test_no_match);
  g_test_add_func ("/device/environment", test_environment);
  int r = g_test_run ();
  ref_device_release ();
  return r;
}
