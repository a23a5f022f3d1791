/* Suballocator over large VkDeviceMemory blocks, and the host <-> device copy paths. */
#include "memory.h"
#include "device-private.h"

#include <string.h>

#define DEFAULT_BLOCK_BYTES (256ull << 20)
#define STAGING_BYTES (32ull << 20)

typedef struct {
  guint64 offset, size;
} Range;

typedef struct {
  VkDeviceMemory memory;
  VkBuffer buffer;
  guint64 size;
  void *mapped;
  GArray *free_ranges;     /* Range, sorted by offset, never adjacent */
  guint n_live;
} Block;

typedef struct {
  GPtrArray *blocks;       /* Block* */
  guint32 memory_type;
  gboolean host_visible;
  guint n_buffers;
  guint64 buffer_bytes;
} Pool;

struct _OlAllocator {
  GMutex lock;
  Pool pools[2];           /* indexed by OlMemoryKind */
  guint64 block_bytes;
  guint64 limit;
  guint64 used;            /* bytes of VkDeviceMemory allocated, both pools */

  GMutex transfer_lock;
  VkCommandPool cmd_pool;
  VkCommandBuffer cmd;
  VkFence fence;
  OlBuffer *staging;       /* created on first use, only on devices without unified memory */
};

struct _OlBuffer {
  OlDevice *dev;
  OlMemoryKind kind;
  Block *block;
  guint64 offset;          /* in the block */
  guint64 size;            /* as requested */
  guint64 reserved;        /* as carved out of the block (aligned) */
};

static gboolean
find_memory_type (OlDevice *dev, guint32 type_bits, VkMemoryPropertyFlags want, VkMemoryPropertyFlags avoid,
                  guint32 *index)
{
  const VkPhysicalDeviceMemoryProperties *mp = &dev->memory_properties;
  for (guint32 i = 0; i < mp->memoryTypeCount; i++) {
    VkMemoryPropertyFlags f = mp->memoryTypes[i].propertyFlags;
    if ((type_bits & (1u << i)) && (f & want) == want && (f & avoid) == 0) {
      *index = i;
      return TRUE;
    }
  }
  return FALSE;
}

static VkBufferCreateInfo
buffer_info (guint64 size)
{
  return (VkBufferCreateInfo) {
    .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
    .size = size,
    .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
        VK_BUFFER_USAGE_TRANSFER_DST_BIT,
    .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
  };
}

/* The memory type of each pool is fixed once, from a probe buffer: device-local for weights and
 * activations; host-visible coherent (preferably cached, for reading results) for the host pool. */
static gboolean
choose_memory_types (OlDevice *dev, OlAllocator *a, GError **error)
{
  VkBufferCreateInfo info = buffer_info (4096);
  VkBuffer probe;
  if (!ol_vk_check (vkCreateBuffer (dev->device, &info, NULL, &probe), "vkCreateBuffer", error))
    return FALSE;
  VkMemoryRequirements req;
  vkGetBufferMemoryRequirements (dev->device, probe, &req);
  vkDestroyBuffer (dev->device, probe, NULL);

  const VkMemoryPropertyFlags local = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT;
  const VkMemoryPropertyFlags host = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
  const VkMemoryPropertyFlags cached = host | VK_MEMORY_PROPERTY_HOST_CACHED_BIT;
  Pool *d = &a->pools[OL_MEMORY_DEVICE], *h = &a->pools[OL_MEMORY_HOST];

  if (!find_memory_type (dev, req.memoryTypeBits, local, 0, &d->memory_type) &&
      !find_memory_type (dev, req.memoryTypeBits, 0, 0, &d->memory_type)) {
    g_set_error (error, OL_ERROR, OL_ERROR_UNSUPPORTED, "no memory type for storage buffers");
    return FALSE;
  }
  if (!find_memory_type (dev, req.memoryTypeBits, cached, 0, &h->memory_type) &&
      !find_memory_type (dev, req.memoryTypeBits, host, 0, &h->memory_type)) {
    g_set_error (error, OL_ERROR, OL_ERROR_UNSUPPORTED, "no host-visible coherent memory type");
    return FALSE;
  }
  for (int k = 0; k < 2; k++) {
    VkMemoryPropertyFlags f = dev->memory_properties.memoryTypes[a->pools[k].memory_type].propertyFlags;
    a->pools[k].host_visible = (f & host) == host;
  }
  return TRUE;
}

