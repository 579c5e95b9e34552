/* svg.c — plots as inline SVG (no script, no external file: they read in a saved
 * page and in `latent --svg`). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "../cli/cli.h"
#include "web.h"

/* A number for an axis: short. */
static void num(char *out, size_t cap, double x, int logx)
{
    if (logx)
        snprintf(out, cap, "1e%.1f", x);
    else
        snprintf(out, cap, "%.3g", x);
}

void svg_hist(wbuf *b, const ldb_bin *bins, uint32_t n, int logx, const char *xlabel, double mark)
{
    const int W = 560, H = 200, L = 48, R = 12, T = 10, B = 36;
    uint64_t mx = 0;
    for (uint32_t i = 0; i < n; i++)
        mx = bins[i].count > mx ? bins[i].count : mx;
    wb_printf(b, "<svg class=\"plot\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" "
                 "width=\"%d\" height=\"%d\" role=\"img\">", W, H, W, H);
    wb_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#fafafa\" "
                 "stroke=\"#ccc\"/>", L, T, W - L - R, H - T - B);
    if (!n || !mx) {
        wb_printf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"12\">no data</text>",
                  W / 2, H / 2);
        wb_puts(b, "</svg>");
        return;
    }
    double lo = bins[0].lo, hi = bins[n - 1].hi, pw = W - L - R, ph = H - T - B;
    if (!(hi > lo))
        hi = lo + 1;
    for (uint32_t i = 0; i < n; i++) {
        double x0 = L + (bins[i].lo - lo) / (hi - lo) * pw, x1 = L + (bins[i].hi - lo) / (hi - lo) * pw;
        double h = (double)bins[i].count / (double)mx * ph;
        char a[32], c[32];
        num(a, sizeof a, bins[i].lo, logx);
        num(c, sizeof c, bins[i].hi, logx);
        wb_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#e8833a\">"
                     "<title>%s .. %s: %llu</title></rect>",
                  x0, T + ph - h, x1 - x0 > 1.5 ? x1 - x0 - 0.5 : 1, h, a, c,
                  (unsigned long long)bins[i].count);
    }
    if (isfinite(mark) && mark >= lo && mark <= hi) {
        double x = L + (mark - lo) / (hi - lo) * pw;
        wb_printf(b, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" stroke=\"#1a5fb4\" "
                     "stroke-width=\"2\"/>", x, x, T, H - B);
    }
    for (int t = 0; t <= 4; t++) { /* x ticks */
        double x = lo + (hi - lo) * t / 4;
        char s[32];
        num(s, sizeof s, x, logx);
        wb_printf(b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"%s\" font-size=\"11\">%s</text>",
                  L + pw * t / 4, H - B + 14, t == 4 ? "end" : t == 0 ? "start" : "middle", s);
    }
    wb_printf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" font-size=\"11\">%llu</text>", L - 4, T + 10,
              (unsigned long long)mx);
    wb_printf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" font-size=\"11\">0</text>", L - 4, H - B);
    wb_printf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"12\">", L + (int)pw / 2,
              H - 6);
    wb_escs(b, xlabel);
    wb_puts(b, "</text></svg>");
}

int cli_svg_file(const char *path, const ldb_bin *bins, uint32_t n, int logx, const char *xlabel)
{
    wbuf b = {0};
    wb_puts(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    svg_hist(&b, bins, n, logx, xlabel, NAN);
    wb_puts(&b, "\n");
    if (b.oom) {
        wb_free(&b);
        return cli_fail("out of memory");
    }
    FILE *f = fopen(path, "wb");
    int bad = !f;
    if (f) {
        bad |= fwrite(b.p, 1, b.n, f) != b.n;
        bad |= fclose(f) != 0;
    }
    wb_free(&b);
    return bad ? cli_fail("cannot write %s", path) : 0;
}
