/* One layer of M lockstep bidirectional GRUs on the CPU, forward and backward, for
 * gru_native.py: the maths, gate orders and saved buffers of gru.py's PyTorch path.
 *
 * PyTorch runs a recurrence step as a batched matrix product and a few elementwise ops,
 * each dispatched on its own: ~25 us a step at the fusion study's sizes (K = 2M = 4
 * recurrences x B 20 dialogs, H 50), most of it op overhead, plus gathers and scatters
 * to put each direction's steps in its time order. Here a layer is one call each way:
 * the kernel finds each dialog's real utterances in the mask (direction d = 1 walks them
 * from the last), and a step is one pass: the product of the hidden states with W_hh in
 * AVX-512 register tiles of ROWS dialogs x 32 gates, then the gate nonlinearities on the
 * fresh rows (expf from glibc's vector maths library, libmvec), outputs written straight
 * to their positions. Steps past a dialog's end read a zero input (finite states, zero
 * gradients). The K recurrences are independent: OpenMP threads take one share each.
 * Built with -fopenmp, the library binds to the OpenMP runtime PyTorch has loaded
 * (libgomp.so.1), so its threads are PyTorch's own pool, which `torch.set_num_threads`
 * sizes and which is awake (spinning) right after PyTorch's ops; a pool of our own would
 * fight it for the cores. native.py builds it for the CPU it runs on; without AVX-512 or
 * AVX2 (kernels.h) `ser_gru_simd` says 0 and gru.py keeps PyTorch's path.
 *
 * Layouts (float32 unless said, contiguous), K = 2M (k = 2m + d), G = 3H:
 *   mask     [B, U] uint8     1 = real utterance
 *   proj[m]  [B, U, 2, G]     W_i x + b_i of both directions, gates n | z | r (one
 *                             array per GRU: no stacked copy)
 *   w        [K, H, G]        W_h transposed, gates z | r | n
 *   wt       [K, G, H]        W_h (rows z | r | n)
 *   bh       [K, G]           b_h, z | r | n
 *   states   [K, U + 1, B, H] h after each step, h_0 = 0 first
 *   pre      [U, K, B, G]     z | r | W_hn h + b_hn
 *   nb       [U, K, B, H]     n
 *   out      [M, B, U, 2H]    forward | backward states at real positions, else 0
 *   h_n      [M, 2, B, H]     state after a dialog's last real step (0 if none)
 *   slots    [K, U, B, 4, H]  dL/d(n_pre | z_pre | r_pre | W_hn h + b_hn)
 *   d_w      [K, H, G]        dL/dw, d_b [K, G] dL/dbh
 *   d_proj[m] [B, U, 2, G]    dL/dproj (0 at positions that are not real)
 *   scratch  [K, 2, B, H]
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

static inline float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

/* The vector width the kernels were built for (kernels.h): 512, 256 or 0 (unusable). */
int ser_gru_simd(void) { return SER_SIMD; }

#if SER_SIMD
static void forward_gates(int H, const float *restrict g, const float *restrict acc,
                          const float *restrict h, float *restrict pre, float *restrict n_out,
                          float *restrict h_out) {
  for (int j = 0; j < H; j++) {
    const float z = sigmoid(g[H + j] + acc[j]);
    const float r = sigmoid(g[2 * H + j] + acc[H + j]);
    const float hn = acc[2 * H + j];
    const float n = 2.0f * sigmoid(2.0f * (g[j] + r * hn)) - 1.0f; /* tanh */
    pre[j] = z;
    pre[H + j] = r;
    pre[2 * H + j] = hn;
    n_out[j] = n;
    h_out[j] = n + z * (h[j] - n);
  }
}

static void backward_slots(int H, const float *restrict dh, const float *restrict pre,
                           const float *restrict n_in, const float *restrict h_prev,
                           float *restrict slot) {
  for (int j = 0; j < H; j++) {
    const float z = pre[j], r = pre[H + j], hn = pre[2 * H + j], n = n_in[j];
    const float dn = dh[j] * (1.0f - z) * (1.0f - n * n);
    slot[j] = dn;
    slot[H + j] = dh[j] * (h_prev[j] - n) * z * (1.0f - z);
    slot[2 * H + j] = dn * hn * r * (1.0f - r);
    slot[3 * H + j] = dn * r;
  }
}

static void backward_carry(int H, const float *restrict acc, const float *restrict dh,
                           const float *restrict z, float *restrict out) {
  for (int j = 0; j < H; j++) out[j] = acc[j] + dh[j] * z[j];
}