gboolean
ol_allocator_init (OlDevice *dev, GError **error)
{
  OlAllocator *a = g_new0 (OlAllocator, 1);
  dev->allocator = a;
  g_mutex_init (&a->lock);
  g_mutex_init (&a->transfer_lock);
  for (int k = 0; k < 2; k++)
    a->pools[k].blocks = g_ptr_array_new ();
  a->limit = dev->caps.device_memory;
  a->block_bytes = MIN (DEFAULT_BLOCK_BYTES, MAX (dev->caps.device_memory / 8, 16ull << 20));
  if (dev->caps.max_buffer_size > 0)
    a->block_bytes = MIN (a->block_bytes, dev->caps.max_buffer_size);
  if (!choose_memory_types (dev, a, error))
    return FALSE;

  VkCommandPoolCreateInfo pinfo = {
    .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
    .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
    .queueFamilyIndex = dev->queue_family,
  };
  if (!ol_vk_check (vkCreateCommandPool (dev->device, &pinfo, NULL, &a->cmd_pool), "vkCreateCommandPool", error))
    return FALSE;
  VkCommandBufferAllocateInfo cinfo = {
    .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
    .commandPool = a->cmd_pool,
    .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
    .commandBufferCount = 1,
  };
  if (!ol_vk_check (vkAllocateCommandBuffers (dev->device, &cinfo, &a->cmd), "vkAllocateCommandBuffers", error))
    return FALSE;
  VkFenceCreateInfo finfo = { .sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO };
  return ol_vk_check (vkCreateFence (dev->device, &finfo, NULL, &a->fence), "vkCreateFence", error);
}

static void
block_destroy (OlDevice *dev, Block *b)
{
  if (b->mapped)
    vkUnmapMemory (dev->device, b->memory);
  vkDestroyBuffer (dev->device, b->buffer, NULL);
  vkFreeMemory (dev->device, b->memory, NULL);
  g_array_free (b->free_ranges, TRUE);
  g_free (b);
}

void
ol_allocator_cleanup (OlDevice *dev)
{
  OlAllocator *a = dev->allocator;
  if (a == NULL)
    return;
  g_clear_pointer (&a->staging, ol_buffer_free);
  for (int k = 0; k < 2; k++) {
    if (a->pools[k].n_buffers > 0)
      g_warning ("%u %s buffers still allocated when the device is freed", a->pools[k].n_buffers,
                 k == OL_MEMORY_DEVICE ? "device" : "host");
    for (guint i = 0; i < a->pools[k].blocks->len; i++)
      block_destroy (dev, a->pools[k].blocks->pdata[i]);
    g_ptr_array_free (a->pools[k].blocks, TRUE);
  }
  if (a->fence != VK_NULL_HANDLE)
    vkDestroyFence (dev->device, a->fence, NULL);
  if (a->cmd_pool != VK_NULL_HANDLE)
    vkDestroyCommandPool (dev->device, a->cmd_pool, NULL);
  g_mutex_clear (&a->lock);
  g_mutex_clear (&a->transfer_lock);
  g_free (a);
  dev->allocator = NULL;
}

void
ol_device_set_memory_limit (OlDevice *dev, guint64 bytes)
{
  g_mutex_lock (&dev->allocator->lock);
  dev->allocator->limit = bytes;
  g_mutex_unlock (&dev->allocator->lock);
}

guint64
ol_device_get_memory_limit (const OlDevice *dev)
{
  return dev->allocator->limit;
}

guint64
ol_device_get_memory_used (const OlDevice *dev)
{
  return dev->allocator->used;
}

void
ol_device_get_memory_stats (OlDevice *dev, OlMemoryKind kind, OlMemoryStats *stats)
{
  OlAllocator *a = dev->allocator;
  g_mutex_lock (&a->lock);
  Pool *p = &a->pools[kind];
  memset (stats, 0, sizeof (*stats));
  stats->n_blocks = p->blocks->len;
  for (guint i = 0; i < p->blocks->len; i++)
    stats->block_bytes += ((Block *) p->blocks->pdata[i])->size;
  stats->n_buffers = p->n_buffers;
  stats->buffer_bytes = p->buffer_bytes;
  g_mutex_unlock (&a->lock);
}

