/* Vulkan instance and device: picks a device, probes what it can do, builds and caches compute pipelines. */
#include "device-private.h"
#include "shaders.h"

#include <errno.h>
#include <string.h>
#include <glib/gstdio.h>

#define VALIDATION_LAYER "VK_LAYER_KHRONOS_validation"

gboolean
ol_vk_check (VkResult result, const char *what, GError **error)
{
  if (result == VK_SUCCESS)
    return TRUE;
  int code = OL_ERROR_DEVICE;
  const char *text = "driver error";
  switch (result) {
    case VK_ERROR_OUT_OF_HOST_MEMORY:
      code = OL_ERROR_OUT_OF_MEMORY; text = "out of host memory"; break;
    case VK_ERROR_OUT_OF_DEVICE_MEMORY:
      code = OL_ERROR_OUT_OF_MEMORY; text = "out of device memory"; break;
    case VK_ERROR_DEVICE_LOST:
      text = "device lost"; break;
    case VK_ERROR_INITIALIZATION_FAILED:
      code = OL_ERROR_NO_DEVICE; text = "initialization failed"; break;
    case VK_ERROR_INCOMPATIBLE_DRIVER:
      code = OL_ERROR_NO_DEVICE; text = "no compatible Vulkan driver"; break;
    case VK_ERROR_FEATURE_NOT_PRESENT:
    case VK_ERROR_EXTENSION_NOT_PRESENT:
    case VK_ERROR_LAYER_NOT_PRESENT:
      code = OL_ERROR_UNSUPPORTED; text = "feature not present"; break;
    case VK_ERROR_TOO_MANY_OBJECTS:
      code = OL_ERROR_OUT_OF_MEMORY; text = "too many objects"; break;
    default:
      break;
  }
  g_set_error (error, OL_ERROR, code, "Vulkan: %s failed: %s (VkResult %d)", what, text, (int) result);
  return FALSE;
}

const char *
ol_device_type_name (OlDeviceType type)
{
  switch (type) {
    case OL_DEVICE_TYPE_CPU: return "cpu";
    case OL_DEVICE_TYPE_VIRTUAL: return "virtual";
    case OL_DEVICE_TYPE_INTEGRATED: return "integrated";
    case OL_DEVICE_TYPE_DISCRETE: return "discrete";
    default: return "other";
  }
}

static OlDeviceType
map_type (VkPhysicalDeviceType t)
{
  switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return OL_DEVICE_TYPE_CPU;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return OL_DEVICE_TYPE_VIRTUAL;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return OL_DEVICE_TYPE_INTEGRATED;
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return OL_DEVICE_TYPE_DISCRETE;
    default: return OL_DEVICE_TYPE_OTHER;
  }
}

static gboolean
layer_available (const char *name)
{
  guint32 n = 0;
  if (vkEnumerateInstanceLayerProperties (&n, NULL) != VK_SUCCESS)
    return FALSE;
  g_autofree VkLayerProperties *layers = g_new0 (VkLayerProperties, MAX (n, 1));
  if (vkEnumerateInstanceLayerProperties (&n, layers) != VK_SUCCESS)
    return FALSE;
  for (guint32 i = 0; i < n; i++)
    if (strcmp (layers[i].layerName, name) == 0)
      return TRUE;
  return FALSE;
}

static gboolean
instance_extension_available (const char *name)
{
  guint32 n = 0;
  if (vkEnumerateInstanceExtensionProperties (NULL, &n, NULL) != VK_SUCCESS)
    return FALSE;
  g_autofree VkExtensionProperties *ext = g_new0 (VkExtensionProperties, MAX (n, 1));
  if (vkEnumerateInstanceExtensionProperties (NULL, &n, ext) != VK_SUCCESS)
    return FALSE;
  for (guint32 i = 0; i < n; i++)
    if (strcmp (ext[i].extensionName, name) == 0)
      return TRUE;
  return FALSE;
}

static VKAPI_ATTR VkBool32 VKAPI_CALL
debug_callback (VkDebugUtilsMessageSeverityFlagBitsEXT severity, VkDebugUtilsMessageTypeFlagsEXT types,
                const VkDebugUtilsMessengerCallbackDataEXT *data, void *user_data)
{
  if (severity & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT)
    g_critical ("Vulkan validation: %s", data->pMessage);
  else
    g_warning ("Vulkan validation: %s", data->pMessage);
  return VK_FALSE;
}

