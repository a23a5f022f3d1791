/* Records dispatches into one command buffer with the barriers their data dependencies need. */
#include "graph.h"
#include "device-private.h"

#include <stdio.h>
#include <string.h>

#define SETS_PER_POOL 512
#define MAX_TIMESTAMPS 8192

typedef struct {
  VkBuffer buffer;
  guint64 begin, end;
} Span;

typedef struct {
  char *label;
  guint64 count;
  double ns;
} ProfileRow;

struct _OlGraph {
  OlDevice *dev;
  VkCommandPool cmd_pool;
  VkCommandBuffer cmd;
  VkFence fence;
  GPtrArray *desc_pools;        /* VkDescriptorPool, as pointers */
  guint desc_pool_used;         /* index of the pool sets come from */
  gboolean recording, recorded;
  GError *error;

  GArray *pending_reads;        /* Span, since the last barrier */
  GArray *pending_writes;
  guint n_dispatches, n_barriers;

  gboolean profile;
  VkQueryPool query_pool;
  guint n_timestamps;
  GPtrArray *labels;            /* label of dispatch i, for the timestamps of this recording */
  GHashTable *profile_rows;     /* label -> ProfileRow */
  GPtrArray *scratch;           /* OlBuffer of this recording */
  GArray *views;                /* VkBufferView of this recording's texel bindings */
};

gboolean
ol_graph_ok (OlGraph *g)
{
  return g->error == NULL;
}

void
ol_graph_fail (OlGraph *g, GError *error)
{
  if (g->error == NULL)
    g->error = error;
  else
    g_error_free (error);
}

void
ol_graph_failf (OlGraph *g, int code, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  ol_graph_fail (g, g_error_new_literal (OL_ERROR, code, msg));
}

static void
profile_row_free (gpointer p)
{
  ProfileRow *r = p;
  g_free (r->label);
  g_free (r);
}

OlGraph *
ol_graph_new (OlDevice *dev, GError **error)
{
  OlGraph *g = g_new0 (OlGraph, 1);
  g->dev = dev;
  g->desc_pools = g_ptr_array_new ();
  g->pending_reads = g_array_new (FALSE, FALSE, sizeof (Span));
  g->pending_writes = g_array_new (FALSE, FALSE, sizeof (Span));
  g->labels = g_ptr_array_new ();
  g->scratch = g_ptr_array_new_with_free_func ((GDestroyNotify) ol_buffer_free);
  g->views = g_array_new (FALSE, FALSE, sizeof (VkBufferView));
  g->profile_rows = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, profile_row_free);
  g->profile = g_strcmp0 (g_getenv ("ONELLM_PROFILE"), "1") == 0 && dev->caps.timestamps;

  VkCommandPoolCreateInfo pinfo = {
    .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
    .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
    .queueFamilyIndex = dev->queue_family,
  };
  if (!ol_vk_check (vkCreateCommandPool (dev->device, &pinfo, NULL, &g->cmd_pool), "vkCreateCommandPool", error))
    goto fail;
  VkCommandBufferAllocateInfo cinfo = {
    .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
    .commandPool = g->cmd_pool,
    .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
    .commandBufferCount = 1,
  };
  if (!ol_vk_check (vkAllocateCommandBuffers (dev->device, &cinfo, &g->cmd), "vkAllocateCommandBuffers", error))
    goto fail;
  VkFenceCreateInfo finfo = { .sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO };
  if (!ol_vk_check (vkCreateFence (dev->device, &finfo, NULL, &g->fence), "vkCreateFence", error))
    goto fail;
  if (g->profile) {
    VkQueryPoolCreateInfo qinfo = {
      .sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
      .queryType = VK_QUERY_TYPE_TIMESTAMP,
      .queryCount = MAX_TIMESTAMPS,
    };
    if (vkCreateQueryPool (dev->device, &qinfo, NULL, &g->query_pool) != VK_SUCCESS)
      g->profile = FALSE;
  }
  return g;

fail:
  ol_graph_free (g);
  return NULL;
}

static gint
compare_rows (gconstpointer a, gconstpointer b)
{
  const ProfileRow *ra = *(ProfileRow **) a, *rb = *(ProfileRow **) b;
  return ra->ns < rb->ns ? 1 : ra->ns > rb->ns ? -1 : 0;
}