/* d_w [H, G] = sum_n h[n]^T d_gh[n] and d_b [G] = sum_n d_gh[n] over the n rows of one
 * recurrence's steps and dialogs: h rows H apart, d_gh rows 4H apart (in the slots). */
static void weight_gradients(int n, int H, const float *h, const float *d_gh, float *d_w,
                             float *d_b, float *acc, int ld) {
  const int G = 3 * H;
  for (int i0 = 0; i0 < H; i0 += ROWS) {
    const float *in[ROWS];
    for (int r = 0; r < ROWS; r++) in[r] = h + (i0 + r < H ? i0 + r : i0); /* column of h */
    tile_product_strided(n, G, in, (size_t)H, NULL, d_gh, (size_t)4 * H, acc, ld);
    for (int r = 0; r < ROWS && i0 + r < H; r++)
      memcpy(d_w + (size_t)(i0 + r) * G, acc + (size_t)r * ld, sizeof(float) * G);
  }
  memset(d_b, 0, sizeof(float) * G);
  for (int row = 0; row < n; row++)
    for (int c = 0; c < G; c++) d_b[c] += d_gh[(size_t)row * 4 * H + c];
}
#endif

/* Per dialog b: its number of real utterances, len[b] = table[b], and their positions in
 * order, table[B + b * U + t]. One allocation (free it); NULL when out of memory. */
static int *real_positions(int B, int U, const unsigned char *mask) {
  int *len = malloc(sizeof(int) * ((size_t)B + (size_t)B * U + 1));
  if (!len) return NULL;
  int *pos = len + B;
  for (int b = 0; b < B; b++) {
    len[b] = 0;
    for (int u = 0; u < U; u++)
      if (mask[(size_t)b * U + u]) pos[(size_t)b * U + len[b]++] = u;
  }
  return len;
}

/* Position of step t of direction d in dialog b, or -1 past the dialog's end. */
static inline int step_position(const int *pos, const int *len, int U, int b, int d, int t) {
  if (t >= len[b]) return -1;
  return pos[(size_t)b * U + (d == 0 ? t : len[b] - 1 - t)];
}

/* The forward pass of one layer: K = 2M recurrences (k = 2m + d). Returns 0, or -1 when
 * out of memory. */
int ser_bigru_forward(int M, int B, int U, int H, const unsigned char *mask,
                      const float *const *proj,
                      const float *w, const float *bh, float *states, float *pre, float *nb,
                      float *out, float *h_n) {
#if SER_SIMD
  const int K = 2 * M, G = 3 * H, ld = (G + 31) / 32 * 32;
  int *len = real_positions(B, U, mask);
  if (!len) return -1;
  const int *pos = len + B;
#pragma omp parallel for schedule(static)
  for (int k = 0; k < K; k++) {
    const int m = k / 2, d = k % 2;
    float acc[ROWS * ld], zeros[G];
    memset(zeros, 0, sizeof(zeros));
    memset(states + (size_t)k * (U + 1) * B * H, 0, sizeof(float) * (size_t)B * H); /* h_0 */
    for (int b = 0; b < B; b++) {
      for (int u = 0; u < U; u++)
        if (!mask[(size_t)b * U + u])
          memset(out + (((size_t)m * B + b) * U + u) * 2 * H + (size_t)d * H, 0, sizeof(float) * H);
      if (len[b] == 0) memset(h_n + (((size_t)m * 2 + d) * B + b) * H, 0, sizeof(float) * H);
    }
    for (int t = 0; t < U; t++) {
      const float *h = states + ((size_t)k * (U + 1) + t) * B * H;
      float *h_next = (float *)h + (size_t)B * H;
      for (int b0 = 0; b0 < B; b0 += ROWS) {
        const float *in[ROWS];
        for (int r = 0; r < ROWS; r++) in[r] = h + (size_t)(b0 + r < B ? b0 + r : b0) * H;
        tile_product(H, G, in, bh + (size_t)k * G, w + (size_t)k * H * G, G, acc, ld);
        for (int r = 0; r < ROWS && b0 + r < B; r++) {
          const int b = b0 + r, p = step_position(pos, len, U, b, d, t);
          /* Past a dialog's end the input is 0: finite states whose gradients are 0. */
          const float *g = p < 0 ? zeros : proj[m] + (((size_t)b * U + p) * 2 + d) * G;
          float *h_b = h_next + (size_t)b * H;
          forward_gates(H, g, acc + (size_t)r * ld, in[r], pre + (((size_t)t * K + k) * B + b) * G,
                        nb + (((size_t)t * K + k) * B + b) * H, h_b);
          if (p < 0) continue;
          memcpy(out + (((size_t)m * B + b) * U + p) * 2 * H + (size_t)d * H, h_b, sizeof(float) * H);
          if (t == len[b] - 1)
            memcpy(h_n + (((size_t)m * 2 + d) * B + b) * H, h_b, sizeof(float) * H);
        }
      }
    }
  }
  free(len);
  return 0;
#else
  (void)M, (void)B, (void)U, (void)H, (void)mask, (void)proj, (void)w, (void)bh, (void)states;
  (void)pre, (void)nb, (void)out, (void)h_n;
  return -1;
#endif
}