static gboolean
create_instance (OlDevice *dev, GError **error)
{
  gboolean validation = g_strcmp0 (g_getenv ("ONELLM_VK_VALIDATION"), "1") == 0;
  const char *layers[1];
  const char *extensions[2];
  guint n_layers = 0, n_extensions = 0;

  if (validation) {
    if (layer_available (VALIDATION_LAYER)) {
      layers[n_layers++] = VALIDATION_LAYER;
      if (instance_extension_available (VK_EXT_DEBUG_UTILS_EXTENSION_NAME))
        extensions[n_extensions++] = VK_EXT_DEBUG_UTILS_EXTENSION_NAME;
    } else {
      g_warning ("ONELLM_VK_VALIDATION=1 but %s is not installed (Debian: vulkan-validationlayers)",
                 VALIDATION_LAYER);
    }
  }

  VkApplicationInfo app = {
    .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
    .pApplicationName = "onellm",
    .pEngineName = "libonellm",
    .apiVersion = VK_API_VERSION_1_2,
  };
  VkInstanceCreateInfo info = {
    .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
    .pApplicationInfo = &app,
    .enabledLayerCount = n_layers,
    .ppEnabledLayerNames = layers,
    .enabledExtensionCount = n_extensions,
    .ppEnabledExtensionNames = extensions,
  };
  VkResult r = vkCreateInstance (&info, NULL, &dev->instance);
  if (r != VK_SUCCESS) {
    g_set_error (error, OL_ERROR, OL_ERROR_NO_DEVICE,
                 "no Vulkan driver could be loaded (vkCreateInstance returned %d); install a Vulkan "
                 "driver, e.g. Debian's mesa-vulkan-drivers for lavapipe on the CPU", (int) r);
    dev->instance = VK_NULL_HANDLE;
    return FALSE;
  }

  if (n_extensions > 0) {
    PFN_vkCreateDebugUtilsMessengerEXT create = (PFN_vkCreateDebugUtilsMessengerEXT)
        vkGetInstanceProcAddr (dev->instance, "vkCreateDebugUtilsMessengerEXT");
    VkDebugUtilsMessengerCreateInfoEXT minfo = {
      .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
      .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
          VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
      .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
          VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
      .pfnUserCallback = debug_callback,
    };
    if (create)
      create (dev->instance, &minfo, NULL, &dev->messenger);
  }
  return TRUE;
}

static gboolean
list_physical (VkInstance instance, VkPhysicalDevice **out, guint32 *n_out, GError **error)
{
  guint32 n = 0;
  if (!ol_vk_check (vkEnumeratePhysicalDevices (instance, &n, NULL), "vkEnumeratePhysicalDevices", error))
    return FALSE;
  if (n == 0) {
    g_set_error (error, OL_ERROR, OL_ERROR_NO_DEVICE,
                 "no Vulkan device found; install a Vulkan driver, e.g. Debian's mesa-vulkan-drivers "
                 "for lavapipe on the CPU");
    return FALSE;
  }
  *out = g_new0 (VkPhysicalDevice, n);
  if (!ol_vk_check (vkEnumeratePhysicalDevices (instance, &n, *out), "vkEnumeratePhysicalDevices", error)) {
    g_clear_pointer (out, g_free);
    return FALSE;
  }
  *n_out = n;
  return TRUE;
}

static gboolean
has_compute_queue (VkPhysicalDevice phys, guint32 *family, guint32 *timestamp_bits)
{
  guint32 n = 0;
  vkGetPhysicalDeviceQueueFamilyProperties (phys, &n, NULL);
  g_autofree VkQueueFamilyProperties *props = g_new0 (VkQueueFamilyProperties, MAX (n, 1));
  vkGetPhysicalDeviceQueueFamilyProperties (phys, &n, props);
  /* Prefer a compute-only family (async compute on discrete GPUs), else any with compute. */
  int best = -1;
  for (guint32 i = 0; i < n; i++) {
    if (!(props[i].queueFlags & VK_QUEUE_COMPUTE_BIT))
      continue;
    if (best < 0 || !(props[i].queueFlags & VK_QUEUE_GRAPHICS_BIT))
      best = i;
  }
  if (best < 0)
    return FALSE;
  *family = best;
  *timestamp_bits = props[best].timestampValidBits;
  return TRUE;
}