static Block *
block_new (OlDevice *dev, Pool *pool, guint64 size, GError **error)
{
  OlAllocator *a = dev->allocator;
  if (a->used + size > a->limit || a->used + size < a->used) {
    g_set_error (error, OL_ERROR, OL_ERROR_OUT_OF_MEMORY,
                 "out of device memory: %" G_GUINT64_FORMAT " MiB more requested, %" G_GUINT64_FORMAT
                 " of %" G_GUINT64_FORMAT " MiB in use", (size + (1 << 20) - 1) >> 20, a->used >> 20,
                 a->limit >> 20);
    return NULL;
  }
  Block *b = g_new0 (Block, 1);
  b->size = size;
  b->free_ranges = g_array_new (FALSE, FALSE, sizeof (Range));
  VkBufferCreateInfo binfo = buffer_info (size);
  if (!ol_vk_check (vkCreateBuffer (dev->device, &binfo, NULL, &b->buffer), "vkCreateBuffer", error))
    goto fail;
  VkMemoryRequirements req;
  vkGetBufferMemoryRequirements (dev->device, b->buffer, &req);
  VkMemoryAllocateInfo minfo = {
    .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
    .allocationSize = req.size,
    .memoryTypeIndex = pool->memory_type,
  };
  VkResult r = vkAllocateMemory (dev->device, &minfo, NULL, &b->memory);
  if (r != VK_SUCCESS) {
    b->memory = VK_NULL_HANDLE;
    g_set_error (error, OL_ERROR, OL_ERROR_OUT_OF_MEMORY,
                 "out of device memory: the driver refused a %" G_GUINT64_FORMAT " MiB block (VkResult %d) with %"
                 G_GUINT64_FORMAT " MiB in use", size >> 20, (int) r, a->used >> 20);
    goto fail;
  }
  if (!ol_vk_check (vkBindBufferMemory (dev->device, b->buffer, b->memory, 0), "vkBindBufferMemory", error))
    goto fail;
  if (pool->host_visible &&
      !ol_vk_check (vkMapMemory (dev->device, b->memory, 0, VK_WHOLE_SIZE, 0, &b->mapped), "vkMapMemory", error))
    goto fail;
  Range all = { 0, size };
  g_array_append_val (b->free_ranges, all);
  a->used += size;
  g_ptr_array_add (pool->blocks, b);
  return b;

fail:
  if (b->memory != VK_NULL_HANDLE)
    vkFreeMemory (dev->device, b->memory, NULL);
  if (b->buffer != VK_NULL_HANDLE)
    vkDestroyBuffer (dev->device, b->buffer, NULL);
  g_array_free (b->free_ranges, TRUE);
  g_free (b);
  return NULL;
}

/* First fit; ranges are kept aligned so no alignment padding is ever needed inside a block. */
static gboolean
block_carve (Block *b, guint64 size, guint64 *offset)
{
  for (guint i = 0; i < b->free_ranges->len; i++) {
    Range *r = &g_array_index (b->free_ranges, Range, i);
    if (r->size >= size) {
      *offset = r->offset;
      r->offset += size;
      r->size -= size;
      if (r->size == 0)
        g_array_remove_index (b->free_ranges, i);
      return TRUE;
    }
  }
  return FALSE;
}

static void
block_release (Block *b, guint64 offset, guint64 size)
{
  GArray *fr = b->free_ranges;
  guint i = 0;
  while (i < fr->len && g_array_index (fr, Range, i).offset < offset)
    i++;
  Range r = { offset, size };
  g_array_insert_val (fr, i, r);
  if (i + 1 < fr->len) {
    Range *cur = &g_array_index (fr, Range, i), *next = &g_array_index (fr, Range, i + 1);
    if (cur->offset + cur->size == next->offset) {
      cur->size += next->size;
      g_array_remove_index (fr, i + 1);
    }
  }
  if (i > 0) {
    Range *prev = &g_array_index (fr, Range, i - 1), *cur = &g_array_index (fr, Range, i);
    if (prev->offset + prev->size == cur->offset) {
      prev->size += cur->size;
      g_array_remove_index (fr, i);
    }
  }
}

