/* Host-side preprocessing of every OneLLM modality: raw data to the spec's model-input tensors (§2). */
#pragma once

#include <glib.h>
#include "error.h"

G_BEGIN_DECLS

/* Sizes of the released model. Tiny test models may differ; the functions take them as parameters and the
 * model file's metadata provides the values. */
#define OL_IMAGE_SIZE 224
#define OL_VIDEO_CLIPS 5
#define OL_VIDEO_CROPS 3
#define OL_AUDIO_RATE 16000
#define OL_AUDIO_MEL_BINS 128
#define OL_AUDIO_FRAMES 1024
#define OL_POINT_COUNT 8192
#define OL_POINT_GROUPS 1024
#define OL_POINT_GROUP_SIZE 32
#define OL_IMU_CHANNELS 6
#define OL_IMU_RATE 200
#define OL_IMU_SAMPLES 400
#define OL_FMRI_VOXELS 15724

/* ---- images and video frames ---- */

/* Packed 8-bit layouts, named as GStreamer names them. Planar YUV (I420, NV12, ...) is converted to one of
 * these by videoconvert in front of the plugin's elements. Alpha and padding bytes are ignored, which is what
 * the official pipeline's Image.convert('RGB') does. */
typedef enum {
  OL_PIXEL_RGB,
  OL_PIXEL_BGR,
  OL_PIXEL_RGBA,
  OL_PIXEL_BGRA,
  OL_PIXEL_ARGB,
  OL_PIXEL_ABGR,
  OL_PIXEL_RGBX,
  OL_PIXEL_BGRX,
  OL_PIXEL_XRGB,
  OL_PIXEL_XBGR,
  OL_PIXEL_GRAY8,
} OlPixelFormat;

typedef struct {
  const guint8 *data;
  int width, height;
  int stride;                 /* bytes from one row to the next, at least width * bytes per pixel */
  OlPixelFormat format;
} OlImage;

/* GStreamer's format names ("RGB", "BGRx", "GRAY8", ...); FALSE if not one of the above. */
OL_API gboolean ol_pixel_format_from_name (const char *name, OlPixelFormat *format);
OL_API int ol_pixel_format_bytes (OlPixelFormat format);

/* Image → [3, size, size] F32: the official evaluation transform. Resize(size, BICUBIC) of the short side
 * exactly as Pillow resamples 8-bit images (antialiased, fixed point, uint8 between the passes), long side
 * int(size * long / short), CenterCrop(size) with Python's round((h - size) / 2), ToTensor, CLIP mean/std. */
OL_API gboolean ol_preprocess_image (const OlImage *image, int size, float *out, GError **error);

/* Depth or normal map with its RGB image → [2, 3, size, size] = (RGB, map). The map is converted to RGB (gray
 * replicated), resized to the RGB image's size with Pillow's default filter for resize() (bicubic), then both
 * get the image transform. rgb == NULL (a map without its photo): the map fills both slots. */
OL_API gboolean ol_preprocess_image_pair (const OlImage *rgb, const OlImage *map, int size, float *out,
                                          GError **error);

/* Video, file or window mode (pytorchvideo's ConstantClipsPerVideoSampler with 1-second clips and the first
 * frame of each clip): for n_frames decoded frames at fps (duration D = n_frames / fps), clip i starts at
 * s_i = i * max(D - 1, 0) / n_clips seconds and uses frame ceil(fps * s_i), clamped to n_frames - 1.
 * Writes n_clips indices. */
OL_API gboolean ol_video_clip_frames (gint64 n_frames, double fps, int n_clips, gint64 *indices,
                                      GError **error);

/* Live mode: n_samples frames spread evenly over the n_frames of a sliding window, first and last included
 * (pytorchvideo's UniformTemporalSubsample: linspace(0, n_frames - 1, n_samples), truncated). */
OL_API gboolean ol_video_window_frames (gint64 n_frames, int n_samples, gint64 *indices, GError **error);

/* One video frame → n_crops × [3, size, size] F32: ÷255, bilinear short-side scale to size (torch's
 * F.interpolate, align_corners=False, no antialias; long side floor(long / short * size)), CLIP mean/std,
 * then n_crops = 3: the spec's three spatial crops (top/centre/bottom if h > w, else left/centre/right),
 * or n_crops = 1: the centre crop only. Model input is the frames' outputs stacked: [T * n_crops, 3, size,
 * size]. */