static int
device_score (VkPhysicalDevice phys)
{
  VkPhysicalDeviceProperties p;
  guint32 family, bits;
  vkGetPhysicalDeviceProperties (phys, &p);
  if (p.apiVersion < VK_API_VERSION_1_2 || !has_compute_queue (phys, &family, &bits))
    return -1;
  return (int) map_type (p.deviceType);
}

gboolean
ol_device_enumerate (OlDeviceDesc **devices, guint *n_devices, GError **error)
{
  VkApplicationInfo app = {
    .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
    .apiVersion = VK_API_VERSION_1_2,
  };
  VkInstanceCreateInfo info = {
    .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
    .pApplicationInfo = &app,
  };
  VkInstance instance;
  if (vkCreateInstance (&info, NULL, &instance) != VK_SUCCESS) {
    g_set_error (error, OL_ERROR, OL_ERROR_NO_DEVICE, "no Vulkan driver could be loaded");
    return FALSE;
  }
  g_autofree VkPhysicalDevice *phys = NULL;
  guint32 n = 0;
  if (!list_physical (instance, &phys, &n, error)) {
    vkDestroyInstance (instance, NULL);
    return FALSE;
  }
  *devices = g_new0 (OlDeviceDesc, n);
  *n_devices = n;
  for (guint32 i = 0; i < n; i++) {
    VkPhysicalDeviceProperties p;
    vkGetPhysicalDeviceProperties (phys[i], &p);
    (*devices)[i].index = i;
    g_strlcpy ((*devices)[i].name, p.deviceName, sizeof ((*devices)[i].name));
    (*devices)[i].type = map_type (p.deviceType);
  }
  vkDestroyInstance (instance, NULL);
  return TRUE;
}

static gboolean
select_physical (OlDevice *dev, const char *selector, GError **error)
{
  g_autofree VkPhysicalDevice *phys = NULL;
  guint32 n = 0;
  if (!list_physical (dev->instance, &phys, &n, error))
    return FALSE;

  int chosen = -1;
  if (selector != NULL && *selector != '\0') {
    char *end = NULL;
    guint64 index = g_ascii_strtoull (selector, &end, 10);
    if (end != selector && *end == '\0') {
      if (index < n)
        chosen = (int) index;
    } else {
      g_autofree char *needle = g_utf8_strdown (selector, -1);
      for (guint32 i = 0; i < n && chosen < 0; i++) {
        VkPhysicalDeviceProperties p;
        vkGetPhysicalDeviceProperties (phys[i], &p);
        g_autofree char *hay = g_utf8_strdown (p.deviceName, -1);
        if (strstr (hay, needle) != NULL)
          chosen = i;
      }
    }
    if (chosen >= 0 && device_score (phys[chosen]) < 0) {
      g_set_error (error, OL_ERROR, OL_ERROR_NO_DEVICE,
                   "Vulkan device '%s' lacks Vulkan 1.2 or a compute queue", selector);
      return FALSE;
    }
    if (chosen < 0) {
      GString *names = g_string_new (NULL);
      for (guint32 i = 0; i < n; i++) {
        VkPhysicalDeviceProperties p;
        vkGetPhysicalDeviceProperties (phys[i], &p);
        g_string_append_printf (names, "%s%u: %s", i ? ", " : "", i, p.deviceName);
      }
      g_set_error (error, OL_ERROR, OL_ERROR_NO_DEVICE,
                   "no Vulkan device matches '%s' (available: %s)", selector, names->str);
      g_string_free (names, TRUE);
      return FALSE;
    }
  } else {
    int best = -1;
    for (guint32 i = 0; i < n; i++) {
      int s = device_score (phys[i]);
      if (s > best) {
        best = s;
        chosen = i;
      }
    }
    if (chosen < 0) {
      g_set_error (error, OL_ERROR, OL_ERROR_NO_DEVICE,
                   "none of the %u Vulkan devices supports Vulkan 1.2 with a compute queue", n);
      return FALSE;
    }
  }
  dev->phys = phys[chosen];
  return TRUE;
}

