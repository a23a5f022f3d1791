/* Registration of the onellm GStreamer plugin. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstonellmelements.h"

static gboolean
plugin_init (GstPlugin *plugin)
{
  gboolean ok = TRUE;
  ok &= GST_ELEMENT_REGISTER (onellmimagetok, plugin);
  ok &= GST_ELEMENT_REGISTER (onellmvideotok, plugin);
  ok &= GST_ELEMENT_REGISTER (onellmaudiotok, plugin);
  ok &= GST_ELEMENT_REGISTER (onellmdepthtok, plugin);
  ok &= GST_ELEMENT_REGISTER (onellmnormaltok, plugin);
  ok &= GST_ELEMENT_REGISTER (onellmpointtok, plugin);
  ok &= GST_ELEMENT_REGISTER (onellmimutok, plugin);
  ok &= GST_ELEMENT_REGISTER (onellmfmritok, plugin);
  ok &= GST_ELEMENT_REGISTER (onellmencoder, plugin);
  ok &= GST_ELEMENT_REGISTER (onellmcaption, plugin);
  ok &= GST_ELEMENT_REGISTER (onellmcaptionsink, plugin);
  return ok;
}

GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, onellm,
    "OneLLM multimodal captioning: modality tokenizers, encoder and LLM captioner on Vulkan compute",
    plugin_init, PACKAGE_VERSION, "LGPL", PACKAGE_NAME, PACKAGE_ORIGIN)