static void
print_profile (OlGraph *g)
{
  if (g_hash_table_size (g->profile_rows) == 0)
    return;
  g_autoptr (GPtrArray) rows = g_ptr_array_new ();
  GHashTableIter it;
  gpointer value;
  g_hash_table_iter_init (&it, g->profile_rows);
  while (g_hash_table_iter_next (&it, NULL, &value))
    g_ptr_array_add (rows, value);
  g_ptr_array_sort (rows, compare_rows);
  double total = 0;
  for (guint i = 0; i < rows->len; i++)
    total += ((ProfileRow *) rows->pdata[i])->ns;
  fprintf (stderr, "onellm profile (%s): %.3f ms GPU time\n%-28s %10s %12s %8s\n", g->dev->caps.name,
           total / 1e6, "op", "calls", "ms", "share");
  for (guint i = 0; i < rows->len; i++) {
    ProfileRow *r = rows->pdata[i];
    fprintf (stderr, "%-28s %10" G_GUINT64_FORMAT " %12.3f %7.1f%%\n", r->label, r->count, r->ns / 1e6,
             total > 0 ? 100.0 * r->ns / total : 0.0);
  }
}

static void
destroy_views (OlGraph *g)
{
  for (guint i = 0; i < g->views->len; i++)
    vkDestroyBufferView (g->dev->device, g_array_index (g->views, VkBufferView, i), NULL);
  g_array_set_size (g->views, 0);
}

void
ol_graph_free (OlGraph *g)
{
  if (g == NULL)
    return;
  VkDevice d = g->dev->device;
  if (g->profile)
    print_profile (g);
  for (guint i = 0; i < g->desc_pools->len; i++)
    vkDestroyDescriptorPool (d, (VkDescriptorPool) g->desc_pools->pdata[i], NULL);
  destroy_views (g);
  g_array_free (g->views, TRUE);
  if (g->query_pool != VK_NULL_HANDLE)
    vkDestroyQueryPool (d, g->query_pool, NULL);
  if (g->fence != VK_NULL_HANDLE)
    vkDestroyFence (d, g->fence, NULL);
  if (g->cmd_pool != VK_NULL_HANDLE)
    vkDestroyCommandPool (d, g->cmd_pool, NULL);
  g_ptr_array_free (g->desc_pools, TRUE);
  g_array_free (g->pending_reads, TRUE);
  g_array_free (g->pending_writes, TRUE);
  g_ptr_array_free (g->labels, TRUE);
  g_ptr_array_free (g->scratch, TRUE);
  g_hash_table_destroy (g->profile_rows);
  g_clear_error (&g->error);
  g_free (g);
}

OlDevice *
ol_graph_get_device (OlGraph *g)
{
  return g->dev;
}

static void
global_barrier (OlGraph *g, VkPipelineStageFlags src_stage, VkAccessFlags src, VkPipelineStageFlags dst_stage,
                VkAccessFlags dst)
{
  VkMemoryBarrier b = {
    .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
    .srcAccessMask = src,
    .dstAccessMask = dst,
  };
  vkCmdPipelineBarrier (g->cmd, src_stage, dst_stage, 0, 1, &b, 0, NULL, 0, NULL);
}

void
ol_graph_begin (OlGraph *g)
{
  g_clear_error (&g->error);
  g->recording = TRUE;
  g->recorded = FALSE;
  g->n_dispatches = g->n_barriers = 0;
  g->n_timestamps = 0;
  g_ptr_array_set_size (g->labels, 0);
  g_ptr_array_set_size (g->scratch, 0);
  destroy_views (g);
  g_array_set_size (g->pending_reads, 0);
  g_array_set_size (g->pending_writes, 0);
  for (guint i = 0; i < g->desc_pools->len; i++)
    vkResetDescriptorPool (g->dev->device, (VkDescriptorPool) g->desc_pools->pdata[i], 0);
  g->desc_pool_used = 0;

  GError *error = NULL;
  VkCommandBufferBeginInfo begin = { .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO };
  if (!ol_vk_check (vkResetCommandBuffer (g->cmd, 0), "vkResetCommandBuffer", &error) ||
      !ol_vk_check (vkBeginCommandBuffer (g->cmd, &begin), "vkBeginCommandBuffer", &error)) {
    ol_graph_fail (g, error);
    return;
  }
  /* Work of earlier submissions (graphs, staged uploads) becomes visible to this one. */
  global_barrier (g, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                  VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
                  VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT);
  if (g->profile) {
    vkCmdResetQueryPool (g->cmd, g->query_pool, 0, MAX_TIMESTAMPS);
    vkCmdWriteTimestamp (g->cmd, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, g->query_pool, g->n_timestamps++);
  }
}