static gboolean
device_extension_available (VkPhysicalDevice phys, const char *name)
{
  guint32 n = 0;
  if (vkEnumerateDeviceExtensionProperties (phys, NULL, &n, NULL) != VK_SUCCESS)
    return FALSE;
  g_autofree VkExtensionProperties *ext = g_new0 (VkExtensionProperties, MAX (n, 1));
  if (vkEnumerateDeviceExtensionProperties (phys, NULL, &n, ext) != VK_SUCCESS)
    return FALSE;
  for (guint32 i = 0; i < n; i++)
    if (strcmp (ext[i].extensionName, name) == 0)
      return TRUE;
  return FALSE;
}

static void
probe (OlDevice *dev)
{
  OlDeviceCaps *c = &dev->caps;
  VkPhysicalDeviceSubgroupProperties sub = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES };
  VkPhysicalDeviceDriverProperties drv = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES, .pNext = &sub };
  VkPhysicalDeviceMaintenance3Properties m3 = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES, .pNext = &drv };
  VkPhysicalDeviceProperties2 props = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &m3 };
  vkGetPhysicalDeviceProperties2 (dev->phys, &props);
  const VkPhysicalDeviceLimits *l = &props.properties.limits;

  VkPhysicalDeviceVulkan12Features f12 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES };
  VkPhysicalDeviceVulkan11Features f11 = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES, .pNext = &f12 };
  VkPhysicalDeviceFeatures2 feats = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &f11 };
  vkGetPhysicalDeviceFeatures2 (dev->phys, &feats);

  g_strlcpy (c->name, props.properties.deviceName, sizeof (c->name));
  g_snprintf (c->driver, sizeof (c->driver), "%s %s", drv.driverName, drv.driverInfo);
  c->type = map_type (props.properties.deviceType);
  c->vendor_id = props.properties.vendorID;
  c->api_version = props.properties.apiVersion;
  c->subgroup_size = MAX (sub.subgroupSize, 1);
  c->subgroup_arithmetic = (sub.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
      (sub.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT);
  c->subgroup_shuffle = (sub.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
      (sub.supportedOperations & VK_SUBGROUP_FEATURE_SHUFFLE_BIT);
  c->max_shared_memory = l->maxComputeSharedMemorySize;
  c->max_workgroup_invocations = l->maxComputeWorkGroupInvocations;
  for (int i = 0; i < 3; i++) {
    c->max_workgroup_size[i] = l->maxComputeWorkGroupSize[i];
    c->max_workgroup_count[i] = l->maxComputeWorkGroupCount[i];
  }
  c->max_storage_buffer_range = l->maxStorageBufferRange;
  c->min_storage_buffer_offset_alignment = MAX (l->minStorageBufferOffsetAlignment, 4);
  c->max_texel_buffer_elements = l->maxTexelBufferElements;
  c->min_texel_buffer_offset_alignment = MAX (l->minTexelBufferOffsetAlignment, 16);
  c->max_buffer_size = m3.maxMemoryAllocationSize;
  c->storage_16bit = f11.storageBuffer16BitAccess;
  c->storage_8bit = f12.storageBuffer8BitAccess;
  c->float16_arithmetic = f12.shaderFloat16;
  c->int8_arithmetic = f12.shaderInt8;
  c->int64_arithmetic = feats.features.shaderInt64 && g_strcmp0 (g_getenv ("ONELLM_VK_NO_INT64"), "1") != 0;
  c->cooperative_matrix = device_extension_available (dev->phys, "VK_KHR_cooperative_matrix");
  /* R32G32B32A32_UINT texel buffers are required of every device; only CPU drivers gain from them. */
  c->texel_loads = c->type == OL_DEVICE_TYPE_CPU && g_strcmp0 (g_getenv ("ONELLM_VK_NO_TEXELS"), "1") != 0;
  c->timestamps = l->timestampComputeAndGraphics && dev->timestamp_valid_bits > 0;
  c->timestamp_period_ns = l->timestampPeriod;

  vkGetPhysicalDeviceMemoryProperties (dev->phys, &dev->memory_properties);
  const VkPhysicalDeviceMemoryProperties *mp = &dev->memory_properties;
  for (guint32 i = 0; i < mp->memoryHeapCount; i++)
    if (mp->memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT)
      c->device_memory = MAX (c->device_memory, mp->memoryHeaps[i].size);
  /* UMA: every device-local type is also host-visible (lavapipe, most integrated GPUs). */
  c->unified_memory = TRUE;
  gboolean any_local = FALSE;
  for (guint32 i = 0; i < mp->memoryTypeCount; i++) {
    VkMemoryPropertyFlags f = mp->memoryTypes[i].propertyFlags;
    if (f & VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT) {
      any_local = TRUE;
      if (!(f & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT))
        c->unified_memory = FALSE;
    }
  }
  c->unified_memory = c->unified_memory && any_local;
}

static gboolean
create_logical (OlDevice *dev, GError **error)
{
  float priority = 1.0f;
  VkDeviceQueueCreateInfo qinfo = {
    .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
    .queueFamilyIndex = dev->queue_family,
    .queueCount = 1,
    .pQueuePriorities = &priority,
  };
  /* Shaders read every type through 32-bit words, so no optional feature is required; the ones probed
   * above are enabled when present so that faster variants may use them. */
  VkPhysicalDeviceVulkan12Features f12 = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES,
    .storageBuffer8BitAccess = dev->caps.storage_8bit,
    .shaderFloat16 = dev->caps.float16_arithmetic,
    .shaderInt8 = dev->caps.int8_arithmetic,
  };
  VkPhysicalDeviceVulkan11Features f11 = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES,
    .pNext = &f12,
    .storageBuffer16BitAccess = dev->caps.storage_16bit,
  };
  VkPhysicalDeviceFeatures f10 = { .shaderInt64 = dev->caps.int64_arithmetic };
  VkDeviceCreateInfo info = {
    .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
    .pNext = &f11,
    .queueCreateInfoCount = 1,
    .pQueueCreateInfos = &qinfo,
    .pEnabledFeatures = &f10,
  };
  if (!ol_vk_check (vkCreateDevice (dev->phys, &info, NULL, &dev->device), "vkCreateDevice", error)) {
    dev->device = VK_NULL_HANDLE;
    return FALSE;
  }
  vkGetDeviceQueue (dev->device, dev->queue_family, 0, &dev->queue);
  return TRUE;
}