/* The backward pass of one layer: dL/dproj and the slots (dL/d(n_pre | z_pre | r_pre |
 * W_hn h + b_hn) at every step, for the weight gradients). Returns 0, or -1 when out of
 * memory. */
int ser_bigru_backward(int M, int B, int U, int H, const unsigned char *mask,
                       const float *grad_out, const float *grad_hn, const float *wt,
                       const float *states, const float *pre, const float *nb, float *slots,
                       float *const *d_proj, float *dh_scratch, float *d_w, float *d_b) {
#if SER_SIMD
  const int K = 2 * M, G = 3 * H, ld = (G + 31) / 32 * 32;
  int *len = real_positions(B, U, mask);
  if (!len) return -1;
  const int *pos = len + B;
#pragma omp parallel for schedule(static)
  for (int k = 0; k < K; k++) {
    const int m = k / 2, d = k % 2;
    float acc[ROWS * ld];
    float *dh = dh_scratch + (size_t)k * 2 * B * H, *next = dh + (size_t)B * H;
    memset(dh, 0, sizeof(float) * (size_t)B * H);
    for (int b = 0; b < B; b++)
      for (int u = 0; u < U; u++)
        if (!mask[(size_t)b * U + u])
          memset(d_proj[m] + (((size_t)b * U + u) * 2 + d) * G, 0, sizeof(float) * G);
    for (int t = U - 1; t >= 0; t--) {
      float *slot = slots + ((size_t)k * U + t) * B * 4 * H;
      const float *p_t = pre + ((size_t)t * K + k) * B * G;
      const float *n_t = nb + ((size_t)t * K + k) * B * H;
      const float *h_prev = states + ((size_t)k * (U + 1) + t) * B * H;
      for (int b = 0; b < B; b++) {
        const int p = step_position(pos, len, U, b, d, t);
        float *dh_b = dh + (size_t)b * H;
        if (p >= 0) { /* dL/dh from this step's output (and h_n after the last) */
          const float *go = grad_out + (((size_t)m * B + b) * U + p) * 2 * H + (size_t)d * H;
          for (int j = 0; j < H; j++) dh_b[j] += go[j];
          if (t == len[b] - 1) {
            const float *gn = grad_hn + (((size_t)m * 2 + d) * B + b) * H;
            for (int j = 0; j < H; j++) dh_b[j] += gn[j];
          }
        }
        float *s = slot + (size_t)b * 4 * H;
        backward_slots(H, dh_b, p_t + (size_t)b * G, n_t + (size_t)b * H, h_prev + (size_t)b * H, s);
        if (p >= 0)
          memcpy(d_proj[m] + (((size_t)b * U + p) * 2 + d) * G, s, sizeof(float) * G);
      }
      if (t == 0) break;
      /* dL/dh_{t-1} through step t: dL/dh_t * z + dL/d(W_h h + b_h) W_h */
      for (int b0 = 0; b0 < B; b0 += ROWS) {
        const float *in[ROWS];
        for (int r = 0; r < ROWS; r++)
          in[r] = slot + (size_t)(b0 + r < B ? b0 + r : b0) * 4 * H + H; /* z | r | hn */
        tile_product(G, H, in, NULL, wt + (size_t)k * G * H, H, acc, ld);
        for (int r = 0; r < ROWS && b0 + r < B; r++) {
          const size_t b = (size_t)(b0 + r);
          backward_carry(H, acc + (size_t)r * ld, dh + b * H, p_t + b * G, next + b * H);
        }
      }
      float *swap = dh;
      dh = next;
      next = swap;
    }
    weight_gradients(U * B, H, states + (size_t)k * (U + 1) * B * H,
                     slots + (size_t)k * U * B * 4 * H + H, d_w + (size_t)k * H * G,
                     d_b + (size_t)k * G, acc, ld);
  }
  free(len);
  return 0;
#else
  (void)M, (void)B, (void)U, (void)H, (void)mask, (void)grad_out, (void)grad_hn, (void)wt;
  (void)states, (void)pre, (void)nb, (void)slots, (void)d_proj, (void)dh_scratch, (void)d_w;
  (void)d_b;
  return -1;
#endif
}