gboolean
ol_graph_end (OlGraph *g, GError **error)
{
  g_return_val_if_fail (g->recording, FALSE);
  g->recording = FALSE;
  if (g->error == NULL) {
    /* Results become visible to the host and to later transfers. */
    global_barrier (g, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_ACCESS_SHADER_WRITE_BIT,
                    VK_PIPELINE_STAGE_HOST_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                    VK_ACCESS_HOST_READ_BIT | VK_ACCESS_TRANSFER_READ_BIT);
    GError *e = NULL;
    if (!ol_vk_check (vkEndCommandBuffer (g->cmd), "vkEndCommandBuffer", &e))
      ol_graph_fail (g, e);
  } else {
    vkEndCommandBuffer (g->cmd);
  }
  if (g->error != NULL) {
    g_propagate_error (error, g->error);
    g->error = NULL;
    return FALSE;
  }
  g->recorded = TRUE;
  return TRUE;
}

static void
collect_profile (OlGraph *g)
{
  guint n = g->n_timestamps;
  if (n < 2)
    return;
  g_autofree guint64 *ts = g_new0 (guint64, n);
  if (vkGetQueryPoolResults (g->dev->device, g->query_pool, 0, n, n * sizeof (guint64), ts, sizeof (guint64),
                             VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT) != VK_SUCCESS)
    return;
  guint64 mask = g->dev->timestamp_valid_bits >= 64 ? G_MAXUINT64 : ((1ull << g->dev->timestamp_valid_bits) - 1);
  for (guint i = 1; i < n; i++) {
    const char *label = g->labels->pdata[i - 1];
    ProfileRow *r = g_hash_table_lookup (g->profile_rows, label);
    if (r == NULL) {
      r = g_new0 (ProfileRow, 1);
      r->label = g_strdup (label);
      g_hash_table_insert (g->profile_rows, r->label, r);
    }
    r->count++;
    r->ns += (double) ((ts[i] - ts[i - 1]) & mask) * g->dev->caps.timestamp_period_ns;
  }
}

gboolean
ol_graph_run (OlGraph *g, GError **error)
{
  g_return_val_if_fail (g->recorded, FALSE);
  if (!ol_device_submit_wait (g->dev, g->cmd, g->fence, error))
    return FALSE;
  if (g->profile)
    collect_profile (g);
  return TRUE;
}

gboolean
ol_graph_bind (OlGraph *g, OlBuffer *buffer, guint64 offset, guint64 size, gboolean write, OlBinding *binding,
               guint32 *byte_offset)
{
  if (g->error != NULL)
    return FALSE;
  const OlDeviceCaps *c = &g->dev->caps;
  guint64 start = offset - offset % c->min_storage_buffer_offset_alignment;
  /* Round the range up to whole words so shaders reading 32-bit words stay inside it; buffers are
   * allocated in whole multiples of OL_BUFFER_ALIGNMENT, so the rounded range exists. */
  guint64 range = (offset - start + size + 3) & ~(guint64) 3;
  if (range > c->max_storage_buffer_range) {
    ol_graph_failf (g, OL_ERROR_UNSUPPORTED, "%" G_GUINT64_FORMAT " MiB in one binding exceed the device's "
                    "storage buffer range of %" G_GUINT64_FORMAT " MiB", range >> 20,
                    c->max_storage_buffer_range >> 20);
    return FALSE;
  }
  binding->buffer = buffer;
  binding->offset = start;
  binding->size = range;
  binding->write = write;
  binding->texels = FALSE;
  *byte_offset = (guint32) (offset - start);
  return TRUE;
}