OlBuffer *
ol_buffer_new (OlDevice *dev, guint64 size, OlMemoryKind kind, GError **error)
{
  g_return_val_if_fail (dev != NULL && (kind == OL_MEMORY_DEVICE || kind == OL_MEMORY_HOST), NULL);
  OlAllocator *a = dev->allocator;
  if (size == 0 || size > G_MAXUINT64 - OL_BUFFER_ALIGNMENT) {
    g_set_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT, "invalid buffer size %" G_GUINT64_FORMAT, size);
    return NULL;
  }
  guint64 reserved = (size + OL_BUFFER_ALIGNMENT - 1) & ~(guint64) (OL_BUFFER_ALIGNMENT - 1);
  if (dev->caps.max_buffer_size > 0 && reserved > dev->caps.max_buffer_size) {
    g_set_error (error, OL_ERROR, OL_ERROR_OUT_OF_MEMORY,
                 "a buffer of %" G_GUINT64_FORMAT " MiB exceeds the device's largest allocation (%"
                 G_GUINT64_FORMAT " MiB)", size >> 20, dev->caps.max_buffer_size >> 20);
    return NULL;
  }

  g_mutex_lock (&a->lock);
  Pool *pool = &a->pools[kind];
  Block *block = NULL;
  guint64 offset = 0;
  /* Large buffers get a block of their own, so that freeing them returns the memory at once. */
  if (reserved <= a->block_bytes / 2) {
    for (guint i = 0; i < pool->blocks->len && block == NULL; i++)
      if (block_carve (pool->blocks->pdata[i], reserved, &offset))
        block = pool->blocks->pdata[i];
  }
  if (block == NULL) {
    guint64 bsize = reserved <= a->block_bytes / 2 ? a->block_bytes : reserved;
    if (bsize > reserved && a->used + bsize > a->limit && a->used + reserved <= a->limit)
      bsize = reserved;   /* close to the limit: a smaller block still fits */
    block = block_new (dev, pool, bsize, error);
    if (block == NULL) {
      g_mutex_unlock (&a->lock);
      return NULL;
    }
    block_carve (block, reserved, &offset);
  }
  block->n_live++;
  pool->n_buffers++;
  pool->buffer_bytes += reserved;
  g_mutex_unlock (&a->lock);

  OlBuffer *buf = g_new0 (OlBuffer, 1);
  buf->dev = dev;
  buf->kind = kind;
  buf->block = block;
  buf->offset = offset;
  buf->size = size;
  buf->reserved = reserved;
  return buf;
}

void
ol_buffer_free (OlBuffer *buf)
{
  if (buf == NULL)
    return;
  OlAllocator *a = buf->dev->allocator;
  g_mutex_lock (&a->lock);
  Pool *pool = &a->pools[buf->kind];
  Block *b = buf->block;
  block_release (b, buf->offset, buf->reserved);
  pool->n_buffers--;
  pool->buffer_bytes -= buf->reserved;
  if (--b->n_live == 0) {
    /* Keep one empty standard block per pool for reuse; give everything else back. */
    gboolean keep = b->size == a->block_bytes;
    for (guint i = 0; i < pool->blocks->len && keep; i++) {
      Block *o = pool->blocks->pdata[i];
      if (o != b && o->n_live == 0)
        keep = FALSE;
    }
    if (!keep) {
      g_ptr_array_remove (pool->blocks, b);
      a->used -= b->size;
      block_destroy (buf->dev, b);
    }
  }
  g_mutex_unlock (&a->lock);
  g_free (buf);
}

guint64
ol_buffer_get_size (const OlBuffer *buf)
{
  return buf->size;
}

OlDevice *
ol_buffer_get_device (const OlBuffer *buf)
{
  return buf->dev;
}

void *
ol_buffer_map (OlBuffer *buf)
{
  return buf->block->mapped ? (char *) buf->block->mapped + buf->offset : NULL;
}

VkBuffer
ol_buffer_vk (const OlBuffer *buf, guint64 *offset)
{
  *offset = buf->offset;
  return buf->block->buffer;
}

static gboolean
check_range (const OlBuffer *buf, guint64 offset, guint64 size, GError **error)
{
  if (offset > buf->size || size > buf->size - offset) {
    g_set_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT,
                 "range %" G_GUINT64_FORMAT "+%" G_GUINT64_FORMAT " outside a buffer of %" G_GUINT64_FORMAT
                 " bytes", offset, size, buf->size);
    return FALSE;
  }
  return TRUE;
}

