/* Internals of the device module shared by memory, recording and ops; not installed. */
#pragma once

#include <vulkan/vulkan.h>
#include "device.h"

typedef struct _OlAllocator OlAllocator;

typedef struct {
  VkPipeline pipeline;
  VkPipelineLayout layout;
  VkDescriptorSetLayout set_layout;
  guint n_bindings;
} OlPipeline;

/* All push constants share one range of this size (the minimum every device guarantees). */
#define OL_PUSH_CONSTANT_BYTES 128

struct _OlDevice {
  VkInstance instance;
  VkDebugUtilsMessengerEXT messenger;
  VkPhysicalDevice phys;
  VkDevice device;
  VkQueue queue;
  guint32 queue_family;
  guint32 timestamp_valid_bits;
  OlDeviceCaps caps;
  VkPhysicalDeviceMemoryProperties memory_properties;

  GMutex pipeline_lock;           /* pipelines, set_layouts, pipeline_cache */
  GHashTable *pipelines;          /* "name/spec..." -> OlPipeline */
  GHashTable *set_layouts;        /* n_bindings | texel mask << 8 -> VkDescriptorSetLayout */
  VkPipelineCache pipeline_cache;
  char *pipeline_cache_path;

  GMutex queue_lock;              /* vkQueueSubmit needs external synchronisation */

  OlAllocator *allocator;         /* owned by memory.c */
};

gboolean ol_vk_check (VkResult result, const char *what, GError **error);

/* Returns the compute pipeline of an embedded shader, built on first use and cached for the device's
 * lifetime. spec: values of specialization constants 0..n_spec-1 (e.g. workgroup size); bindings in
 * texel_mask are uniform texel buffers, the others storage buffers. */
OlPipeline *ol_device_get_pipeline (OlDevice *dev, const char *shader, const guint32 *spec, guint n_spec,
                                    guint n_bindings, guint32 texel_mask, GError **error);

/* Submits one command buffer on the device queue and waits for it. */
gboolean ol_device_submit_wait (OlDevice *dev, VkCommandBuffer cmd, VkFence fence, GError **error);

typedef struct _OlBuffer OlBuffer;
/* The VkBuffer behind a buffer and the buffer's byte offset in it. */
VkBuffer ol_buffer_vk (const OlBuffer *buf, guint64 *offset);

/* Memory module hooks called by device creation and destruction. */
gboolean ol_allocator_init (OlDevice *dev, GError **error);
void ol_allocator_cleanup (OlDevice *dev);