/* The persisted cache file carries Vulkan's own header; data for another device or driver is ignored
 * rather than handed to a driver that might not validate it. */
static void
load_pipeline_cache (OlDevice *dev)
{
  VkPhysicalDeviceProperties p;
  vkGetPhysicalDeviceProperties (dev->phys, &p);
  g_autofree char *uuid = g_malloc0 (2 * VK_UUID_SIZE + 1);
  for (guint i = 0; i < VK_UUID_SIZE; i++)
    g_snprintf (uuid + 2 * i, 3, "%02x", p.pipelineCacheUUID[i]);
  g_autofree char *base = g_strdup_printf ("pipelines-%04x-%04x-%08x-%s.bin", p.vendorID, p.deviceID,
                                           p.driverVersion, uuid);
  dev->pipeline_cache_path = g_build_filename (g_get_user_cache_dir (), "onellm", base, NULL);

  g_autofree char *data = NULL;
  gsize len = 0;
  if (g_file_get_contents (dev->pipeline_cache_path, &data, &len, NULL) && len >= 16 + VK_UUID_SIZE) {
    guint32 hdr[4];
    memcpy (hdr, data, sizeof (hdr));
    if (hdr[0] < 16 + VK_UUID_SIZE || hdr[1] != VK_PIPELINE_CACHE_HEADER_VERSION_ONE ||
        hdr[2] != p.vendorID || hdr[3] != p.deviceID ||
        memcmp (data + 16, p.pipelineCacheUUID, VK_UUID_SIZE) != 0)
      g_clear_pointer (&data, g_free);
  } else {
    g_clear_pointer (&data, g_free);
  }
  VkPipelineCacheCreateInfo info = {
    .sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO,
    .initialDataSize = data ? len : 0,
    .pInitialData = data,
  };
  if (vkCreatePipelineCache (dev->device, &info, NULL, &dev->pipeline_cache) != VK_SUCCESS) {
    info.initialDataSize = 0;
    info.pInitialData = NULL;
    if (vkCreatePipelineCache (dev->device, &info, NULL, &dev->pipeline_cache) != VK_SUCCESS)
      dev->pipeline_cache = VK_NULL_HANDLE;
  }
}