OL_API gboolean ol_preprocess_video_frame (const OlImage *frame, int size, int n_crops, float *out,
                                           GError **error);

/* ---- audio ---- */

typedef enum {
  OL_SAMPLE_F32,    /* float in [-1, 1]; samples past full scale are clipped to it */
  OL_SAMPLE_S16,    /* signed 16-bit, divided by 32768 like torchaudio.load */
} OlSampleFormat;

/* Interleaved samples (n_frames per channel, any channel count, any integer rate) → [1, n_mels,
 * n_out_frames] F32: resample to 16 kHz like torchaudio.transforms.Resample, subtract the mean over all
 * channels and samples, Kaldi fbank of channel 0 (25 ms / 10 ms, Hann, pre-emphasis 0.97, 512-point FFT,
 * mel bins 20-8000 Hz, log), zero rows / truncation to n_out_frames, (x + 4.2677393) / 9.1379948,
 * mel-major. Fewer than 400 samples after resampling (one 25 ms frame) is an error. */
OL_API gboolean ol_preprocess_audio (const void *samples, OlSampleFormat format, int channels,
                                     gint64 n_frames, int rate, int n_mels, int n_out_frames, float *out,
                                     GError **error);

/* Length of a signal of n samples after torchaudio's resampling from in_rate to out_rate:
 * ceil(out_rate' * n / in_rate') with the rates divided by their gcd. */
OL_API gint64 ol_resample_length (gint64 n, int in_rate, int out_rate);

/* ---- point cloud ---- */

typedef struct {
  int n_points;           /* points the model takes (8192) */
  int n_groups;           /* FPS centres (1024) */
  int group_size;         /* neighbours per centre (32) */
  gboolean half_input;    /* round the normalised points to fp16 first, as the official fp16 inference does */
} OlPointParams;

OL_API void ol_point_params_init (OlPointParams *params);

/* points: [n, 6] = xyz, rgb in [0, 1]. n > n_points: every (n / n_points)-th point (index floor(i * n /
 * n_points)); n < n_points: the points repeated cyclically; n < n_groups is an error ("too few points").
 * Then pc_norm (xyz minus its mean, divided by the largest norm; rgb unchanged) → out_points [n_points, 6],
 * and the PointPatchEmbed indices (see ol_point_group_indices). */
OL_API gboolean ol_point_prepare (const float *points, gint64 n, const OlPointParams *params,
                                  float *out_points, gint32 *fps_idx, gint32 *knn_idx, GError **error);

/* The indices of the point tokenizer on prepared points [n_points, 6], computed on channels 3..5 (the
 * colours; the released code's quirk): furthest point sampling of n_groups centres as the reference CUDA
 * kernel computes it (fp32, first index 0, its tie-breaking) → fps_idx [n_groups]; for each centre the
 * group_size nearest points by torch.cdist's matrix-product distance, ascending, ties by index → knn_idx
 * [n_groups, group_size], indices into the n_points points. */
OL_API gboolean ol_point_group_indices (const float *points, const OlPointParams *params, gint32 *fps_idx,
                                        gint32 *knn_idx, GError **error);

/* ---- IMU and fMRI ---- */

/* signal: [channels, n] (acc xyz, gyro xyz; physical units) at an integer rate → [6, n_out] at 200 Hz
 * (torchaudio's resampling, the audio resampler), zero-padded or truncated to n_out (400). */
OL_API gboolean ol_preprocess_imu (const float *signal, int channels, gint64 n, int rate, int n_out,
                                   float *out, GError **error);

/* data: [n_reps, n_voxels] repetitions of one stimulus → [1, n_voxels], their mean (float32, summed in row
 * order like numpy's mean over axis 0). n_voxels must equal expected_voxels (15724 for the released
 * model). */
OL_API gboolean ol_preprocess_fmri (const float *data, gint64 n_reps, gint64 n_voxels, gint64 expected_voxels,
                                    float *out, GError **error);

G_END_DECLS
