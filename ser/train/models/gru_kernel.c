/* K independent GRU recurrences on the CPU, forward and backward, for gru.py's
 * `_Recurrence` (same buffers, gate orders and maths; see there).
 *
 * PyTorch runs a recurrence step as a batched matrix product and a few elementwise ops,
 * each dispatched on its own: ~25 us a step at the fusion study's sizes (K 4 x B 20
 * dialogs, H 50), most of it op overhead. Here a step is one pass: the product of the
 * hidden states with W_hh in AVX-512 register tiles of ROWS dialogs x 32 gates, then the
 * gate nonlinearities on the fresh rows (exp from glibc's vector maths library, libmvec).
 * The K recurrences are independent: OpenMP threads take one share each. Built with
 * -fopenmp, the library binds to the OpenMP runtime PyTorch has loaded (libgomp.so.1),
 * so its threads are PyTorch's own pool, which `torch.set_num_threads` sizes and which
 * is awake (spinning) right after PyTorch's ops; a pool of our own would fight it for
 * the cores. Built by native.py for the CPU it runs on; without AVX-512 `ser_gru_simd`
 * says 0 and gru.py keeps PyTorch's ops.
 *
 * Layouts (float32, contiguous), G = 3H:
 *   gi     [K, T, B, G]      W_i x + b_i, gates n | z | r
 *   w      [K, H, G]         W_h transposed, gates z | r | n
 *   wt     [K, G, H]         W_h (rows z | r | n)
 *   bh     [K, G]            b_h, z | r | n
 *   states [K, T + 1, B, H]  h_0 = 0 first (zeroed by the caller)
 *   pre    [T, K, B, G]      z | r | W_hn h + b_hn
 *   nb     [T, K, B, H]      n
 *   grad   [K, T + 1, B, H]  dL/dstates
 *   slots  [K, T, B, 4, H]   dL/d(n_pre | z_pre | r_pre | W_hn h + b_hn)
 *   dh     [K, 2, B, H]      scratch
 */
#include <stddef.h>
#ifdef __AVX512F__
#include <immintrin.h>
#endif

#define ROWS 4 /* dialogs in one register tile */

/* libmvec's 16-lane expf (glibc >= 2.22) wherever the compiler vectorises a loop. */
#pragma omp declare simd notinbranch
extern float expf(float);

static inline float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

int ser_gru_simd(void) {
#ifdef __AVX512F__
  return 512;
#else
  return 0;
#endif
}

#ifdef __AVX512F__
static inline __mmask16 lanes(int n) {
  return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1u);
}

/* out[r][0:cols] = bias + sum_i in[r][i] * w[i][0:cols] for r < ROWS (w: rows of `cols`
 * floats; bias may be NULL). 8 accumulators stay in registers over the sum. */
static void tile_product(int n_in, int cols, const float *const *in, const float *bias,
                         const float *w, float *out, int ld) {
  for (int c = 0; c < cols; c += 32) {
    const __mmask16 m0 = lanes(cols - c), m1 = lanes(cols - c - 16);
    __m512 a[ROWS][2];
    const __m512 b0 = bias ? _mm512_maskz_loadu_ps(m0, bias + c) : _mm512_setzero_ps();
    const __m512 b1 = bias ? _mm512_maskz_loadu_ps(m1, bias + c + 16) : _mm512_setzero_ps();
    for (int r = 0; r < ROWS; r++) {
      a[r][0] = b0;
      a[r][1] = b1;
    }
    for (int i = 0; i < n_in; i++) {
      const __m512 w0 = _mm512_maskz_loadu_ps(m0, w + (size_t)i * cols + c);
      const __m512 w1 = _mm512_maskz_loadu_ps(m1, w + (size_t)i * cols + c + 16);
      for (int r = 0; r < ROWS; r++) {
        const __m512 x = _mm512_set1_ps(in[r][i]);
        a[r][0] = _mm512_fmadd_ps(x, w0, a[r][0]);
        a[r][1] = _mm512_fmadd_ps(x, w1, a[r][1]);
      }
    }
    for (int r = 0; r < ROWS; r++) {
      _mm512_storeu_ps(out + (size_t)r * ld + c, a[r][0]);
      _mm512_storeu_ps(out + (size_t)r * ld + c + 16, a[r][1]);
    }
  }
}

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