static void
save_pipeline_cache (OlDevice *dev)
{
  if (dev->pipeline_cache == VK_NULL_HANDLE || g_hash_table_size (dev->pipelines) == 0)
    return;
  gsize len = 0;
  if (vkGetPipelineCacheData (dev->device, dev->pipeline_cache, &len, NULL) != VK_SUCCESS || len == 0)
    return;
  g_autofree char *data = g_malloc (len);
  if (vkGetPipelineCacheData (dev->device, dev->pipeline_cache, &len, data) != VK_SUCCESS)
    return;
  g_autofree char *dir = g_path_get_dirname (dev->pipeline_cache_path);
  g_autoptr (GError) err = NULL;
  if (g_mkdir_with_parents (dir, 0700) != 0 ||
      !g_file_set_contents (dev->pipeline_cache_path, data, len, &err))
    g_debug ("pipeline cache not saved to %s: %s", dev->pipeline_cache_path,
             err ? err->message : g_strerror (errno));
}

static guint64
env_memory_limit (void)
{
  const char *s = g_getenv ("ONELLM_VK_MEMORY_LIMIT");
  if (s == NULL || *s == '\0')
    return 0;
  char *end = NULL;
  guint64 mib = g_ascii_strtoull (s, &end, 10);
  if (end == s || *end != '\0') {
    g_warning ("ignoring ONELLM_VK_MEMORY_LIMIT=%s: expected a size in MiB", s);
    return 0;
  }
  return mib << 20;
}

OlDevice *
ol_device_new (const char *selector, GError **error)
{
  OlDevice *dev = g_new0 (OlDevice, 1);
  g_mutex_init (&dev->pipeline_lock);
  g_mutex_init (&dev->queue_lock);
  dev->pipelines = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  dev->set_layouts = g_hash_table_new (g_direct_hash, g_direct_equal);

  if (selector == NULL)
    selector = g_getenv ("ONELLM_VK_DEVICE");

  if (!create_instance (dev, error) || !select_physical (dev, selector, error))
    goto fail;
  if (!has_compute_queue (dev->phys, &dev->queue_family, &dev->timestamp_valid_bits)) {
    g_set_error (error, OL_ERROR, OL_ERROR_NO_DEVICE, "the Vulkan device has no compute queue");
    goto fail;
  }
  probe (dev);
  if (!create_logical (dev, error))
    goto fail;
  load_pipeline_cache (dev);
  if (!ol_allocator_init (dev, error))
    goto fail;
  guint64 limit = env_memory_limit ();
  if (limit > 0)
    ol_device_set_memory_limit (dev, limit);

  char *report = ol_device_describe (dev);
  g_info ("%s", report);
  g_free (report);
  return dev;

fail:
  ol_device_free (dev);
  return NULL;
}

static void
destroy_pipeline (OlDevice *dev, OlPipeline *p)
{
  vkDestroyPipeline (dev->device, p->pipeline, NULL);
  vkDestroyPipelineLayout (dev->device, p->layout, NULL);
}

void
ol_device_free (OlDevice *dev)
{
  if (dev == NULL)
    return;
  if (dev->device != VK_NULL_HANDLE) {
    vkDeviceWaitIdle (dev->device);
    ol_allocator_cleanup (dev);
    save_pipeline_cache (dev);
    GHashTableIter it;
    gpointer key, value;
    g_hash_table_iter_init (&it, dev->pipelines);
    while (g_hash_table_iter_next (&it, &key, &value))
      destroy_pipeline (dev, value);
    g_hash_table_iter_init (&it, dev->set_layouts);
    while (g_hash_table_iter_next (&it, &key, &value))
      vkDestroyDescriptorSetLayout (dev->device, (VkDescriptorSetLayout) value, NULL);
    if (dev->pipeline_cache != VK_NULL_HANDLE)
      vkDestroyPipelineCache (dev->device, dev->pipeline_cache, NULL);
    vkDestroyDevice (dev->device, NULL);
  }
  if (dev->messenger != VK_NULL_HANDLE) {
    PFN_vkDestroyDebugUtilsMessengerEXT destroy = (PFN_vkDestroyDebugUtilsMessengerEXT)
        vkGetInstanceProcAddr (dev->instance, "vkDestroyDebugUtilsMessengerEXT");
    if (destroy)
      destroy (dev->instance, dev->messenger, NULL);
  }
  if (dev->instance != VK_NULL_HANDLE)
    vkDestroyInstance (dev->instance, NULL);
  g_hash_table_destroy (dev->pipelines);
  g_hash_table_destroy (dev->set_layouts);
  g_free (dev->pipeline_cache_path);
  g_mutex_clear (&dev->pipeline_lock);
  g_mutex_clear (&dev->queue_lock);
  g_free (dev);
}