gboolean
ol_graph_bind_texels (OlGraph *g, OlBuffer *buffer, guint64 offset, guint64 size, OlBinding *binding,
                      guint32 *texel_offset)
{
  g_return_val_if_fail (offset % 16 == 0, FALSE);
  if (g->error != NULL)
    return FALSE;
  const OlDeviceCaps *c = &g->dev->caps;
  guint64 start = offset - offset % c->min_texel_buffer_offset_alignment;
  /* Whole texels; buffers are allocated in whole multiples of OL_BUFFER_ALIGNMENT, so they exist. */
  guint64 range = (offset - start + size + 15) & ~(guint64) 15;
  if (range / 16 > c->max_texel_buffer_elements) {
    ol_graph_failf (g, OL_ERROR_UNSUPPORTED, "%" G_GUINT64_FORMAT " texels in one binding exceed the device's "
                    "limit of %" G_GUINT64_FORMAT, range / 16, c->max_texel_buffer_elements);
    return FALSE;
  }
  *binding = (OlBinding) { .buffer = buffer, .offset = start, .size = range, .texels = TRUE };
  *texel_offset = (guint32) ((offset - start) / 16);
  return TRUE;
}

gboolean
ol_graph_bind_tensor (OlGraph *g, const OlTensor *t, gboolean write, OlBinding *binding, guint32 *word_offset)
{
  guint32 bytes;
  if (!ol_graph_bind (g, t->buffer, t->offset, ol_tensor_n_bytes (t), write, binding, &bytes))
    return FALSE;
  if (bytes % 4 != 0) {
    ol_graph_failf (g, OL_ERROR_INVALID_ARGUMENT, "tensor offset %" G_GUINT64_FORMAT " is not 4-byte aligned",
                    t->offset);
    return FALSE;
  }
  *word_offset = bytes / 4;
  return TRUE;
}

static gboolean
overlaps (GArray *spans, const Span *s)
{
  for (guint i = 0; i < spans->len; i++) {
    const Span *o = &g_array_index (spans, Span, i);
    if (o->buffer == s->buffer && o->begin < s->end && s->begin < o->end)
      return TRUE;
  }
  return FALSE;
}

static VkDescriptorSet
allocate_set (OlGraph *g, VkDescriptorSetLayout layout, GError **error)
{
  for (;;) {
    if (g->desc_pool_used == g->desc_pools->len) {
      VkDescriptorPoolSize sizes[2] = {
        { .type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, .descriptorCount = SETS_PER_POOL * 8 },
        { .type = VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER, .descriptorCount = SETS_PER_POOL },
      };
      VkDescriptorPoolCreateInfo info = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
        .maxSets = SETS_PER_POOL,
        .poolSizeCount = 2,
        .pPoolSizes = sizes,
      };
      VkDescriptorPool pool;
      if (!ol_vk_check (vkCreateDescriptorPool (g->dev->device, &info, NULL, &pool), "vkCreateDescriptorPool", error))
        return VK_NULL_HANDLE;
      g_ptr_array_add (g->desc_pools, (gpointer) pool);
    }
    VkDescriptorSetAllocateInfo ainfo = {
      .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
      .descriptorPool = (VkDescriptorPool) g->desc_pools->pdata[g->desc_pool_used],
      .descriptorSetCount = 1,
      .pSetLayouts = &layout,
    };
    VkDescriptorSet set;
    VkResult r = vkAllocateDescriptorSets (g->dev->device, &ainfo, &set);
    if (r == VK_SUCCESS)
      return set;
    if (r != VK_ERROR_OUT_OF_POOL_MEMORY && r != VK_ERROR_FRAGMENTED_POOL) {
      ol_vk_check (r, "vkAllocateDescriptorSets", error);
      return VK_NULL_HANDLE;
    }
    g->desc_pool_used++;
  }
}

