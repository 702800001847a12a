/* Multi-head self-attention across a dialog's utterances on the CPU, forward and
 * backward, for attention_native.py: the maths of dialog.py's SelfAttention between its
 * input and output projections (scores, key mask, softmax, dropout on the weights,
 * weighted sum of values, heads concatenated).
 *
 * At the fusion study's sizes (U ~40 utterances, 4 heads of 25) PyTorch spends a
 * training step's attention on a dozen small batched ops and two head-splitting copies;
 * here each (modality, dialog, head) is one task whose five small products run in
 * register tiles (kernels.h) on q, k and v where the projection left them, the tasks
 * shared among PyTorch's OpenMP threads (see gru_kernel.c). Only real utterances count:
 * padded keys get weight 0 (as exp(-inf) does); padded queries give 0 (dialog.py zeroes
 * those outputs anyway).
 *
 * Layouts (float32 unless said, contiguous), E = heads * dh:
 *   mask   [B, U] uint8             1 = real utterance
 *   qkv[m] [B, U, 3, heads, dh]     the input projection (q | k | v), one array per
 *                                   modality (no stacked copy)
 *   keep   [M, B, heads, U, U]      dropout factors (0 or 1 / (1 - p)), or NULL: none
 *   probs  [M, B, heads, U, U]      softmax weights before dropout (saved)
 *   out    [M, B, U, E]             heads concatenated
 *   d_out  [M, B, U, E], d_qkv[m] like qkv[m]
 */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "kernels.h"

#if SER_SIMD
#define HIDE (-1.0e30f) /* a padded key's score: exp(HIDE - any real score) = 0 */

struct head {
  const float *q, *k, *v; /* row u at u * stride */
  size_t stride;
  const unsigned char *mask;
  int n, *real;      /* the real utterances' positions */
  float *probs;      /* [U, U] */
  const float *keep; /* [U, U] or NULL */
};

static struct head head_of(int task, int B, int U, int heads, int dh, const unsigned char *mask,
                           const float *const *qkv, const float *probs, const float *keep,
                           int *real) {
  const int mb = task / heads, b = mb % B;
  const size_t stride = (size_t)3 * heads * dh;
  const float *base = qkv[mb / B] + (size_t)b * U * stride + (size_t)(task % heads) * dh;
  struct head h = {base, base + (size_t)heads * dh, base + (size_t)2 * heads * dh, stride,
                   mask + (size_t)b * U, 0, real, (float *)probs + (size_t)task * U * U,
                   keep ? keep + (size_t)task * U * U : NULL};
  for (int u = 0; u < U; u++)
    if (h.mask[u]) real[h.n++] = u;
  return h;
}

/* t[e * U + u] = rows[u * stride + e]: keys or values, laid along the utterances. */
static void transpose(int U, int dh, const float *rows, size_t stride, float *restrict t) {
  for (int u = 0; u < U; u++)
    for (int e = 0; e < dh; e++) t[(size_t)e * U + u] = rows[u * stride + e];
}

/* row = softmax of scale * row (padded keys hold HIDE / scale: their weight is 0), in
   masked vector steps: at ~40 keys a compiler's loop epilogues would cost more than the
   maths. */
static void softmax_row(int U, float scale, float *restrict row) {
  const vec s = vset1(scale), low = vset1(-3.0e38f), zero = vset1(0.0f);
  vec top = low, sum = zero;
  for (int j = 0; j < U; j += LANES) {
    const vmask m = vlanes(U - j);
    const vec x = vmul(vload(m, row + j), s);
    vstore(m, row + j, x);
    top = vmax(top, vselect(m, x, low));
  }
  const vec t = vset1(vreduce_max(top));
  for (int j = 0; j < U; j += LANES) {
    const vmask m = vlanes(U - j);
    const vec e = vselect(m, vexp(vsub(vload(m, row + j), t)), zero);
    vstore(m, row + j, e);
    sum = vadd(sum, e);
  }
  const vec inv = vset1(1.0f / vreduce_add(sum)); /* >= exp(0) */
  for (int j = 0; j < U; j += LANES) {
    const vmask m = vlanes(U - j);
    vstore(m, row + j, vmul(vload(m, row + j), inv));
  }
}