const OlDeviceCaps *
ol_device_get_caps (const OlDevice *dev)
{
  return &dev->caps;
}

char *
ol_device_describe (const OlDevice *dev)
{
  const OlDeviceCaps *c = &dev->caps;
  return g_strdup_printf (
      "device: %s (%s)\n"
      "driver: %s, Vulkan %u.%u.%u\n"
      "memory: %" G_GUINT64_FORMAT " MiB device-local%s, engine limit %" G_GUINT64_FORMAT " MiB\n"
      "storage buffer range: %" G_GUINT64_FORMAT " MiB, offset alignment %" G_GUINT64_FORMAT
      ", max allocation %" G_GUINT64_FORMAT " MiB\n"
      "workgroup: %u invocations, shared memory %u KiB, subgroup %u%s\n"
      "features: 16-bit storage %s, 8-bit storage %s, fp16 arithmetic %s, int8 arithmetic %s, "
      "int64 arithmetic %s, cooperative matrix %s, timestamps %s",
      c->name, ol_device_type_name (c->type), c->driver,
      VK_API_VERSION_MAJOR (c->api_version), VK_API_VERSION_MINOR (c->api_version),
      VK_API_VERSION_PATCH (c->api_version), c->device_memory >> 20,
      c->unified_memory ? " (unified with host)" : "", ol_device_get_memory_limit (dev) >> 20,
      c->max_storage_buffer_range >> 20, c->min_storage_buffer_offset_alignment, c->max_buffer_size >> 20,
      c->max_workgroup_invocations, c->max_shared_memory / 1024, c->subgroup_size,
      c->subgroup_arithmetic ? " (arithmetic)" : "",
      c->storage_16bit ? "yes" : "no", c->storage_8bit ? "yes" : "no",
      c->float16_arithmetic ? "yes" : "no", c->int8_arithmetic ? "yes" : "no",
      c->int64_arithmetic ? "yes" : "no", c->cooperative_matrix ? "yes" : "no", c->timestamps ? "yes" : "no");
}

static VkDescriptorSetLayout
get_set_layout (OlDevice *dev, guint n_bindings, guint32 texel_mask, GError **error)
{
  guint key = n_bindings | texel_mask << 8;
  VkDescriptorSetLayout layout = g_hash_table_lookup (dev->set_layouts, GUINT_TO_POINTER (key));
  if (layout != VK_NULL_HANDLE)
    return layout;
  VkDescriptorSetLayoutBinding b[16];
  for (guint i = 0; i < n_bindings; i++)
    b[i] = (VkDescriptorSetLayoutBinding) {
      .binding = i,
      .descriptorType = (texel_mask >> i) & 1 ? VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER
                                              : VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
      .descriptorCount = 1,
      .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
    };
  VkDescriptorSetLayoutCreateInfo info = {
    .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
    .bindingCount = n_bindings,
    .pBindings = b,
  };
  if (!ol_vk_check (vkCreateDescriptorSetLayout (dev->device, &info, NULL, &layout),
                    "vkCreateDescriptorSetLayout", error))
    return VK_NULL_HANDLE;
  g_hash_table_insert (dev->set_layouts, GUINT_TO_POINTER (key), layout);
  return layout;
}