gboolean
ol_graph_dispatch (OlGraph *g, const char *label, const char *shader, const guint32 *spec, guint n_spec,
                   const OlBinding *bindings, guint n_bindings, const void *push, guint push_size,
                   guint32 groups_x, guint32 groups_y, guint32 groups_z)
{
  g_return_val_if_fail (g->recording, FALSE);
  g_return_val_if_fail (push_size <= OL_PUSH_CONSTANT_BYTES && n_bindings <= 16, FALSE);
  if (g->error != NULL)
    return FALSE;
  if (groups_x == 0 || groups_y == 0 || groups_z == 0)
    return TRUE;
  const OlDeviceCaps *c = &g->dev->caps;
  if (groups_x > c->max_workgroup_count[0] || groups_y > c->max_workgroup_count[1] ||
      groups_z > c->max_workgroup_count[2]) {
    ol_graph_failf (g, OL_ERROR_UNSUPPORTED, "%s: %u×%u×%u workgroups exceed the device limit", label,
                    groups_x, groups_y, groups_z);
    return FALSE;
  }

  GError *error = NULL;
  guint32 texel_mask = 0;
  for (guint i = 0; i < n_bindings; i++)
    texel_mask |= (bindings[i].texels ? 1u : 0u) << i;
  OlPipeline *p = ol_device_get_pipeline (g->dev, shader, spec, n_spec, n_bindings, texel_mask, &error);
  if (p == NULL) {
    ol_graph_fail (g, error);
    return FALSE;
  }
  VkDescriptorSet set = allocate_set (g, p->set_layout, &error);
  if (set == VK_NULL_HANDLE) {
    ol_graph_fail (g, error);
    return FALSE;
  }

  VkDescriptorBufferInfo infos[16];
  VkBufferView views[16];
  VkWriteDescriptorSet writes[16];
  Span spans[16];
  gboolean hazard = FALSE;
  for (guint i = 0; i < n_bindings; i++) {
    guint64 base;
    VkBuffer vb = ol_buffer_vk (bindings[i].buffer, &base);
    infos[i] = (VkDescriptorBufferInfo) {
      .buffer = vb,
      .offset = base + bindings[i].offset,
      .range = bindings[i].size,
    };
    writes[i] = (VkWriteDescriptorSet) {
      .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
      .dstSet = set,
      .dstBinding = i,
      .descriptorCount = 1,
      .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
      .pBufferInfo = &infos[i],
    };
    if (bindings[i].texels) {
      VkBufferViewCreateInfo vinfo = {
        .sType = VK_STRUCTURE_TYPE_BUFFER_VIEW_CREATE_INFO,
        .buffer = vb,
        .format = VK_FORMAT_R32G32B32A32_UINT,
        .offset = infos[i].offset,
        .range = infos[i].range,
      };
      if (!ol_vk_check (vkCreateBufferView (g->dev->device, &vinfo, NULL, &views[i]), "vkCreateBufferView",
                        &error)) {
        ol_graph_fail (g, error);
        return FALSE;
      }
      g_array_append_val (g->views, views[i]);
      writes[i].descriptorType = VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER;
      writes[i].pBufferInfo = NULL;
      writes[i].pTexelBufferView = &views[i];
    }
    spans[i] = (Span) { vb, infos[i].offset, infos[i].offset + infos[i].range };
    if (overlaps (g->pending_writes, &spans[i]) || (bindings[i].write && overlaps (g->pending_reads, &spans[i])))
      hazard = TRUE;
  }
  vkUpdateDescriptorSets (g->dev->device, n_bindings, writes, 0, NULL);

  if (hazard) {
    global_barrier (g, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_ACCESS_SHADER_WRITE_BIT,
                    VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT);
    g_array_set_size (g->pending_reads, 0);
    g_array_set_size (g->pending_writes, 0);
    g->n_barriers++;
  }
  for (guint i = 0; i < n_bindings; i++)
    g_array_append_val (bindings[i].write ? g->pending_writes : g->pending_reads, spans[i]);

  vkCmdBindPipeline (g->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p->pipeline);
  vkCmdBindDescriptorSets (g->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p->layout, 0, 1, &set, 0, NULL);
  if (push_size > 0) {
    guint8 pc[OL_PUSH_CONSTANT_BYTES] = { 0 };
    memcpy (pc, push, push_size);
    vkCmdPushConstants (g->cmd, p->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, OL_PUSH_CONSTANT_BYTES, pc);
  }
  vkCmdDispatch (g->cmd, groups_x, groups_y, groups_z);
  g->n_dispatches++;
  if (g->profile && g->n_timestamps < MAX_TIMESTAMPS) {
    vkCmdWriteTimestamp (g->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, g->query_pool, g->n_timestamps++);
    g_ptr_array_add (g->labels, (gpointer) g_intern_string (label));
  }
  return TRUE;
}

OlBuffer *
ol_graph_scratch (OlGraph *g, guint64 size)
{
  if (g->error != NULL)
    return NULL;
  GError *error = NULL;
  OlBuffer *buf = ol_buffer_new (g->dev, size, OL_MEMORY_DEVICE, &error);
  if (buf == NULL) {
    ol_graph_fail (g, error);
    return NULL;
  }
  g_ptr_array_add (g->scratch, buf);
  return buf;
}