/* ROWS row pointers to the t-th tile of the real utterances (the last repeated). */
static void tile_rows(const struct head *h, int t, const float *base, size_t stride,
                      const float **rows) {
  for (int r = 0; r < ROWS; r++) {
    const int i = t + r < h->n ? t + r : h->n - 1;
    rows[r] = base + (size_t)h->real[i] * stride;
  }
}
#endif

void ser_attention_forward(int M, int B, int U, int heads, int dh, const unsigned char *mask,
                           const float *const *qkv, const float *keep, float *probs,
                           float *out) {
#if SER_SIMD
  const float scale = 1.0f / __builtin_sqrtf((float)dh);
  const size_t E = (size_t)heads * dh;
  const int ld = (U > dh ? U : dh) + 32;
#pragma omp parallel for schedule(static)
  for (int task = 0; task < M * B * heads; task++) {
    int real[U];
    const struct head h = head_of(task, B, U, heads, dh, mask, qkv, probs, keep, real);
    float *o = out + (size_t)(task / heads) * U * E + (size_t)(task % heads) * dh;
    float kt[dh * U], w[ROWS * U], acc[ROWS * ld], hide[U];
    for (int j = 0; j < U; j++) hide[j] = h.mask[j] ? 0.0f : HIDE / scale;
    memset(h.probs, 0, sizeof(float) * U * U);
    for (int u = 0; u < U; u++)
      if (!h.mask[u]) memset(o + u * E, 0, sizeof(float) * dh);
    if (h.n == 0) continue;
    transpose(U, dh, h.k, h.stride, kt);
    for (int t = 0; t < h.n; t += ROWS) {
      const float *rows[ROWS];
      tile_rows(&h, t, h.q, h.stride, rows);
      tile_product(dh, U, rows, hide, kt, U, acc, ld); /* q . k_j, padded keys hidden */
      for (int r = 0; r < ROWS; r++) {
        const int i = h.real[t + r < h.n ? t + r : h.n - 1];
        float *p = h.probs + (size_t)i * U, *w_r = w + (size_t)r * U;
        memcpy(p, acc + (size_t)r * ld, sizeof(float) * U);
        softmax_row(U, scale, p);
        for (int j = 0; j < U; j++) w_r[j] = h.keep ? p[j] * h.keep[(size_t)i * U + j] : p[j];
        rows[r] = w_r;
      }
      tile_product(U, dh, rows, NULL, h.v, h.stride, acc, ld); /* sum_j w_ij v_j */
      for (int r = 0; r < ROWS && t + r < h.n; r++)
        memcpy(o + h.real[t + r] * E, acc + (size_t)r * ld, sizeof(float) * dh);
    }
  }
#else
  (void)M, (void)B, (void)U, (void)heads, (void)dh, (void)mask, (void)qkv, (void)keep;
  (void)probs, (void)out;
#endif
}

#if SER_SIMD
/* dst[u * stride + 0:dh] = sum_i in[u][i * step] * w[i * ldw + 0:dh] for the real
   utterances u, else 0. */
static void put_rows(const struct head *h, int U, int dh, const float *const *in, size_t step,
                     const float *w, size_t ldw, float *dst, size_t stride, float *acc, int ld) {
  for (int u = 0; u < U; u++)
    if (!h->mask[u]) memset(dst + u * stride, 0, sizeof(float) * dh);
  for (int t = 0; t < h->n; t += ROWS) {
    const float *rows[ROWS];
    for (int r = 0; r < ROWS; r++) rows[r] = in[h->real[t + r < h->n ? t + r : h->n - 1]];
    tile_product_strided(U, dh, rows, step, NULL, w, ldw, acc, ld);
    for (int r = 0; r < ROWS && t + r < h->n; r++)
      memcpy(dst + h->real[t + r] * stride, acc + (size_t)r * ld, sizeof(float) * dh);
  }
}
#endif

