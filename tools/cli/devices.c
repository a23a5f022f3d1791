/* onellm-cli devices: the Vulkan devices and the report of the one the engine picks. */
#include "cli.h"

#include <stdio.h>

int
cli_devices (int argc, char **argv)
{
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- list Vulkan devices");
  g_option_context_set_description (ctx, "The device used is the best one, or the one $ONELLM_VK_DEVICE names "
                                         "(an index or part of the name).");
  g_autoptr (GError) error = NULL;
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    return cli_fail_error (g_steal_pointer (&error));

  g_autofree OlDeviceDesc *devs = NULL;
  guint n = 0;
  if (!ol_device_enumerate (&devs, &n, &error))
    return cli_fail_error (g_steal_pointer (&error));
  for (guint i = 0; i < n; i++)
    printf ("%u: %s (%s)\n", devs[i].index, devs[i].name, ol_device_type_name (devs[i].type));

  OlDevice *dev = ol_device_new (NULL, &error);
  if (dev == NULL)
    return cli_fail_error (g_steal_pointer (&error));
  g_autofree char *report = ol_device_describe (dev);
  printf ("\nselected:\n%s\n", report);
  ol_device_free (dev);
  return 0;
}
