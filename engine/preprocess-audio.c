/* Audio: torchaudio's sinc resampler (also IMU's) and the spec's Kaldi log-mel filterbank (§2.5). */
#include "preprocess-private.h"

#include <float.h>
#include <math.h>
#include <string.h>

#define LOWPASS_WIDTH 6
#define ROLLOFF 0.99

struct _OlResampler {
  int orig, new_;      /* rates divided by their gcd */
  int width;           /* input samples of padding on each side */
  int taps;            /* 2 * width + orig */
  float *kernel;       /* [new_][taps], float32 as torchaudio.transforms.Resample caches it */
};

static int
gcd (int a, int b)
{
  while (b) {
    int t = a % b;
    a = b;
    b = t;
  }
  return a;
}

gint64
ol_resample_length (gint64 n, int in_rate, int out_rate)
{
  g_return_val_if_fail (in_rate > 0 && out_rate > 0 && n >= 0, 0);
  int g = gcd (in_rate, out_rate);
  gint64 orig = in_rate / g, new_ = out_rate / g;
  return (new_ * n + orig - 1) / orig;
}

/* torchaudio's _get_sinc_resample_kernel(dtype=None): positions in float64 except the output phase -j/new,
 * which torch computes as a float32 tensor before adding it; Hann window cos^2; sin(t)/t scaled by
 * base/orig. */
OlResampler *
ol_resampler_new (int in_rate, int out_rate)
{
  g_return_val_if_fail (in_rate > 0 && out_rate > 0, NULL);
  OlResampler *r = g_new0 (OlResampler, 1);
  int g = gcd (in_rate, out_rate);
  r->orig = in_rate / g;
  r->new_ = out_rate / g;
  double base = MIN (r->orig, r->new_) * ROLLOFF;
  r->width = (int) ceil (LOWPASS_WIDTH * (double) r->orig / base);
  r->taps = 2 * r->width + r->orig;
  r->kernel = g_new (float, (gsize) r->new_ * r->taps);
  double scale = base / r->orig;
  for (int j = 0; j < r->new_; j++) {
    double phase = (double) ((float) -j / (float) r->new_);
    for (int k = 0; k < r->taps; k++) {
      double t = (phase + (double) (k - r->width) / r->orig) * base;
      t = t < -LOWPASS_WIDTH ? -LOWPASS_WIDTH : t > LOWPASS_WIDTH ? LOWPASS_WIDTH : t;
      double window = cos (t * M_PI / LOWPASS_WIDTH / 2);
      window *= window;
      t *= M_PI;
      double sinc = t == 0 ? 1.0 : sin (t) / t;
      r->kernel[(gsize) j * r->taps + k] = (float) (sinc * (window * scale));
    }
  }
  return r;
}

void
ol_resampler_free (OlResampler *r)
{
  if (!r)
    return;
  g_free (r->kernel);
  g_free (r);
}

/* Output o is phase j = o mod new of block m = o div new: the kernel row j against the input starting at
 * m * orig - width (zeros outside the signal), as conv1d(stride=orig) over the padded signal. */
void
ol_resampler_run (const OlResampler *r, const float *in, gint64 n, gsize in_stride, float *out)
{
  gint64 n_out = (r->new_ * n + r->orig - 1) / r->orig;
  for (gint64 o = 0; o < n_out; o++) {
    gint64 m = o / r->new_;
    int j = (int) (o % r->new_);
    gint64 start = m * r->orig - r->width;
    int k0 = start < 0 ? (int) -start : 0;
    int k1 = start + r->taps > n ? (int) (n - start) : r->taps;
    const float *kr = r->kernel + (gsize) j * r->taps;
    double s0 = 0, s1 = 0;
    int k = k0;
    for (; k + 1 < k1; k += 2) {
      s0 += (double) kr[k] * in[(start + k) * (gint64) in_stride];
      s1 += (double) kr[k + 1] * in[(start + k + 1) * (gint64) in_stride];
    }
    if (k < k1)
      s0 += (double) kr[k] * in[(start + k) * (gint64) in_stride];
    out[o] = (float) (s0 + s1);
  }
}

/* ---- Kaldi fbank (torchaudio.compliance.kaldi.fbank with the spec's options), in double ---- */

#define FRAME_LENGTH 400     /* 25 ms at 16 kHz */
#define FRAME_SHIFT 160      /* 10 ms */
#define FFT_SIZE 512
#define PREEMPHASIS 0.97

static double
mel_scale (double f)
{
  return 1127.0 * log (1.0 + f / 700.0);
}