/* Returns 0, or -1 when out of memory. */
int ser_attention_backward(int M, int B, int U, int heads, int dh, const unsigned char *mask,
                           const float *const *qkv, const float *keep, const float *probs,
                           const float *d_out, float *const *d_qkv) {
#if SER_SIMD
  const float scale = 1.0f / __builtin_sqrtf((float)dh);
  const size_t E = (size_t)heads * dh, stride = (size_t)3 * heads * dh;
  const int ld = (U > dh ? U : dh) + 32;
  /* Per thread: v transposed, dL/dscores and the dropped weights. */
  const size_t per_thread = (size_t)dh * U + 2 * (size_t)U * U + ROWS * (size_t)ld;
  float *buffers = malloc(sizeof(float) * per_thread * (size_t)omp_get_max_threads());
  if (!buffers) return -1;
#pragma omp parallel for schedule(static)
  for (int task = 0; task < M * B * heads; task++) {
    int real[U];
    const struct head h = head_of(task, B, U, heads, dh, mask, qkv, probs, keep, real);
    const float *d_o = d_out + (size_t)(task / heads) * U * E + (size_t)(task % heads) * dh;
    const int mb = task / heads;
    float *dq = d_qkv[mb / B] + (size_t)(mb % B) * U * stride + (size_t)(task % heads) * dh;
    float *vt = buffers + per_thread * (size_t)omp_get_thread_num();
    float *ds = vt + (size_t)dh * U, *wd = ds + (size_t)U * U, *acc = wd + (size_t)U * U;
    const float *in[U];
    memset(ds, 0, sizeof(float) * 2 * (size_t)U * U);
    transpose(U, dh, h.v, h.stride, vt);
    for (int t = 0; t < h.n; t += ROWS) {
      const float *rows[ROWS];
      tile_rows(&h, t, d_o, E, rows);
      tile_product(dh, U, rows, NULL, vt, U, acc, ld); /* dL/dweight_ij = d_out_i . v_j */
      for (int r = 0; r < ROWS && t + r < h.n; r++) {
        const int i = h.real[t + r];
        const float *p = h.probs + (size_t)i * U, *f = h.keep ? h.keep + (size_t)i * U : NULL;
        float *d_w = acc + (size_t)r * ld, *ds_i = ds + (size_t)i * U, *wd_i = wd + (size_t)i * U;
        if (f)
          for (int j = 0; j < U; j++) {
            d_w[j] *= f[j];         /* through the dropout */
            wd_i[j] = p[j] * f[j];  /* the weight v_j was summed with */
          }
        else
          memcpy(wd_i, p, sizeof(float) * U);
        float inner = 0.0f;
#pragma omp simd reduction(+ : inner)
        for (int j = 0; j < U; j++) inner += p[j] * d_w[j];
        /* softmax: dL/dscore_ij = p_ij (dL/dp_ij - sum_j' p_ij' dL/dp_ij'), scaled */
        for (int j = 0; j < U; j++) ds_i[j] = scale * p[j] * (d_w[j] - inner);
      }
    }
    for (int u = 0; u < U; u++) in[u] = ds + (size_t)u * U; /* row u */
    put_rows(&h, U, dh, in, 1, h.k, h.stride, dq, stride, acc, ld); /* dq_i = sum_j ds_ij k_j */
    for (int u = 0; u < U; u++) in[u] = ds + u; /* column u */
    put_rows(&h, U, dh, in, U, h.q, h.stride, dq + E, stride, acc, ld); /* dk_j = sum_i ds_ij q_i */
    for (int u = 0; u < U; u++) in[u] = wd + u;
    put_rows(&h, U, dh, in, U, d_o, E, dq + 2 * E, stride, acc, ld); /* dv_j = sum_i w_ij d_out_i */
  }
  free(buffers);
  return 0;
#else
  (void)M, (void)B, (void)U, (void)heads, (void)dh, (void)mask, (void)qkv, (void)keep;
  (void)probs, (void)d_out, (void)d_qkv;
  return -1;
#endif
}