/* Copies between a buffer and the staging buffer in chunks; caller holds transfer_lock. */
static gboolean
staged_copy (OlBuffer *buf, guint64 offset, void *data, guint64 size, gboolean upload, GError **error)
{
  OlDevice *dev = buf->dev;
  OlAllocator *a = dev->allocator;
  if (a->staging == NULL) {
    a->staging = ol_buffer_new (dev, STAGING_BYTES, OL_MEMORY_HOST, error);
    if (a->staging == NULL)
      return FALSE;
  }
  char *staging = ol_buffer_map (a->staging);
  guint64 soff, doff;
  VkBuffer sbuf = ol_buffer_vk (a->staging, &soff);
  VkBuffer dbuf = ol_buffer_vk (buf, &doff);
  for (guint64 done = 0; done < size;) {
    guint64 n = MIN (size - done, STAGING_BYTES);
    if (upload)
      memcpy (staging, (char *) data + done, n);
    VkCommandBufferBeginInfo begin = {
      .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
      .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
    };
    if (!ol_vk_check (vkBeginCommandBuffer (a->cmd, &begin), "vkBeginCommandBuffer", error))
      return FALSE;
    VkBufferCopy region = {
      .srcOffset = upload ? soff : doff + offset + done,
      .dstOffset = upload ? doff + offset + done : soff,
      .size = n,
    };
    vkCmdCopyBuffer (a->cmd, upload ? sbuf : dbuf, upload ? dbuf : sbuf, 1, &region);
    if (!ol_vk_check (vkEndCommandBuffer (a->cmd), "vkEndCommandBuffer", error) ||
        !ol_device_submit_wait (dev, a->cmd, a->fence, error))
      return FALSE;
    if (!upload)
      memcpy ((char *) data + done, staging, n);
    done += n;
  }
  return TRUE;
}

gboolean
ol_buffer_write (OlBuffer *buf, guint64 offset, const void *data, guint64 size, GError **error)
{
  if (!check_range (buf, offset, size, error))
    return FALSE;
  char *p = ol_buffer_map (buf);
  if (p != NULL) {
    memcpy (p + offset, data, size);
    return TRUE;
  }
  OlAllocator *a = buf->dev->allocator;
  g_mutex_lock (&a->transfer_lock);
  gboolean ok = staged_copy (buf, offset, (void *) data, size, TRUE, error);
  g_mutex_unlock (&a->transfer_lock);
  return ok;
}

gboolean
ol_buffer_read (OlBuffer *buf, guint64 offset, void *data, guint64 size, GError **error)
{
  if (!check_range (buf, offset, size, error))
    return FALSE;
  char *p = ol_buffer_map (buf);
  if (p != NULL) {
    memcpy (data, p + offset, size);
    return TRUE;
  }
  OlAllocator *a = buf->dev->allocator;
  g_mutex_lock (&a->transfer_lock);
  gboolean ok = staged_copy (buf, offset, data, size, FALSE, error);
  g_mutex_unlock (&a->transfer_lock);
  return ok;
}

gboolean
ol_buffer_zero (OlBuffer *buf, GError **error)
{
  char *p = ol_buffer_map (buf);
  if (p != NULL) {
    memset (p, 0, buf->size);
    return TRUE;
  }
  OlDevice *dev = buf->dev;
  OlAllocator *a = dev->allocator;
  guint64 off;
  VkBuffer vb = ol_buffer_vk (buf, &off);
  g_mutex_lock (&a->transfer_lock);
  VkCommandBufferBeginInfo begin = {
    .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
    .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
  };
  gboolean ok = ol_vk_check (vkBeginCommandBuffer (a->cmd, &begin), "vkBeginCommandBuffer", error);
  if (ok) {
    vkCmdFillBuffer (a->cmd, vb, off, buf->reserved, 0);
    ok = ol_vk_check (vkEndCommandBuffer (a->cmd), "vkEndCommandBuffer", error) &&
        ol_device_submit_wait (dev, a->cmd, a->fence, error);
  }
  g_mutex_unlock (&a->transfer_lock);
  return ok;
}
