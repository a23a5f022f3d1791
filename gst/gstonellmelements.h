/* Registration functions of the plugin's elements (defined in their own files, called by plugin.c). */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

GST_ELEMENT_REGISTER_DECLARE (onellmimagetok);
GST_ELEMENT_REGISTER_DECLARE (onellmvideotok);
GST_ELEMENT_REGISTER_DECLARE (onellmaudiotok);
GST_ELEMENT_REGISTER_DECLARE (onellmdepthtok);
GST_ELEMENT_REGISTER_DECLARE (onellmnormaltok);
GST_ELEMENT_REGISTER_DECLARE (onellmpointtok);
GST_ELEMENT_REGISTER_DECLARE (onellmimutok);
GST_ELEMENT_REGISTER_DECLARE (onellmfmritok);
GST_ELEMENT_REGISTER_DECLARE (onellmencoder);
GST_ELEMENT_REGISTER_DECLARE (onellmcaption);
GST_ELEMENT_REGISTER_DECLARE (onellmcaptionsink);

G_END_DECLS
