/* onellm-cli: the commands and the helpers they share. */
#pragma once

#include "command.h"
#include "onellm.h"

/* Prints "onellm-cli: <message>" on stderr and returns the exit status for failures. */
int cli_fail (const char *fmt, ...) G_GNUC_PRINTF (1, 2);
int cli_fail_error (GError *error);

int cli_devices (int argc, char **argv);
int cli_info (int argc, char **argv);
int cli_tokenize (int argc, char **argv);
int cli_detokenize (int argc, char **argv);
int cli_encode (int argc, char **argv);
int cli_caption (int argc, char **argv);
int cli_generate (int argc, char **argv);

/* One encoder input as encode and caption take it: a media file or a .npy, and what some modalities need. */
typedef struct {
  const char *path;
  const char *rgb_path;    /* depth/normal: the photo that goes with the map (NULL: the map fills both slots) */
  int imu_rate;            /* imu: sample rate of the .npy signal */
  gboolean preprocessed;   /* path is a .npy of the model-input tensor itself */
} CliInput;

/* The GOptionEntry lines of a CliInput, for both commands' option tables. */
#define CLI_INPUT_OPTIONS(in) \
  { "input", 'i', 0, G_OPTION_ARG_FILENAME, &(in)->path, "media file (image, video, audio, depth/normal map) or " \
    ".npy (point [N,6], imu [6,T], fmri [V])", "FILE" }, \
  { "preprocessed", 0, 0, G_OPTION_ARG_NONE, &(in)->preprocessed, \
    "FILE is a .npy of the model-input tensor (e.g. [3,224,224] for image)", NULL }, \
  { "rgb", 0, 0, G_OPTION_ARG_FILENAME, &(in)->rgb_path, \
    "depth/normal: the photo of the map (default: the map fills both slots)", "FILE" }, \
  { "rate", 0, 0, G_OPTION_ARG_INT, &(in)->imu_rate, "imu: sample rate of the .npy signal (default 200)", "HZ" }

/* The model-input tensor of the input for modality m (decoded through GStreamer and preprocessed, or the
 * --preprocessed .npy as it is), its dimensions in n_dims and shape; NULL and error on failure. */
float *cli_load_input (OlModel *model, OlModality m, const CliInput *in, guint *n_dims, gint64 *shape,
                       GError **error);