static void backward_carry(int H, const float *restrict acc, const float *restrict g,
                           const float *restrict dh, const float *restrict z,
                           float *restrict out) {
  for (int j = 0; j < H; j++) out[j] = acc[j] + g[j] + dh[j] * z[j];
}
#endif

/* The forward pass (see the layouts above). */
void ser_gru_forward(int K, int T, int B, int H, const float *gi, const float *w,
                     const float *bh, float *states, float *pre, float *nb) {
#ifdef __AVX512F__
  const int G = 3 * H, ld = (G + 31) / 32 * 32;
#pragma omp parallel for schedule(static)
  for (int k = 0; k < K; k++) {
    float acc[ROWS * ld];
    for (int t = 0; t < T; t++) {
      const float *h = states + ((size_t)k * (T + 1) + t) * B * H;
      float *h_next = h + (size_t)B * H;
      for (int b0 = 0; b0 < B; b0 += ROWS) {
        const float *in[ROWS];
        for (int r = 0; r < ROWS; r++) in[r] = h + (size_t)(b0 + r < B ? b0 + r : b0) * H;
        tile_product(H, G, in, bh + (size_t)k * G, w + (size_t)k * H * G, acc, ld);
        for (int r = 0; r < ROWS && b0 + r < B; r++) {
          const size_t b = (size_t)(b0 + r);
          forward_gates(H, gi + (((size_t)k * T + t) * B + b) * G, acc + (size_t)r * ld, in[r],
                        pre + (((size_t)t * K + k) * B + b) * G,
                        nb + (((size_t)t * K + k) * B + b) * H, h_next + b * H);
        }
      }
    }
  }
#else
  (void)K, (void)T, (void)B, (void)H, (void)gi, (void)w, (void)bh, (void)states, (void)pre;
  (void)nb;
#endif
}

/* The backward pass: fills `slots` (see the layouts above). */
void ser_gru_backward(int K, int T, int B, int H, const float *grad, const float *wt,
                      const float *states, const float *pre, const float *nb, float *slots,
                      float *dh_scratch) {
#ifdef __AVX512F__
  const int G = 3 * H, ld = (H + 31) / 32 * 32;
#pragma omp parallel for schedule(static)
  for (int k = 0; k < K; k++) {
    float acc[ROWS * ld];
    float *dh = dh_scratch + (size_t)k * 2 * B * H, *next = dh + (size_t)B * H;
    const float *g = grad + (size_t)k * (T + 1) * B * H;
    for (size_t i = 0; i < (size_t)B * H; i++) dh[i] = g[(size_t)T * B * H + i];
    for (int t = T - 1; t >= 0; t--) {
      float *slot = slots + ((size_t)k * T + t) * B * 4 * H;
      const float *p = pre + ((size_t)t * K + k) * B * G;
      const float *n = nb + ((size_t)t * K + k) * B * H;
      const float *h_prev = states + ((size_t)k * (T + 1) + t) * B * H;
      for (size_t b = 0; b < (size_t)B; b++)
        backward_slots(H, dh + b * H, p + b * G, n + b * H, h_prev + b * H, slot + b * 4 * H);
      if (t == 0) break;
      /* dL/dh_{t-1} = dL/dstates_t + dL/dh_t * z + dL/d(W_h h + b_h) W_h */
      for (int b0 = 0; b0 < B; b0 += ROWS) {
        const float *in[ROWS];
        for (int r = 0; r < ROWS; r++)
          in[r] = slot + (size_t)(b0 + r < B ? b0 + r : b0) * 4 * H + H; /* z | r | hn */
        tile_product(G, H, in, NULL, wt + (size_t)k * G * H, acc, ld);
        for (int r = 0; r < ROWS && b0 + r < B; r++) {
          const size_t b = (size_t)(b0 + r);
          backward_carry(H, acc + (size_t)r * ld, g + ((size_t)t * B + b) * H, dh + b * H,
                         p + b * G, next + b * H);
        }
      }
      float *swap = dh;
      dh = next;
      next = swap;
    }
  }
#else
  (void)K, (void)T, (void)B, (void)H, (void)grad, (void)wt, (void)states, (void)pre, (void)nb;
  (void)slots, (void)dh_scratch;
#endif
}