OlPipeline *
ol_device_get_pipeline (OlDevice *dev, const char *shader, const guint32 *spec, guint n_spec,
                        guint n_bindings, guint32 texel_mask, GError **error)
{
  g_return_val_if_fail (n_spec <= 8 && n_bindings <= 16, NULL);
  GString *key = g_string_new (shader);
  for (guint i = 0; i < n_spec; i++)
    g_string_append_printf (key, "/%u", spec[i]);
  if (texel_mask != 0)
    g_string_append_printf (key, "/t%x", texel_mask);

  g_mutex_lock (&dev->pipeline_lock);
  OlPipeline *p = g_hash_table_lookup (dev->pipelines, key->str);
  if (p != NULL) {
    g_mutex_unlock (&dev->pipeline_lock);
    g_string_free (key, TRUE);
    g_return_val_if_fail (p->n_bindings == n_bindings, NULL);
    return p;
  }

  const OlShaderCode *code = ol_shader_find (shader);
  VkShaderModule module = VK_NULL_HANDLE;
  VkDescriptorSetLayout set_layout = VK_NULL_HANDLE;
  if (code == NULL) {
    g_set_error (error, OL_ERROR, OL_ERROR_UNSUPPORTED, "no shader named '%s' in this build", shader);
    goto out;
  }
  set_layout = get_set_layout (dev, n_bindings, texel_mask, error);
  if (set_layout == VK_NULL_HANDLE)
    goto out;
  VkShaderModuleCreateInfo minfo = {
    .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
    .codeSize = code->size,
    .pCode = code->code,
  };
  if (!ol_vk_check (vkCreateShaderModule (dev->device, &minfo, NULL, &module), "vkCreateShaderModule", error))
    goto out;

  p = g_new0 (OlPipeline, 1);
  p->n_bindings = n_bindings;
  p->set_layout = set_layout;
  VkPushConstantRange range = {
    .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
    .size = OL_PUSH_CONSTANT_BYTES,
  };
  VkPipelineLayoutCreateInfo linfo = {
    .sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
    .setLayoutCount = 1,
    .pSetLayouts = &set_layout,
    .pushConstantRangeCount = 1,
    .pPushConstantRanges = &range,
  };
  if (!ol_vk_check (vkCreatePipelineLayout (dev->device, &linfo, NULL, &p->layout),
                    "vkCreatePipelineLayout", error)) {
    g_clear_pointer (&p, g_free);
    goto out;
  }
  VkSpecializationMapEntry entries[8];
  for (guint i = 0; i < n_spec; i++)
    entries[i] = (VkSpecializationMapEntry) { .constantID = i, .offset = i * 4, .size = 4 };
  VkSpecializationInfo sinfo = {
    .mapEntryCount = n_spec,
    .pMapEntries = entries,
    .dataSize = n_spec * 4,
    .pData = spec,
  };
  VkComputePipelineCreateInfo cinfo = {
    .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
    .stage = {
      .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
      .stage = VK_SHADER_STAGE_COMPUTE_BIT,
      .module = module,
      .pName = "main",
      .pSpecializationInfo = n_spec ? &sinfo : NULL,
    },
    .layout = p->layout,
  };
  if (!ol_vk_check (vkCreateComputePipelines (dev->device, dev->pipeline_cache, 1, &cinfo, NULL, &p->pipeline),
                    "vkCreateComputePipelines", error)) {
    vkDestroyPipelineLayout (dev->device, p->layout, NULL);
    g_clear_pointer (&p, g_free);
    goto out;
  }
  g_hash_table_insert (dev->pipelines, g_strdup (key->str), p);

out:
  if (module != VK_NULL_HANDLE)
    vkDestroyShaderModule (dev->device, module, NULL);
  g_mutex_unlock (&dev->pipeline_lock);
  g_string_free (key, TRUE);
  return p;
}

gboolean
ol_device_submit_wait (OlDevice *dev, VkCommandBuffer cmd, VkFence fence, GError **error)
{
  VkSubmitInfo submit = {
    .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
    .commandBufferCount = 1,
    .pCommandBuffers = &cmd,
  };
  if (!ol_vk_check (vkResetFences (dev->device, 1, &fence), "vkResetFences", error))
    return FALSE;
  g_mutex_lock (&dev->queue_lock);
  VkResult r = vkQueueSubmit (dev->queue, 1, &submit, fence);
  g_mutex_unlock (&dev->queue_lock);
  if (!ol_vk_check (r, "vkQueueSubmit", error))
    return FALSE;
  return ol_vk_check (vkWaitForFences (dev->device, 1, &fence, VK_TRUE, UINT64_MAX), "vkWaitForFences", error);
}