/* Triangles between mel(20) and mel(8000) in n_mels + 1 equal steps, over the first 256 FFT bins (the Nyquist
 * bin gets weight 0). torchaudio computes them as float32 tensors from float64 scalars; so does this. */
static float *
mel_banks (int n_mels)
{
  float *banks = g_new0 (float, (gsize) n_mels * (FFT_SIZE / 2));
  double lo = mel_scale (20.0), hi = mel_scale (OL_AUDIO_RATE / 2.0);
  float delta = (float) ((hi - lo) / (n_mels + 1)), lo32 = (float) lo;
  for (int m = 0; m < n_mels; m++) {
    float left = lo32 + (float) m * delta, center = lo32 + ((float) m + 1.0f) * delta;
    float right = lo32 + ((float) m + 2.0f) * delta;
    for (int b = 0; b < FFT_SIZE / 2; b++) {
      /* float32 log as the double log rounded: the same value on every libm */
      float arg = 1.0f + ((float) OL_AUDIO_RATE / FFT_SIZE) * (float) b / 700.0f;
      float mel = 1127.0f * (float) log ((double) arg);
      float up = (mel - left) / (center - left), down = (right - mel) / (right - center);
      float v = MIN (up, down);
      banks[(gsize) m * (FFT_SIZE / 2) + b] = v > 0 ? v : 0;
    }
  }
  return banks;
}

/* In-place radix-2 FFT of FFT_SIZE complex values. */
static void
fft512 (double *re, double *im, const double *cos_t, const double *sin_t)
{
  for (int i = 1, j = 0; i < FFT_SIZE; i++) {
    int bit = FFT_SIZE >> 1;
    for (; j & bit; bit >>= 1)
      j ^= bit;
    j ^= bit;
    if (i < j) {
      double t = re[i];
      re[i] = re[j];
      re[j] = t;
      t = im[i];
      im[i] = im[j];
      im[j] = t;
    }
  }
  for (int len = 2; len <= FFT_SIZE; len <<= 1) {
    int step = FFT_SIZE / len;
    for (int i = 0; i < FFT_SIZE; i += len) {
      for (int k = 0; k < len / 2; k++) {
        double wr = cos_t[k * step], wi = -sin_t[k * step];
        int a = i + k, b = i + k + len / 2;
        double xr = re[b] * wr - im[b] * wi, xi = re[b] * wi + im[b] * wr;
        re[b] = re[a] - xr;
        im[b] = im[a] - xi;
        re[a] += xr;
        im[a] += xi;
      }
    }
  }
}

/* Log-mel energies of frames [0, n_frames) of x → out[frame * n_mels + mel]. */
static void
fbank (const float *x, gint64 n_frames, int n_mels, float *out)
{
  float *banks = mel_banks (n_mels);
  double window[FRAME_LENGTH], cos_t[FFT_SIZE / 2], sin_t[FFT_SIZE / 2];
  for (int i = 0; i < FRAME_LENGTH; i++)
    window[i] = 0.5 - 0.5 * cos (2 * M_PI * i / (FRAME_LENGTH - 1));
  for (int i = 0; i < FFT_SIZE / 2; i++) {
    cos_t[i] = cos (2 * M_PI * i / FFT_SIZE);
    sin_t[i] = sin (2 * M_PI * i / FFT_SIZE);
  }
  double re[FFT_SIZE], im[FFT_SIZE], frame[FRAME_LENGTH], power[FFT_SIZE / 2];
  for (gint64 f = 0; f < n_frames; f++) {
    const float *s = x + f * FRAME_SHIFT;
    double mean = 0;
    for (int i = 0; i < FRAME_LENGTH; i++)
      mean += s[i];
    mean /= FRAME_LENGTH;
    for (int i = 0; i < FRAME_LENGTH; i++)
      frame[i] = s[i] - mean;
    for (int i = FRAME_LENGTH - 1; i >= 0; i--)
      re[i] = (frame[i] - PREEMPHASIS * frame[i > 0 ? i - 1 : 0]) * window[i];
    memset (re + FRAME_LENGTH, 0, (FFT_SIZE - FRAME_LENGTH) * sizeof (double));
    memset (im, 0, sizeof im);
    fft512 (re, im, cos_t, sin_t);
    for (int b = 0; b < FFT_SIZE / 2; b++)
      power[b] = re[b] * re[b] + im[b] * im[b];
    for (int m = 0; m < n_mels; m++) {
      const float *w = banks + (gsize) m * (FFT_SIZE / 2);
      double e = 0;
      for (int b = 0; b < FFT_SIZE / 2; b++)
        e += power[b] * w[b];
      out[f * n_mels + m] = (float) log (MAX (e, (double) FLT_EPSILON));
    }
  }
  g_free (banks);
}

gboolean
ol_preprocess_audio (const void *samples, OlSampleFormat format, int channels, gint64 n_frames, int rate,
                     int n_mels, int n_out_frames, float *out, GError **error)
{
  g_return_val_if_fail (out != NULL, FALSE);
  if (format != OL_SAMPLE_F32 && format != OL_SAMPLE_S16) {
    g_set_error (error, OL_ERROR, OL_ERROR_UNSUPPORTED, "audio: unknown sample format %d", (int) format);
    return FALSE;
  }
  if (channels < 1 || channels > 64 || rate < 1 || rate > 1000000) {
    g_set_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT, "audio: %d channels at %d Hz (1..64 channels, "
                 "1..1000000 Hz)", channels, rate);
    return FALSE;
  }
  if (n_mels < 4 || n_mels > 256 || n_out_frames < 1 || n_out_frames > (1 << 20)) {
    g_set_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT, "audio: %d mel bins x %d frames is not a valid "
                 "output (4..256 bins)", n_mels, n_out_frames);
    return FALSE;
  }
  /* an hour at the highest rate bounds every product below */
  if (n_frames < 0 || n_frames > (gint64) 3600 * rate || samples == NULL) {
    g_set_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT,
                 "audio: %" G_GINT64_FORMAT " samples per channel "
                 "(at most one hour)", n_frames);
    return FALSE;
  }
  gint64 n16 = ol_resample_length (n_frames, rate, OL_AUDIO_RATE);
  if (n16 < FRAME_LENGTH) {
    g_set_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT,
                 "audio: too short: %" G_GINT64_FORMAT " samples at "
                 "16 kHz, at least %d (one 25 ms frame) needed", n16, FRAME_LENGTH);
    return FALSE;
  }

  gsize total = (gsize) n_frames * channels;
  float *in = g_try_new (float, total);
  float *x = g_try_new (float, (gsize) n16 * channels);
  if (!in || !x) {
    g_free (in);
    g_free (x);
    g_set_error (error, OL_ERROR, OL_ERROR_OUT_OF_MEMORY,
                 "audio: cannot allocate %" G_GSIZE_FORMAT " samples",
                 total);
    return FALSE;
  }
  if (format == OL_SAMPLE_F32) {
    memcpy (in, samples, total * sizeof (float));
    if (!ol_check_finite (in, total, "audio: sample", error)) {
      g_free (in);
      g_free (x);
      return FALSE;
    }
    /* The model heard torchaudio.load's [-1, 1]. A sample past full scale (an overdriven stream, or the first
     * sample of each of audiotestsrc's ticks, which GStreamer leaves unwritten: whatever the memory held) is
     * clipped rather than let one garbage value swamp its fbank frames. */
    for (gsize i = 0; i < total; i++)
      in[i] = CLAMP (in[i], -1.0f, 1.0f);
  } else {
    const gint16 *s = samples;
    for (gsize i = 0; i < total; i++)
      in[i] = s[i] / 32768.0f;
  }

  /* channel-major after resampling, like torchaudio's [C, N] */
  if (rate == OL_AUDIO_RATE) {
    for (int c = 0; c < channels; c++)
      for (gint64 i = 0; i < n16; i++)
        x[c * n16 + i] = in[i * channels + c];
  } else {
    OlResampler *r = ol_resampler_new (rate, OL_AUDIO_RATE);
    for (int c = 0; c < channels; c++)
      ol_resampler_run (r, in + c, n_frames, channels, x + c * n16);
    ol_resampler_free (r);
  }
  g_free (in);

  double sum = 0;
  for (gsize i = 0; i < (gsize) n16 * channels; i++)
    sum += x[i];
  float mean = (float) (sum / ((double) n16 * channels));
  for (gint64 i = 0; i < n16; i++)
    x[i] -= mean;

  gint64 n_fb = 1 + (n16 - FRAME_LENGTH) / FRAME_SHIFT;
  gint64 used = MIN (n_fb, n_out_frames);
  float *lm = g_new (float, (gsize) used * n_mels);
  fbank (x, used, n_mels, lm);
  g_free (x);

  const float pad = (0.0f + 4.2677393f) / 9.1379948f;
  for (int m = 0; m < n_mels; m++) {
    float *row = out + (gsize) m * n_out_frames;
    for (gint64 t = 0; t < used; t++)
      row[t] = (lm[t * n_mels + m] + 4.2677393f) / 9.1379948f;
    for (gint64 t = used; t < n_out_frames; t++)
      row[t] = pad;
  }
  g_free (lm);
  return TRUE;
}
